"""Simple detectors to compare against, run over the same NAB files as the production detector.

Each takes a Series and returns alarm timestamps. Their settings are fixed a priori (common
textbook or product defaults), not fitted to the NAB labels; time-based settings are in seconds
and converted with the file's bucket size.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable

from bench.nab_data import Series, to_epoch

DAY = 86400


def _bucket_seconds(series: Series) -> int:
    ts = [to_epoch(t) for t in series.timestamps[:50]]
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False) if b > a]
    return max(set(gaps), key=gaps.count) if gaps else 300


def fixed_threshold(series: Series, multiple: float = 5.0, learn_seconds: int = DAY, cooldown: int = DAY) -> list[str]:
    """A social-listening style alert: a fixed threshold of `multiple` x the median volume of the
    first day (what a person would set after watching the brand for a day), at most one alarm a day."""
    bs = _bucket_seconds(series)
    n_learn = max(1, learn_seconds // bs)
    threshold = multiple * max(statistics.median(series.values[:n_learn]), 1.0)
    out: list[str] = []
    last = -math.inf
    for i, (t, x) in enumerate(zip(series.timestamps, series.values, strict=True)):
        if i >= n_learn and x > threshold and (i - last) * bs >= cooldown:
            out.append(t)
            last = i
    return out


def rolling_zscore(series: Series, window: int = DAY, k: float = 4.0) -> list[str]:
    """z-score against the trailing day (mean and standard deviation); alarms when z first
    crosses `k` (rising edge), with no cooldown: shows what the cooldown buys."""
    bs = _bucket_seconds(series)
    n = max(2, window // bs)
    buf: deque[float] = deque()
    s = s2 = 0.0
    above = False
    out: list[str] = []
    for t, x in zip(series.timestamps, series.values, strict=True):
        if len(buf) == n:
            mean = s / n
            sd = math.sqrt(max(s2 / n - mean * mean, 0.0))
            z = (x - mean) / sd if sd > 0 else 0.0
            if z > k and not above:
                out.append(t)
            above = z > k
        buf.append(x)
        s += x
        s2 += x * x
        if len(buf) > n:
            old = buf.popleft()
            s -= old
            s2 -= old * old
    return out


def ewma_cooldown(
    series: Series, half_life: int = 3 * DAY, k: float = 5.0, cooldown: int = DAY, warmup: int = DAY
) -> list[str]:
    """EWMA mean and variance of the raw counts (memory of a few days), alarm at mean + k sd,
    then silence for a day: the README's "simple EWMA detector with a one-day cooldown"."""
    bs = _bucket_seconds(series)
    a = 1.0 - 2.0 ** (-bs / half_life)
    mean = var = None
    last = -math.inf
    out: list[str] = []
    for i, (t, x) in enumerate(zip(series.timestamps, series.values, strict=True)):
        if mean is None or var is None:
            mean, var = x, (x + 1.0) ** 2
            continue
        sd = math.sqrt(var)
        if i * bs >= warmup and x > mean + k * sd and (i - last) * bs >= cooldown:
            out.append(t)
            last = i
        d = x - mean
        mean += a * d
        var = (1.0 - a) * (var + a * d * d)
    return out


def huginn_peak(
    series: Series, window: int = 14 * DAY, spacing: int = 2 * DAY, std_multiple: float = 3.0, min_events: int = 4
) -> list[str]:
    """Huginn's PeakDetectorAgent with its default options: mean and population sd of the values of
    the last 14 days (the newest excluded), a peak when the newest value exceeds mean + 3 sd, and
    peaks at least 2 days apart."""
    buf: deque[tuple[int, float]] = deque()
    s = s2 = 0.0
    last_peak: int | None = None
    out: list[str] = []
    for t, x in zip(series.timestamps, series.values, strict=True):
        now = to_epoch(t)
        while buf and buf[0][0] <= now - window:  # the agent forgets data older than the window
            _, old = buf.popleft()
            s -= old
            s2 -= old * old
        if len(buf) + 1 > min_events and (last_peak is None or last_peak < now - spacing):
            n = len(buf)
            mean = s / n
            sd = math.sqrt(max(s2 / n - mean * mean, 0.0))
            if x > mean + std_multiple * sd:
                out.append(t)
                last_peak = now
        buf.append((now, x))
        s += x
        s2 += x * x
    return out


BASELINES: dict[str, Callable[[Series], list[str]]] = {
    "fixed threshold (5x first-day median, 1/day)": fixed_threshold,
    "rolling z-score (1 day, z>4, no cooldown)": rolling_zscore,
    "EWMA (3-day memory, 5 sd, 1-day cooldown)": ewma_cooldown,
    "Huginn PeakDetectorAgent (defaults)": huginn_peak,
}
