"""config/triage.yaml: the shipped file is valid; every mistake is reported as file:line: key: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import PROJECT_ROOT
from chalicelib.playbooks.loader import check_brands
from chalicelib.triage.config import TriageConfigError, check_triage, load_triage

BRANDS = frozenset({"acme-telecom", "golden-foods"})


def issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "triage.yaml"
    path.write_text(text, encoding="utf-8")
    parsed, found = check_triage(path, BRANDS, display="triage.yaml")
    assert (parsed is None) == bool(found)
    return [str(i) for i in found]


def test_the_shipped_file_is_valid_against_the_shipped_brands() -> None:
    brand_ids, problems = check_brands(PROJECT_ROOT / "config" / "brands.yaml")
    assert problems == [] and brand_ids is not None
    parsed, found = check_triage(PROJECT_ROOT / "config" / "triage.yaml", brand_ids)
    assert found == [] and parsed is not None
    assert {t.id for t in parsed.defaults.topics} >= {"outage", "billing", "safety", "staff"}


def test_unknown_key_names_file_line_and_suggests(tmp_path: Path) -> None:
    text = "defaults:\n  timezone: UTC\nbrands:\n  acme-telecom:\n    locale: he\n    topcs: []\n"
    assert issues(tmp_path, text) == [
        "triage.yaml:6: brands.acme-telecom.topcs: unknown key 'topcs' (did you mean 'topics'? allowed: locale, "
        "timezone, response_minutes, topics)"
    ]


def test_bad_regex_unknown_zone_brand_and_target_each_on_their_line(tmp_path: Path) -> None:
    text = (
        "defaults:\n"                      # 1
        "  timezone: Mars/Olympus\n"        # 2
        "brands:\n"                         # 3
        "  acme-telecom:\n"                 # 4
        "    response_minutes:\n"           # 5
        "      default: 0\n"                # 6
        "    topics:\n"                     # 7
        "      - id: outage\n"              # 8
        "        patterns: ['(unclosed']\n"  # 9
        "      - id: empty\n"               # 10
        "  no-such-brand:\n"                # 11
        "    locale: he\n"                  # 12
    )
    found = issues(tmp_path, text)
    assert any(f.startswith("triage.yaml:2: defaults.timezone: unknown time zone 'Mars/Olympus'") for f in found), found
    assert any(f.startswith("triage.yaml:6: brands.acme-telecom.response_minutes.default:") for f in found), found
    assert any(f.startswith("triage.yaml:9: brands.acme-telecom.topics[0].patterns:") and "regular expression" in f
               for f in found), found
    assert any(f.startswith("triage.yaml:10: brands.acme-telecom.topics[1]:") and "needs keywords or patterns" in f
               for f in found), found


def test_unknown_brand_is_reported_at_its_line(tmp_path: Path) -> None:
    found = issues(tmp_path, "brands:\n  acme-telecom: {locale: he}\n  acme-telecon:\n    locale: en\n")
    assert found == ["triage.yaml:3: brands.acme-telecon: unknown brand (brands file: acme-telecom, golden-foods)"]


def test_slow_pattern_duplicate_topic_and_yaml_syntax(tmp_path: Path) -> None:
    found = issues(tmp_path, "defaults:\n  topics:\n    - {id: a, patterns: ['(a+)+b']}\n")
    assert found == ["triage.yaml:3: defaults.topics[0].patterns: patterns[0] '(a+)+b' nests a repeat inside a "
                     "repeat (slow on long posts)"]
    found = issues(tmp_path, "defaults:\n  topics:\n    - {id: a, keywords: [y]}\n    - {id: a, keywords: [x]}\n")
    assert found == ["triage.yaml:2: defaults.topics: topic id 'a' is used twice"]
    assert issues(tmp_path, "brands:\n  acme-telecom: [\n") [0].startswith("triage.yaml:3: (file): YAML syntax error")


def test_load_raises_with_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("defaults:\n  locale: fr\n  digest_hour: 25\n", encoding="utf-8")
    with pytest.raises(TriageConfigError) as caught:
        load_triage(path, BRANDS)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{path}:2: defaults.locale:")
    assert ":3: defaults.digest_hour:" in lines[1]


def test_klaxon_playbooks_validate_reports_triage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from klaxon.cli import main

    path = tmp_path / "triage.yaml"
    path.write_text("defaults:\n  response_minutes: {default: 0}\n", encoding="utf-8")
    monkeypatch.setenv("KLAXON_TRIAGE_FILE", str(path))
    assert main(["playbooks", "validate"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}:2: defaults.response_minutes.default:")
    assert out[-1].startswith("1 error in 1 file")
