"""Compact per-brand detector state, serialised to a few hundred bytes for DynamoDB.

The layout is a fixed little-endian struct behind a version byte, so a later layout can be
migrated in `from_bytes` instead of guessed at. Floats stay float64: the state is small anyway,
and float32 would make `from_bytes(to_bytes(s)) != s`, which would turn a replayed update into
a spurious write under optimistic locking.
"""

from __future__ import annotations

import copy
import struct
from dataclasses import dataclass, field, fields
from typing import Any

VERSION = 1
DAILY_SLOTS = 24  # hour-of-day profile, interpolated between slot centres
WEEKLY_SLOTS = 7  # day-of-week profile, likewise
SCALES = 2  # sustained-rise channels (a couple of hours, a day)
RING = 15  # closed buckets remembered for the spike window (5 min of 20-second buckets)

# flags
IN_EPISODE = 1  # an alarm fired and the series has not been calm long enough since
FIRED_CUR = 2  # the open bucket already raised an alarm

_SCALARS = (  # (name, struct code), in serialisation order
    ("bucket_seconds", "I"),
    ("flags", "I"),
    ("cur_start", "q"),
    ("alarm_at", "q"),
    ("cur_negative", "d"),
    ("cur_total", "d"),
    ("history_seconds", "d"),
    ("level", "d"),
    ("var_extra", "d"),
    ("var_window", "d"),
    ("record", "d"),
    ("calm_seconds", "d"),
    ("share_level", "d"),
    ("share_var", "d"),
    ("share_seconds", "d"),
)
_ARRAYS = (  # (name, length), all float64
    ("sus_resid", SCALES),
    ("sus_var", SCALES),
    ("sus_count", SCALES),
    ("sus_expected", SCALES),
    ("daily", DAILY_SLOTS),
    ("weekly", WEEKLY_SLOTS),
    ("recent", RING),
    ("recent_expected", RING),
)
_FMT = "<B" + "".join(code for _, code in _SCALARS) + "".join(f"{n}d" for _, n in _ARRAYS)
STATE_BYTES = struct.calcsize(_FMT)


def _zeros(n: int, value: float = 0.0) -> Any:
    return field(default_factory=lambda: [value] * n)


@dataclass
class DetectorState:
    """Everything the detector remembers about one brand. Treat as immutable outside `observe`."""

    bucket_seconds: int
    cur_start: int  # start (epoch seconds) of the open bucket
    flags: int = 0
    alarm_at: int = -1  # bucket_start of the last alarm
    cur_negative: float = 0.0  # counts so far in the open bucket
    cur_total: float = -1.0  # -1: the caller gave no total for the open bucket
    history_seconds: float = 0.0  # how much closed history the baseline has learned from
    level: float = 0.0  # slow level of log(count + C)
    var_extra: float = 0.25  # extra-Poisson variance of log counts per bucket (prior: sd 0.5)
    var_window: float = 0.25  # the same for the spike window (several buckets when they are short)
    record: float = 0.0  # decaying maximum of log(excess over expected + C): the largest recent spike
    calm_seconds: float = 0.0  # how long the series has been near normal since the last alarm
    share_level: float = 0.0  # slow level of logit(negative share)
    share_var: float = 0.25  # extra-binomial variance of that logit
    share_seconds: float = 0.0  # history of the share series
    sus_resid: list[float] = _zeros(SCALES)  # smoothed clipped log residual, per scale
    sus_var: list[float] = _zeros(SCALES, 0.04)  # its learned variance (prior sd 0.2)
    sus_count: list[float] = _zeros(SCALES)  # smoothed winsorised count per bucket
    sus_expected: list[float] = _zeros(SCALES)  # smoothed expected count per bucket
    daily: list[float] = _zeros(DAILY_SLOTS)  # hour-of-day offsets of log counts (centred)
    weekly: list[float] = _zeros(WEEKLY_SLOTS)  # day-of-week offsets (centred)
    recent: list[float] = _zeros(RING)  # counts of the last closed buckets, most recent first
    recent_expected: list[float] = _zeros(RING)  # what was expected for them
    version: int = VERSION

    def copy(self) -> DetectorState:
        new = copy.copy(self)
        for name, _ in _ARRAYS:
            setattr(new, name, list(getattr(self, name)))
        return new

    def to_bytes(self) -> bytes:
        arrays = [x for name, _ in _ARRAYS for x in getattr(self, name)]
        return struct.pack(_FMT, VERSION, *(getattr(self, n) for n, _ in _SCALARS), *arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> DetectorState:
        if not data:
            raise ValueError("empty detector state")
        if data[0] != VERSION or len(data) != STATE_BYTES:
            raise ValueError(f"unsupported detector state (version {data[0]}, {len(data)} bytes)")
        values = struct.unpack(_FMT, data)
        kw: dict[str, Any] = {name: values[1 + i] for i, (name, _) in enumerate(_SCALARS)}
        pos = 1 + len(_SCALARS)
        for name, n in _ARRAYS:
            kw[name] = list(values[pos : pos + n])
            pos += n
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (debugging, or a DynamoDB map); `from_dict` inverts it."""
        return {f.name: _copy(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorState:
        if data.get("version", VERSION) != VERSION:
            raise ValueError(f"unsupported detector state version {data.get('version')}")
        return cls(**{k: _copy(v) for k, v in data.items()})


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list) else v
