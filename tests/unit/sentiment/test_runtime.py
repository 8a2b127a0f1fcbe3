"""Run-time constraints: numpy only, lazy model, stable features, artefact size; dev metrics when data exists."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from chalicelib.sentiment import bundled
from chalicelib.sentiment.features import featurise, hashed_with_tokens, token_rows, tokens
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
        if cfg.get("lin_sparse"):  # only the kept buckets have rows, indexed by a bitmap
            assert part["lin_bitmap"].shape == (1 << (cfg["bits"] - 6),) and part["lin_bitmap"].dtype == np.uint64
            kept = int(np.bitwise_count(part["lin_bitmap"]).sum())
            assert part["lin"].shape == (kept + 1, 3) and not part["lin"][0].any()
        else:
            assert part["lin"].shape == (1 << cfg["bits"], 3)
        if part["emb"].shape[1]:  # a language may be linear only (an empty network)
            assert part["emb"].shape[0] == 1 << cfg["nn_bits"] <= 1 << cfg["bits"]
        assert part["w1"].shape[0] == part["emb"].shape[1] and part["w2"].shape == (part["w1"].shape[1], 3)
        if cfg.get("cnn"):
            cnn = cfg["cnn"]
            assert arrays[f"{lang}_cnn_emb"].dtype == np.int8
            assert part["cnn_emb"].shape[0] == 1 << cnn["bits"]
            assert part["cnn_w"].shape == (part["cnn_emb"].shape[1], sum(cnn["widths"]) * cnn["filters"])
            assert part["cnn_out"].shape == (len(cnn["widths"]) * cnn["filters"], 3)


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
        np.add.at(expect[:, dim:], doc, value[:, None] * lin[bundled.table_rows(bucket, part)])
        assert np.allclose(bundled.bags(texts, part), expect, rtol=1e-4, atol=1e-4)


def test_sparse_table_rows_equal_a_lookup_of_the_kept_buckets() -> None:
    """The bitmap rank gives each kept bucket its own row and every other bucket the zero row, including
    buckets at word edges (bit 0 and bit 63) and in empty and full words."""
    rng = np.random.default_rng(7)
    kept = rng.random(1 << 12) < 0.3
    kept[64:128] = True  # a full word
    kept[128:192] = False  # an empty word
    kept[[0, 63, 191, 4095]] = True
    table = rng.integers(-127, 128, size=(1 << 12, 3)).astype(np.int8)
    rows, bitmap, rank = bundled.sparse_table(table, kept)
    part = {"lin": rows, "lin_bitmap": bitmap, "lin_rank": rank}
    buckets = np.arange(1 << 12, dtype=np.int64)
    got = bundled.table_rows(buckets, part)
    assert np.array_equal(rows[got][kept], table[kept])
    assert np.array_equal(got[~kept], np.zeros((~kept).sum()))
    assert sorted(got[kept].tolist()) == list(range(1, kept.sum() + 1))
    assert np.array_equal(bundled.table_rows(buckets, {"lin": table}), buckets)  # dense: the bucket itself


CNN_TEXTS = ["Not good at all :( #fail", "", "ok", "אחלה שירות, ממש לא מרוצה", "looove it!!! 😍 http://x.co/a",
             "a a a", "word " * 300]


def _cnn_by_text(rows: np.ndarray, counts: np.ndarray, part: dict[str, Any]) -> np.ndarray:
    """The CNN's logits text by text, each window spelled out: [PAD] + tokens + [PAD] padded to the widest
    filter, per width the max over windows of ReLU(sum of offset projections), from the stored layout."""
    cnn = part["cfg"]["cnn"]
    widths, filters = cnn["widths"], cnn["filters"]
    emb = part["cnn_emb"].astype(np.float64) * part["cnn_emb_scale"]
    out = []
    for ids in np.split(rows, np.cumsum(counts)[:-1]):
        seq = np.concatenate([[0], ids, [0], np.zeros(max(0, max(widths) - len(ids) - 2), np.int64)])
        pooled, col = [], 0
        for i, w in enumerate(widths):
            windows = [sum(emb[seq[t + k]] @ part["cnn_w"][:, col + k * filters : col + (k + 1) * filters]
                           for k in range(w)) for t in range(len(seq) - w + 1)]
            conv = np.maximum(np.array(windows) + part["cnn_b"][i * filters : (i + 1) * filters], 0.0)
            pooled.append(conv.max(axis=0))
            col += w * filters
        out.append(np.concatenate(pooled) @ part["cnn_out"] + part["cnn_out_b"])
    return np.array(out)


def test_cnn_batch_layout_matches_text_by_text() -> None:
    """The run time's one-sequence CNN (windows across texts masked, reduceat max) equals the CNN applied
    to each text alone, for the shipped weights, and its tokens are features.tokens'."""
    model = bundled.load_model()
    langs = [lang for lang in model["meta"]["languages"] if model[lang]["cfg"].get("cnn")]
    assert langs, "no language has a CNN"
    for lang in langs:
        part = model[lang]
        bits = part["cfg"]["cnn"]["bits"]
        rows, counts = tokens(CNN_TEXTS, bits)
        hashes = hashed_with_tokens(CNN_TEXTS, part["cfg"])
        assert np.array_equal(token_rows(hashes[4], bits), rows) and np.array_equal(hashes[5], counts)
        assert counts[1] == 0 and rows.min() >= 1 and rows.max() < 1 << bits
        assert np.allclose(bundled.cnn_logits(rows, counts, part), _cnn_by_text(rows, counts, part),
                           rtol=1e-4, atol=1e-4)
        assert not part["cnn_emb"][0].any()  # row 0 is padding


def test_cnn_matches_the_torch_model() -> None:
    """Run time == training time: a freshly initialised torch CNN (tools/sentiment_cnn.py), exported in the
    run time's layout, gives the same logits through bundled.cnn_logits as through torch on a padded batch."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from tools import sentiment_cnn

    cfg = {**sentiment_cnn.DEFAULTS, "bits": 10, "dim": 8, "filters": 5}
    torch.manual_seed(0)
    net = sentiment_cnn.CNN(cfg)
    with torch.no_grad():  # non-zero biases, so that masking matters
        for conv in net.convs:
            assert isinstance(conv, torch.nn.Conv1d) and conv.bias is not None
            conv.bias.uniform_(-0.5, 0.5)
    ids = sentiment_cnn.token_ids(CNN_TEXTS, cfg["bits"])
    expect = sentiment_cnn.predict(net, ids, np.arange(len(ids)))
    layers = sentiment_cnn.export(net)
    part = {**layers, "cnn_wt": np.ascontiguousarray(layers["cnn_w"].T),
            "cfg": {"cnn": {k: cfg[k] for k in sentiment_cnn.RUNTIME_KEYS}}}
    rows, counts = tokens(CNN_TEXTS, cfg["bits"])
    logits = bundled.cnn_logits(rows, counts, part)
    logprob = logits - logits.max(axis=1, keepdims=True)
    logprob -= np.log(np.exp(logprob).sum(axis=1, keepdims=True))
    assert np.allclose(logprob, expect, rtol=1e-4, atol=1e-5)
