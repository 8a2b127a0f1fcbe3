"""Build chalicelib/sentiment/model.bin from ../shared/data/sentiment (train files only for fitting).

Reproducible: fixed seed, fixed folds, deterministic solvers, one thread. Per language it
1. featurises train with the runtime's own hashing (chalicelib.sentiment.features), so they cannot drift;
2. linear model (LINEAR[lang]: SVM, or NB-SVM / NB-LR with naive-Bayes log-count-ratio scaling folded
   into the weights): picks C by stratified K-fold cross-validation on train (never on dev), keeping
   its out-of-fold (OOF) scores;
3. network, where NETWORK[lang] is set (tools/sentiment_nn.py, fastText-style embedding bag + hidden
   layer), or CNN, where CNN[lang] is set (tools/sentiment_cnn.py, Kim-style CNN over hashed word
   embeddings): OOF log-probabilities on the same folds after every epoch; the epoch count is chosen on them;
4. mixes the two (weight chosen on OOF) and tunes per-class score offsets on the OOF mix;
5. refits both on all of train and stores int8 tables (linear weights with NB ratios and IDF folded in; network
   or CNN embedding) plus the small dense layers;
6. reloads the artefact through the numpy runtime, checks it against the float model on train, and
   prints dev metrics once.

Dev deps only (scikit-learn, scipy, torch). Usage: python -m tools.train_sentiment [--data DIR] [--out PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # the machine is shared; one thread also keeps runs identical

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chalicelib.sentiment import bundled  # noqa: E402
from chalicelib.sentiment.features import featurise  # noqa: E402
from tools import sentiment_cnn, sentiment_nn  # noqa: E402

SEED = 20240607
LABELS = list(bundled.LABELS)
DEFAULT_DATA = REPO.parent / "shared" / "data" / "sentiment"
FEATURES: dict[str, dict[str, Any]] = {
    "en": {"bits": 22, "nn_bits": 17, "char_min": 2, "char_max": 5, "word_weight": 1.0, "char_weight": 1.0,
           "idf": False},
    "he": {"bits": 18, "nn_bits": 17, "char_min": 2, "char_max": 5, "word_weight": 1.0, "char_weight": 1.0,
           "idf": True},
}
"""Linear weights over 2^18 hashed buckets for Hebrew, 2^22 for English (English train has 938k distinct
n-grams, 3.7 per bucket at 2^18: CV objective 0.6277 -> 0.6378 at 2^22, and 0.6353 -> 0.6419 mixed with the
CNN; Hebrew, 315k n-grams, gains nothing in its network mix), the network's int8 embedding over 2^17 (the
bucket's top 17 bits). IDF weighting by CV of the linear model: Hebrew 0.787 -> 0.794 negative F1, English
objective 0.618 -> 0.616, so Hebrew only."""
MIN_DF = {"en": 2, "he": 0}
"""Stored linear table: buckets in fewer train texts than this get no row (0 = a dense table). English keeps
the 401k of its 840k occupied buckets seen in >= 2 texts (CV cost 0.0006 objective, in the CNN mix 0.0008),
in a bitmap-indexed table (bundled.table_rows): 2.0 MB instead of 12.6 MB dense."""
NB_BUCKETS = 1 << 18
"""Bucket count in the NB ratios' smoothing normaliser (alpha per bucket): fixed rather than the hash space,
so a larger hash space does not also change the ratios' constant term (with the space's own 2^22 English
CV fell from 0.6378 to 0.6334; 2^16 scored the same as 2^18)."""
LINEAR = {"en": "nbsvm", "he": "nblr"}
"""Linear model per language: 'svm' (one-vs-rest linear SVM), 'nbsvm' / 'nblr' (Wang & Manning 2012:
one-vs-rest SVM / logistic regression on features scaled by naive-Bayes log-count ratios). All three are
linear in the run-time features (the ratios fold into the stored weights), so the choice costs nothing at
run time. By CV (docs/sentiment.md): English svm 0.6153 -> nbsvm 0.6277 objective; Hebrew linear svm
0.7875 -> nblr 0.7986, and in the mix with the network 0.7975 -> 0.804 (on each of three network seeds)."""
C_GRID = {"en": (0.3,), "he": (1.0, 3.0)}
"""Regularisation grid per language. English: 0.3 won over 0.1 and 1.0 in CV (for the SVM and for the
NB-SVM; 0.03 was clearly worse); one value saves minutes per build. Hebrew NB-LR: 1.0 and 3.0."""
NB_ALPHA = 1.0
"""Smoothing of the NB log-count ratios (document counts per class); 0.5 and 0.25 were worse in CV."""
NETWORK: dict[str, dict[str, Any] | None] = {
    "en": None,
    "he": {**sentiment_nn.DEFAULTS},
}
"""Network settings per language ('epochs' is the most tried; the count used is chosen by CV), or None for
the linear model alone. English: the network's best CV mix gained only 0.0035 of objective (0.616 ->
0.6195) for about 1.4x the run time, so it is left out; Hebrew gains ~0.01."""
CNN: dict[str, dict[str, Any] | None] = {
    "en": {**sentiment_cnn.DEFAULTS},
    "he": None,
}
"""CNN settings per language (at most one of NETWORK and CNN per language; 'epochs' is the most tried). English:
NB-SVM mixed with the CNN (2 epochs, weight 0.3) 0.6277 -> 0.6353 CV objective (0.6337-0.6353 on three CNN
seeds; +0.005 to +0.008 when the mix weight and offsets are tuned on four folds and scored on the fifth); Hebrew:
+0.000 to +0.002 over its network mix, less nested, so none (docs/sentiment.md)."""
MIX = np.linspace(0.0, 1.0, 11)
"""Network weight grid for the network/linear mix (0 = linear only, 1 = network only)."""
FOLDS = 5
OFFSETS = np.linspace(-1.0, 1.0, 41)
"""Offset grid, in units of the out-of-fold score standard deviation, for the negative and positive scores."""


def load(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and label indices of one JSONL file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], np.array([LABELS.index(r["label"]) for r in rows])


def matrix(texts: list[str], cfg: dict[str, Any]) -> sp.csr_matrix:
    """The runtime's features as a scipy CSR matrix."""
    doc, bucket, value = featurise_all(texts, cfg)
    return sp.csr_matrix((value, (doc, bucket)), shape=(len(texts), 1 << cfg["bits"]))


def confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """3 x 3 confusion counts (rows gold, columns predicted), by bincount: the offset search calls this
    thousands of times, and sklearn's metrics cost ~5 ms a call on 47k rows."""
    return np.bincount(y * 3 + pred, minlength=9).reshape(3, 3).astype(np.float64)


def neg_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 of the negative class, the series that raises alerts."""
    cm = confusion(y, pred)
    return _neg_f1(cm)


def _neg_f1(cm: np.ndarray) -> float:
    tp = cm[0, 0]
    return float(2 * tp / (cm[0].sum() + cm[:, 0].sum())) if tp else 0.0


def _macro_recall(cm: np.ndarray) -> float:
    return float(np.mean(np.diag(cm) / np.maximum(cm.sum(1), 1)))


def objective(lang: str, y: np.ndarray, pred: np.ndarray) -> float:
    """What we select on: the acceptance metrics of that language.

    English: mean of macro recall and negative F1. Hebrew: negative F1 only, because its neutral class is
    3% of rows, so macro recall is noisy and chasing it trades away negative precision.
    """
    cm = confusion(y, pred)
    if lang == "he":
        return _neg_f1(cm)
    return 0.5 * (_macro_recall(cm) + _neg_f1(cm))


def metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Macro recall, negative F1, accuracy."""
    cm = confusion(y, pred)
    return {
        "macro_recall": round(_macro_recall(cm), 4),
        "neg_f1": round(_neg_f1(cm), 4),
        "accuracy": round(float(np.trace(cm) / cm.sum()), 4),
    }


def make_model(c: float) -> LinearSVC:
    """One-vs-rest linear SVM; balanced class weights because macro recall rewards minority classes."""
    return LinearSVC(C=c, class_weight="balanced", random_state=SEED, max_iter=5000)


def document_counts(x: sp.csr_matrix, y: np.ndarray) -> np.ndarray:
    """Per class, in how many texts each bucket occurs: 3 x buckets."""
    present = x.copy()
    present.data[:] = 1.0
    return np.vstack([np.asarray(present[y == k].sum(axis=0)).ravel() for k in range(len(LABELS))])


def log_count_ratios(df: np.ndarray, alpha: float = NB_ALPHA) -> np.ndarray:
    """Naive-Bayes log-count ratio per class (one vs rest) and bucket, 3 x buckets (Wang & Manning 2012):
    log of the smoothed share of class-c texts containing the bucket over that share in the other texts,
    the shares normalised over NB_BUCKETS buckets' smoothing (not the hash space's)."""
    ratios = np.empty_like(df, dtype=np.float64)
    total = df.sum(axis=0)
    for k in range(len(LABELS)):
        p = alpha + df[k]
        q = alpha + total - df[k]
        ratios[k] = (np.log(p / (alpha * NB_BUCKETS + df[k].sum()))
                     - np.log(q / (alpha * NB_BUCKETS + total.sum() - df[k].sum())))
    return ratios


