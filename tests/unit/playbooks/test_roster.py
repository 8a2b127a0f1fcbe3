"""The roster: people, schedules and escalation policies are validated, with file, line and key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from chalicelib.playbooks import PlaybookError, load_roster
from chalicelib.playbooks.loader import ValidationIssue, check_roster
from tests.unit.playbooks.conftest import VALID, check, line_of

ROSTER = """\
people:
  - id: dana-levi
    name: Dana Levi
    role: Head of Communications
    phone: "+972545550111"
    timezone: Asia/Jerusalem
    languages: [he, en]
    local:
      he:
        name: דנה לוי
  - id: tom-baker
    name: Tom Baker
    role: Press Officer
    phone: "+447700900111"
    timezone: Europe/London
    languages: [en]
schedules:
  - name: comms
    timezone: Asia/Jerusalem
    rotation: weekly
    handoff: 09:00
    start: 2026-01-04
    members: [dana-levi, tom-baker]
    overrides:
      - person: tom-baker
        start: 2026-03-01T09:00
        end: 2026-03-02T09:00
escalation_policies:
  - name: default
    steps:
      - targets: [schedule:comms]
        ack_timeout: 5m
      - targets: [person:dana-levi, person:tom-baker]
        ack_timeout: 10m
    repeat: 2
    fallback: person:dana-levi
