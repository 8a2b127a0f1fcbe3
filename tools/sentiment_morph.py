"""CV experiment (train OOF scores only; never reads dev): Hebrew morphology features for the linear model.

Hebrew attaches one-letter proclitics (ו ה ב ל מ ש כ: 'and', 'the', 'in', 'to', 'from', 'that', 'as') and
suffixes (plural ים / ות, possessive י / ך / ו / נו / כם / הם) to words, so 'והחרם', 'בחרם' and 'חרם' are
three word tokens. The character n-grams see the shared stem, the word n-grams do not. Variants:
- an extra hashed block ("stem" block) with every word of the text replaced by its stripped form (words
  that strip to nothing keep their form), unigrams and adjacent bigrams, in its own hash space (a marker
  prefix), per-block 1/sqrt(size) scaling times a block weight, like the word and character blocks;
- Hebrew negation: the shipped tokeniser's negators (לא, אין, אינו/אינה/אינם, בלי, אף, ...) miss prefixed
  negators ('שלא', 'ולא', 'שאין', 'ללא') and 'אל', and a scope runs to the next punctuation mark; the
  'negation' and 'scope' settings re-mark the word tokens (the word block itself changes).

Scored as tools/sentiment_cv.py does (NB-LR, the training script's folds, IDF over all buckets); OOF scores
are cached in --cache under the he_idf_ tag (tools/sentiment_mix.py reads them too). --report scores each
alone and mixed with the cached network (or with --net, a network retrained on the variant's features), per
seed: in-sample, nested with the mix weight fixed, nested with weight and offsets tuned on four folds.
Results: docs/sentiment.md (fourth round).

Usage: python -m tools.sentiment_morph --variants base,p1,neg3 [--c 1.0] [--net]   (OOF scores, cached)
       python -m tools.sentiment_morph --report --variants base,p1,neg3 [--net]   (alone and mixed)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from chalicelib.sentiment import features as F  # noqa: E402
from chalicelib.sentiment.text import _NEGATORS, _SCOPE_END, _TOKEN, normalise_many  # noqa: E402
from tools import train_sentiment as ts  # noqa: E402
from tools.sentiment_cv import cached, folds, norm, oof_nbsvm, score  # noqa: E402
from tools.sentiment_mix import best_mix  # noqa: E402
from tools.sentiment_rule import evaluate  # noqa: E402

PROCLITICS = frozenset("ובלמשכה")
SUFFIXES = ("ימ", "ות", "נו", "כמ", "המ", "י", "כ", "ו")
"""Final letters are folded to medial forms by normalisation (ם -> מ, ך -> כ), longest first."""
HEBREW = frozenset(chr(c) for c in range(0x05D0, 0x05EB))
NEGATORS_HE = frozenset("לא אינ אינו אינה אינמ אינכ אינני אינכמ בלי אפ אל".split())


@dataclass(frozen=True)
class Variant:
    max_prefix: int = 0  # proclitic letters stripped (0: no stem block)
    min_rest: int = 2  # letters that must remain after stripping
    suffix: bool = False  # also strip one common suffix
    weight: float = 1.0  # stem block weight
    bigrams: bool = True  # stem bigrams as well as unigrams
    negation: str = ""  # '' shipped tokeniser; 'prefixed': also prefixed negators and אל; 'prefixed-al': not אל
    scope: int = 0  # > 0: a negation's scope also ends after this many words
    vocab: int = 0  # > 0: strip only to a form seen standalone >= vocab times in the train texts
    every: bool = False  # emit every candidate stripped form (unigrams only) instead of one per word


VARIANTS: dict[str, Variant] = {
    "base": Variant(),
    "p2": Variant(max_prefix=2),
    "p2w05": Variant(max_prefix=2, weight=0.5),
    "p2r3": Variant(max_prefix=2, min_rest=3),
    "p2uni": Variant(max_prefix=2, bigrams=False),
    "p2s": Variant(max_prefix=2, suffix=True),
    "p2sw05": Variant(max_prefix=2, suffix=True, weight=0.5),
    "p2sr3": Variant(max_prefix=2, min_rest=3, suffix=True),
    "p1": Variant(max_prefix=1),
    "p2v2": Variant(max_prefix=2, vocab=2),
    "p3v2": Variant(max_prefix=3, vocab=2),
    "p2v5": Variant(max_prefix=2, vocab=5),
    "p2v2w05": Variant(max_prefix=2, vocab=2, weight=0.5),
    "p2v2uni": Variant(max_prefix=2, vocab=2, bigrams=False),
    "p2sv2": Variant(max_prefix=2, suffix=True, vocab=2),
    "p2all": Variant(max_prefix=2, every=True),
    "p1w05": Variant(max_prefix=1, weight=0.5),
    "p1r3": Variant(max_prefix=1, min_rest=3),
    "p1uni": Variant(max_prefix=1, bigrams=False),
    "p1v2": Variant(max_prefix=1, vocab=2),
    "p1s": Variant(max_prefix=1, suffix=True),
    "p1sr3": Variant(max_prefix=1, min_rest=3, suffix=True),
    "p1sv2": Variant(max_prefix=1, suffix=True, vocab=2),
    "s": Variant(max_prefix=0, suffix=True),
    "neg": Variant(negation="prefixed"),
    "negnoal": Variant(negation="prefixed-al"),
    "neg3": Variant(negation="prefixed", scope=3),
    "scope3": Variant(scope=3),
    "p1neg": Variant(max_prefix=1, negation="prefixed"),
    "p1r3scope3": Variant(max_prefix=1, min_rest=3, scope=3),
    "p1r3neg3": Variant(max_prefix=1, min_rest=3, negation="prefixed", scope=3),
    "scope5": Variant(scope=5),
    "neg5": Variant(negation="prefixed", scope=5),
}


def is_hebrew(word: str) -> bool:
    return len(word) > 1 and all(ch in HEBREW for ch in word)


def prefix_candidates(word: str, max_prefix: int, min_rest: int) -> list[str]:
    """The word without 1, 2, ... (up to max_prefix) leading proclitic letters, leaving >= min_rest letters."""
    out = []
    k = 0
    while k < max_prefix and len(word) - k - 1 >= min_rest and word[k] in PROCLITICS:
        k += 1
        out.append(word[k:])
    return out


def strip_prefix(word: str, max_prefix: int, min_rest: int, vocab: frozenset[str] | None = None) -> str:
    """The word without as many leading proclitic letters as allowed (with a vocabulary: the longest strip
    whose remainder is a known word; none if no remainder is)."""
    for rest in reversed(prefix_candidates(word, max_prefix, min_rest)):
        if vocab is None or rest in vocab:
            return rest
    return word


def strip_suffix(word: str, min_rest: int, vocab: frozenset[str] | None = None) -> str:
    """The word without one common plural/possessive suffix, leaving >= min_rest letters (and a known word,
    with a vocabulary)."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= min_rest:
            if vocab is None or word[: -len(suffix)] in vocab:
                return word[: -len(suffix)]
    return word