def fit_linear(kind: str, x: sp.csr_matrix, y: np.ndarray, c: float,
               min_df: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(weights over x's columns, buckets x 3; biases, 3) of one linear model ('svm', 'nbsvm', 'nblr').

    NB variants: per class, a binary model on x scaled column-wise by that class's log-count ratios; the
    ratios are then folded into its weights, so the result scores unscaled x like any linear model. The
    binary models weigh the class's texts as one-vs-rest 'balanced' LinearSVC does (n / (3 n_c) vs 1).
    min_df: weights of buckets in fewer of these texts are zeroed after fitting (the stored table has no
    row for them), so CV scores what the run time computes.
    """
    df = document_counts(x, y)
    coef, bias = _fit_unpruned(kind, x, y, c, df)
    if min_df:
        coef[df.sum(axis=0) < min_df] = 0.0
    return coef, bias


def _fit_unpruned(kind: str, x: sp.csr_matrix, y: np.ndarray, c: float,
                  df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fit_linear before pruning; df: document_counts(x, y), for the NB ratios."""
    if kind == "svm":
        svm = make_model(c).fit(x, y)
        return svm.coef_.T.copy(), svm.intercept_.copy()
    ratios = log_count_ratios(df)
    counts = np.bincount(y, minlength=len(LABELS))
    coef = np.zeros((x.shape[1], len(LABELS)))
    bias = np.zeros(len(LABELS))
    for k in range(len(LABELS)):
        weights = {1: len(y) / (len(LABELS) * counts[k]), 0: 1.0}
        model: LinearSVC | LogisticRegression
        if kind == "nbsvm":
            model = LinearSVC(C=c, class_weight=weights, random_state=SEED, max_iter=5000)
        elif kind == "nblr":
            model = LogisticRegression(C=c, class_weight=weights, max_iter=2000)
        else:
            raise ValueError(f"unknown linear model {kind!r}")
        model.fit(x @ sp.diags(ratios[k]), (y == k).astype(np.int64))
        coef[:, k] = model.coef_.ravel() * ratios[k]
        bias[k] = model.intercept_[0]
    return coef, bias


def out_of_fold(x: sp.csr_matrix, y: np.ndarray, c: float, kind: str = "svm", min_df: int = 0) -> np.ndarray:
    """Out-of-fold decision scores from FOLDS-fold stratified CV on train (NB ratios and pruning from the
    training folds only)."""
    oof = np.zeros((len(y), len(LABELS)))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(x, y):
        coef, bias = fit_linear(kind, x[train], y[train], c, min_df)
        oof[test] = x[test] @ coef + bias
    return oof


def tune_offsets(lang: str, oof: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Additive score offsets (neutral fixed at 0) that maximise the objective on out-of-fold scores."""
    std = float(oof.std())
    best = (objective(lang, y, oof.argmax(1)), np.zeros(3))
    for neg in OFFSETS:
        for pos in OFFSETS:
            offsets = np.array([neg, 0.0, pos]) * std
            score = objective(lang, y, (oof + offsets).argmax(1))
            if score > best[0] + 1e-9:
                best = (score, offsets)
    return best[1], best[0]


def quantise(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 table (rows x columns) and per-column scales: 4x smaller than float32, keeps the artefact < 10 MB."""
    scale = np.abs(matrix).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(matrix / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def featurise_all(texts: list[str], cfg: dict[str, Any],
                  idf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """featurise() in chunks of 2,000 texts (one call on 47k texts sorts 20M keys at once: slow, 2 GB)."""
    parts = [featurise(texts[i : i + 2000], cfg, idf) for i in range(0, len(texts), 2000)]
    return (np.concatenate([doc + i * 2000 for i, (doc, _, _) in enumerate(parts)]),
            np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))


def inverse_document_frequency(doc: np.ndarray, bucket: np.ndarray, count: int, bits: int) -> np.ndarray:
    """Smoothed IDF per hash bucket over the train texts, log((1 + n) / (1 + df)) + 1 (linear model only:
    it is folded into the linear weights, which the network's smaller embedding table could not do).

    It uses no labels; CV folds share it (the held-out fold's texts count in df), a transductive leak too
    small to matter next to the 5k-47k texts it is computed on.
    """
    pairs = np.unique((doc << bits) | bucket)
    df = np.bincount(pairs & ((1 << bits) - 1), minlength=1 << bits)
    return np.log((1.0 + count) / (1.0 + df)) + 1.0


def spread(scores: np.ndarray) -> float:
    """Standard deviation of scores around each row's mean: the class-relative scale that argmax sees."""
    return float((scores - scores.mean(axis=1, keepdims=True)).std())


def choose(lang: str, name: str, candidates: dict[Any, np.ndarray], y: np.ndarray) -> tuple[Any, float]:
    """The candidate (a key of OOF score arrays) with the best objective after offset tuning."""
    results = {key: tune_offsets(lang, oof, y)[1] for key, oof in candidates.items()}
    for key, score in results.items():
        print(f"[{lang}] {name}={key}: CV objective {score:.4f}", flush=True)
    best = max(results, key=lambda k: results[k])
    return best, results[best]


def train_language(lang: str, data: Path, network_cfg: dict[str, Any] | None = None,
                   cache: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]] | None:
    """CV-select the linear model, the network's epochs, the mix and offsets; refit on all of train.

    Returns the artefact arrays, the runtime config and a training report (None for a CV-only run,
    with network_cfg overriding NETWORK; cache keeps linear OOF scores between such experiments).
    """
    cfg = dict(FEATURES[lang])
    texts, y = load(data / f"{lang}_train.jsonl")
    t0 = time.perf_counter()
    doc, bucket, value = featurise_all(texts, cfg)
    idf = inverse_document_frequency(doc, bucket, len(texts), cfg["bits"]) if cfg["idf"] else None
    x = sp.csr_matrix((value * idf[bucket] if idf is not None else value, (doc, bucket)),
                      shape=(len(texts), 1 << cfg["bits"]))
    rows = sentiment_nn.Rows(doc, bucket >> (cfg["bits"] - cfg["nn_bits"]), value, len(texts))
    print(f"[{lang}] {len(texts)} train texts, {x.nnz} non-zeros, featurised in {time.perf_counter() - t0:.1f}s")

    linear_oof = {}
    for c in C_GRID[lang]:
        tag = zlib.crc32(json.dumps({**cfg, "min_df": MIN_DF[lang], "nb": NB_BUCKETS}, sort_keys=True).encode())
        key = cache / f"{lang}_{LINEAR[lang]}_{c}_{tag}.npy" if cache else None
        if key is not None and key.exists():
            linear_oof[c] = np.load(key)
        else:
            linear_oof[c] = out_of_fold(x, y, c, LINEAR[lang], MIN_DF[lang])
            if key is not None:
                np.save(key, linear_oof[c])
    best_c, _ = choose(lang, "C", linear_oof, y)
    lin = linear_oof[best_c]
    lin_spread = spread(lin)
    net_cfg: dict[str, Any] | None = None
    cnn_cfg = CNN[lang] if network_cfg is None else None
    if cnn_cfg is not None and NETWORK[lang] is not None:
        raise ValueError(f"{lang}: at most one of NETWORK and CNN")
    if cnn_cfg is not None:
        ids = sentiment_cnn.token_ids(texts, cnn_cfg["bits"])
        per_epoch = list(sentiment_cnn.out_of_fold(ids, y, cnn_cfg, sentiment_cnn.SEED, lang))
    elif NETWORK[lang] is not None or network_cfg is not None:
        net_cfg = {**(NETWORK[lang] or sentiment_nn.DEFAULTS), **(network_cfg or {}), "table_bits": cfg["nn_bits"]}
        per_epoch = sentiment_nn.out_of_fold(rows, y, net_cfg, lang)
    if net_cfg is not None or cnn_cfg is not None:
        epochs, _ = choose(lang, "epochs", {e + 1: oof for e, oof in enumerate(per_epoch)}, y)
        net = per_epoch[epochs - 1]
        net_spread = spread(net)
        mixes = {round(float(w), 2): w * net / net_spread + (1 - w) * lin / lin_spread for w in MIX}
        weight, score = choose(lang, "network weight", mixes, y)
    else:
        epochs, net_spread, weight = 0, 1.0, 0.0
        mixes = {0.0: lin / lin_spread}
        score = tune_offsets(lang, mixes[0.0], y)[1]
    offsets, _ = tune_offsets(lang, mixes[weight], y)
    cv = metrics(y, (mixes[weight] + offsets).argmax(1))
    print(f"[{lang}] chose C={best_c}, {epochs} epochs, network weight {weight}: CV {cv}", flush=True)
    if network_cfg is not None:
        return None

    coef, intercept = fit_linear(LINEAR[lang], x, y, best_c, MIN_DF[lang])
    nn_weight, linear_weight = weight / net_spread, (1 - weight) / lin_spread
    exact = linear_weight * (x @ coef)
    runtime = {**cfg, "nn_weight": 0.0, "linear_weight": linear_weight}
    if net_cfg is not None:
        network = sentiment_nn.train(rows, y, np.arange(len(y)), {**net_cfg, "epochs": epochs}, sentiment_nn.SEED)
        layers = sentiment_nn.dense_layers(network)
        emb, emb_scale = quantise(layers.pop("emb"))
        exact = exact + nn_weight * sentiment_nn.predict(network, rows, np.arange(len(y)))
        runtime["nn_weight"] = nn_weight
    else:  # no bag network: an empty (dim 0) one
        layers = {k: np.zeros(shape, np.float32) for k, shape in
                  (("w1", (0, 0)), ("b1", (0,)), ("w2", (0, 3)), ("b2", (3,)))}
        emb, emb_scale = np.zeros((1, 0), np.int8), np.zeros(0, np.float32)
    if cnn_cfg is not None:
        cnn = sentiment_cnn.train(ids, y, np.arange(len(y)), {**cnn_cfg, "epochs": epochs}, sentiment_cnn.SEED)
        cnn_layers = sentiment_cnn.export(cnn)
        cnn_layers["cnn_emb"], cnn_layers["cnn_emb_scale"] = quantise(cnn_layers["cnn_emb"])
        layers.update(cnn_layers)
        exact = exact + nn_weight * sentiment_cnn.predict(cnn, ids, np.arange(len(y)))
        runtime.update(cnn={k: cnn_cfg[k] for k in sentiment_cnn.RUNTIME_KEYS}, cnn_weight=nn_weight)
    lin, lin_scale = quantise(coef * (idf[:, None] if idf is not None else 1.0))  # IDF folded in
    bias = linear_weight * intercept + offsets
    exact = (exact + bias).argmax(1)
    arrays = {"emb": emb, "emb_scale": emb_scale, "lin_scale": lin_scale, **layers, "bias": bias.astype(np.float32)}
    if MIN_DF[lang]:
        kept = document_counts(x, y).sum(axis=0) >= MIN_DF[lang]
        arrays.update(zip(("lin", "lin_bitmap", "lin_rank"), bundled.sparse_table(lin, kept), strict=True))
        runtime["lin_sparse"] = True
    else:
        arrays["lin"] = lin
    report = {"linear": LINEAR[lang], "C": best_c, "min_df": MIN_DF[lang], "nb_buckets": NB_BUCKETS,
              "epochs": epochs, "network_weight": weight, "cv_folds": FOLDS,
              "cv": cv, "cv_objective": round(score, 4), "train_rows": len(texts), "network": NETWORK[lang],
              "cnn": CNN[lang]}
    return {f"{lang}_{k}": v for k, v in arrays.items()}, runtime, {**report, "_exact": exact}


def main(argv: list[str] | None = None) -> None:
    """Train both languages, write the artefact, print dev metrics from the numpy runtime."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=bundled.MODEL_PATH)
    parser.add_argument("--langs", default=",".join(FEATURES), help="for quick checks of the build only")
    parser.add_argument("--cv-only", metavar="JSON", help="experiment: network settings to cross-validate, no build")
    parser.add_argument("--cache", type=Path, help="experiment: directory for linear out-of-fold scores")
    args = parser.parse_args(argv)
    langs = args.langs.split(",")
    if args.cv_only is not None:
        for lang in langs:
            train_language(lang, args.data, json.loads(args.cv_only), args.cache)
        return
    t0 = time.perf_counter()
    arrays: dict[str, np.ndarray] = {}
    runtime: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    exact: dict[str, np.ndarray] = {}
    for lang in langs:
        built = train_language(lang, args.data)
        assert built is not None
        lang_arrays, runtime[lang], reports[lang] = built
        exact[lang] = reports[lang].pop("_exact")
        arrays.update(lang_arrays)
    meta = {"version": 2, "labels": LABELS, "languages": runtime, "seed": SEED, "training": reports}
    bundled.save_model(args.out, meta, arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - t0:.0f}s")

    bundled._model = bundled.load_model(args.out)
    for lang in langs:
        texts, y = load(args.data / f"{lang}_train.jsonl")
        agreement = float((bundled.scores(texts, lang).argmax(1) == exact[lang]).mean())
        print(f"[{lang}] numpy int8 runtime agrees with the float model on {agreement:.2%} of train")
    if langs != list(FEATURES):
        return
    for lang in FEATURES:
        texts, y = load(args.data / f"{lang}_dev.jsonl")
        pred = np.array([LABELS.index(label) for label in bundled.classify(texts)])
        print(f"[{lang}] dev (numpy runtime, {len(texts)} texts): {metrics(y, pred)}")


if __name__ == "__main__":
    main()
