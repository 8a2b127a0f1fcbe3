"""Hashed word and character n-gram features, vectorised with numpy.

The training script imports this module, so the runtime reproduces training features bit for bit.
Hashes are zlib.crc32 (words) and a fixed polynomial + splitmix64 finaliser (characters, bigrams):
stable across processes, unlike Python's salted ``hash()``.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from chalicelib.sentiment.text import normalise, tokenise

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


def _word_features(tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """(doc, 64-bit hash) of every word unigram and adjacent bigram."""
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    flat = np.array(_token_hashes([tok for toks in tokens for tok in toks]), dtype=np.uint64)
    doc = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
    uni = _mix(flat ^ _SEED_UNI)
    same = doc[1:] == doc[:-1]
    bi = _mix(flat[:-1] * _P + flat[1:] + _SEED_BI)[same]
    return np.concatenate([doc, doc[:-1][same]]), np.concatenate([uni, bi])


def _char_features(norms: list[str], nmin: int, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """(doc, 64-bit hash) of every character n-gram, nmin <= n <= nmax, over ' ' + text + ' '.

    Texts are joined with NUL (normalise() removes NULs from input), and n-grams spanning a NUL are dropped.
    """
    joined = "\x00".join(" " + t + " " for t in norms)
    cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    lengths = np.fromiter((len(t) + 3 for t in norms), dtype=np.int64, count=len(norms))
    doc_at = np.repeat(np.arange(len(norms), dtype=np.int64), lengths)[: len(cps)]
    zeros = np.concatenate([[0], np.cumsum(cps == 0)])
    docs: list[np.ndarray] = []
    hashes: list[np.ndarray] = []
    h = cps + _SEED_CHAR
    for n in range(1, nmax + 1):
        if n > 1:
            h = h[:-1] * _P + cps[n - 1 :]
        if n >= nmin:
            ok = zeros[n:] == zeros[:-n]
            docs.append(doc_at[: len(h)][ok])
            hashes.append(_mix(h[ok] ^ _U64(n)))
    return np.concatenate(docs), np.concatenate(hashes)


def featurise(texts: list[str], cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse rows as (doc, bucket, value): sublinear tf, L2-normalised per block (words, chars), weighted.

    ``cfg`` comes from the model artefact: bits, char_min, char_max, word_weight, char_weight.
    """
    bits = int(cfg["bits"])
    norms = [normalise(t) for t in texts]
    wdoc, whash = _word_features([tokenise(n) for n in norms])
    cdoc, chash = _char_features(norms, int(cfg["char_min"]), int(cfg["char_max"]))
    shift = _U64(64 - bits)
    keys = np.concatenate([
        (wdoc << (bits + 1)) | (whash >> shift).astype(np.int64),
        (cdoc << (bits + 1)) | (1 << bits) | (chash >> shift).astype(np.int64),
    ])
    keys, counts = np.unique(keys, return_counts=True)
    doc = keys >> (bits + 1)
    block = (keys >> bits) & 1
    bucket = keys & ((1 << bits) - 1)
    value = 1.0 + np.log(counts)
    group = doc * 2 + block
    norm = np.sqrt(np.bincount(group, weights=value * value, minlength=2 * len(texts)))
    value /= norm[group]
    value *= np.array([cfg["word_weight"], cfg["char_weight"]])[block]
    return doc, bucket, value