def stems(token: str, v: Variant, vocab: frozenset[str] | None) -> list[str]:
    """The token's stem block entries: one stripped form (the token itself if nothing strips), or with
    v.every every candidate stripped form (possibly none)."""
    mark = "neg_" if token.startswith("neg_") else ""
    word = token[len(mark):]
    if not is_hebrew(word):
        return [] if v.every else [token]
    if v.every:
        return [mark + w for w in prefix_candidates(word, v.max_prefix, v.min_rest)]
    word = strip_prefix(word, v.max_prefix, v.min_rest, vocab)
    if v.suffix:
        word = strip_suffix(word, v.min_rest, vocab)
    return [mark + word]


def vocabulary(texts: list[str], min_count: int) -> frozenset[str]:
    """Hebrew words seen standalone at least min_count times in these texts (no labels)."""
    counts: dict[str, int] = {}
    for text in normalise_many(texts):
        for tok in _TOKEN.findall(text):
            counts[tok] = counts.get(tok, 0) + 1
    return frozenset(w for w, c in counts.items() if c >= min_count and is_hebrew(w))


def is_negator(token: str, v: Variant) -> bool:
    if token in _NEGATORS or token.endswith("n't"):
        return True
    if not v.negation:
        return False
    if token in NEGATORS_HE:
        return v.negation == "prefixed" or token != "אל"
    return is_hebrew(token) and strip_prefix(token, 3, 2) in NEGATORS_HE - {"אל"}


