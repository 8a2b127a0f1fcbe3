"""Hashed word and character n-gram features, vectorised with numpy (no sort at run time).

The training script imports this module, so the runtime reproduces training features bit for bit.
Hashes are zlib.crc32 (words) and a fixed polynomial + splitmix64 finaliser (characters, bigrams):
stable across processes, unlike Python's salted ``hash()``.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from chalicelib.sentiment.text import normalise_many, tokenise

_U64 = np.uint64
_P = _U64(0x100000001B3)  # FNV-64 prime, the polynomial base for n-gram hashes
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_SEED_UNI = _U64(0x9E3779B97F4A7C15)
_SEED_BI = _U64(0xC2B2AE3D27D4EB4F)
_SEED_CHAR = _U64(0x165667B19E3779F9)
_CACHE_LIMIT = 200_000

_word_hash: dict[str, int] = {}


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all 64 bits."""
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


def _token_hashes(tokens: list[str]) -> list[int]:
    """crc32 of each token's UTF-8, memoised (bounded, so a long-lived container cannot grow without end)."""
    hashes = list(map(_word_hash.get, tokens))  # C-level loop: the hot path once the cache is warm
    if None in hashes:
        if len(_word_hash) >= _CACHE_LIMIT:
            _word_hash.clear()
        for i, h in enumerate(hashes):
            if h is None:
                hashes[i] = _word_hash[tokens[i]] = zlib.crc32(tokens[i].encode("utf-8"))
    return hashes  # type: ignore[return-value]


def _word_keys(tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(64-bit hashes, per-text counts) of every word unigram and adjacent bigram, grouped by text, then
    (unigram hashes, tokens per text) alone: the CNN's token sequence.

    Unigram i and bigram (i, i+1) are interleaved, so the result is in text order without a sort.
    """
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    flat = np.array(_token_hashes([tok for toks in tokens for tok in toks]), dtype=np.uint64)
    pairs = np.empty((len(flat), 2), np.uint64)
    pairs[:, 0] = _mix(flat ^ _SEED_UNI)
    pairs[:-1, 1] = _mix(flat[:-1] * _P + flat[1:] + _SEED_BI)
    ends = np.cumsum(lengths)
    valid = np.ones((len(flat), 2), bool)
    valid[ends[lengths > 0] - 1, 1] = False  # no bigram across the end of a text
    return pairs[valid], lengths + np.maximum(lengths - 1, 0), pairs[:, 0], lengths


def _char_keys(norms: list[str], nmin: int, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hashes, per-text counts) of every character n-gram, nmin <= n <= nmax, over ' ' + text + ' '.

    Texts are joined with NUL (normalise() removes NULs from input), and n-grams spanning a NUL are dropped.
    The n-grams starting at one position sit in one row, so the flattened result is in text order.
    """
    joined = "\x00".join(" " + t + " " for t in norms)
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(t) + 3 for t in norms), dtype=np.int64, count=len(norms))
    zeros = np.concatenate([[0], np.cumsum(cps == 0)])
    grams = np.zeros((len(cps), nmax - nmin + 1), np.uint64)
    valid = np.zeros(grams.shape, bool)
    h = cps + _SEED_CHAR
    for n in range(1, nmax + 1):
        if n > 1:
            h = h[:-1] * _P + cps[n - 1 :]
        if n >= nmin:
            grams[: len(h), n - nmin] = _mix(h ^ _U64(n))
            valid[: len(h), n - nmin] = zeros[n:] == zeros[:-n]
    per_position = valid.sum(axis=1)
    bounds = np.concatenate([[0], np.cumsum(lengths)])[: len(norms) + 1]
    bounds = np.minimum(bounds, len(cps))
    counts = np.add.reduceat(np.append(per_position, 0), bounds[:-1]) if len(norms) else np.zeros(0, np.int64)
    return grams[valid], counts.astype(np.int64)


def hashed(texts: list[str], cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(word buckets, word counts per text, char buckets, char counts per text), buckets in text order.

    Every occurrence is kept (a repeated n-gram counts once per occurrence), so run time needs no sort:
    a text's features are a contiguous run that np.add.reduceat sums.
    """
    word_buckets, word_counts, char_buckets, char_counts, _, _ = hashed_with_tokens(texts, cfg)
    return word_buckets, word_counts, char_buckets, char_counts


def hashed_with_tokens(texts: list[str], cfg: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """hashed(), then the 64-bit hash of every token in text order and the tokens per text (for
    token_rows): one normalisation and tokenisation for both models."""
    norms = normalise_many(texts)
    wkeys, wcount, tkeys, tcount = _word_keys([tokenise(n) for n in norms])
    ckeys, ccount = _char_keys(norms, int(cfg["char_min"]), int(cfg["char_max"]))
    shift = _U64(64 - int(cfg["bits"]))
    return (wkeys >> shift).astype(np.int64), wcount, (ckeys >> shift).astype(np.int64), ccount, tkeys, tcount


def token_rows(keys: np.ndarray, bits: int) -> np.ndarray:
    """Embedding rows (1 .. 2^bits - 1) of tokens from their hashes (the word-unigram hash's top bits; row 0
    is the CNN's padding, so a token hashed there moves to row 1)."""
    rows = (keys >> _U64(64 - bits)).astype(np.int64)
    rows[rows == 0] = 1
    return rows


def tokens(texts: list[str], bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(embedding rows of every token in text order, tokens per text): the CNN's input, as the run time
    computes it (training uses this)."""
    _, _, keys, counts = _word_keys([tokenise(n) for n in normalise_many(texts)])
    return token_rows(keys, bits), counts


def block_scales(counts: np.ndarray, weight: float) -> np.ndarray:
    """weight / sqrt(n-grams in the block): each block of a text has unit L2 norm (before IDF)."""
    return weight / np.sqrt(np.maximum(counts, 1))


def featurise(texts: list[str], cfg: dict[str, Any],
              idf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse rows as (doc, bucket, value), one entry per n-gram occurrence (duplicates add up): raw term
    counts, times idf[bucket] if given, divided per block (words, characters) by sqrt(block size), weighted.

    ``cfg`` comes from the model artefact: bits, char_min, char_max, word_weight, char_weight. The run
    time computes the same sums directly from hashed() (IDF folded into its tables); training uses this.
    """
    wb, wc, cb, cc = hashed(texts, cfg)
    n = np.arange(len(texts))
    doc = np.concatenate([np.repeat(n, wc), np.repeat(n, cc)])
    value = np.concatenate([np.repeat(block_scales(wc, cfg["word_weight"]), wc),
                            np.repeat(block_scales(cc, cfg["char_weight"]), cc)])
    bucket = np.concatenate([wb, cb])
    if idf is not None:
        value = value * idf[bucket]
    order = np.argsort(doc, kind="stable")
    return doc[order], bucket[order], value[order]
