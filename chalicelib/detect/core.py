"""Online spike detector for per-brand negative-mention counts.

Model, in log space (a crisis multiplies volume; day-to-day wobble is multiplicative too):
    log(count + C) = level + daily(hour of day) + weekly(day of week) + noise,
    var(noise)     = learned extra variance + Poisson variance at the expected count.
The baseline learns only from residuals clipped at WINSOR sd, so a crisis barely moves it.

Three ways to fire (the first that holds wins), each checked on the counts so far of the open
bucket, so a bucket that already holds more than the whole bucket should can fire before it closes:
- spike: the bucket's z-score, its ratio to expected and its count clear their thresholds, and the
  count beats the largest count of the past week or so (a decaying record), so a bursty brand is
  not paged for every burst no bigger than the ones it had days ago;
- sustained: the residual smoothed over about an hour (or an afternoon) is high relative to how much
  that smoothed residual usually moves, and observed/expected over that window is high enough;
- negative share (only when totals are given): the share of negative mentions jumped, the negative
  count itself is up too, and there are enough negative mentions.
An alarm opens an episode; the next alarm needs both a cooldown and a calm spell (hysteresis).

`observe` is a pure function (state, params, input) -> (new state, alarm | None), O(1) per call
(a gap is zero-filled bucket by bucket up to one day, then skipped).
"""

from __future__ import annotations

import math

from .alarm import Alarm
from .params import DetectorParams
from .state import DAILY_SLOTS, FIRED_CUR, IN_EPISODE, RING, SCALES, WEEKLY_SLOTS, DetectorState

C = 1.0  # pseudo-count: log(0 + C) is finite, and a quiet brand going 0 -> 2 is not a "3x spike"
SHARE_PSEUDO = 0.5  # Jeffreys pseudo-count for the negative-share logit
WINSOR = 3.0  # the baseline learns from residuals clipped at this many sd
VAR_FLOOR = 0.05**2  # extra log-variance is never learned below a 5% wobble
MAX_COUNT = 1e15  # larger or non-finite inputs are clamped: every float stays finite
MAX_FILL_SECONDS = 86400  # gaps longer than a day are not zero-filled bucket by bucket...
MAX_FILL_BUCKETS = 1440  # ...nor longer than 1440 buckets: bounded work per call
LN2 = math.log(2.0)
MAX_EPOCH = 2**53  # epoch seconds beyond this are garbage (and would not fit the state)
DAY = 86400.0
WEEK = 7 * DAY
WEEK_ORIGIN = 4 * DAY  # 1970-01-01 was a Thursday; shifting by 4 days puts Monday 00:00 at slot 0


def _clean(x: float | None) -> float:
    if x is None or x != x or x < 0:  # None, NaN, negative
        return 0.0
    return min(float(x), MAX_COUNT)


def _rate(bucket_seconds: float, half_life_seconds: float) -> float:
    """Per-bucket EWMA weight for a memory given in seconds (1-min and 5-min buckets agree)."""
    return 1.0 - 2.0 ** (-bucket_seconds / max(half_life_seconds, 1e-9))


def _slots(t: float, period: float, n: int) -> tuple[int, int, float]:
    """The two profile slots around time `t` (slot k is centred at (k + 0.5) * period / n) and the
    weight of the second: the profile is piecewise linear in time, not a staircase."""
    pos = (t % period) / (period / n) - 0.5
    base = math.floor(pos)
    return int(base) % n, (int(base) + 1) % n, pos - base


def _profiles(st: DetectorState, bucket_start: int) -> tuple[tuple[int, int, float], tuple[int, int, float]]:
    t_mid = bucket_start + st.bucket_seconds / 2.0
    return _slots(t_mid, DAY, DAILY_SLOTS), _slots(t_mid - WEEK_ORIGIN, WEEK, WEEKLY_SLOTS)


def _expected_log(st: DetectorState, bucket_start: int) -> float:
    (i0, i1, w), (j0, j1, v) = _profiles(st, bucket_start)
    daily = (1.0 - w) * st.daily[i0] + w * st.daily[i1]
    return st.level + daily + (1.0 - v) * st.weekly[j0] + v * st.weekly[j1]


def _expected(st: DetectorState, bucket_start: int) -> float:
    return max(math.exp(min(_expected_log(st, bucket_start), 700.0)) - C, 0.0)


