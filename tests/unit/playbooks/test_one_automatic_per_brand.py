"""One spike, one incident: a brand has at most one automatic playbook (design invariant 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.alerts.service import BrandAlarm, raise_incidents
from chalicelib.playbooks.loader import PlaybookError, load_playbooks, load_roster, validate_all
from tests.unit.playbooks.conftest import BRANDS, ROSTER, VALID, line_of


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text.replace("id: test-outage", f"id: {name}"), encoding="utf-8")
    return path


def test_a_second_automatic_playbook_for_a_brand_is_refused_at_its_brands_line(tmp_path: Path) -> None:
    write(tmp_path, "test-outage", VALID)  # sev2
    write(tmp_path, "test-billing", VALID.replace("severity: sev2", "severity: sev3"))
    issues = validate_all(tmp_path, ROSTER, BRANDS).issues
    assert len(issues) == 1
    (issue,) = issues
    assert issue.file.endswith("test-billing.yaml")  # the less severe one; the sev2 keeps the brand
    assert issue.line == line_of(VALID, "brands:") and issue.key == "brands"
    assert "'acme-telecom'" in issue.message and "'test-outage'" in issue.message
    assert "manual: true" in issue.message
    with pytest.raises(PlaybookError):
        load_playbooks(tmp_path, load_roster(ROSTER), ["acme-telecom", "golden-foods"])


def test_a_manual_second_playbook_or_another_brand_is_fine(tmp_path: Path) -> None:
    write(tmp_path, "test-outage", VALID)
    manual = VALID.replace("triggers:\n  min_volume: 20\n", "triggers:\n  manual: true\n")
    write(tmp_path, "test-conduct", manual)
    write(tmp_path, "test-recall", VALID.replace("brands: [acme-telecom]", "brands: [golden-foods]"))
    assert validate_all(tmp_path, ROSTER, BRANDS).issues == []


def test_an_alarm_opens_one_incident_even_if_two_automatic_playbooks_got_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: raise_incidents opens only the most severe automatic playbook."""
    from chalicelib.alerts import service
    from chalicelib.detect.alarm import Alarm

    write(tmp_path, "test-outage", VALID)
    write(tmp_path, "test-billing", VALID.replace("severity: sev2", "severity: sev1"))
    roster = load_roster(ROSTER)
    # Load each file on its own (each is valid alone), as a set that skipped the cross-file check.
    playbooks = [load_playbooks(_alone(tmp_path, name), roster, ["acme-telecom"])[0]
                 for name in ("test-outage", "test-billing")]
    opened: list[str] = []
    monkeypatch.setattr(service.incidents, "open_or_update", lambda **kw: opened.append(kw["playbook"]) or kw)
    alarm = Alarm(bucket_start=0, observed=50.0, expected=5.0, ratio=10.0, window_seconds=300, series="negative")
    raise_incidents([BrandAlarm("acme-telecom", alarm)], playbooks)
    assert opened == ["test-billing"]  # the sev1


def _alone(directory: Path, name: str) -> Path:
    alone = directory / name
    alone.mkdir()
    (alone / f"{name}.yaml").write_text((directory / f"{name}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return alone