"""


def roster_issues(tmp_path: Path, text: str) -> list[ValidationIssue]:
    path = tmp_path / "roster.yaml"
    path.write_text(text, encoding="utf-8")
    return check_roster(path)[2]


def only(issues: list[ValidationIssue]) -> ValidationIssue:
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def test_valid_roster_loads_with_yaml_1_2_scalars(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(ROSTER, encoding="utf-8")
    roster = load_roster(path)
    schedule = roster.schedules[0]
    assert schedule.handoff == "09:00"  # unquoted, and not the YAML 1.1 sexagesimal number 540
    assert schedule.start == date(2026, 1, 4)
    assert roster.escalation_policies[0].steps[1].ack_timeout.total_seconds() == 600
    dana = roster.person("dana-levi")
    assert (dana.name_in("he"), dana.name_in("en")) == ("דנה לוי", "Dana Levi")
    assert dana.role_in("he") == "Head of Communications"  # no local role: falls back


def test_unquoted_ten_oclock_is_a_time_not_600(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(ROSTER.replace("handoff: 09:00", "handoff: 10:00"), encoding="utf-8")
    assert load_roster(path).schedules[0].handoff == "10:00"


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ('phone: "+972545550111"', 'phone: "054-555-0111"', "people[0].phone", "not an E.164 phone number"),
        ('phone: "+972545550111"', "phone: +972545550111", "people[0].phone", "must be a quoted string"),
        ("timezone: Europe/London", "timezone: Europe/Londn", "people[1].timezone", "not an IANA time zone"),
        ("languages: [en]", "languages: []", "people[1].languages", "at least 1 item"),
        ("handoff: 09:00", "handoff: 9am", "schedules[0].handoff", "'9am': use a 24-hour time HH:MM"),
        ("rotation: weekly", "rotation: monthly", "schedules[0].rotation", "'daily' or 'weekly'"),
        ("members: [dana-levi, tom-baker]", "members: [dana-levi, tom-bakr]", "schedules[0].members[1]",
         "'tom-bakr' is not a person in the roster; did you mean 'tom-baker'?"),
        ("      - person: tom-baker", "      - person: nobody", "schedules[0].overrides[0].person", "not a person"),
        ("end: 2026-03-02T09:00", "end: 2026-02-28T09:00", "schedules[0].overrides[0].end", "after start"),
        ("targets: [schedule:comms]", "targets: [schedule:coms]", "escalation_policies[0].steps[0].targets[0]",
         "no schedule named 'coms'"),
        ("targets: [schedule:comms]", "targets: [team:comms]", "escalation_policies[0].steps[0].targets[0]",
         '"person:<id>" or "schedule:<name>"'),
        ("targets: [schedule:comms]", "targets: []", "escalation_policies[0].steps[0].targets", "at least 1 item"),
        ("ack_timeout: 5m", "ack_timeout: five", "escalation_policies[0].steps[0].ack_timeout", "not a duration"),
        ("fallback: person:dana-levi", "fallback: person:ghost", "escalation_policies[0].fallback",
         "'ghost' is not a person"),
        ("repeat: 2", "repeat: 99", "escalation_policies[0].repeat", "less than or equal to 10"),
        ("    ack_timeout: 5m", "    ack_timeout: 5m\n        retries: 3", "escalation_policies[0].steps[0].retries",
         "unknown key 'retries'"),
    ],
)
def test_roster_errors(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    assert old in ROSTER
    text = ROSTER.replace(old, new, 1)
    issue = only(roster_issues(tmp_path, text))
    assert issue.key == key
    assert message in issue.message
    assert issue.line == line_of(text, new.split("\n")[-1].strip())


def test_duplicate_names(tmp_path: Path) -> None:
    text = ROSTER.replace("  - id: tom-baker", "  - id: dana-levi").replace(
        "members: [dana-levi, tom-baker]", "members: [dana-levi]"
    )
    text = text.replace(", person:tom-baker]", "]").replace("person: tom-baker", "person: dana-levi")
    issue = only(roster_issues(tmp_path, text))
    assert (issue.key, issue.line) == ("people[1].id", line_of(text, "- id: dana-levi", 2))
    assert "'dana-levi' is listed twice (first at [0])" in issue.message


def test_overlapping_overrides(tmp_path: Path) -> None:
    text = ROSTER.replace(
        "        end: 2026-03-02T09:00\n",
        "        end: 2026-03-02T09:00\n      - person: dana-levi\n        start: 2026-03-01T20:00\n"
        "        end: 2026-03-03T09:00\n",
    )
    issue = only(roster_issues(tmp_path, text))
    assert (issue.key, issue.line) == ("schedules[0].overrides[1].start", line_of(text, "start: 2026-03-01T20:00"))
    assert "overlaps override [0]" in issue.message


def test_all_roster_errors_are_reported(tmp_path: Path) -> None:
    text = (
        ROSTER.replace('"+447700900111"', '"+44 7700 900111"')
        .replace("timezone: Asia/Jerusalem\n    rotation", "timezone: Mars/Olympus\n    rotation")
        .replace("fallback: person:dana-levi", "fallback: schedule:nope")
    )
    keys = [i.key for i in roster_issues(tmp_path, text)]
    assert keys == ["people[1].phone", "schedules[0].timezone", "escalation_policies[0].fallback"]


def test_load_roster_raises_with_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(ROSTER.replace("rotation: weekly", "rotation: hourly"), encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_roster(path)
    assert [i.key for i in caught.value.issues] == ["schedules[0].rotation"]
    assert f"{path}:{line_of(ROSTER, 'rotation:')}: schedules[0].rotation:" in str(caught.value)


def test_broken_roster_entry_does_not_cascade_into_playbooks(tmp_path: Path) -> None:
    """A roster with one bad phone still resolves names, so playbooks get no bogus 'unknown person' errors."""
    shipped = (Path(__file__).resolve().parents[3] / "config" / "roster.yaml").read_text(encoding="utf-8")
    roster = tmp_path / "roster.yaml"
    roster.write_text(shipped.replace('"+972545550104"', '"0545550104"'), encoding="utf-8")
    issues = check(tmp_path, VALID, roster=roster)
    assert [(Path(i.file).name, i.key) for i in issues] == [("roster.yaml", "people[3].phone")]


def test_missing_roster_file(tmp_path: Path) -> None:
    issues = check(tmp_path, VALID, roster=tmp_path / "nope.yaml")
    assert [(i.line, i.key, i.message) for i in issues] == [(1, "(file)", "file not found")]
