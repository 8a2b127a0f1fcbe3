"""The bundled sentiment model: per-language linear models over hashed n-grams, numpy only.

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
from chalicelib.sentiment.features import featurise
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
    """Read the artefact: {'meta': ..., lang: {'cfg', 'weights' (3 x D), 'scale', 'bias'}}.

    Weights are stored as int8 (small artefact) and widened to float32 once here, not per call;
    one contiguous row per class keeps the per-feature gathers cache-friendly.
    """
    meta, arrays = read_artefact(path)
    if tuple(meta["labels"]) != LABELS:
        raise ValueError(f"model labels {meta['labels']} != {LABELS}")
    model: dict[str, Any] = {"meta": meta}
    for lang, cfg in meta["languages"].items():
        model[lang] = {
            "cfg": cfg,
            "weights": arrays[f"{lang}_weights"].astype(np.float32),
            "scale": arrays[f"{lang}_scale"].astype(np.float64),
            "bias": arrays[f"{lang}_bias"].astype(np.float64),
        }
    return model


def model() -> dict[str, Any]:
    """The artefact, loaded once per container."""
    global _model
    if _model is None:
        _model = load_model()
    return _model


def scores(texts: list[str], lang: str) -> np.ndarray:
    """Decision scores (len(texts) x 3, LABELS order) of one language's model, including its bias."""
    part = model()[lang]
    out = np.empty((len(texts), len(LABELS)))
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        doc, bucket, value = featurise(chunk, part["cfg"])
        for k, row in enumerate(part["weights"]):
            out[start : start + len(chunk), k] = np.bincount(doc, weights=value * row[bucket], minlength=len(chunk))
    return out * part["scale"] + part["bias"]


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
