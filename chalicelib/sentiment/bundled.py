"""The bundled sentiment model: per language a linear model over hashed n-grams, mixed with a small
network where cross-validation said it helps (Hebrew: a fastText-style embedding bag; English: a
Kim (2014)-style CNN over hashed word embeddings); numpy only.

The artefact (model.bin, built by tools/train_sentiment.py) is loaded on first use and kept for the
life of the container. Hebrew mentions go to the Hebrew model, everything else to the English one
(its emoji, emoticon and punctuation features still carry signal in other languages).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.sentiment.backend import LABELS
from chalicelib.sentiment.features import block_scales, hashed, hashed_with_tokens, token_rows
from chalicelib.sentiment.language import HEBREW_LETTERS, detect_language

MODEL_PATH = Path(__file__).with_name("model.bin")
MAGIC = b"KLXSENT1"
CHUNK = 256
"""Texts featurised per numpy pass: big enough to amortise numpy calls, small enough to keep sorts cheap."""

_model: dict[str, Any] | None = None


def save_model(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write the artefact: MAGIC, uint32 header length, JSON header, then the raw arrays (64-byte aligned).

    A flat file instead of .npz: np.load on a zip pulls in zipfile, bz2, lzma and shutil, which costs
    a cold Lambda more than reading the weights does.
    """
    index: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, array in arrays.items():
        index[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += -(-array.nbytes // 64) * 64
    header = json.dumps({"meta": meta, "arrays": index}, sort_keys=True).encode("utf-8")
    start = -(-(len(MAGIC) + 4 + len(header)) // 64) * 64
    blob = bytearray(start + offset)
    blob[: len(MAGIC) + 4 + len(header)] = MAGIC + len(header).to_bytes(4, "little") + header
    for name, array in arrays.items():
        at = start + index[name]["offset"]
        blob[at : at + array.nbytes] = np.ascontiguousarray(array).tobytes()
    path.write_bytes(bytes(blob))


def read_artefact(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of an artefact written by save_model."""
    data = path.read_bytes()
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{path} is not a Klaxon sentiment model")
    size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "little")
    header = json.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + size])
    start = -(-(len(MAGIC) + 4 + size) // 64) * 64
    arrays = {}
    for name, spec in header["arrays"].items():
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"]))
        arrays[name] = np.frombuffer(data, dtype, count, start + spec["offset"]).reshape(spec["shape"])
    return header["meta"], arrays


def sparse_table(table: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, bitmap, rank) storing only the kept rows of a bucket-indexed table: rows[0] is zeros (every
    bucket not kept), then the kept rows in bucket order; bitmap has bit b % 64 of word b // 64 set for a
    kept bucket b; rank[w] counts the kept buckets before word w. See table_rows."""
    if len(kept) % 64:
        raise ValueError("the bucket count must be a multiple of 64")
    rows = np.concatenate([np.zeros((1, table.shape[1]), table.dtype), table[kept]])
    bits = kept.reshape(-1, 64).astype(np.uint64) << np.arange(64, dtype=np.uint64)
    bitmap = np.bitwise_or.reduce(bits, axis=1)
    counts = kept.reshape(-1, 64).sum(axis=1)
    rank = (np.cumsum(counts) - counts).astype(np.uint32)
    return rows, bitmap, rank


def table_rows(buckets: np.ndarray, part: dict[str, Any]) -> np.ndarray:
    """Row of each bucket in the language's linear table: the bucket itself for a dense table; for a sparse
    one (sparse_table) 1 + the kept buckets before it if it is kept, else 0 (the zero row). A rank query on
    the bitmap: O(1) per bucket, and the 2^22-bucket English space costs 0.75 MB of index, not 12 MB of rows."""
    bitmap = part.get("lin_bitmap")
    if bitmap is None:
        return buckets
    words = bitmap[buckets >> 6]
    bit = (buckets & 63).astype(np.uint64)
    below = np.bitwise_count(words & ((np.uint64(1) << bit) - np.uint64(1)))
    rows = part["lin_rank"][buckets >> 6].astype(np.int64) + below + 1
    return np.where((words >> bit) & np.uint64(1), rows, 0)


def load_model(path: Path = MODEL_PATH) -> dict[str, Any]:
    """Read the artefact: {'meta': ..., lang: {'cfg', 'emb', 'emb_scale', 'lin', 'lin_scale', 'w1', ...}}
    (with 'lin_bitmap' and 'lin_rank' where cfg 'lin_sparse': see table_rows),
    plus 'cnn_emb', 'cnn_emb_scale', 'cnn_w', 'cnn_b', 'cnn_out', 'cnn_out_b' for a language with a CNN
    (cfg 'cnn': its bits, widths and filters).

    The int8 tables stay int8 in memory (rows are gathered and widened per batch), so loading is one
    file read plus zero-copy views; only the small dense layers are converted.
    """
    meta, arrays = read_artefact(path)
    if tuple(meta["labels"]) != LABELS:
        raise ValueError(f"model labels {meta['labels']} != {LABELS}")
    model: dict[str, Any] = {"meta": meta}
    for lang, cfg in meta["languages"].items():
        part: dict[str, Any] = {"cfg": cfg, "emb": arrays[f"{lang}_emb"], "lin": arrays[f"{lang}_lin"]}
        if cfg.get("lin_sparse"):
            part["lin_bitmap"], part["lin_rank"] = arrays[f"{lang}_lin_bitmap"], arrays[f"{lang}_lin_rank"]
        for name in ("emb_scale", "lin_scale", "w1", "b1", "w2", "b2", "bias"):
            part[name] = arrays[f"{lang}_{name}"].astype(np.float32)
        part["scale"] = np.concatenate([part["emb_scale"], part["lin_scale"]])
        if cfg.get("cnn"):
            part["cnn_emb"] = arrays[f"{lang}_cnn_emb"]
            for name in ("cnn_emb_scale", "cnn_w", "cnn_b", "cnn_out", "cnn_out_b"):
                part[name] = arrays[f"{lang}_{name}"].astype(np.float32)
            # (emb * scale) @ w == emb @ (scale * w); transposed for cnn_logits
            part["cnn_wt"] = np.ascontiguousarray((part["cnn_w"] * part["cnn_emb_scale"][:, None]).T)
        model[lang] = part
    return model


def model() -> dict[str, Any]:
    """The artefact, loaded once per container."""
    global _model
    if _model is None:
        _model = load_model()
    return _model


def bags(texts: list[str], part: dict[str, Any], hashes: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """Per text, the weighted sums of its n-grams' rows in both int8 tables, scaled back to floats
    (len(texts) x (dim + 3)): the network's embedding bag, then the linear model's three scores.

    The embedding table is smaller than the feature hash space (cfg nn_bits < bits), so it is indexed by
    the bucket's top nn_bits bits. A text's n-grams are contiguous, so each block (words, characters) is
    one integer np.add.reduceat, scaled per text afterwards: no float work per n-gram. hashes: hashed(texts)
    if already computed.
    """
    cfg = part["cfg"]
    shift = int(cfg["bits"]) - int(cfg["nn_bits"])
    dim = part["emb"].shape[1]  # 0 for a language without a network
    word_buckets, word_counts, char_buckets, char_counts = hashes[:4] if hashes is not None else hashed(texts, cfg)
    out = np.zeros((len(texts), dim + part["lin"].shape[1]), np.float32)
    for buckets, counts, weight in ((word_buckets, word_counts, cfg["word_weight"]),
                                    (char_buckets, char_counts, cfg["char_weight"])):
        if not len(buckets):
            continue
        starts = np.minimum(np.cumsum(counts) - counts, len(buckets) - 1)  # reduceat needs start < len
        scale = block_scales(counts, weight).astype(np.float32)
        scale[counts == 0] = 0.0  # reduceat gives an empty run the next row; weigh it 0
        out[:, dim:] += (np.add.reduceat(part["lin"][table_rows(buckets, part)], starts, axis=0, dtype=np.int32)
                         * scale[:, None])
        if dim:
            out[:, :dim] += (np.add.reduceat(part["emb"][buckets >> shift], starts, axis=0, dtype=np.int32)
                             * scale[:, None])
    out *= part["scale"]
    return out


def cnn_logits(rows: np.ndarray, counts: np.ndarray, part: dict[str, Any]) -> np.ndarray:
    """The CNN's logits (len(counts) x 3) for texts given as embedding rows of their tokens (text order) and
    tokens per text.

    All texts are laid end to end in one sequence, each as [PAD] + tokens + [PAD], padded to the widest
    filter (row 0 of the table is zero: padding). One matmul projects every position through every filter
    offset; a width-w convolution at position t is the sum of offsets 0..w-1 at t..t+w-1 (the stored cnn_w's
    columns hold, per width, w blocks of `filters` columns, one per offset; load_model keeps it transposed,
    as cnn_wt, with the int8 embedding's column scales folded in, so that every step below runs along
    contiguous rows). Windows that run into the next text are set to 0; each text's max over its windows
    is one np.maximum.reduceat per width, and the ReLU comes after the max (the same as before it, since
    ReLU is monotonic and a 0 from a masked window cannot exceed ReLU's floor).
    Same function as tools/sentiment_cnn.CNN on a padded batch.
    """
    cnn = part["cfg"]["cnn"]
    widths, filters = cnn["widths"], int(cnn["filters"])
    lengths = np.maximum(counts + 2, max(widths))
    starts = np.cumsum(lengths) - lengths
    total = int(lengths.sum())
    seq = np.zeros(total, np.int64)
    if len(rows):
        seq[np.repeat(starts + 1 - (np.cumsum(counts) - counts), counts) + np.arange(len(rows))] = rows
    proj = part["cnn_wt"] @ part["cnn_emb"][seq].astype(np.float32).T  # (sum(widths) * filters) x positions
    left = np.repeat(starts + lengths, lengths) - np.arange(total)  # positions left in the text, this one included
    pooled = np.empty((filters * len(widths), len(counts)), np.float32)
    row = 0
    for i, w in enumerate(widths):
        n = total - w + 1
        conv = proj[row : row + filters, :n] + part["cnn_b"][i * filters : (i + 1) * filters, None]
        for k in range(1, w):
            conv += proj[row + k * filters : row + (k + 1) * filters, k : n + k]
        row += w * filters
        conv[:, left[:n] < w] = 0.0  # the window runs into the next text
        pooled[i * filters : (i + 1) * filters] = np.maximum.reduceat(conv, starts, axis=1)
    np.maximum(pooled, 0.0, out=pooled)
    return pooled.T @ part["cnn_out"] + part["cnn_out_b"]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def scores(texts: list[str], lang: str) -> np.ndarray:
    """Decision scores (len(texts) x 3, LABELS order) of one language's model.

    Network (bag): embedding bag -> ReLU hidden layer -> log-softmax; the linear scores are summed in the
    same pass. CNN: cnn_logits -> log-softmax, from the same tokenisation. They are mixed with weights
    chosen by cross-validation (nn_weight, cnn_weight and linear_weight in cfg, already divided by each
    model's out-of-fold score spread), plus tuned offsets.
    """
    part = model()[lang]
    cfg = part["cfg"]
    dim = part["emb"].shape[1]
    cnn = cfg.get("cnn")
    out = np.empty((len(texts), len(LABELS)), np.float32)
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        hashes = hashed_with_tokens(chunk, cfg)
        sums = bags(chunk, part, hashes)
        out[start : start + len(chunk)] = cfg["linear_weight"] * sums[:, dim:]
        if dim:
            hidden = np.maximum(sums[:, :dim] @ part["w1"] + part["b1"], 0.0)
            out[start : start + len(chunk)] += cfg["nn_weight"] * _log_softmax(hidden @ part["w2"] + part["b2"])
        if cnn:
            logits = cnn_logits(token_rows(hashes[4], int(cnn["bits"])), hashes[5], part)
            out[start : start + len(chunk)] += cfg["cnn_weight"] * _log_softmax(logits)
    return out + part["bias"]


def classify(texts: list[str]) -> list[str]:
    """Label each text negative, neutral or positive with the model of its language."""
    labels = [""] * len(texts)
    routes: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        # cheap pre-check: only texts with a Hebrew letter need the full language vote
        hebrew = HEBREW_LETTERS.search(text) is not None and detect_language(text) == "he"
        routes.setdefault("he" if hebrew else "en", []).append(i)
    for lang, idx in routes.items():
        best = scores([texts[i] for i in idx], lang).argmax(axis=1)
        for i, k in zip(idx, best.tolist(), strict=True):
            labels[i] = LABELS[k]
    return labels
