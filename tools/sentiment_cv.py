"""Cross-validation experiments for the sentiment model (train files only; never reads dev).

Every variant is scored by the same 5-fold stratified out-of-fold (OOF) predictions as
tools/train_sentiment.py, after the same per-class offset tuning, with the acceptance objective
(English: mean of macro recall and negative F1; Hebrew: negative F1). OOF scores are cached in
--cache so that mixes of variants cost nothing to re-score.

Usage: python -m tools.sentiment_cv --lang he [--cache DIR] [--only NAME,...]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from tools import train_sentiment as ts  # noqa: E402


def folds(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The training script's folds."""
    return list(StratifiedKFold(ts.FOLDS, shuffle=True, random_state=ts.SEED).split(np.zeros(len(y)), y))


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """sklearn's 'balanced' class weights n / (k * count)."""
    counts = np.bincount(y, minlength=3).astype(np.float64)
    return len(y) / (3 * counts)


def nbsvm_fit(x: sp.csr_matrix, y: np.ndarray, c: float, alpha: float, beta: float,
              ratio: np.ndarray, kind: str = "svm") -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest SVMs on NB-scaled features; returns (buckets x 3) weights over the unscaled x and
    biases, i.e. already folded (w_c * r_c), with Wang & Manning's interpolation toward the mean
    magnitude when beta < 1."""
    weights = balanced_weights(y)
    coef = np.zeros((x.shape[1], 3))
    bias = np.zeros(3)
    for k in range(3):
        xk = x @ sp.diags(ratio[k])
        if kind == "svm":
            svm = LinearSVC(C=c, class_weight={1: weights[k], 0: 1.0}, random_state=ts.SEED, max_iter=5000)
        else:
            svm = LogisticRegression(C=c, class_weight={1: weights[k], 0: 1.0}, max_iter=2000)
        svm.fit(xk, (y == k).astype(int))
        w = svm.coef_.ravel()
        if beta < 1.0:
            w = (1 - beta) * np.abs(w).mean() + beta * w
        coef[:, k] = w * ratio[k]
        bias[k] = svm.intercept_[0]
    return coef, bias


def oof_nbsvm(x: sp.csr_matrix, y: np.ndarray, c: float, alpha: float, beta: float,
              kind: str = "svm", min_df: int = 0, prune: str = "after") -> np.ndarray:
    """Out-of-fold scores. min_df > 0: buckets in fewer training-fold texts get no weight, either dropped
    from the stored table after fitting on all of them (prune 'after', what a compact run-time table
    does) or removed before fitting too ('before')."""
    out = np.zeros((len(y), 3))
    for tr, te in folds(y):
        df = ts.document_counts(x[tr], y[tr])
        ratio = ts.log_count_ratios(df, alpha)
        keep = df.sum(axis=0) >= min_df
        xtr = x[tr] @ sp.diags(keep.astype(np.float64)) if min_df and prune == "before" else x[tr]
        coef, bias = nbsvm_fit(xtr, y[tr], c, alpha, beta, ratio, kind)
        if min_df:
            coef[~keep] = 0.0
        out[te] = x[te] @ coef + bias
    return out


def oof_lr(x: sp.csr_matrix, y: np.ndarray, c: float) -> np.ndarray:
    out = np.zeros((len(y), 3))
    for tr, te in folds(y):
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, tol=1e-4)
        out[te] = model.fit(x[tr], y[tr]).decision_function(x[te])
    return out


def norm(scores: np.ndarray) -> np.ndarray:
    return scores / ts.spread(scores)


def score(lang: str, oof: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
    offsets, best = ts.tune_offsets(lang, oof, y)
    return best, ts.metrics(y, (oof + offsets).argmax(1))


def cached(cache: Path, name: str, make: Any) -> np.ndarray:
    path = cache / f"{name}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    out = make()
    np.save(path, out)
    print(f"  ({name}: {time.perf_counter() - t0:.0f}s)", flush=True)
    return out


def sublinear_features(texts: list[str], cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted-path features: per block, each distinct bucket once with 1 + log(count), block L2-normalised
    (the run time would need a per-text sort/unique for this)."""
    from chalicelib.sentiment.features import hashed

    docs, buckets, values = [], [], []
    bits = cfg["bits"]
    for i in range(0, len(texts), 2000):
        wb, wc, cb, cc = hashed(texts[i : i + 2000], cfg)
        n = np.arange(len(wc))
        for b, cnt, weight in ((wb, wc, cfg["word_weight"]), (cb, cc, cfg["char_weight"])):
            keys, counts = np.unique((np.repeat(n, cnt) << bits) | b, return_counts=True)
            d = keys >> bits
            tf = 1.0 + np.log(counts)
            norms = np.sqrt(np.bincount(d, weights=tf**2, minlength=len(n)))
            docs.append(d + i)
            buckets.append(keys & ((1 << bits) - 1))
            values.append(weight * tf / norms[d])
    doc, bucket, value = np.concatenate(docs), np.concatenate(buckets), np.concatenate(values)
    order = np.argsort(doc, kind="stable")
    return doc[order], bucket[order], value[order]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentcv"))
    parser.add_argument("--only", default="")
    parser.add_argument("--seeds", type=int, default=0, help="network seeds to cross-validate (he)")
    parser.add_argument("--sublinear", action="store_true")
    parser.add_argument("--nn-bits", type=int, default=0, help="network table bits (default: the language's)")
    parser.add_argument("--net-epochs", type=int, default=6)
    parser.add_argument("--net-cfg", default="{}", help="JSON overrides of sentiment_nn.DEFAULTS")
    parser.add_argument("--net-name", default="net", help="cache name of the network variant")
    parser.add_argument("--idf", choices=("cfg", "on", "off"), default="cfg")
    parser.add_argument("--bits", type=int, default=0, help="linear hash space bits (default: the language's)")
    parser.add_argument("--mix", help="'+'-joined cached variant names to mix")
    parser.add_argument("--step", type=float, default=0.25)
    parser.add_argument("--net", default="")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    lang = args.lang
    if os.environ.get("KLAXON_CV_NB_BUCKETS"):  # experiment: the NB normaliser's bucket count
        ts.NB_BUCKETS = int(os.environ["KLAXON_CV_NB_BUCKETS"])
    if args.mix:
        mixes(lang, args.cache, args.mix, args.step, args.net, max(args.seeds, 1), args.epochs)
        return
    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    cfg = dict(ts.FEATURES[lang])
    if args.idf != "cfg":
        cfg["idf"] = args.idf == "on"
    if args.bits:
        cfg["bits"] = args.bits
    texts, y = ts.load(ts.DEFAULT_DATA / f"{lang}_train.jsonl")
    if args.sublinear:
        doc, bucket, value = sublinear_features(texts, cfg)
    else:
        doc, bucket, value = ts.featurise_all(texts, cfg)
    idf = ts.inverse_document_frequency(doc, bucket, len(texts), cfg["bits"]) if cfg["idf"] else None
    x = sp.csr_matrix((value * idf[bucket] if idf is not None else value, (doc, bucket)),
                      shape=(len(texts), 1 << cfg["bits"]))
    tag = f"{lang}{'_idf' if cfg['idf'] else ''}{'_sub' if args.sublinear else ''}"
    if args.bits:
        tag += f"_b{args.bits}"
    if os.environ.get("KLAXON_CV_NB_BUCKETS"):
        tag += f"_nb{os.environ['KLAXON_CV_NB_BUCKETS']}"
    only = set(filter(None, args.only.split(",")))
    variants: dict[str, Any] = {}
    for c in ts.C_GRID[lang]:
        variants[f"svm_C{c}"] = lambda c=c: ts.out_of_fold(x, y, c)
    for c in (0.1, 0.3, 1.0) if lang == "he" else (0.3,):
        for alpha in (1.0,):
            for beta in (1.0, 0.25):
                variants[f"nbsvm_C{c}_a{alpha}_b{beta}"] = lambda c=c, a=alpha, b=beta: oof_nbsvm(x, y, c, a, b)
    for c in (0.1, 1.0) if lang == "en" else ():
        variants[f"nbsvm_C{c}_a1.0_b1.0"] = lambda c=c: oof_nbsvm(x, y, c, 1.0, 1.0)
    for alpha in (2.0, 4.0) if lang == "en" else ():
        variants[f"nbsvm_C0.3_a{alpha}_b1.0"] = lambda a=alpha: oof_nbsvm(x, y, 0.3, a, 1.0)
    for c in (0.1, 0.3) if lang == "he" else (0.3,):
        for alpha in (0.5, 0.25):
            variants[f"nbsvm_C{c}_a{alpha}_b1.0"] = lambda c=c, a=alpha: oof_nbsvm(x, y, c, a, 1.0)
    for c in (1.0, 3.0) if lang == "he" else (3.0,):
        variants[f"nblr_C{c}"] = lambda c=c: oof_nbsvm(x, y, c, 1.0, 1.0, "lr")
    kind, c_best = ("lr", 1.0) if lang == "he" else ("svm", 0.3)
    for min_df in (2, 3):
        for prune in ("after", "before"):
            variants[f"df{min_df}{prune}_{kind}_C{c_best}"] = lambda m=min_df, p=prune: oof_nbsvm(
                x, y, c_best, 1.0, 1.0, kind, m, p)
    for c in (1.0, 3.0, 10.0) if lang == "he" else (3.0, 10.0):
        variants[f"lr_C{c}"] = lambda c=c: oof_lr(x, y, c)
    if args.seeds:
        from tools import sentiment_nn

        nn_bits = args.nn_bits or cfg["nn_bits"]
        rows = sentiment_nn.Rows(doc, bucket >> (cfg["bits"] - nn_bits), value, len(texts))
        net_cfg = {**sentiment_nn.DEFAULTS, "table_bits": nn_bits, "epochs": args.net_epochs,
                   **json.loads(args.net_cfg)}
        for s in range(args.seeds):
            variants[f"{args.net_name}_s{s}"] = lambda s=s: np.stack(
                sentiment_nn.out_of_fold(rows, y, net_cfg, lang, sentiment_nn.SEED + 1000 * s))
    results = {}
    for name, make in variants.items():
        if only and not any(name.startswith(o) for o in only):
            continue
        oof = cached(cache, f"{tag}_{name}", make)
        results[name] = oof
        if oof.ndim == 3:  # network: per epoch
            for e, per in enumerate(oof):
                best, m = score(lang, per, y)
                print(f"[{lang}] {name} epoch {e + 1}: objective {best:.4f} {m}", flush=True)
            continue
        best, m = score(lang, oof, y)
        print(f"[{lang}] {name}: objective {best:.4f} {m}", flush=True)


