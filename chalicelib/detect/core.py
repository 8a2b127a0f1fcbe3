"""Online spike detector for per-brand negative-mention counts.

Model (all in log space, where a crisis is a multiplicative jump and noise is roughly additive):
    log(count + C) = level + season(hour of day) + noise,
    noise variance = extra variance (learned, robust) + Poisson variance at the expected count.
A bucket is anomalous when its robust z-score, its ratio to the expected count and its volume all
clear their thresholds. The baseline learns only from winsorised residuals, so a crisis barely
moves it; one alarm opens an episode that ends only after a cooldown AND a calm period
(hysteresis), so one crisis raises one alarm and a second wave after calm raises another.

`observe` is a pure function of (state, params, input) -> (new state, alarm or None) with O(1)
work per call (a gap of missing buckets is zero-filled up to one day, then skipped).
"""

from __future__ import annotations

import math

from .alarm import Alarm
from .params import DetectorParams
from .state import FIRED_CUR, IN_EPISODE, SEASON_SLOTS, WEEK_SLOTS, DetectorState

C = 1.0  # pseudo-count: log(0 + C) is finite and a quiet brand's 0 -> 1 -> 2 is not a "3x spike"
SHARE_PSEUDO = 0.5  # Jeffreys-style pseudo-count for the negative-share logit
VAR_WINSOR = 100
WINSOR = 3.0  # residuals are clipped at this many sd before the baseline learns from them
VAR_FLOOR = 0.05**2  # extra variance never learned below a 5% log-scale wobble
MAX_COUNT = 1e15  # larger or non-finite inputs are clamped: keeps every float finite
MAX_FILL_SECONDS = 86400  # gaps longer than a day are not zero-filled bucket by bucket
DAY = 86400.0
WEEK = 7 * DAY
WEEK_ORIGIN = 4 * DAY  # 1970-01-01 was a Thursday: shift so weekly slot 0 is Monday (UTC)


LAMBDA = 0.0
ENV_HL = 672
ENV_K = 1.0


def _fwd(x: float) -> float:
    """Box-Cox transform of a count (log for LAMBDA=0)."""
    if LAMBDA == 0.0:
        return math.log(x + C)
    return ((x + C) ** LAMBDA - 1.0) / LAMBDA


def _inv(y: float) -> float:
    if LAMBDA == 0.0:
        return max(math.exp(min(y, 700.0)) - C, 0.0)
    return max(max(LAMBDA * y + 1.0, 0.0) ** (1.0 / LAMBDA) - C, 0.0)


def _pois_var(mu: float) -> float:
    """Delta-method variance of the transformed count under Poisson noise at mean `mu`."""
    return mu * (mu + C) ** (2.0 * LAMBDA - 2.0)


def _clean(x: float | None) -> float:
    if x is None or x != x or x < 0:  # None, NaN, negative
        return 0.0
    return min(float(x), MAX_COUNT)


def _rate(bucket_seconds: float, half_life_seconds: float) -> float:
    """Per-bucket EWMA weight for a memory given in seconds (so 1-min and 5-min buckets agree)."""
    return 1.0 - 2.0 ** (-bucket_seconds / max(half_life_seconds, 1e-9))


def _slots(t_mid: float, period: float, n: int) -> tuple[int, int, float]:
    """The two profile slots around time `t_mid` (slot k is centred at (k + 0.5) * period / n)
    and the interpolation weight of the second, so the profile is piecewise linear, not a staircase."""
    pos = (t_mid % period) / (period / n) - 0.5
    base = math.floor(pos)
    return int(base) % n, (int(base) + 1) % n, pos - base


def _expected_log(st: DetectorState, bucket_start: int) -> float:
    t_mid = bucket_start + st.bucket_seconds / 2.0
    i0, i1, w = _slots(t_mid, DAY, SEASON_SLOTS)
    j0, j1, v = _slots(t_mid - WEEK_ORIGIN, WEEK, WEEK_SLOTS)
    return (
        st.level
        + (1.0 - w) * st.season[i0]
        + w * st.season[i1]
        + (1.0 - v) * st.week[j0]
        + v * st.week[j1]
    )


def _neg_stats(st: DetectorState, x: float, bucket_start: int) -> tuple[float, float, float, float]:
    """(z, expected count, log residual, sd) of count `x` in the bucket starting at `bucket_start`."""
    b = _expected_log(st, bucket_start)
    mu = _inv(b)
    sd = math.sqrt(st.var_extra + _pois_var(mu))
    r = _fwd(x) - b
    return r / sd, mu, r, sd


