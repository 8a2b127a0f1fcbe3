"""Loading NAB realTweets files, label windows and published detections.

Kept separate from the scorer so the detector runner and the tests share one parser.
Nothing here copies NAB data into the repo: every path points at a data directory
given on the command line (default `../shared/data/nab` next to the repo).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "nab"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Series:
    """One NAB file: `key` is "realTweets/<file>.csv", as in windows.json."""

    key: str
    timestamps: list[str]  # "YYYY-MM-DD HH:MM:SS", one per row
    values: list[float]

    def __len__(self) -> int:
        return len(self.values)


def parse_ts(text: str) -> datetime:
    """NAB timestamps, with or without the ".000000" suffix windows.json carries (naive = UTC)."""
    return datetime.strptime(text.strip()[:19], TS_FORMAT)


def to_epoch(text: str) -> int:
    return int(parse_ts(text).replace(tzinfo=UTC).timestamp())


def from_epoch(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime(TS_FORMAT)


def load_series(path: Path, key: str | None = None) -> Series:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected NAB header 'timestamp,value', got {header!r}")
        ts: list[str] = []
        vals: list[float] = []
        for row in reader:
            if not row:
                continue
            ts.append(row[0].strip()[:19])
            vals.append(float(row[1]))
    return Series(key or f"{path.parent.name}/{path.name}", ts, vals)


def list_files(data_dir: Path, category: str = "realTweets") -> list[Path]:
    return sorted((data_dir / category).glob("*.csv"))


def load_all(data_dir: Path, category: str = "realTweets") -> dict[str, Series]:
    return {f"{category}/{p.name}": load_series(p, f"{category}/{p.name}") for p in list_files(data_dir, category)}


def load_windows(data_dir: Path) -> dict[str, list[tuple[str, str]]]:
    raw = json.loads((data_dir / "windows.json").read_text())
    return {k: [(a[:19], b[:19]) for a, b in v] for k, v in raw.items()}


def load_published(data_dir: Path) -> dict[str, dict[str, list[str]]]:
    """Detector name -> {file key -> detection timestamps}, from published/*_standard_detections.json."""
    out: dict[str, dict[str, list[str]]] = {}
    pub = data_dir / "published"
    if not pub.is_dir():
        return out
    for path in sorted(pub.glob("*_standard_detections.json")):
        doc = json.loads(path.read_text())
        name = doc.get("detector") or path.name.split("_standard")[0]
        out[name] = {k: [t[:19] for t in v] for k, v in doc["detections"].items()}
    return out
