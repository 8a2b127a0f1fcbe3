"""Each kind of playbook mistake is reported with the right file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.playbooks.loader import ValidationIssue
from tests.unit.playbooks.conftest import VALID, check, line_of


def only(issues: list[ValidationIssue]) -> ValidationIssue:
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def test_valid_minimal_playbook_is_clean(tmp_path: Path) -> None:
    assert check(tmp_path, VALID) == []


def test_unknown_key_names_file_line_key_and_suggests(tmp_path: Path) -> None:
    text = VALID.replace("    quorum: 1\n", "    quorum: 1\n    signor: maya-katz\n", 1)
    issue = only(check(tmp_path, text))
    assert issue.file == str(tmp_path / "playbooks" / "test-outage.yaml")
    assert issue.line == line_of(text, "signor:")
    assert issue.key == "statements.he.signor"
    assert "unknown key 'signor'" in issue.message and "did you mean 'signer'" in issue.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = VALID + "owner: comms\n"
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "owner:"), "owner")
    assert "allowed: id, name" in issue.message


def test_unknown_key_inside_detector_block(tmp_path: Path) -> None:
    text = VALID.replace("  min_volume: 20\n", "  detector:\n    sensitivty: 4\n")
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "sensitivty"), "triggers.detector.sensitivty")
    assert "did you mean 'sensitivity'" in issue.message


def test_missing_signer_key_points_at_the_statement(tmp_path: Path) -> None:
    text = VALID.replace("    signer: yossi-mizrahi\n", "", 1)
    issue = only(check(tmp_path, text))
    assert issue.key == "statements.he.signer"
    assert issue.line == line_of(text, "  he:", 2)  # the 'he' statement (the first 'he:' is crisis_terms)
    assert "missing required key 'signer'" in issue.message


def test_signer_not_in_roster(tmp_path: Path) -> None:
    text = VALID.replace("signer: yossi-mizrahi", "signer: yossi-mizrahy", 1)
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "yossi-mizrahy"), "statements.he.signer")
    assert issue.message.startswith("'yossi-mizrahy' is not a person in the roster")


def test_signer_must_read_the_statement_language(tmp_path: Path) -> None:
    text = VALID.replace("signer: yossi-mizrahi", "signer: sarah-whitfield", 1)  # the he statement
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "sarah-whitfield"), "statements.he.signer")
    assert "does not list 'he'" in issue.message


def test_approver_not_in_roster_points_at_the_list_item(tmp_path: Path) -> None:
    text = VALID.replace(
        "    approvers: [noa-ben-david, maya-katz]\n",
        "    approvers:\n      - noa-ben-david\n      - dana-nobody\n",
        1,
    )
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "dana-nobody"), "statements.he.approvers[1]")
    assert "'dana-nobody' is not a person in the roster" in issue.message


def test_signer_listed_as_approver(tmp_path: Path) -> None:
    text = VALID.replace("approvers: [noa-ben-david, maya-katz]", "approvers: [noa-ben-david, yossi-mizrahi]", 1)
    issue = only(check(tmp_path, text))
    assert issue.key == "statements.he.approvers[1]"
    assert "signer always approves" in issue.message


def test_quorum_larger_than_approvers(tmp_path: Path) -> None:
    text = VALID.replace("    quorum: 1\n", "    quorum: 3\n", 1)
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "quorum: 3"), "statements.he.quorum")
    assert "quorum 3 is more than the 2 approver(s)" in issue.message


def test_unknown_placeholder_points_at_its_line_inside_the_template(tmp_path: Path) -> None:
    text = VALID.replace("מה אנחנו יודעים: {what_we_know}", "מה אנחנו יודעים: {what_we_knew}")
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "{what_we_knew}"), "statements.he.template")
    assert "unknown placeholder {what_we_knew}" in issue.message


def test_every_bad_placeholder_is_reported(tmp_path: Path) -> None:
    text = VALID.replace("No {product}", "No {product!r}").replace("Next update {next_update}.", "Next {when} {")
    issues = check(tmp_path, text)
    assert {i.key for i in issues} == {"statements.en.template"}
    found = {(i.line, i.message.split(";")[0].split(" (")[0]) for i in issues}
    assert found == {
        (line_of(text, "{product!r}"), "{product!r}: write the bare placeholder"),
        (line_of(text, "Next {when}"), "unknown placeholder {when}"),
        (line_of(text, "Next {when}"), "unmatched '{'"),
        (line_of(text, "template: |", 2), "the template must contain {next_update}"),  # a whole-template problem
    }


def test_literal_braces_are_allowed(tmp_path: Path) -> None:
    assert check(tmp_path, VALID.replace("I'm sorry.", "I'm sorry {{really}}.")) == []


def test_template_in_a_quoted_one_line_scalar(tmp_path: Path) -> None:
    text = VALID.replace(
        "    template: |\n      No {product}",
        '    template: "{signer_name} {next_update} {oops}"\n    x_: |\n      No {product}',
    )
    issues = check(tmp_path, text)
    placeholder = next(i for i in issues if "{oops}" in i.message)
    assert (placeholder.line, placeholder.key) == (line_of(text, "{oops}"), "statements.en.template")


def test_unknown_brand(tmp_path: Path) -> None:
    text = VALID.replace("brands: [acme-telecom]", "brands: [acme-telecom, acme-foods]")
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "brands:"), "brands[1]")
    assert issue.message == "unknown brand 'acme-foods' (known: acme-telecom, golden-foods)"


def test_typo_gets_a_suggestion(tmp_path: Path) -> None:
    text = VALID.replace("brands: [acme-telecom]", "brands: [acme-telcom]").replace(
        "signer: yossi-mizrahi", "signer: yossi-mizrahy", 1
    )
    messages = [i.message for i in check(tmp_path, text)]
    assert messages == [
        "unknown brand 'acme-telcom'; did you mean 'acme-telecom'?",
        "'yossi-mizrahy' is not a person in the roster; did you mean 'yossi-mizrahi'?",
    ]


def test_unknown_schedule_and_policy(tmp_path: Path) -> None:
    text = VALID.replace("schedule: acme-comms", "schedule: acme-coms").replace(
        "escalation_policy: acme-outage", "escalation_policy: outage"
    )
    issues = check(tmp_path, text)
    assert [(i.line, i.key) for i in issues] == [
        (line_of(text, "schedule: acme-coms"), "schedule"),
        (line_of(text, "escalation_policy:"), "escalation_policy"),
    ]
    assert "no schedule named 'acme-coms'" in issues[0].message
    assert "no escalation policy named 'outage'" in issues[1].message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15", '15 has no unit: write "15m"'),
        ("15 minutes", "is not a duration"),
        ("1m30h", "is not a duration"),
        ("0m", "longer than zero"),
    ],
)
def test_bad_duration(tmp_path: Path, value: str, message: str) -> None:
    text = VALID.replace("acknowledge: 10m", f"acknowledge: {value}")
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "acknowledge:"), "response_targets.acknowledge")
    assert message in issue.message


def test_first_response_before_acknowledge(tmp_path: Path) -> None:
    text = VALID.replace("first_public_response: 1h", "first_public_response: 5m")
    issue = only(check(tmp_path, text))
    assert issue.key == "response_targets.first_public_response"
    assert "comes before acknowledge" in issue.message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = VALID.replace("severity: sev2", "severity: [sev2")
    issue = only(check(tmp_path, text))
    assert issue.key == "(file)"
    assert issue.message.startswith("YAML syntax error")
    assert line_of(text, "severity:") <= issue.line <= line_of(text, "severity:") + 2


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    text = VALID.replace("  min_volume: 20", "\tmin_volume: 20")
    issue = only(check(tmp_path, text))
    assert issue.line == line_of(text, "\tmin_volume")
    assert "YAML syntax error" in issue.message


def test_duplicate_key(tmp_path: Path) -> None:
    text = VALID.replace("severity: sev2\n", "severity: sev2\nseverity: sev1\n")
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "severity: sev1"), "severity")
    assert f"duplicate key 'severity' (first at line {line_of(text, 'severity: sev2')})" in issue.message


def test_bad_severity(tmp_path: Path) -> None:
    issue = only(check(tmp_path, VALID.replace("severity: sev2", "severity: critical")))
    assert issue.key == "severity" and "'sev1', 'sev2', 'sev3' or 'sev4'" in issue.message


def test_missing_required_language(tmp_path: Path) -> None:
    text = VALID.replace("  en:\n    signer", "  fr:\n    signer")
    issues = check(tmp_path, text)
    assert any(i.key == "statements" and "missing the 'en' statement" in i.message for i in issues)
    assert any(i.key == "statements.fr.signer" and "does not list 'fr'" in i.message for i in issues)


def test_id_must_match_file_name(tmp_path: Path) -> None:
    issue = only(check(tmp_path, VALID, name="other-name.yaml"))
    assert (issue.line, issue.key) == (1, "id")
    assert "must equal the file name (other-name.yaml)" in issue.message


def test_manual_playbook_with_detector_settings(tmp_path: Path) -> None:
    text = VALID.replace("  min_volume: 20\n", "  manual: true\n  min_volume: 20\n")
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "min_volume"), "triggers.min_volume")
    assert "manual playbook" in issue.message


def test_min_volume_set_twice(tmp_path: Path) -> None:
    text = VALID.replace("  min_volume: 20\n", "  detector:\n    min_volume: 5\n  min_volume: 20\n")
    issue = only(check(tmp_path, text))
    assert issue.key == "triggers.min_volume" and "set it once" in issue.message


def test_all_errors_in_a_file_are_reported_together(tmp_path: Path) -> None:
    text = (
        VALID.replace("brands: [acme-telecom]", "brands: [nobody-brand]")
        .replace("severity: sev2", "severity: sev9")
        .replace("schedule: acme-comms", "schedule: nope")
        .replace("acknowledge: 10m", "acknowledge: soon")
        .replace("    quorum: 1\n", "    quorum: 5\n", 1)
        .replace("signer: yossi-mizrahi", "signer: ghost", 1)
        .replace("{what_we_know}", "{wat}", 1)
        .replace("  crisis_terms:", "  crisis_term:")
    )
    keys = {i.key for i in check(tmp_path, text)}
    assert keys == {
        "brands[0]",
        "severity",
        "schedule",
        "response_targets.acknowledge",
        "statements.he.quorum",
        "statements.he.signer",
        "statements.he.template",
        "triggers.crisis_term",
    }


def test_errors_in_several_files_and_yml_files(tmp_path: Path) -> None:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "a.yaml").write_text("id: a\n", encoding="utf-8")
    (directory / "b.yml").write_text(VALID, encoding="utf-8")
    (directory / "c.yaml").write_text("", encoding="utf-8")
    from chalicelib.playbooks.loader import validate_dir
    from tests.unit.playbooks.conftest import BRANDS, ROSTER

    issues = validate_dir(directory, ROSTER, BRANDS)
    files = {Path(i.file).name for i in issues}
    assert files == {"a.yaml", "b.yml", "c.yaml"}
    assert any(i.file.endswith("c.yaml") and i.message == "the file is empty" for i in issues)
    assert any(i.file.endswith("b.yml") and "end in .yaml" in i.message for i in issues)
    assert {i.key for i in issues if i.file.endswith("a.yaml")} >= {"name", "brands", "statements"}


def test_pattern_errors_are_in_plain_words(tmp_path: Path) -> None:
    text = VALID.replace("signer: yossi-mizrahi", "signer: Yossi Mizrahi", 1)
    issue = only(check(tmp_path, text))
    assert (issue.line, issue.key) == (line_of(text, "Yossi Mizrahi"), "statements.he.signer")
    assert issue.message == "'Yossi Mizrahi': use lowercase letters, digits and hyphens, e.g. 'dana-levi'"


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = VALID.replace("  he:\n    signer: yossi-mizrahi", "  he: &statement\n    signer: yossi-mizrahi").replace(
        "  en:\n    signer: yossi-mizrahi\n", "  en:\n    <<: *statement\n    signer: yossi-mizrahi\n"
    )
    assert check(tmp_path, text) == []