def _share_stats(st: DetectorState, neg: float, total: float) -> tuple[float, float, float, float]:
    """(z, expected share, logit residual, sd) of the negative share `neg / total`."""
    pos = max(total - neg, 0.0)
    q = math.log((neg + SHARE_PSEUDO) / (pos + SHARE_PSEUDO))
    sd = math.sqrt(st.share_var + 1.0 / (neg + SHARE_PSEUDO) + 1.0 / (pos + SHARE_PSEUDO))
    r = q - st.share_level
    return r / sd, 1.0 / (1.0 + math.exp(-st.share_level)), r, sd


def _sustained(st: DetectorState, p: DetectorParams, neg: float, mu: float, rc: float) -> tuple[float, float, float]:
    """The sustained channel after adding this bucket: (EWMA residual, EW mean count, EW mean expected)."""
    a = _rate(st.bucket_seconds, p.sustained_half_life_hours * 3600)
    return (
        (1.0 - a) * st.sus_resid + a * rc,
        (1.0 - a) * st.sus_count + a * neg,
        (1.0 - a) * st.sus_expected + a * mu,
    )


def _learn_profile(prof: list[float], slots: tuple[int, int, float], rate: float, resid: float) -> None:
    i0, i1, w = slots
    prof[i0] += rate * (1.0 - w) * resid
    prof[i1] += rate * w * resid


def _learn(st: DetectorState, p: DetectorParams, start: int, neg: float, total: float) -> None:
    """Close the bucket at `start` with final counts: episode bookkeeping, then baseline update."""
    bs = st.bucket_seconds
    if st.history_seconds <= 0.0:  # cold start: the first bucket is the baseline
        st.level = _fwd(neg)
        st.history_seconds = float(bs)
        _learn_share(st, p, neg, total)
        return
    z, mu, r, sd = _neg_stats(st, neg, start)
    rc = max(-WINSOR * sd, min(WINSOR * sd, r))
    # Young baselines learn faster: memory is at most half the history seen (bias-corrected EWMA).
    young = max(float(bs), st.history_seconds / 2.0)
    a_var = _rate(bs, min(p.scale_half_life_hours * 3600, young))
    m, count, expected = _sustained(st, p, neg, mu, rc)
    if st.flags & IN_EPISODE:
        calm = m < p.rearm_z * math.sqrt(st.sus_var)
        st.calm_seconds = st.calm_seconds + bs if calm else 0.0
        if st.calm_seconds >= p.calm_hours * 3600 and start - st.alarm_at >= p.cooldown_hours * 3600:
            st.flags &= ~IN_EPISODE
    sd_m = math.sqrt(st.sus_var)
    mc = max(-WINSOR * sd_m, min(WINSOR * sd_m, m))
    st.sus_var = max(VAR_FLOOR / 4, st.sus_var + a_var * (mc * mc - st.sus_var))
    st.sus_resid, st.sus_count, st.sus_expected = m, count, expected
    if st.history_seconds >= p.warmup_hours * 3600:
        st.envelope = max(st.envelope - math.log(2.0) * bs / (ENV_HL * 3600), _fwd(neg))
    st.level += _rate(bs, min(p.level_half_life_hours * 3600, young)) * rc
    t_mid = start + bs / 2.0
    a_day = _rate(bs * SEASON_SLOTS, p.season_half_life_days * DAY)  # per visit of a slot
    a_week = _rate(bs * WEEK_SLOTS, p.weekly_half_life_days * DAY)
    _learn_profile(st.season, _slots(t_mid, DAY, SEASON_SLOTS), a_day, rc)
    _learn_profile(st.week, _slots(t_mid - WEEK_ORIGIN, WEEK, WEEK_SLOTS), a_week, rc)
    # keep both profiles centred so that `level` stays the level
    for prof in (st.season, st.week):
        mean = sum(prof) / len(prof)
        for k in range(len(prof)):
            prof[k] -= mean
        st.level += mean
    v_pois = _pois_var(mu)
    rv = max(-VAR_WINSOR * sd, min(VAR_WINSOR * sd, r))
    st.var_extra = max(VAR_FLOOR, st.var_extra + a_var * (rv * rv - v_pois - st.var_extra))
    st.history_seconds += bs
    _learn_share(st, p, neg, total)


def _learn_share(st: DetectorState, p: DetectorParams, neg: float, total: float) -> None:
    if total <= 0.0:
        return
    bs = st.bucket_seconds
    if st.share_seconds <= 0.0:
        st.share_level = math.log((neg + SHARE_PSEUDO) / (max(total - neg, 0.0) + SHARE_PSEUDO))
        st.share_seconds = float(bs)
        return
    _, _, r, sd = _share_stats(st, neg, total)
    rc = max(-WINSOR * sd, min(WINSOR * sd, r))
    young = max(float(bs), st.share_seconds / 2.0)
    st.share_level += _rate(bs, min(p.level_half_life_hours * 3600, young)) * rc
    v_binom = sd * sd - st.share_var
    a_var = _rate(bs, min(p.scale_half_life_hours * 3600, young))
    st.share_var = max(VAR_FLOOR, st.share_var + a_var * (rc * rc - v_binom - st.share_var))
    st.share_seconds += bs