def tokenise(norm: str, v: Variant) -> list[str]:
    """text.tokenise(), with the variant's negators."""
    tokens: list[str] = _TOKEN.findall(norm)
    out: list[str] = []
    negated = 0  # words left in the scope
    for tok in tokens:
        if tok in _SCOPE_END:
            negated = 0
            out.append(tok)
        elif negated:
            out.append("neg_" + tok)
            negated -= 1
        else:
            out.append(tok)
            if is_negator(tok, v):
                negated = v.scope or 10**9
    return out


def featurise(texts: list[str], cfg: dict[str, Any], v: Variant,
              vocab: frozenset[str] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """features.featurise() (no IDF) with the variant's tokens, plus the stem block: (doc, bucket, value)."""
    norms = normalise_many(texts)
    toks = [tokenise(n, v) for n in norms]
    shift = np.uint64(64 - int(cfg["bits"]))
    wkeys, wc, _, _ = F._word_keys(toks)
    ckeys, cc = F._char_keys(norms, int(cfg["char_min"]), int(cfg["char_max"]))
    blocks = [((wkeys >> shift).astype(np.int64), wc, cfg["word_weight"]),
              ((ckeys >> shift).astype(np.int64), cc, cfg["char_weight"])]
    if v.max_prefix or v.suffix:
        seqs = [["\x01" + s for t in ts_ for s in stems(t, v, vocab)] for ts_ in toks]  # own hash space
        skeys, sc, ukeys, uc = F._word_keys(seqs)
        if v.bigrams and not v.every:
            blocks.append(((skeys >> shift).astype(np.int64), sc, v.weight))
        else:
            blocks.append(((ukeys >> shift).astype(np.int64), uc, v.weight))
    n = np.arange(len(texts))
    doc = np.concatenate([np.repeat(n, c) for _, c, _ in blocks])
    value = np.concatenate([np.repeat(F.block_scales(c, w), c) for _, c, w in blocks])
    bucket = np.concatenate([b for b, _, _ in blocks])
    order = np.argsort(doc, kind="stable")
    return doc[order], bucket[order], value[order]


def triples(texts: list[str], cfg: dict[str, Any], v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """featurise() of all texts in chunks (the vocabulary from all train texts, no labels)."""
    vocab = vocabulary(texts, v.vocab) if v.vocab else None
    parts = [featurise(texts[i : i + 2000], cfg, v, vocab) for i in range(0, len(texts), 2000)]
    return (np.concatenate([p[0] + i * 2000 for i, p in enumerate(parts)]),
            np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))


def matrix(texts: list[str], cfg: dict[str, Any], v: Variant) -> sp.csr_matrix:
    """IDF-weighted CSR matrix of the variant's features (IDF over train texts, as the build does)."""
    doc, bucket, value = triples(texts, cfg, v)
    idf = ts.inverse_document_frequency(doc, bucket, len(texts), cfg["bits"])
    return sp.csr_matrix((value * idf[bucket], (doc, bucket)), shape=(len(texts), 1 << cfg["bits"]))


def network_oof(texts: list[str], y: np.ndarray, cfg: dict[str, Any], v: Variant, seed: int) -> np.ndarray:
    """The shipped network's per-epoch OOF log-probabilities on the variant's features (no IDF, as the build
    feeds it), seeds as tools/sentiment_cv.py numbers them."""
    from tools import sentiment_nn

    doc, bucket, value = triples(texts, cfg, v)
    rows = sentiment_nn.Rows(doc, bucket >> (cfg["bits"] - cfg["nn_bits"]), value, len(texts))
    net_cfg = {**sentiment_nn.DEFAULTS, "table_bits": cfg["nn_bits"]}
    return np.stack(sentiment_nn.out_of_fold(rows, y, net_cfg, "he", sentiment_nn.SEED + 1000 * seed))


def examples(texts: list[str], v: Variant, count: int = 16) -> None:
    """A few (token -> stems) pairs, to eyeball what a variant does."""
    vocab = vocabulary(texts, v.vocab) if v.vocab else None
    seen: dict[str, str] = {}
    for text in normalise_many(texts[:200]):
        for tok in tokenise(text, v):
            s = "|".join(stems(tok, v, vocab))
            if s != tok and tok not in seen:
                seen[tok] = s
    print("  " + ", ".join(f"{a}->{b}" for a, b in list(seen.items())[:count]))


def report(cache: Path, name: str, y: np.ndarray, seeds: int, epochs: int, net_name: str = "net") -> None:
    """The cached NB-LR OOF scores `name`, alone and mixed with each network seed: in-sample, nested with the
    mix weight fixed at its in-sample value (offsets tuned on four folds), nested with weight and offsets
    tuned on four folds (tools/sentiment_mix.py)."""
    lin = norm(np.load(cache / f"he_idf_{name}.npy"))
    in_sample, nested, _ = evaluate("he", lin, y, False)
    cells = [f"alone {in_sample:.4f} / {nested:.4f}"]
    for s in range(seeds):
        net = norm(np.load(cache / f"he_idf_{net_name}_s{s}.npy")[epochs - 1])
        w, _, in_sample = best_mix("he", [lin, net], y, 0.1)
        _, fixed, _ = evaluate("he", w[0] * lin + w[1] * net, y, False)
        pred = np.zeros(len(y), np.int64)
        for tr, te in folds(y):
            wk, ok, _ = best_mix("he", [lin[tr], net[tr]], y[tr], 0.1)
            pred[te] = (wk[0] * lin[te] + wk[1] * net[te] + ok).argmax(1)
        cells.append(f"net s{s} (w {w[1]:.1f}) {in_sample:.4f} / {fixed:.4f} / {ts.objective('he', y, pred):.4f}")
    print(f"[he] {name} with {net_name}: " + "; ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="base,p2")
    parser.add_argument("--c", default="1.0", help="comma-separated NB-LR C values")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentcv"))
    parser.add_argument("--report", action="store_true", help="score cached variants with the network")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--net", action="store_true", help="network OOF on the variant's features (torch)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if args.report:
        _, y = ts.load(ts.DEFAULT_DATA / "he_train.jsonl")
        for name in args.variants.split(","):
            for c in args.c.split(","):
                net_name = f"morph{name}_net" if args.net else "net"
                report(args.cache, f"morph{name}_nblr_C{float(c)}", y, args.seeds, args.epochs, net_name)
        return
    cfg = dict(ts.FEATURES["he"])
    texts, y = ts.load(ts.DEFAULT_DATA / "he_train.jsonl")
    args.cache.mkdir(parents=True, exist_ok=True)
    for name in args.variants.split(","):
        v = VARIANTS[name]
        if v.max_prefix or v.suffix:
            examples(texts, v)
        x = matrix(texts, cfg, v)
        for c in map(float, args.c.split(",")):
            make: Callable[[], np.ndarray] = partial(oof_nbsvm, x, y, c, 1.0, 1.0, "lr")
            oof = cached(args.cache, f"he_idf_morph{name}_nblr_C{c}", make)
            best, m = score("he", oof, y)
            print(f"[he] {name} ({v}) NB-LR C {c}: {x.nnz} non-zeros, objective {best:.4f} {m}", flush=True)
        for s in range(args.seeds if args.net else 0):
            per_epoch = cached(args.cache, f"he_idf_morph{name}_net_s{s}", partial(network_oof, texts, y, cfg, v, s))
            best, m = score("he", per_epoch[args.epochs - 1], y)
            print(f"[he] {name} network seed {s}, {args.epochs} epochs: objective {best:.4f} {m}", flush=True)


if __name__ == "__main__":
    main()
