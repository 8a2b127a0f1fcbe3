"""Run-time constraints: numpy only, lazy model, stable features, artefact size; dev metrics when data exists."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from chalicelib.sentiment import bundled
from chalicelib.sentiment.features import featurise
from tests.unit.sentiment.conftest import REPO


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout


def test_imports_no_ml_frameworks_and_loads_lazily() -> None:
    out = _run(
        "import sys, json\n"
        "import chalicelib.sentiment as s\n"
        "from chalicelib.sentiment import bundled\n"
        "lazy = bundled._model is None\n"
        "s.classify(['great', 'שלום'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'scipy', 'torch', 'tensorflow', 'transformers', 'vaderSentiment', 'pandas'))\n"
        "print(json.dumps({'lazy': lazy, 'heavy': heavy, 'loaded': bundled._model is not None,\n"
        "                  'zipfile': 'zipfile' in sys.modules}))\n"
    )
    result = json.loads(out)
    assert result == {"lazy": True, "heavy": [], "loaded": True, "zipfile": False}


def test_hashes_are_stable_across_processes() -> None:
    """Python's hash() is salted per process; the features must not be."""
    code = (
        "from chalicelib.sentiment.features import featurise\n"
        "d, b, v = featurise(['Not good at all :( #fail', 'אחלה שירות'], "
        "{'bits': 18, 'char_min': 2, 'char_max': 5, 'word_weight': 1.0, 'char_weight': 1.0})\n"
        "print(int(b.sum()), round(float(v.sum()), 9), len(b))\n"
    )
    assert _run(code) == _run(code)


def test_features_are_l2_normalised_per_block() -> None:
    """Every n-gram occurrence is an entry of weight 1/sqrt(block size): each block has unit norm."""
    cfg = {"bits": 18, "char_min": 2, "char_max": 5, "word_weight": 1.0, "char_weight": 1.0}
    doc, bucket, value = featurise(["not good", "", "שלום"], cfg)
    assert doc.max() == 2 and bucket.max() < 2**18
    norms = np.bincount(doc, weights=value**2, minlength=3)
    assert np.allclose(norms, [2.0, 1.0, 2.0])  # words + chars; the empty text has only ' ' char n-grams


def test_artefact_is_small_and_self_describing() -> None:
    assert bundled.MODEL_PATH.stat().st_size < 10 * 1024 * 1024
    model = bundled.load_model()
    _, arrays = bundled.read_artefact(bundled.MODEL_PATH)
    assert set(model["meta"]["languages"]) >= {"en", "he"}
    for lang in model["meta"]["languages"]:
        part = model[lang]
        cfg = part["cfg"]
        assert arrays[f"{lang}_emb"].dtype == arrays[f"{lang}_lin"].dtype == np.int8
        assert part["lin"].shape == (1 << cfg["bits"], 3)
        if part["emb"].shape[1]:  # a language may be linear only (an empty network)
            assert part["emb"].shape[0] == 1 << cfg["nn_bits"] <= 1 << cfg["bits"]
        assert part["w1"].shape[0] == part["emb"].shape[1] and part["w2"].shape == (part["w1"].shape[1], 3)


def test_scores_are_finite_for_odd_inputs() -> None:
    texts = ["", " ", "\u200f\u200e", "x" * 10_000, "😡😡😡", "קניתי iPhone חדש 😡", "\ud800 bad surrogate"]
    for lang in ("en", "he"):
        out = bundled.scores(texts, lang)
        assert out.shape == (len(texts), 3) and np.isfinite(out).all()


def test_runtime_sums_match_the_training_features() -> None:
    """The run time's integer reduceat over hashed() equals the training view (featurise) times the tables."""
    model = bundled.load_model()
    texts = ["Not good at all :( #fail", "", "אחלה שירות, ממש לא מרוצה", "looove it!!! 😍 http://x.co/a", "a a a"]
    for lang in model["meta"]["languages"]:
        part = model[lang]
        cfg = part["cfg"]
        dim = part["emb"].shape[1]
        doc, bucket, value = featurise(texts, cfg)
        expect = np.zeros((len(texts), dim + 3))
        if dim:
            emb = part["emb"].astype(np.float64) * part["emb_scale"]
            np.add.at(expect[:, :dim], doc, value[:, None] * emb[bucket >> (cfg["bits"] - cfg["nn_bits"])])
        lin = part["lin"].astype(np.float64) * part["lin_scale"]
        np.add.at(expect[:, dim:], doc, value[:, None] * lin[bucket])
        assert np.allclose(bundled.bags(texts, part), expect, rtol=1e-4, atol=1e-4)