def _advance(st: DetectorState, p: DetectorParams, bucket_start: int) -> None:
    """Close the open bucket and every missing bucket before `bucket_start` (missing = zero)."""
    bs = st.bucket_seconds
    _learn(st, p, st.cur_start, st.cur_negative, st.cur_total)
    missing = (bucket_start - st.cur_start) // bs - 1
    fill = min(missing, MAX_FILL_SECONDS // bs)
    for k in range(1, fill + 1):
        _learn(st, p, st.cur_start + k * bs, 0.0, -1.0)
    if missing > fill and st.flags & IN_EPISODE:  # a long silence is calm too
        st.calm_seconds += (missing - fill) * bs
    st.cur_start = bucket_start
    st.cur_negative = 0.0
    st.cur_total = -1.0
    st.flags &= ~FIRED_CUR


def _check(st: DetectorState, p: DetectorParams) -> Alarm | None:
    """Alarm on the open bucket's counts so far (they only grow, so firing early is safe)."""
    if st.flags & (IN_EPISODE | FIRED_CUR) or st.history_seconds < max(p.warmup_hours * 3600, 1.0):
        return None
    neg, start = st.cur_negative, st.cur_start
    z, mu, r, sd = _neg_stats(st, neg, start)
    m, count, expected = _sustained(st, p, neg, mu, max(-WINSOR * sd, min(WINSOR * sd, r)))
    z_m = m / math.sqrt(st.sus_var)
    a = _rate(st.bucket_seconds, p.sustained_half_life_hours * 3600)
    span = 1.0 / a  # effective number of buckets in the EW window
    alarm = None
    record = _fwd(neg) > st.envelope + math.log(ENV_K)
    if z >= p.sensitivity and neg >= p.min_volume and neg >= p.min_ratio * mu and record:
        alarm = Alarm(start, neg, mu, neg / mu if mu > 0 else math.inf, st.bucket_seconds, "negative", z)
    elif z_m >= p.sustained_sensitivity and count * span >= p.min_volume and count >= p.sustained_min_ratio * expected:
        window = int(round(span * st.bucket_seconds))
        ratio = count / expected if expected > 0 else math.inf
        alarm = Alarm(start, count * span, expected * span, ratio, window, "negative", z_m)
    elif st.cur_total > 0.0 and st.share_seconds >= p.warmup_hours * 3600 and neg >= p.min_volume:
        zs, expected, _, _ = _share_stats(st, neg, st.cur_total)
        share = neg / st.cur_total
        if zs >= p.share_sensitivity and share >= p.share_min_ratio * expected and z >= p.share_corroboration_z:
            alarm = Alarm(start, share, expected, share / expected, st.bucket_seconds, "negative_share", zs)
    if alarm is not None:
        st.flags |= IN_EPISODE | FIRED_CUR
        st.alarm_at = start
        st.calm_seconds = 0.0
    return alarm


def new_state(bucket_start: int, bucket_seconds: int) -> DetectorState:
    return DetectorState(bucket_seconds=bucket_seconds, cur_start=bucket_start)


def observe(
    state: DetectorState | None,
    params: DetectorParams,
    *,
    bucket_start: int,
    bucket_seconds: int,
    negative: float,
    total: float | None = None,
) -> tuple[DetectorState, Alarm | None]:
    """Feed the cumulative counts so far of the bucket at `bucket_start`; returns (new state, alarm).

    The input state is not modified. A later bucket closes the open one (gaps count as zeros);
    an update for a bucket older than the open one is ignored (it can no longer change an alarm).
    """
    bucket_seconds = int(bucket_seconds)
    if bucket_seconds <= 0:
        raise ValueError("bucket_seconds must be positive")
    bucket_start = int(bucket_start)
    if state is None or state.bucket_seconds != bucket_seconds:
        st = new_state(bucket_start, bucket_seconds)  # a new bucket size means a fresh baseline
    else:
        st = state.copy()
    if bucket_start < st.cur_start:
        return st, None
    if bucket_start >= st.cur_start + bucket_seconds:
        _advance(st, params, bucket_start)
    neg = _clean(negative)
    st.cur_negative = max(st.cur_negative, neg)
    if total is not None:
        st.cur_total = max(st.cur_total, _clean(total), st.cur_negative)
    return st, _check(st, params)
