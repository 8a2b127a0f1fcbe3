"""Helpers for the playbook tests: a valid minimal playbook, and validation of one file in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.playbooks.loader import ValidationIssue, validate_dir
from tests.conftest import ROOT

ROSTER = ROOT / "config" / "roster.yaml"
BRANDS = ROOT / "config" / "brands.yaml"
PLAYBOOKS = ROOT / "playbooks"

VALID = """\
id: test-outage
name: Test outage
brands: [acme-telecom]
severity: sev2
triggers:
  min_volume: 20
  crisis_terms:
    en: [outage]
    he: [תקלה]
schedule: acme-comms
escalation_policy: acme-outage
response_targets:
  acknowledge: 10m
  first_public_response: 1h
statements:
  he:
    signer: yossi-mizrahi
    approvers: [noa-ben-david, maya-katz]
    quorum: 1
    template: |
      אין {product} של {brand}. סליחה.
      מה אנחנו יודעים: {what_we_know}
      העדכון הבא {next_update}.
      {signer_name}, {signer_role}
  en:
    signer: yossi-mizrahi
    approvers: [noa-ben-david, maya-katz]
    quorum: 1
    template: |
      No {product} from {brand}. I'm sorry.
      What we know: {what_we_know}
      Next update {next_update}.
      {signer_name}, {signer_role}
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle` (so tests do not hard-code numbers)."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in text"
    return hits[occurrence - 1]


def check(tmp_path: Path, text: str, name: str = "test-outage.yaml", roster: Path = ROSTER) -> list[ValidationIssue]:
    """Validate a playbooks dir holding just this file, against the shipped roster and brands."""
    directory = tmp_path / "playbooks"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return validate_dir(directory, roster, BRANDS)


@pytest.fixture
def valid_text() -> str:
    return VALID