def simplex(k: int, step: float) -> list[np.ndarray]:
    """Weight vectors of length k on a grid of the given step, summing to 1."""
    n = round(1 / step)
    if k == 1:
        return [np.ones(1)]
    return [np.concatenate([[i / n], rest * (1 - i / n)]) if i < n else np.eye(k)[0]
            for i in range(n + 1) for rest in (simplex(k - 1, step) if i < n else [None])]


def mixes(lang: str, cache: Path, spec: str, step: float, net: str, seeds: int, epochs: int) -> None:
    """Score weighted sums of cached OOF scores (each divided by its spread); optionally mixed with the
    network (mean of `seeds` seeds' log-probabilities after `epochs` epochs) on the 0, 0.1, ..., 1 grid."""
    texts, y = ts.load(ts.DEFAULT_DATA / f"{lang}_train.jsonl")
    tag = f"{lang}{'_idf' if ts.FEATURES[lang]['idf'] else ''}"
    parts = [norm(np.load(cache / f"{tag}_{name}.npy")) for name in spec.split("+")]
    results = []
    for w in simplex(len(parts), step):
        lin = sum(wi * p for wi, p in zip(w, parts, strict=True))
        lin = norm(lin)
        if net:
            nets = [np.load(cache / f"{tag}_{net}_s{s}.npy")[epochs - 1] for s in range(seeds)]
            nn = norm(np.mean(nets, axis=0))
            for v in ts.MIX:
                best, m = score(lang, v * nn + (1 - v) * lin, y)
                results.append((best, tuple(round(float(a), 2) for a in w), round(float(v), 1), m))
        else:
            best, m = score(lang, lin, y)
            results.append((best, tuple(round(float(a), 2) for a in w), 0.0, m))
    results.sort(key=lambda r: -r[0])
    for r in results[:8]:
        print(f"[{lang}] {spec} w={r[1]} net={r[2]}: objective {r[0]:.4f} {r[3]}")
    print(f"[{lang}] best of {len(results)}")


if __name__ == "__main__":
    main()