def _neg_stats(st: DetectorState, x: float, bucket_start: int) -> tuple[float, float, float, float]:
    """(z, expected count, log residual, sd) of count `x` in the bucket starting at `bucket_start`."""
    b = _expected_log(st, bucket_start)
    mu = max(math.exp(min(b, 700.0)) - C, 0.0)
    sd = math.sqrt(st.var_extra + mu / (mu + C) ** 2)  # delta-method Poisson variance of log(x + C)
    r = math.log(x + C) - b
    return r / sd, mu, r, sd


def _window_buckets(st: DetectorState, p: DetectorParams) -> int:
    return max(1, min(RING + 1, round(p.spike_window_minutes * 60 / st.bucket_seconds)))


def _window_stats(
    st: DetectorState, p: DetectorParams, x: float, bucket_start: int
) -> tuple[float, float, float, float, int]:
    """Spike statistics over the window ending with the bucket at `bucket_start` holding `x`:
    (z, observed, expected, log residual, buckets). One bucket when buckets are >= the window."""
    k = _window_buckets(st, p)
    observed = x + sum(st.recent[: k - 1])
    expected = _expected(st, bucket_start) + sum(st.recent_expected[: k - 1])
    r = math.log(observed + C) - math.log(expected + C)
    sd = math.sqrt(st.var_window + expected / (expected + C) ** 2)
    return r / sd, observed, expected, r, k


def _excess(observed: float, expected: float) -> float:
    """Size of a spike for the record: log of the excess count over expected."""
    return math.log(max(observed - expected, 0.0) + C)


def _share_stats(st: DetectorState, neg: float, total: float) -> tuple[float, float, float, float]:
    """(z, expected share, logit residual, sd) of the negative share `neg / total`."""
    pos = max(total - neg, 0.0)
    q = math.log((neg + SHARE_PSEUDO) / (pos + SHARE_PSEUDO))
    sd = math.sqrt(st.share_var + 1.0 / (neg + SHARE_PSEUDO) + 1.0 / (pos + SHARE_PSEUDO))
    r = q - st.share_level
    return r / sd, 1.0 / (1.0 + math.exp(-st.share_level)), r, sd


def _smoothed(
    st: DetectorState, p: DetectorParams, k: int, rc: float, x_clipped: float, mean_mu: float
) -> tuple[float, float, float, float]:
    """Sustained channel `k` with this bucket added: (z, smoothed log residual, window count, window
    expected). The clipped log residuals are smoothed by an EWMA and compared with how much that
    smoothed residual usually moves (learned), so a brand whose afternoons wander needs a bigger
    rise; counts are summed over the EWMA's effective window (1 / weight buckets) for the message."""
    a = _rate(st.bucket_seconds, p.sustained_half_lives_hours[k] * 3600)
    m = (1.0 - a) * st.sus_resid[k] + a * rc
    count = ((1.0 - a) * st.sus_count[k] + a * x_clipped) / a
    expected = ((1.0 - a) * st.sus_expected[k] + a * mean_mu) / a
    return m / math.sqrt(st.sus_var[k]), m, count, expected


def _mean_count(mu: float, sd: float) -> float:
    """Expected mean count when log(count + C) has median log(mu + C) and spread sd (log-normal):
    the sustained channel sums counts, so it must compare them with means, not medians."""
    return max((mu + C) * math.exp(min(sd * sd / 2.0, 50.0)) - C, 0.0)


def _winsorised(x: float, mu: float, sd: float) -> float:
    """The count clipped WINSOR sd above (in log space) what was expected: one burst cannot make
    an afternoon look elevated."""
    return min(x, (mu + C) * math.exp(WINSOR * sd) - C)


def _clip(x: float, bound: float) -> float:
    return max(-bound, min(bound, x))


def _learn_profile(prof: list[float], slots: tuple[int, int, float], rate: float, resid: float) -> None:
    i0, i1, w = slots
    prof[i0] += rate * (1.0 - w) * resid
    prof[i1] += rate * w * resid


