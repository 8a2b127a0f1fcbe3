"""Parameters (playbook model), alarm messages, cold start, and the negative-share series."""

from __future__ import annotations

import math
import random

import pydantic
import pytest

from chalicelib.detect import Alarm, DetectorParams, DetectorState, observe

T0 = 1_710_115_200  # a Monday, 00:00 UTC


def test_defaults_are_valid_and_extra_keys_are_forbidden():
    p = DetectorParams()
    assert p.sensitivity > p.rearm_z
    assert DetectorParams.model_validate(p.model_dump()) == p
    with pytest.raises(pydantic.ValidationError):
        DetectorParams(sensitivty=4)  # a playbook typo must fail loudly
    with pytest.raises(pydantic.ValidationError):
        DetectorParams(rearm_z=5, sensitivity=4)
    with pytest.raises(pydantic.ValidationError):
        DetectorParams(min_ratio=0.5)


def test_time_parameters_are_not_in_buckets():
    fields = DetectorParams.model_fields
    for name in fields:
        assert "bucket" not in name
    assert all(n.endswith(("_hours", "_days", "_minutes")) for n in fields if "life" in n or "window" in n)


def test_explanations_fit_an_sms():
    a = Alarm(T0, 212, 23, 212 / 23, 300, "negative")
    assert a.explain() == "neg 212/5min, 9.2x usual (expected 23)"
    assert Alarm(T0, 15, 0.1, 150, 300, "negative").explain() == "neg 15/5min, usually ~0"
    assert Alarm(T0, 7729, 2727, 2.83, 10380, "negative", kind="sustained").explain() == (
        "neg 7729/3h, 2.8x usual (expected 2727)"
    )
    share = Alarm(T0, 0.15, 0.08, 1.9, 60, "negative_share", kind="share")
    assert share.explain() == "neg share 15%/1min, 1.9x usual (expected 8%)"
    assert Alarm(T0, 1e12, 3.0, 3e11, 300, "negative").to_dict()["observed"] == 1e12


def _pois(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _busy_brand(minutes: int, share_at, seed: int = 7, total_rate: float = 400.0):
    """Per-minute (negative, total) of a busy brand with a daily cycle; share_at(minute) -> share."""
    rng = random.Random(seed)
    for m in range(minutes):
        lam = total_rate * math.exp(0.7 * math.sin(2 * math.pi * ((m % 1440) / 1440 - 0.375)))
        lam *= rng.gammavariate(20.0, 1 / 20.0)
        neg = _pois(rng, lam * share_at(m))
        yield m, neg, neg + _pois(rng, lam * (1 - share_at(m)))


def _run(rows) -> list[tuple[int, Alarm]]:
    params, state, out = DetectorParams(), None, []
    for m, neg, total in rows:
        state, alarm = observe(state, params, bucket_start=T0 + 60 * m, bucket_seconds=60, negative=neg, total=total)
        if alarm:
            out.append((m, alarm))
    return out


CRISIS = 7 * 1440 + 14 * 60


def test_share_catches_a_crisis_the_volume_barely_shows():
    """8% -> 13% negative in a busy brand: negatives only 1.6x, below the volume rule's 2x."""
    alarms = _run(_busy_brand(CRISIS + 120, lambda m: 0.13 if m >= CRISIS else 0.08))
    assert [m for m, _ in alarms if m < CRISIS] == []
    assert len(alarms) == 1 and alarms[0][0] - CRISIS < 10
    assert alarms[0][1].series == "negative_share" and "neg share" in alarms[0][1].explain()


def test_share_rise_from_fewer_positives_alone_is_not_a_crisis():
    """Positive mentions halve (share doubles) but negatives stay flat: no corroboration, no alarm."""
    rng = random.Random(3)
    rows = []
    for m, neg, total in _busy_brand(CRISIS + 180, lambda m: 0.08):
        if m >= CRISIS:
            total = neg + _pois(rng, (total - neg) / 2)
        rows.append((m, neg, total))
    assert _run(rows) == []


def test_cold_start_quiet_then_glaring_spike():
    """No history at all: a normal first day raises nothing, a glaring burst still does."""
    params, state = DetectorParams(), None
    rng = random.Random(11)
    alarms = []
    for m in range(600):
        state, alarm = observe(state, params, bucket_start=T0 + 60 * m, bucket_seconds=60, negative=_pois(rng, 4))
        alarms += [alarm] if alarm else []
    assert alarms == []
    state, alarm = observe(state, params, bucket_start=T0 + 60 * 600, bucket_seconds=60, negative=400)
    assert alarm is not None and alarm.kind == "spike"


def test_quiet_brand_needs_min_volume():
    params, state = DetectorParams(warmup_hours=0), None
    for m in range(3000):
        state, alarm = observe(state, params, bucket_start=T0 + 300 * m, bucket_seconds=300, negative=m % 2)
    # 0/1 mentions per 5 min, then 6: a big ratio, but below min_volume (10)
    state, alarm = observe(state, params, bucket_start=T0 + 300 * 3000, bucket_seconds=300, negative=6)
    assert alarm is None


def test_state_version_and_roundtrip():
    state, _ = observe(None, DetectorParams(), bucket_start=T0, bucket_seconds=60, negative=3, total=10)
    blob = state.to_bytes()
    assert blob[0] == state.version == 1
    assert DetectorState.from_bytes(blob) == state
    with pytest.raises(ValueError):
        DetectorState.from_bytes(b"\x02" + blob[1:])
    with pytest.raises(ValueError):
        DetectorState.from_bytes(blob[:-1])
