"""The alarm a detector raises, with a one-line explanation short enough for an SMS."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


def _fmt_count(x: float) -> str:
    if x >= 100_000:
        return f"{x / 1000:.0f}k"
    if x >= 10 or abs(x - round(x)) < 0.05:
        return f"{x:.0f}"
    return f"{x:.1f}"


def _fmt_window(seconds: int) -> str:
    if seconds >= 2 * 3600:
        return f"{round(seconds / 3600)}h"
    if seconds >= 60:
        return f"{round(seconds / 60)}min"
    return f"{seconds}s"


def _fmt_ratio(r: float) -> str:
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"


@dataclass(frozen=True)
class Alarm:
    """`observed` in the window ending with the bucket at `bucket_start`, versus what was `expected`.

    `window_seconds` is how long that window is: the spike window (5 min by default), or the
    effective length of a sustained-rise average. For "negative_share", observed and expected are
    shares (0..1) of all mentions.
    """

    bucket_start: int
    observed: float
    expected: float
    ratio: float
    window_seconds: int
    series: str  # "negative" | "negative_share"
    z: float = 0.0  # z-score in the brand's own noise units: for ranking and debugging, not for people
    kind: str = "spike"  # "spike" | "sustained" | "share": which rule fired

    def explain(self) -> str:
        """e.g. "neg 212/5min, 9.2x usual (expected 23)"; shares are shown in percent."""
        window = _fmt_window(self.window_seconds)
        if self.series == "negative_share":
            return (
                f"neg share {100 * self.observed:.0f}%/{window}, "
                f"{_fmt_ratio(self.ratio)} usual (expected {100 * self.expected:.0f}%)"
            )
        if self.expected < 0.5:
            return f"neg {_fmt_count(self.observed)}/{window}, usually ~0"
        return (
            f"neg {_fmt_count(self.observed)}/{window}, "
            f"{_fmt_ratio(self.ratio)} usual (expected {_fmt_count(self.expected)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
