"""The shipped roster and playbooks are valid, and the helpers other services use behave."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from chalicelib.detect import DetectorParams
from chalicelib.playbooks import (
    Playbook,
    crisis_terms_for,
    load_playbooks,
    load_roster,
    playbook_for,
    render_template,
    validate_dir,
)
from chalicelib.playbooks.loader import default_playbooks
from tests.unit.playbooks.conftest import BRANDS, PLAYBOOKS, ROSTER

BRAND_NAMES = {"acme-telecom": "Acme Telecom", "golden-foods": "Golden Foods"}


@pytest.fixture(scope="module")
def playbooks() -> list[Playbook]:
    return load_playbooks(PLAYBOOKS, load_roster(ROSTER), BRAND_NAMES)


def test_shipped_files_validate_clean() -> None:
    assert validate_dir(PLAYBOOKS, ROSTER, BRANDS) == []


def test_shipped_playbooks(playbooks: list[Playbook]) -> None:
    assert [p.id for p in playbooks] == ["acme-network-outage", "golden-product-recall", "group-executive-conduct"]
    outage = playbooks[0]
    assert outage.severity == "sev1"
    assert outage.response_targets.acknowledge == timedelta(minutes=10)
    assert outage.response_targets.first_public_response == timedelta(minutes=30)
    assert {"he", "en"} <= set(outage.statements)


def test_default_playbooks_match_the_shipped_files(playbooks: list[Playbook]) -> None:
    default_playbooks.cache_clear()
    assert list(default_playbooks()) == playbooks


def test_detector_params_merge_min_volume(playbooks: list[Playbook]) -> None:
    outage, recall, scandal = playbooks
    params = outage.triggers.detector_params()
    assert isinstance(params, DetectorParams)
    assert (params.sensitivity, params.min_ratio, params.min_volume) == (4.0, 3.0, 40.0)
    assert params.calm_hours == DetectorParams().calm_hours  # unset knobs keep the detector's defaults
    assert recall.triggers.detector_params().min_volume == 15.0  # type: ignore[union-attr]
    assert scandal.triggers.manual and scandal.triggers.detector_params() is None


def test_playbook_for_orders_by_severity(playbooks: list[Playbook]) -> None:
    def ids(brand: str) -> list[str]:
        return [p.id for p in playbook_for(brand, playbooks)]

    assert ids("acme-telecom") == ["acme-network-outage", "group-executive-conduct"]  # sev1 before sev2
    assert ids("golden-foods") == ["golden-product-recall", "group-executive-conduct"]
    assert ids("unknown-brand") == []


def test_crisis_terms_for(playbooks: list[Playbook]) -> None:
    terms = crisis_terms_for("golden-foods", playbooks)
    assert "recall" in terms and "ריקול" in terms and "הטרדה" in terms  # the recall and the scandal playbooks
    assert "outage" not in terms
    assert len(terms) == len(set(terms))
    default_playbooks.cache_clear()
    assert crisis_terms_for("golden-foods") == terms


def test_crisis_terms_feed_the_sentiment_matcher(playbooks: list[Playbook]) -> None:
    from chalicelib.sentiment import has_crisis_term

    terms = crisis_terms_for("acme-telecom", playbooks)
    assert has_crisis_term("שוב אין קליטה באקמי", terms)
    assert has_crisis_term("@AcmeSupport I can't call anyone", terms)
    assert not has_crisis_term("great coverage on the beach today", terms)


def test_every_statement_renders_signed_in_its_language(playbooks: list[Playbook]) -> None:
    roster = load_roster(ROSTER)
    for playbook in playbooks:
        for lang, statement in playbook.statements.items():
            signer = roster.person(statement.signer)
            text = render_template(
                statement.template,
                {
                    "brand": BRAND_NAMES[playbook.brands[0]],
                    "product": "PRODUCT",
                    "what_we_know": "KNOW",
                    "what_we_are_doing": "DOING",
                    "next_update": "NEXT",
                    "signer_name": signer.name_in(lang),
                    "signer_role": signer.role_in(lang),
                },
            )
            assert "{" not in text and "NEXT" in text
            assert signer.name_in(lang) in text
            if lang == "he":
                assert any("\u05d0" <= ch <= "\u05ea" for ch in signer.name_in(lang))  # signed in Hebrew script


def test_statements_avoid_boilerplate(playbooks: list[Playbook]) -> None:
    banned = ["dm us", "direct message", "inconvenience", "we regret", "אי הנוחות", "בפרטי", "הודעה פרטית"]
    for playbook in playbooks:
        for statement in playbook.statements.values():
            lowered = statement.template.casefold()
            assert not [b for b in banned if b in lowered], playbook.id


def test_render_template_needs_every_value() -> None:
    with pytest.raises(KeyError, match="next_update"):
        render_template("{signer_name} {next_update}", {"signer_name": "x"})


def test_load_playbooks_raises_with_all_issues(tmp_path: Path) -> None:
    from chalicelib.playbooks import PlaybookError

    directory = tmp_path / "pb"
    directory.mkdir()
    for path in PLAYBOOKS.glob("*.yaml"):
        (directory / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_playbooks(directory, load_roster(ROSTER), ["acme-telecom"])  # golden-foods unknown here
    assert {(Path(i.file).name, i.key) for i in caught.value.issues} == {
        ("golden-product-recall.yaml", "brands[0]"),
        ("group-executive-conduct.yaml", "brands[1]"),
    }
