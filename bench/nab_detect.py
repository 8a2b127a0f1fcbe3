"""Run the production detector, with default parameters, over NAB realTweets files as a live feed.

Usage: python -m bench.nab_detect DATA_DIR OUT_JSON
Writes {"realTweets/<file>.csv": ["YYYY-MM-DD HH:MM:SS", ...alarm timestamps]}.
Each row is fed once, in order, as the final count of a 5-minute bucket (`value` -> negative,
no totals); the state goes through to_bytes/from_bytes between rows, as it would in DynamoDB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.nab_data import Series, from_epoch, load_all, to_epoch
from chalicelib.detect import DetectorParams, DetectorState, observe


def bucket_seconds_of(series: Series) -> int:
    """The file's sampling step (the most common gap between rows)."""
    ts = [to_epoch(t) for t in series.timestamps[:200]]
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False) if b > a]
    return max(set(gaps), key=gaps.count) if gaps else 300


def detect_series(series: Series, params: DetectorParams | None = None, roundtrip: bool = True) -> list[str]:
    params = params or DetectorParams()
    bs = bucket_seconds_of(series)
    state: DetectorState | None = None
    out: list[str] = []
    for t, v in zip(series.timestamps, series.values, strict=True):
        state, alarm = observe(state, params, bucket_start=to_epoch(t), bucket_seconds=bs, negative=v)
        if roundtrip:
            state = DetectorState.from_bytes(state.to_bytes())
        if alarm is not None:
            out.append(from_epoch(alarm.bucket_start))
    return out


def detect_all(data_dir: Path, params: DetectorParams | None = None, roundtrip: bool = True) -> dict[str, list[str]]:
    return {key: detect_series(s, params, roundtrip) for key, s in load_all(data_dir).items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("out_json", type=Path)
    args = ap.parse_args(argv)
    detections = detect_all(args.data_dir)
    args.out_json.write_text(json.dumps(detections, indent=1) + "\n")
    print(f"{sum(map(len, detections.values()))} alarms in {len(detections)} files -> {args.out_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
