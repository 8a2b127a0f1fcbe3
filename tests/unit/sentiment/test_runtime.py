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
    cfg = {"bits": 18, "char_min": 2, "char_max": 5, "word_weight": 1.0, "char_weight": 1.0}
    doc, bucket, value = featurise(["not good", "", "שלום"], cfg)
    assert doc.max() == 2 and bucket.max() < 2**18
    norms = np.bincount(doc, weights=value**2, minlength=3)
    assert np.allclose(norms, [2.0, 1.0, 2.0])  # words + chars; the empty text has only ' ' char n-grams


def test_artefact_is_small_and_self_describing() -> None:
    assert bundled.MODEL_PATH.stat().st_size < 10 * 1024 * 1024
    model = bundled.load_model()
    _, arrays = bundled.read_artefact(bundled.MODEL_PATH)
    assert all(arrays[f"{lang}_weights"].dtype == np.int8 for lang in model["meta"]["languages"])
    assert set(model["meta"]["languages"]) >= {"en", "he"}
    for lang in model["meta"]["languages"]:
        assert model[lang]["weights"].shape == (3, 1 << model[lang]["cfg"]["bits"])
