"""CV experiment (train OOF scores only; never reads dev): the decision rule on top of a model's scores.

Compares the shipped rule, argmax(scores + offsets) with two offsets (negative, positive; neutral 0),
with argmax(scales * scores + offsets), two more numbers: per-class scales of the negative and
positive scores (neutral 1; a common scale of all three changes nothing). Each rule is scored twice on
the cached out-of-fold (OOF) scores of tools/sentiment_cv.py:
- in-sample: tuned and scored on all OOF rows (what the build reports as its CV objective);
- nested: tuned on the OOF rows of four of the training script's folds, applied to the fifth, rotated;
  the objective of the pooled held-out predictions. The difference is the rule's optimism.

Usage: python -m tools.sentiment_rule --lang en --scores nbsvm_C0.3_a1.0_b1.0 [--net net --epochs 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools import train_sentiment as ts
from tools.sentiment_cv import folds, norm

SCALES = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 2.0])


def offset_grid(lang: str, scores: np.ndarray, y: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """The training script's offset search (same grid, same units, ties resolved as argmax does),
    vectorised over the positive offset: (offsets, objective)."""
    grid = ts.OFFSETS * step
    onehot = np.eye(3)[y]
    dn = (scores[:, 0] - scores[:, 1])[None, :]
    dp = (scores[:, 2] - scores[:, 1])[None, :]
    best = (ts.objective(lang, y, scores.argmax(1)), np.zeros(3))  # as tune_offsets: ties keep no offsets
    for on in grid:
        n = dn + on
        p = dp + grid[:, None]
        neg = (n >= 0) & (n >= p)
        pos = (p > 0) & (p > n)
        cn = neg.astype(np.float64) @ onehot  # grid x gold: predicted negative
        cp = pos.astype(np.float64) @ onehot
        gold = onehot.sum(0)
        tp = cn[:, 0]
        f1 = np.where(tp > 0, 2 * tp / (gold[0] + cn.sum(1)), 0.0)
        if lang == "he":
            obj = f1
        else:
            neutral = gold[1] - cn[:, 1] - cp[:, 1]
            recall = (cn[:, 0] / gold[0] + neutral / gold[1] + cp[:, 2] / gold[2]) / 3
            obj = 0.5 * (recall + f1)
        i = int(np.argmax(obj))
        if obj[i] > best[0] + 1e-9:
            best = (float(obj[i]), np.array([on, 0.0, grid[i]]))
    return best[1], best[0]


def fit(lang: str, scores: np.ndarray, y: np.ndarray, scaled: bool,
        grid: np.ndarray = SCALES) -> tuple[np.ndarray, np.ndarray, float]:
    """(scales, offsets, objective) tuned on these rows; offsets in units of the unscaled score std."""
    step = float(scores.std())
    best = (np.ones(3), np.zeros(3), -1.0)
    for sn in grid if scaled else (1.0,):
        for sp in grid if scaled else (1.0,):
            scales = np.array([sn, 1.0, sp])
            offsets, obj = offset_grid(lang, scores * scales, y, step)
            if obj > best[2] + 1e-9:
                best = (scales, offsets, obj)
    return best


def evaluate(lang: str, scores: np.ndarray, y: np.ndarray, scaled: bool,
             grid: np.ndarray = SCALES) -> tuple[float, float, np.ndarray]:
    """(in-sample objective, nested objective, in-sample scales)."""
    scales, _, in_sample = fit(lang, scores, y, scaled, grid)
    pred = np.zeros(len(y), np.int64)
    for tr, te in folds(y):
        s, o, _ = fit(lang, scores[tr], y[tr], scaled, grid)
        pred[te] = (scores[te] * s + o).argmax(1)
    return in_sample, ts.objective(lang, y, pred), scales


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", required=True)
    parser.add_argument("--scores", required=True, help="cached linear OOF name")
    parser.add_argument("--net", default="", help="cached network OOF name (seed 0), mixed at --weight")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--weight", type=float, default=-1.0, help="network weight (default: tuned in-sample)")
    parser.add_argument("--scales", default="", help="comma-separated scale grid (default: SCALES)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentcv"))
    args = parser.parse_args()
    grid = np.array([float(v) for v in args.scales.split(",")]) if args.scales else SCALES
    lang = args.lang
    _, y = ts.load(ts.DEFAULT_DATA / f"{lang}_train.jsonl")
    tag = f"{lang}{'_idf' if ts.FEATURES[lang]['idf'] else ''}"
    scores = norm(np.load(args.cache / f"{tag}_{args.scores}.npy"))
    label = args.scores
    if args.net:
        net = norm(np.load(args.cache / f"{tag}_{args.net}_s0.npy")[args.epochs - 1])
        weight = args.weight
        if weight < 0:
            weight = max(ts.MIX, key=lambda w: offset_grid(lang, w * net + (1 - w) * scores, y,
                                                            float((w * net + (1 - w) * scores).std()))[1])
        scores = weight * net + (1 - weight) * scores
        label += f" + {args.net} ({args.epochs} epochs) at {weight:.1f}"
    for scaled in (False, True):
        in_sample, nested, scales = evaluate(lang, scores, y, scaled, grid)
        rule = "scales + offsets" if scaled else "offsets only"
        print(f"[{lang}] {label}, {rule}: in-sample {in_sample:.4f}, nested {nested:.4f}, "
              f"optimism {in_sample - nested:+.4f}, scales {scales[[0, 2]]}", flush=True)


if __name__ == "__main__":
    main()
