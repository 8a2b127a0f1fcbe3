"""The NAB benchmark commands on the dev files (needs ../shared; ~10 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import nab_detect, nab_score
from bench.nab_data import load_all, load_windows
from bench.nab_scoring import score_detector


@pytest.fixture(scope="module")
def detections(nab_dir: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("nab") / "detections.json"
    assert nab_detect.main([str(nab_dir), str(out)]) == 0
    return out, json.loads(out.read_text())


def test_nab_detect_output_format(nab_dir, detections):
    _, det = detections
    series = load_all(nab_dir)
    assert set(det) == set(series)
    for key, stamps in det.items():
        assert key.startswith("realTweets/") and key.endswith(".csv")
        rows = set(series[key].timestamps)
        assert all(len(t) == 19 and t in rows for t in stamps)
        assert stamps == sorted(stamps)


def test_dev_scores_beat_the_best_published_detector(nab_dir, detections):
    """Acceptance on the 5 dev files, one set of default parameters: ARTime has 82.4 / 71.1."""
    _, det = detections
    series = load_all(nab_dir)
    ts = {k: s.timestamps for k, s in series.items()}
    windows = load_windows(nab_dir)
    standard, _ = score_detector(ts, windows, det, "standard")
    low_fp, _ = score_detector(ts, windows, det, "reward_low_FP_rate")
    assert standard > 82.4
    assert low_fp > 71.1


def test_nab_score_prints_the_table(nab_dir, detections, capsys):
    path, _ = detections
    assert nab_score.main(["--data", str(nab_dir), str(path)]) == 0
    out = capsys.readouterr().out
    for row in ("klaxon (detections.json)", "published: ARTime", "baseline: EWMA", "Huginn", "null"):
        assert row in out
    assert "reward_low_FP_rate" in out
