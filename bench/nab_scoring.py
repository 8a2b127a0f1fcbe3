"""NAB scoring rules, implemented from the published description (see docs/detect.md).

Summary of the rules as implemented here:
- rows before `min(floor(0.15 * n), 0.15 * 5000)` are probationary: detections there are ignored,
  and a window only counts if at least one of its rows is past the probationary period;
- a detection on row `i` inside a window of rows `[l, r]` (width `w = r - l + 1`) is worth
  `tp * S(-(r - i + 1) / w) / S(-1)`; only the best (= earliest) detection of a window counts;
- a detection outside every window is worth `fp * S(y)` (negative) with `y = (i - r_prev) / (w_prev - 1)`
  relative to the previous window, or `-fp` when no window precedes it;
- a window without detection is worth `-fn`;
- `S(y) = 2 / (1 + exp(5 y)) - 1`, and `S(y) = -1` for `y >= 3`;
- the normalised score over a set of files is `100 * (raw - null) / (perfect - null)` with
  `null = -fn * windows` and `perfect = tp * windows`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PROFILES: dict[str, tuple[float, float, float]] = {
    # name: (tpWeight, fpWeight, fnWeight)
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}


def scaled_sigmoid(y: float) -> float:
    """NAB's S(y): +0.987 at the left edge of a window (y=-1), 0 at its right edge, -> -1 after it."""
    if y >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probation_rows(n_rows: int) -> float:
    return min(math.floor(0.15 * n_rows), 0.15 * 5000)


@dataclass(frozen=True)
class FileScore:
    raw: float
    tp: int  # windows detected
    fn: int  # windows missed
    fp: int  # scored detections outside windows
    windows: int  # windows that count (not entirely probationary)


def window_rows(timestamps: Sequence[str], windows: Iterable[tuple[str, str]]) -> list[tuple[int, int]]:
    """Row ranges [l, r] (inclusive) of each labelled window; timestamps compare as text (same format)."""
    out = []
    for start, end in windows:
        left = bisect_right(timestamps, start[:19]) - 1
        if left < 0 or timestamps[left] != start[:19]:
            left += 1
        right = bisect_right(timestamps, end[:19]) - 1
        if right >= left:
            out.append((left, right))
    return sorted(out)


def detection_rows(timestamps: Sequence[str], detections: Iterable[str]) -> list[int]:
    """Row of each detection (the last row starting at or before it), deduplicated and sorted."""
    rows = set()
    for t in detections:
        i = bisect_right(timestamps, t[:19]) - 1
        if i >= 0:
            rows.add(i)
    return sorted(rows)


def row_weights(n_rows: int, wins: Sequence[tuple[int, int]], profile: str) -> tuple[list[float], list[int]]:
    """Per-row value of a detection, and per-row window index (-1 outside windows)."""
    tp_w, fp_w, _ = PROFILES[profile]
    weight = [0.0] * n_rows
    win_of = [-1] * n_rows
    prev_right: int | None = None
    prev_width = 0
    k = 0
    i = 0
    while i < n_rows:
        if k < len(wins) and i == wins[k][0]:
            left, right = wins[k]
            width = right - left + 1
            for j in range(left, min(right, n_rows - 1) + 1):
                weight[j] = tp_w * scaled_sigmoid(-(right - j + 1) / width) / MAX_TP
                win_of[j] = k
            prev_right, prev_width = right, width
            k += 1
            i = right + 1
            continue
        if prev_right is None:
            weight[i] = -fp_w
        else:
            y = abs(prev_right - i) / float(prev_width - 1) if prev_width > 1 else 3.0
            weight[i] = fp_w * scaled_sigmoid(y)
        i += 1
    return weight, win_of


def score_file(
    timestamps: Sequence[str], windows: Iterable[tuple[str, str]], detections: Iterable[str], profile: str
) -> FileScore:
    n = len(timestamps)
    _, _, fn_w = PROFILES[profile]
    wins = window_rows(timestamps, windows)
    weight, win_of = row_weights(n, wins, profile)
    prob = probation_rows(n)
    counted = [k for k, (_, r) in enumerate(wins) if r >= prob]
    best = {k: -fn_w for k in counted}
    fp_sum = 0.0
    fp = 0
    for i in detection_rows(timestamps, detections):
        if i < prob:
            continue
        k = win_of[i]
        if k >= 0:
            best[k] = max(best[k], weight[i])
        else:
            fp_sum += weight[i]
            fp += 1
    tp = sum(1 for k in counted if best[k] > -fn_w)
    return FileScore(sum(best.values()) + fp_sum, tp, len(counted) - tp, fp, len(counted))


def normalise(scores: Iterable[FileScore], profile: str) -> float:
    """100 * (raw - null) / (perfect - null), summed over files first."""
    tp_w, _, fn_w = PROFILES[profile]
    scores = list(scores)
    raw = sum(s.raw for s in scores)
    n_win = sum(s.windows for s in scores)
    null, perfect = -fn_w * n_win, tp_w * n_win
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def score_detector(
    series_ts: Mapping[str, Sequence[str]],
    windows: Mapping[str, Sequence[tuple[str, str]]],
    detections: Mapping[str, Sequence[str]],
    profile: str,
) -> tuple[float, dict[str, FileScore]]:
    """Normalised score over all files in `series_ts` (a file missing from `detections` never fires)."""
    per_file = {
        key: score_file(ts, windows.get(key, []), detections.get(key, []), profile)
        for key, ts in series_ts.items()
    }
    return normalise(per_file.values(), profile), per_file
