"""The alarm a detector raises, with a one-line explanation short enough for an SMS."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


def _fmt_count(x: float) -> str:
    if x >= 10_000:
        return f"{x / 1000:.0f}k"
    if x >= 100 or x == int(x):
        return f"{x:.0f}"
    return f"{x:.1f}"


def _fmt_window(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


def _fmt_ratio(r: float) -> str:
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"


@dataclass(frozen=True)
class Alarm:
    """A spike: `observed` in the window starting at `bucket_start` versus what was `expected` there."""

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
        if self.series == "negative_share":
            return (
                f"neg share {100 * self.observed:.0f}%/{_fmt_window(self.window_seconds)}, "
                f"{_fmt_ratio(self.ratio)} usual (expected {100 * self.expected:.0f}%)"
            )
        return (
            f"neg {_fmt_count(self.observed)}/{_fmt_window(self.window_seconds)}, "
            f"{_fmt_ratio(self.ratio)} usual (expected {_fmt_count(self.expected)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
