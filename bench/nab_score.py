"""Score NAB realTweets detections with the NAB rules and print a comparison table.

Usage: python -m bench.nab_score [--data DIR] [--per-file] [DETECTIONS_JSON]

Rows: our detector (read from DETECTIONS_JSON, or run here with default parameters when no file
is given), the published detectors found in DIR/published/, and simple baselines run here.
The scoring rules live in bench/nab_scoring.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.nab_baselines import BASELINES
from bench.nab_data import DEFAULT_DATA_DIR, load_all, load_published, load_windows
from bench.nab_scoring import PROFILES, FileScore, score_detector

OURS = "klaxon (chalicelib.detect, defaults)"


def score_rows(
    series_ts: Mapping[str, Sequence[str]],
    windows: Mapping[str, Sequence[tuple[str, str]]],
    detectors: Mapping[str, Mapping[str, Sequence[str]]],
) -> list[dict]:
    rows = []
    for name, det in detectors.items():
        row: dict = {"detector": name}
        for profile in PROFILES:
            norm, per_file = score_detector(series_ts, windows, det, profile)
            row[profile] = norm
            if profile == "standard":
                row["per_file"] = per_file
        files: list[FileScore] = list(row["per_file"].values())
        row["tp"] = sum(f.tp for f in files)
        row["windows"] = sum(f.windows for f in files)
        row["fp"] = sum(f.fp for f in files)
        row["missing"] = sorted(set(series_ts) - set(det))
        rows.append(row)
    return rows


def format_table(rows: list[dict], per_file: bool = False) -> str:
    names = [p for p in PROFILES]
    width = max(len(r["detector"]) for r in rows) + 2
    head = f"{'detector':<{width}}" + "".join(f"{n:>20}" for n in names) + f"{'windows hit':>13}{'FP':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = f"{r['detector']:<{width}}" + "".join(f"{r[n]:>20.1f}" for n in names)
        line += f"{str(r['tp']) + '/' + str(r['windows']):>13}{r['fp']:>6}"
        if r["missing"]:
            line += f"  (no detections given for {len(r['missing'])} file(s))"
        lines.append(line)
    if per_file:
        lines.append("")
        lines.append("raw standard-profile score per file (NAB's results/ numbers are these):")
        keys = sorted({k for r in rows for k in r["per_file"]})
        short = [k.split("/")[-1].removesuffix(".csv") for k in keys]
        lines.append(f"{'detector':<{width}}" + "".join(f"{s:>24}" for s in short))
        for r in rows:
            lines.append(f"{r['detector']:<{width}}" + "".join(f"{r['per_file'][k].raw:>24.4f}" for k in keys))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="NAB scores of our detector, published detectors and baselines")
    ap.add_argument("detections", nargs="?", type=Path, help="our detections (JSON from bench.nab_detect)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="NAB data dir (realTweets/, windows.json)")
    ap.add_argument("--per-file", action="store_true", help="also print raw standard scores per file")
    args = ap.parse_args(argv)

    series = load_all(args.data)
    if not series:
        print(f"no NAB files under {args.data}/realTweets", file=sys.stderr)
        return 2
    windows = load_windows(args.data)
    series_ts = {k: s.timestamps for k, s in series.items()}

    detectors: dict[str, Mapping[str, Sequence[str]]] = {}
    if args.detections:
        detectors[f"klaxon ({args.detections.name})"] = json.loads(args.detections.read_text())
    else:
        from bench.nab_detect import detect_all  # the production detector, default parameters

        detectors[OURS] = detect_all(args.data)
    for name, det in load_published(args.data).items():
        detectors[f"published: {name}"] = det
    for name, fn in BASELINES.items():
        detectors[f"baseline: {name}"] = {k: fn(s) for k, s in series.items()}
    detectors["null (never fires)"] = {k: [] for k in series}

    print(f"NAB scores over {len(series)} realTweets files in {args.data} (normalised, 100 = perfect, 0 = null)")
    print(format_table(score_rows(series_ts, windows, detectors), args.per_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