def _learn(st: DetectorState, p: DetectorParams, start: int, neg: float, total: float) -> None:
    """Close the bucket at `start` with its final counts: episode bookkeeping, then learning."""
    bs = st.bucket_seconds
    if st.history_seconds <= 0.0:  # cold start: the first bucket is the baseline
        st.level = math.log(neg + C)
        st.history_seconds = float(bs)
        st.recent = [neg, *st.recent[:-1]]
        st.recent_expected = [neg, *st.recent_expected[:-1]]
        _learn_share(st, p, neg, total)
        return
    _, mu, r, sd = _neg_stats(st, neg, start)
    rc = _clip(r, WINSOR * sd)
    # A young baseline learns faster: its memory is at most half the history seen so far.
    young = max(float(bs), st.history_seconds / 2.0)
    a_var = _rate(bs, min(p.scale_half_life_days * DAY, young))

    slow_z = 0.0
    xc, mean_mu = _winsorised(neg, mu, sd), _mean_count(mu, sd)
    for k in range(SCALES):
        z_k, m, count, expected = _smoothed(st, p, k, rc, xc, mean_mu)
        a = _rate(bs, p.sustained_half_lives_hours[k] * 3600)
        mc = _clip(m, WINSOR * math.sqrt(st.sus_var[k]))
        st.sus_var[k] = max(VAR_FLOOR / 16, st.sus_var[k] + a_var * (mc * mc - st.sus_var[k]))
        st.sus_resid[k], st.sus_count[k], st.sus_expected[k] = m, count * a, expected * a
        slow_z = z_k
    if st.flags & IN_EPISODE:
        st.calm_seconds = st.calm_seconds + bs if slow_z < p.rearm_z else 0.0
        if st.calm_seconds >= p.calm_hours * 3600 and start - st.alarm_at >= p.cooldown_hours * 3600:
            st.flags &= ~IN_EPISODE
    _, w_obs, w_exp, w_r, _ = _window_stats(st, p, neg, start)
    v_pois_w = w_exp / (w_exp + C) ** 2
    st.var_window = max(VAR_FLOOR, st.var_window + a_var * (w_r * w_r - v_pois_w - st.var_window))
    if p.record_half_life_days > 0:
        decayed = st.record - LN2 * bs / (p.record_half_life_days * DAY)
        st.record = max(decayed, _excess(w_obs, w_exp), 0.0)
    st.recent = [neg, *st.recent[:-1]]
    st.recent_expected = [mu, *st.recent_expected[:-1]]
    st.level += _rate(bs, min(p.level_half_life_hours * 3600, young)) * rc
    daily_slots, weekly_slots = _profiles(st, start)
    # rates per visit of a slot: each hour-of-day slot is visited once a day, each weekday once a week
    # Rates per visit: an hour-of-day slot is visited once a day, a weekday once a week. A young
    # profile learns faster (memory: half the history), but never with a memory below one period,
    # else a slot would chase the hours inside its own day instead of comparing days.
    hl_daily = min(p.daily_half_life_days * DAY, max(DAY, young))
    hl_weekly = min(p.weekly_half_life_days * DAY, max(WEEK, young))
    _learn_profile(st.daily, daily_slots, _rate(bs * DAILY_SLOTS, hl_daily), rc)
    _learn_profile(st.weekly, weekly_slots, _rate(bs * WEEKLY_SLOTS, hl_weekly), rc)
    for prof in (st.daily, st.weekly):  # keep the profiles centred so that `level` stays the level
        mean = sum(prof) / len(prof)
        for i in range(len(prof)):
            prof[i] -= mean
        st.level += mean
    v_pois = mu / (mu + C) ** 2
    st.var_extra = max(VAR_FLOOR, st.var_extra + a_var * (r * r - v_pois - st.var_extra))
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
    young = max(float(bs), st.share_seconds / 2.0)
    st.share_level += _rate(bs, min(p.level_half_life_hours * 3600, young)) * _clip(r, WINSOR * sd)
    v_binom = sd * sd - st.share_var
    a_var = _rate(bs, min(p.scale_half_life_days * DAY, young))
    rv = _clip(r, WINSOR * sd)
    st.share_var = max(VAR_FLOOR, st.share_var + a_var * (rv * rv - v_binom - st.share_var))
    st.share_seconds += bs


