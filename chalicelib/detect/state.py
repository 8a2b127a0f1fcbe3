"""Compact per-brand detector state, serialised to a few hundred bytes for DynamoDB.

The layout is a fixed little-endian struct behind a version byte, so a future layout can be
migrated in `from_bytes` without guessing. Floats are float64: the state is small anyway and
float32 would make `from_bytes(to_bytes(s)) == s` false, which the optimistic-locking writer
relies on to detect no-op updates.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields

VERSION = 1
SEASON_SLOTS = 24  # hour-of-day profile, interpolated between slot centres
WEEK_SLOTS = 7  # day-of-week profile, likewise

_SCALARS = (
    # (name, struct code)
    ("bucket_seconds", "I"),
    ("cur_start", "q"),
    ("cur_negative", "d"),
    ("cur_total", "d"),  # -1.0 = the caller gives no totals
    ("flags", "I"),
    ("history_seconds", "d"),
    ("level", "d"),
    ("var_extra", "d"),
    ("alarm_at", "q"),
    ("calm_seconds", "d"),
    ("share_level", "d"),
    ("share_var", "d"),
    ("share_seconds", "d"),
    ("sus_resid", "d"),
    ("sus_var", "d"),
    ("sus_count", "d"),
    ("sus_expected", "d"),
    ("envelope", "d"),
)
_FMT = "<B" + "".join(code for _, code in _SCALARS) + f"{SEASON_SLOTS}d{WEEK_SLOTS}d"
_SIZE = struct.calcsize(_FMT)

# flags
IN_EPISODE = 1  # an alarm fired and the series has not been calm long enough since
FIRED_CUR = 2  # the open bucket already raised an alarm
HAS_TOTAL = 4


@dataclass
class DetectorState:
    """Everything the detector remembers about one brand. Treat as immutable outside `observe`."""

    bucket_seconds: int
    cur_start: int  # start (epoch seconds) of the open bucket
    cur_negative: float = 0.0
    cur_total: float = -1.0
    flags: int = 0
    history_seconds: float = 0.0  # how much closed history the baseline has learned from
    level: float = 0.0  # slow level of log(count + c)
    var_extra: float = 0.25  # extra-Poisson variance of log counts (prior: sd 0.5)
    alarm_at: int = -1  # bucket_start of the last alarm
    calm_seconds: float = 0.0  # how long the series has been near normal since then
    share_level: float = 0.0  # slow level of logit(negative share)
    share_var: float = 0.25  # extra-binomial variance of that logit
    share_seconds: float = 0.0  # history of the share series
    sus_resid: float = 0.0  # EWMA of clipped log residuals over the sustained window
    sus_var: float = 0.04  # learned variance of that EWMA (prior: sd 0.2)
    sus_count: float = 0.0  # EW mean count per bucket over the same window
    sus_expected: float = 0.0  # EW mean expected count per bucket over the same window
    envelope: float = 0.0  # decaying maximum of recent log residuals (recent peak size)
    season: list[float] = field(default_factory=lambda: [0.0] * SEASON_SLOTS)
    week: list[float] = field(default_factory=lambda: [0.0] * WEEK_SLOTS)
    version: int = VERSION

    def copy(self) -> DetectorState:
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw["season"] = list(self.season)
        kw["week"] = list(self.week)
        return DetectorState(**kw)

    def to_bytes(self) -> bytes:
        return struct.pack(_FMT, VERSION, *(getattr(self, n) for n, _ in _SCALARS), *self.season, *self.week)

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorState:
        if not data:
            raise ValueError("empty detector state")
        version = data[0]
        if version != VERSION or len(data) != _SIZE:
            raise ValueError(f"unsupported detector state (version {version}, {len(data)} bytes)")
        values = struct.unpack(_FMT, data)
        kw = {name: values[1 + i] for i, (name, _) in enumerate(_SCALARS)}
        n = 1 + len(_SCALARS)
        return cls(**kw, season=list(values[n : n + SEASON_SLOTS]), week=list(values[n + SEASON_SLOTS :]))

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for debugging or a DynamoDB map); `from_dict` inverts it."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> DetectorState:
        if data.get("version", VERSION) != VERSION:
            raise ValueError(f"unsupported detector state version {data.get('version')}")
        return cls(**data)


STATE_BYTES = _SIZE
