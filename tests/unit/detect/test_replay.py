"""Replay tests: a week of per-minute negative counts with a daily cycle, then a crisis.

The stream is Poisson with a gamma-distributed (overdispersed) rate, like real mention counts.
The state goes through to_bytes/from_bytes after every update, as it will in DynamoDB.
"""

from __future__ import annotations

import math
import random

import pytest

from chalicelib.detect import Alarm, DetectorParams, DetectorState, observe

T0 = 1_710_115_200  # 2024-03-11 00:00 UTC, a Monday
MIN = 60
DAY_MIN = 1440


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def daily_rate(base: float, minute: int) -> float:
    """Busy afternoons (peak ~15:00 UTC), quiet nights: a factor of 4 between them."""
    hour = (minute % DAY_MIN) / 60.0
    return base * math.exp(0.7 * math.sin(2 * math.pi * (hour - 9.0) / 24.0))


def stream(base: float, seed: int, crises: list[tuple[int, int, float, int]], minutes: int) -> list[int]:
    """Per-minute counts; each crisis is (start minute, duration, multiplier, ramp minutes)."""
    rng = random.Random(seed)
    out = []
    for m in range(minutes):
        lam = daily_rate(base, m) * rng.gammavariate(20.0, 1 / 20.0)  # ~22% extra-Poisson wobble
        for start, dur, mult, ramp in crises:
            if start <= m < start + dur:
                lam *= 1 + (mult - 1) * (min(1.0, (m - start + 1) / ramp) if ramp else 1.0)
        out.append(poisson(rng, lam))
    return out


def replay(counts: list[int], params: DetectorParams | None = None) -> list[tuple[int, Alarm]]:
    params = params or DetectorParams()
    state: DetectorState | None = None
    alarms = []
    for m, c in enumerate(counts):
        state, alarm = observe(state, params, bucket_start=T0 + m * MIN, bucket_seconds=MIN, negative=c)
        state = DetectorState.from_bytes(state.to_bytes())
        if alarm is not None:
            alarms.append((m, alarm))
    return alarms


CRISIS = 7 * DAY_MIN + 10 * 60  # day 8, 10:00 UTC


@pytest.mark.parametrize("base", [3.0, 10.0, 40.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_crisis_x5_raises_one_alarm_within_3_minutes(base, seed):
    counts = stream(base, seed, [(CRISIS, 180, 5.0, 0)], CRISIS + 12 * 60)
    alarms = replay(counts)
    before = [m for m, _ in alarms if m < CRISIS]
    assert before == [], f"false alarms in the 7 baseline days at minutes {before}"
    assert len(alarms) == 1, [(m - CRISIS, a.explain()) for m, a in alarms]
    minute, alarm = alarms[0]
    assert 0 <= minute - CRISIS < 3
    assert alarm.series == "negative" and alarm.ratio >= 2
    assert alarm.explain().startswith("neg ")


@pytest.mark.parametrize("seed", [1, 2])
def test_crisis_ramping_to_x5_over_10_minutes(seed):
    counts = stream(10.0, seed, [(CRISIS, 180, 5.0, 10)], CRISIS + 12 * 60)
    alarms = replay(counts)
    assert len(alarms) == 1
    assert 0 <= alarms[0][0] - CRISIS < 10


def test_night_crisis_is_caught_too():
    crisis = 7 * DAY_MIN + 3 * 60  # 03:00 UTC, the quiet hours
    counts = stream(10.0, 3, [(crisis, 180, 5.0, 0)], crisis + 12 * 60)
    alarms = replay(counts)
    assert len(alarms) == 1
    assert 0 <= alarms[0][0] - crisis < 10


def test_second_wave_after_calm_raises_a_second_alarm():
    first, second = CRISIS, CRISIS + DAY_MIN + 6 * 60  # the next afternoon, after a calm night
    counts = stream(10.0, 4, [(first, 120, 5.0, 0), (second, 120, 6.0, 0)], second + 6 * 60)
    alarms = replay(counts)
    assert [m for m, _ in alarms if m < first] == []
    starts = [m for m, _ in alarms]
    assert len(starts) == 2, [(m - first, a.explain()) for m, a in alarms]
    assert 0 <= starts[0] - first < 3 and 0 <= starts[1] - second < 30


def test_fires_before_the_bucket_closes():
    """Cumulative partial counts inside the crisis minute: the alarm comes on a partial update."""
    params = DetectorParams()
    counts = stream(10.0, 5, [], CRISIS)
    state: DetectorState | None = None
    for m, c in enumerate(counts):
        state, alarm = observe(state, params, bucket_start=T0 + m * MIN, bucket_seconds=MIN, negative=c)
        assert alarm is None
    # crisis: the minute at CRISIS fills up in four 15-second steps, then CRISIS+1, ...
    expected = daily_rate(10.0, CRISIS)
    fired_at = None
    for m in range(CRISIS, CRISIS + 5):
        for quarter in range(1, 5):
            so_far = round(5 * expected * quarter / 4)
            state, alarm = observe(state, params, bucket_start=T0 + m * MIN, bucket_seconds=MIN, negative=so_far)
            if alarm is not None and fired_at is None:
                fired_at = (m - CRISIS, quarter)
    assert fired_at is not None and fired_at[0] <= 2 and fired_at[1] < 4, fired_at