def _advance(st: DetectorState, p: DetectorParams, bucket_start: int) -> None:
    """Close the open bucket and every missing bucket before `bucket_start` (missing = zero)."""
    bs = st.bucket_seconds
    _learn(st, p, st.cur_start, st.cur_negative, st.cur_total)
    missing = (bucket_start - st.cur_start) // bs - 1
    fill = min(missing, MAX_FILL_SECONDS // bs, MAX_FILL_BUCKETS)
    for k in range(1, fill + 1):
        _learn(st, p, st.cur_start + k * bs, 0.0, -1.0)
    if missing > fill:  # the rest of a long silence: not learned from, but it is calm and it is zeros
        st.recent = [0.0] * RING
        st.recent_expected = [0.0] * RING
        if st.flags & IN_EPISODE:
            st.calm_seconds += (missing - fill) * bs
    st.cur_start = bucket_start
    st.cur_negative = 0.0
    st.cur_total = -1.0
    st.flags &= ~FIRED_CUR


def _check(st: DetectorState, p: DetectorParams) -> Alarm | None:
    """Alarm on the open bucket's counts so far (they only grow, so firing early is safe)."""
    if st.flags & (IN_EPISODE | FIRED_CUR) or st.history_seconds < min(p.warmup_hours, 1.0) * 3600:
        return None
    warm = st.history_seconds >= p.warmup_hours * 3600
    sensitivity = p.sensitivity if warm else 2.0 * p.sensitivity
    neg, start, bs = st.cur_negative, st.cur_start, st.bucket_seconds
    _, mu, r, sd = _neg_stats(st, neg, start)
    z, observed, expected, _, k = _window_stats(st, p, neg, start)
    alarm = None
    is_record = p.record_half_life_days <= 0 or _excess(observed, expected) > st.record
    if z >= sensitivity and observed >= p.min_volume and observed >= p.min_ratio * expected and is_record:
        alarm = Alarm(start, observed, expected, _ratio(observed, expected), k * bs, "negative", z, "spike")
    rc, xc, mean_mu = _clip(r, WINSOR * sd), _winsorised(neg, mu, sd), _mean_count(mu, sd)
    for k in range(SCALES):
        if alarm is not None or not warm:
            break
        z_k, _, count, expected = _smoothed(st, p, k, rc, xc, mean_mu)
        if z_k >= p.sensitivity and count >= p.min_volume and count >= p.sustained_min_ratio * expected:
            window = int(round(bs / _rate(bs, p.sustained_half_lives_hours[k] * 3600) / 60.0)) * 60
            alarm = Alarm(start, count, expected, _ratio(count, expected), window, "negative", z_k, "sustained")
    if alarm is None and warm and st.cur_total > 0.0 and st.share_seconds >= p.warmup_hours * 3600:
        zs, expected, _, _ = _share_stats(st, neg, st.cur_total)
        share = neg / st.cur_total
        if (
            zs >= p.share_sensitivity
            and neg >= p.min_volume
            and share >= p.share_min_ratio * expected
            and z >= p.share_corroboration_z
        ):
            alarm = Alarm(start, share, expected, _ratio(share, expected), bs, "negative_share", zs, "share")
    if alarm is not None:
        st.flags |= IN_EPISODE | FIRED_CUR
        st.alarm_at = start
        st.calm_seconds = 0.0
    return alarm


def _ratio(observed: float, expected: float) -> float:
    """observed / expected, kept finite (JSON-safe) when nothing at all was expected."""
    return observed / max(expected, 1e-9)


def new_state(bucket_start: int, bucket_seconds: int) -> DetectorState:
    return DetectorState(bucket_seconds=int(bucket_seconds), cur_start=int(bucket_start))


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

    The input state is never modified. A later bucket closes the open one (gaps count as zeros);
    an update for a bucket older than the open one is ignored: it can no longer change an alarm.
    """
    bucket_seconds = int(bucket_seconds)
    if bucket_seconds <= 0:
        raise ValueError("bucket_seconds must be positive")
    bucket_start = int(bucket_start)
    if not -MAX_EPOCH <= bucket_start <= MAX_EPOCH or bucket_seconds > MAX_EPOCH:
        raise ValueError("bucket_start / bucket_seconds out of range")
    if state is not None and state.bucket_seconds == bucket_seconds and bucket_start < state.cur_start:
        return state, None  # a late update for a closed bucket: ignored, the state is unchanged
    if state is None or state.bucket_seconds != bucket_seconds:
        st = new_state(bucket_start, bucket_seconds)  # a new bucket size means a fresh baseline
    else:
        st = state.copy()
    if bucket_start >= st.cur_start + bucket_seconds:
        _advance(st, params, bucket_start)
    st.cur_negative = max(st.cur_negative, _clean(negative))
    if total is not None:
        st.cur_total = max(st.cur_total, _clean(total), st.cur_negative)
    return st, _check(st, params)
