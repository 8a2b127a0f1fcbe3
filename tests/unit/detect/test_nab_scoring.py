"""The NAB scorer: rule-by-rule checks on tiny synthetic files, then reproduction of NAB's
published per-file raw scores from the published detections (needs ../shared)."""

from __future__ import annotations

import math

import pytest

from bench.nab_data import load_all, load_published, load_windows
from bench.nab_scoring import PROFILES, normalise, scaled_sigmoid, score_detector, score_file

# NAB results/ raw standard-profile scores, per file, as quoted in ../shared/data/nab/README.md
PUBLISHED_RAW = {
    "ARTime": {"AAPL": 2.9161, "AMZN": 2.7366, "CRM": 2.1007, "FB": 1.2142, "GOOG": 1.4058},
    "numenta": {"AAPL": 1.2639, "AMZN": -0.7440, "CRM": 0.7236, "FB": 1.6105, "GOOG": -0.2602},
    "contextOSE": {"AAPL": 1.6981, "AMZN": -0.3886, "CRM": 2.5827, "FB": 1.7205, "GOOG": 0.0497},
}
PUBLISHED_NORMALISED = {"ARTime": 82.42, "numenta": 58.11, "contextOSE": 67.69}
PUBLISHED_LOW_FP = {"ARTime": 71.1, "numenta": 51.1, "contextOSE": 67.0}


def _ts(n: int) -> list[str]:
    """n five-minute timestamps in NAB format (sortable as text)."""
    return [f"2015-01-{1 + i // 288:02d} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00" for i in range(n)]


def test_scaled_sigmoid_landmarks():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0


def test_rules_on_a_synthetic_file():
    ts = _ts(6000)  # probation = min(floor(0.15 * 6000), 750) = 750 rows
    window = [(ts[2000], ts[2099])]  # 100 rows
    std = "standard"
    # never fires: -fn per window
    assert score_file(ts, window, [], std).raw == pytest.approx(-1.0)
    # first row of the window: +tp exactly
    s = score_file(ts, window, [ts[2000]], std)
    assert (s.raw, s.tp, s.fp) == (pytest.approx(1.0), 1, 0)
    # only the earliest detection in a window counts
    assert score_file(ts, window, [ts[2050], ts[2000]], std).raw == pytest.approx(1.0)
    # last row of the window: S(-1/100)/S(-1), small but positive
    last = score_file(ts, window, [ts[2099]], std).raw
    assert last == pytest.approx(scaled_sigmoid(-1 / 100) / scaled_sigmoid(-1.0))
    # a false positive before any window costs the full fp weight
    assert score_file(ts, window, [ts[1000]], std).raw == pytest.approx(-1.0 - 0.11)
    # ... in the probationary period, nothing
    assert score_file(ts, window, [ts[10]], std).raw == pytest.approx(-1.0)
    # ... right after a window, almost nothing; far after, the full weight
    just_after = score_file(ts, window, [ts[2000], ts[2100]], std).raw
    assert just_after == pytest.approx(1.0 + 0.11 * scaled_sigmoid(1 / 99))
    far = score_file(ts, window, [ts[2000], ts[2099 + 3 * 99]], std).raw
    assert far == pytest.approx(1.0 - 0.11)
    # profile weights
    assert score_file(ts, window, [ts[1000]], "reward_low_FP_rate").raw == pytest.approx(-1.0 - 0.22)
    assert score_file(ts, window, [], "reward_low_FN_rate").raw == pytest.approx(-2.0)


def test_window_inside_probation_does_not_count():
    ts = _ts(6000)
    s = score_file(ts, [(ts[100], ts[200])], [], "standard")
    assert (s.raw, s.windows) == (0.0, 0)


def test_normalisation_null_and_perfect():
    ts = _ts(6000)
    wins = [(ts[2000], ts[2099]), (ts[4000], ts[4099])]
    for profile in PROFILES:
        null = score_file(ts, wins, [], profile)
        perfect = score_file(ts, wins, [ts[2000], ts[4000]], profile)
        assert normalise([null], profile) == pytest.approx(0.0)
        assert normalise([perfect], profile) == pytest.approx(100.0)


def test_reproduces_published_raw_scores(nab_dir):
    series = load_all(nab_dir)
    windows = load_windows(nab_dir)
    published = load_published(nab_dir)
    ts = {k: s.timestamps for k, s in series.items()}
    assert set(PUBLISHED_RAW) <= set(published)
    for name, per_file in PUBLISHED_RAW.items():
        norm, scores = score_detector(ts, windows, published[name], "standard")
        for short, raw in per_file.items():
            key = f"realTweets/Twitter_volume_{short}.csv"
            assert scores[key].raw == pytest.approx(raw, abs=5e-5), (name, short)
        assert norm == pytest.approx(PUBLISHED_NORMALISED[name], abs=0.005)
        low_fp, _ = score_detector(ts, windows, published[name], "reward_low_FP_rate")
        assert math.isclose(low_fp, PUBLISHED_LOW_FP[name], abs_tol=0.05), name
