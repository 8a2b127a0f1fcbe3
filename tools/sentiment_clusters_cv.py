"""CV experiment: word clusters learned from the English train texts themselves (no outside data).

PPMI word-context co-occurrence (window 2) over train tokens -> truncated SVD (64 dims) -> k-means
clusters; each text gets an extra block of cluster 1-2-grams (negation marks kept), L2-normalised,
appended to the run-time features (--dense: the text's mean word vector instead); the language's
linear model (LINEAR, first C of C_GRID, IDF as configured) scored by the training script's 5-fold
OOF objective, linear model alone.
Clusters use all train texts without labels (transductive inside CV, like IDF). Not used at run time.

Usage: python -m tools.sentiment_clusters_cv [--k 500] [--weight 0.5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.cluster import MiniBatchKMeans  # noqa: E402
from sklearn.decomposition import TruncatedSVD  # noqa: E402

from chalicelib.sentiment.text import normalise_many, tokenise  # noqa: E402
from tools import train_sentiment as ts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", default="en")
    parser.add_argument("--k", type=int, nargs="+", default=[500])
    parser.add_argument("--weight", type=float, nargs="+", default=[0.5])
    parser.add_argument("--dense", action="store_true", help="mean word vectors instead of clusters")
    parser.add_argument("--kind", help="linear model for --dense (default LINEAR[lang]; NB ratios of a column"
                        " present in every text are ~0, so 'svm' is the fair test)")
    args = parser.parse_args()
    texts, y = ts.load(ts.DEFAULT_DATA / f"{args.lang}_train.jsonl")
    toks = [[t[4:] if t.startswith("neg_") else t for t in tokenise(n)] for n in normalise_many(texts)]
    negs = [[t.startswith("neg_") for t in tokenise(n)] for n in normalise_many(texts)]
    counts = Counter(t for ts_ in toks for t in ts_)
    vocab = {w: i for i, (w, c) in enumerate(counts.most_common()) if c >= 3}
    ctx = {w: i for i, (w, _) in enumerate(counts.most_common(5000))}
    rows, cols = [], []
    for sent in toks:
        for i, w in enumerate(sent):
            if w not in vocab:
                continue
            for j in range(max(0, i - 2), min(len(sent), i + 3)):
                if j != i and sent[j] in ctx:
                    rows.append(vocab[w])
                    cols.append(ctx[sent[j]])
    co = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vocab), len(ctx)))
    pw = np.asarray(co.sum(1)).ravel()
    pc = np.asarray(co.sum(0)).ravel() ** 0.75
    pc = pc / pc.sum()
    co = co.tocoo()
    pmi = np.log(co.data / (pw[co.row] * pc[co.col]))  # P(w, c) / (P(w) P_0.75(c))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (co.row[keep], co.col[keep])), shape=co.shape)
    svd = TruncatedSVD(64, random_state=ts.SEED).fit(ppmi)
    vec = svd.transform(ppmi) / np.sqrt(svd.singular_values_)  # U * sqrt(S)
    vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)
    print(f"{len(vocab)} words, {len(ctx)} contexts, {ppmi.nnz} PPMI entries", flush=True)
    cfg = dict(ts.FEATURES[args.lang])
    doc, bucket, value = ts.featurise_all(texts, cfg)
    idf = ts.inverse_document_frequency(doc, bucket, len(texts), cfg["bits"]) if cfg["idf"] else None
    x = sp.csr_matrix((value * idf[bucket] if idf is not None else value, (doc, bucket)),
                      shape=(len(texts), 1 << cfg["bits"]))
    c_value = ts.C_GRID[args.lang][0]
    if args.dense:  # mean SVD word vector per text (negated words' vectors flipped), as dense columns
        index = {w: i for i, w in enumerate(vocab)}
        mean = np.zeros((len(texts), vec.shape[1]))
        for d, (sent, neg) in enumerate(zip(toks, negs, strict=True)):
            hits = [(-1.0 if g else 1.0) * vec[index[w]] for w, g in zip(sent, neg, strict=True) if w in index]
            if hits:
                mean[d] = np.mean(hits, axis=0)
        for weight in args.weight:
            xz = sp.hstack([x, sp.csr_matrix(weight * mean)]).tocsr()
            oof = ts.out_of_fold(xz, y, c_value, args.kind or ts.LINEAR[args.lang])
            offsets, best = ts.tune_offsets(args.lang, oof, y)
            print(f"[{args.lang}] {args.kind or ts.LINEAR[args.lang]} + mean word vector weight={weight}: "
                  f"objective {best:.4f} "
                  f"{ts.metrics(y, (oof + offsets).argmax(1))}", flush=True)
        return
    for k in args.k:
        km = MiniBatchKMeans(k, random_state=ts.SEED, n_init=3, batch_size=4096).fit(vec)
        words = list(vocab)
        cluster = dict(zip(words, km.labels_.tolist(), strict=True))
        feats: dict[str, int] = {}
        r, c = [], []
        for d, (sent, neg) in enumerate(zip(toks, negs, strict=True)):
            ids = [("n" if g else "") + str(cluster[w]) if w in cluster else None
                   for w, g in zip(sent, neg, strict=True)]
            grams = [i for i in ids if i] + [a + "_" + b for a, b in zip(ids[:-1], ids[1:], strict=True) if a and b]
            for gram in grams:
                r.append(d)
                c.append(feats.setdefault(gram, len(feats)))
        z = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(texts), len(feats)))
        z = sp.diags(1 / np.sqrt(np.maximum(np.asarray(z.multiply(z).sum(1)).ravel(), 1))) @ z
        for weight in args.weight:
            xz = sp.hstack([x, weight * z]).tocsr()
            oof = ts.out_of_fold(xz, y, c_value, ts.LINEAR[args.lang])
            offsets, best = ts.tune_offsets(args.lang, oof, y)
            print(f"[{args.lang}] clusters k={k} weight={weight}: objective {best:.4f} "
                  f"{ts.metrics(y, (oof + offsets).argmax(1))}", flush=True)


if __name__ == "__main__":
    main()
