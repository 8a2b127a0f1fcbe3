"""CV experiment (train OOF scores only; never reads dev): weighted mixes of cached OOF scores.

Each part is a cached OOF array of tools/sentiment_cv.py or tools/sentiment_cnn.py, named NAME (linear
scores) or NAME@E (a network's log-probabilities after E epochs, seed 0; NAME@E/S for seed S), divided
by its spread as the training script does. Weights on a simplex grid (step 0.1: for two parts the
build's 0, 0.1, ..., 1 grid), offsets as the build tunes them. Reported in-sample (weights and offsets
tuned on all OOF rows, what the build reports) and nested (tuned on four folds' OOF rows, applied to the
fifth, rotated; objective of the pooled held-out predictions).

Usage: python -m tools.sentiment_mix --lang he --parts nblr_C1.0,net@2,cnn@2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tools import train_sentiment as ts
from tools.sentiment_cv import folds, norm, simplex
from tools.sentiment_rule import offset_grid


def load_part(cache: Path, tag: str, spec: str) -> np.ndarray:
    name, _, at = spec.partition("@")
    if not at:
        return norm(np.load(cache / f"{tag}_{name}.npy"))
    epoch, _, seed = at.partition("/")
    return norm(np.load(cache / f"{tag}_{name}_s{seed or 0}.npy")[int(epoch) - 1])


def best_mix(lang: str, parts: list[np.ndarray], y: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(weights, offsets, objective) tuned on these rows."""
    best = (np.zeros(len(parts)), np.zeros(3), -1.0)
    for w in simplex(len(parts), step):
        mix = sum(wi * p for wi, p in zip(w, parts, strict=True))
        offsets, obj = offset_grid(lang, mix, y, float(mix.std()))
        if obj > best[2] + 1e-9:
            best = (w, offsets, obj)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", required=True)
    parser.add_argument("--parts", required=True)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentcv"))
    args = parser.parse_args()
    lang = args.lang
    _, y = ts.load(ts.DEFAULT_DATA / f"{lang}_train.jsonl")
    tag = f"{lang}{'_idf' if ts.FEATURES[lang]['idf'] else ''}"
    specs = args.parts.split(",")
    parts = [load_part(args.cache, tag, s) for s in specs]
    w, offsets, in_sample = best_mix(lang, parts, y, args.step)
    mix = sum(wi * p for wi, p in zip(w, parts, strict=True))
    m = ts.metrics(y, (mix + offsets).argmax(1))
    pred = np.zeros(len(y), np.int64)
    for tr, te in folds(y):
        wk, ok, _ = best_mix(lang, [p[tr] for p in parts], y[tr], args.step)
        pred[te] = (sum(wi * p[te] for wi, p in zip(wk, parts, strict=True)) + ok).argmax(1)
    nested = ts.objective(lang, y, pred)
    print(f"[{lang}] {' + '.join(specs)}: weights {np.round(w, 2).tolist()}, in-sample {in_sample:.4f} {m}, "
          f"nested {nested:.4f}", flush=True)


if __name__ == "__main__":
    main()
