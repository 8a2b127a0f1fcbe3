"""`klaxon playbooks validate|schema`: output format `path:line: key.path: message`, exit status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from klaxon.cli import main
from tests.unit.playbooks.conftest import BRANDS, PLAYBOOKS, ROSTER, VALID, line_of

ISSUE_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<key>\S+): (?P<message>.+)$")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Call the CLI in-process; returns the exit status and stdout lines."""
    status = main(argv)
    return status, capsys.readouterr().out.splitlines()


def validate_args(directory: Path, roster: Path) -> list[str]:
    return ["playbooks", "validate", str(directory), "--roster", str(roster), "--brands", str(BRANDS)]


def test_shipped_examples_pass(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(validate_args(PLAYBOOKS, ROSTER), capsys)
    assert status == 0
    assert out == ["OK: 3 playbooks, roster and brands valid"]


def test_default_paths(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(["playbooks", "validate"], capsys)
    assert (status, out[-1]) == (0, "OK: 3 playbooks, roster and brands valid")


def test_broken_playbook_fails_with_one_line_per_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    text = VALID.replace("quorum: 1", "quorum: 4", 1).replace("brands: [acme-telecom]", "brands: [acme]")
    (directory / "test-outage.yaml").write_text(text, encoding="utf-8")
    (directory / "bad.yaml").write_text("id: bad\nname: [unclosed\n", encoding="utf-8")
    status, out = run(validate_args(directory, ROSTER), capsys)
    assert status == 1
    *issues, summary = out
    parsed = [ISSUE_LINE.match(line) for line in issues]
    assert all(parsed), issues
    rows = [(Path(m["file"]).name, int(m["line"]), m["key"]) for m in parsed if m]
    assert ("test-outage.yaml", line_of(text, "quorum: 4"), "statements.he.quorum") in rows
    assert ("test-outage.yaml", line_of(text, "brands:"), "brands[0]") in rows
    assert any(name == "bad.yaml" and key == "(file)" for name, _, key in rows)
    assert summary == "3 errors in 2 files (2 playbooks checked)"


def test_roster_errors_fail_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER.read_text(encoding="utf-8").replace("Europe/London", "Europe/Lodnon", 1), encoding="utf-8")
    status, out = run(validate_args(PLAYBOOKS, roster), capsys)
    assert status == 1
    assert re.match(r"^.*roster\.yaml:\d+: people\[7\]\.timezone: 'Europe/Lodnon' is not an IANA time zone", out[0])
    assert out[-1] == "1 error in 1 file (3 playbooks checked)"


def test_env_overrides_roster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAXON_ROSTER_FILE", str(tmp_path / "missing.yaml"))
    status, out = run(["playbooks", "validate", str(PLAYBOOKS)], capsys)
    assert status == 1
    assert out[0].endswith("missing.yaml:1: (file): file not found")


def test_schema_command_writes_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schema.json"
    status, out = run(["playbooks", "schema", "--output", str(target)], capsys)
    assert status == 0 and out == [f"{target}: written"]
    assert target.read_text(encoding="utf-8") == (PLAYBOOKS / "schema.json").read_text(encoding="utf-8")
    status, out = run(["playbooks", "schema", "--output", str(target)], capsys)
    assert out == [f"{target}: already up to date"]
