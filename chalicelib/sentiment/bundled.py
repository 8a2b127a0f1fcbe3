"""The bundled sentiment model: per language a linear model over hashed n-grams, mixed with a small
fastText-style network where cross-validation said it helps (Hebrew); numpy only.

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
from chalicelib.sentiment.features import block_scales, hashed
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


def load_model(path: Path = MODEL_PATH) -> dict[str, Any]:
    """Read the artefact: {'meta': ..., lang: {'cfg', 'emb', 'emb_scale', 'lin', 'lin_scale', 'w1', ...}}.

    The int8 tables stay int8 in memory (rows are gathered and widened per batch), so loading is one
    file read plus zero-copy views; only the small dense layers are converted.
    """
    meta, arrays = read_artefact(path)
    if tuple(meta["labels"]) != LABELS:
        raise ValueError(f"model labels {meta['labels']} != {LABELS}")
    model: dict[str, Any] = {"meta": meta}
    for lang, cfg in meta["languages"].items():
        part: dict[str, Any] = {"cfg": cfg, "emb": arrays[f"{lang}_emb"], "lin": arrays[f"{lang}_lin"]}
        for name in ("emb_scale", "lin_scale", "w1", "b1", "w2", "b2", "bias"):
            part[name] = arrays[f"{lang}_{name}"].astype(np.float32)
        part["scale"] = np.concatenate([part["emb_scale"], part["lin_scale"]])
        model[lang] = part
    return model


def model() -> dict[str, Any]:
    """The artefact, loaded once per container."""
    global _model
    if _model is None:
        _model = load_model()
    return _model


def bags(texts: list[str], part: dict[str, Any]) -> np.ndarray:
    """Per text, the weighted sums of its n-grams' rows in both int8 tables, scaled back to floats
    (len(texts) x (dim + 3)): the network's embedding bag, then the linear model's three scores.

    The embedding table is smaller than the feature hash space (cfg nn_bits < bits), so it is indexed by
    the bucket's top nn_bits bits. A text's n-grams are contiguous, so each block (words, characters) is
    one integer np.add.reduceat, scaled per text afterwards: no float work per n-gram.
    """
    cfg = part["cfg"]
    shift = int(cfg["bits"]) - int(cfg["nn_bits"])
    dim = part["emb"].shape[1]  # 0 for a language without a network
    word_buckets, word_counts, char_buckets, char_counts = hashed(texts, cfg)
    out = np.zeros((len(texts), dim + part["lin"].shape[1]), np.float32)
    for buckets, counts, weight in ((word_buckets, word_counts, cfg["word_weight"]),
                                    (char_buckets, char_counts, cfg["char_weight"])):
        if not len(buckets):
            continue
        starts = np.minimum(np.cumsum(counts) - counts, len(buckets) - 1)  # reduceat needs start < len
        scale = block_scales(counts, weight).astype(np.float32)
        scale[counts == 0] = 0.0  # reduceat gives an empty run the next row; weigh it 0
        out[:, dim:] += np.add.reduceat(part["lin"][buckets], starts, axis=0, dtype=np.int32) * scale[:, None]
        if dim:
            out[:, :dim] += (np.add.reduceat(part["emb"][buckets >> shift], starts, axis=0, dtype=np.int32)
                             * scale[:, None])
    out *= part["scale"]
    return out


def scores(texts: list[str], lang: str) -> np.ndarray:
    """Decision scores (len(texts) x 3, LABELS order) of one language's model.

    Network: embedding bag -> ReLU hidden layer -> log-softmax. The linear scores are summed in the
    same pass. The two are mixed with weights chosen by cross-validation (nn_weight and
    linear_weight in cfg, already divided by each model's out-of-fold score spread), plus tuned offsets.
    """
    part = model()[lang]
    cfg = part["cfg"]
    dim = part["emb"].shape[1]
    out = np.empty((len(texts), len(LABELS)), np.float32)
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        sums = bags(chunk, part)
        out[start : start + len(chunk)] = cfg["linear_weight"] * sums[:, dim:]
        if dim:
            hidden = np.maximum(sums[:, :dim] @ part["w1"] + part["b1"], 0.0)
            logits = hidden @ part["w2"] + part["b2"]
            logits -= logits.max(axis=1, keepdims=True)
            logprob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            out[start : start + len(chunk)] += cfg["nn_weight"] * logprob
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
