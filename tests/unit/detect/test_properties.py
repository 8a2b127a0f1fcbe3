"""Property tests: whatever non-negative counts arrive, in whatever order, `observe` never raises,
keeps every number finite and the serialised state small, and never mutates its input."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.detect import STATE_BYTES, DetectorParams, DetectorState, observe

T0 = 1_700_000_000
MAX_STATE = 2048

counts = st.one_of(
    st.just(0.0),
    st.integers(min_value=0, max_value=50).map(float),
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.just(1e12),
)
# (bucket offset from the previous update: 0 = same bucket again, 1 = next, >1 = a gap,
#  negative = a late update for an older bucket), count, optional total
steps = st.lists(
    st.tuples(
        st.one_of(st.integers(-3, 3), st.integers(4, 3000), st.just(10**6)),
        counts,
        st.one_of(st.none(), counts),
    ),
    min_size=1,
    max_size=200,
)
bucket_sizes = st.sampled_from([1, 60, 300, 3600])
params_strategy = st.sampled_from(
    [
        DetectorParams(),
        DetectorParams(warmup_hours=0, record_half_life_days=0, sensitivity=0.5, rearm_z=0.1),
        DetectorParams(spike_window_minutes=60, cooldown_hours=0, calm_hours=0),
    ]
)


def _finite(state: DetectorState) -> bool:
    for value in state.to_dict().values():
        for v in value if isinstance(value, list) else [value]:
            if not math.isfinite(v):
                return False
    return True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, bucket_seconds=bucket_sizes, params=params_strategy)
def test_any_nonnegative_stream_is_safe(steps, bucket_seconds, params):
    state: DetectorState | None = None
    bucket = 0
    for offset, negative, total in steps:
        bucket = max(0, bucket + offset)
        before = state.to_bytes() if state is not None else None
        new, alarm = observe(
            state,
            params,
            bucket_start=T0 + bucket * bucket_seconds,
            bucket_seconds=bucket_seconds,
            negative=negative,
            total=total,
        )
        if state is not None:
            assert state.to_bytes() == before, "observe must not mutate its input state"
        blob = new.to_bytes()
        assert len(blob) == STATE_BYTES <= MAX_STATE
        assert DetectorState.from_bytes(blob) == new
        assert DetectorState.from_dict(new.to_dict()) == new
        assert _finite(new)
        if alarm is not None:
            assert alarm.observed >= 0 and alarm.expected >= 0 and alarm.ratio >= 0
            assert alarm.series in ("negative", "negative_share")
            assert 0 < len(alarm.explain()) <= 160
        state = new


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.sampled_from([0.0, 1.0, 1e12]), min_size=50, max_size=400))
def test_extremes_only(values):
    """Zeros and 1e12 alternating at random: still finite, still small."""
    state = None
    for i, v in enumerate(values):
        state, _ = observe(state, DetectorParams(), bucket_start=T0 + 300 * i, bucket_seconds=300, negative=v)
    assert _finite(state) and len(state.to_bytes()) <= MAX_STATE


def test_late_and_duplicate_updates_change_nothing():
    params = DetectorParams()
    state, _ = observe(None, params, bucket_start=T0, bucket_seconds=60, negative=5)
    state, _ = observe(state, params, bucket_start=T0 + 60, bucket_seconds=60, negative=7)
    # a late update for the closed bucket is ignored: same state object back, no alarm
    again, alarm = observe(state, params, bucket_start=T0, bucket_seconds=60, negative=10**6)
    assert again is state and alarm is None
    # a lower (stale, reordered) cumulative count for the open bucket does not lower it
    again, _ = observe(state, params, bucket_start=T0 + 60, bucket_seconds=60, negative=3)
    assert again.cur_negative == 7


def test_gap_counts_as_zeros():
    params = DetectorParams()
    a, _ = observe(None, params, bucket_start=T0, bucket_seconds=60, negative=5)
    a, _ = observe(a, params, bucket_start=T0 + 3 * 60, bucket_seconds=60, negative=4)
    b, _ = observe(None, params, bucket_start=T0, bucket_seconds=60, negative=5)
    for m, c in ((1, 0), (2, 0), (3, 4)):
        b, _ = observe(b, params, bucket_start=T0 + m * 60, bucket_seconds=60, negative=c)
    assert a == b


def test_state_is_small():
    assert STATE_BYTES <= MAX_STATE
    assert STATE_BYTES < 1024  # a fixed struct, independent of history length
