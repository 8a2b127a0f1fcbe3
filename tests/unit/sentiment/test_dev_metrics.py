"""Dev-set regression guards, well below the current scores (the acceptance run is bench/sentiment.py).

Skipped cleanly from a bare clone, where ../shared is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.sentiment import classify


def _load(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def _neg_f1(gold: list[str], pred: list[str]) -> float:
    tp = sum(g == p == "negative" for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (sum(p == "negative" for p in pred) + sum(g == "negative" for g in gold))


def test_english_dev(sentiment_data: Path) -> None:
    texts, gold = _load(sentiment_data / "en_dev.jsonl")
    pred = classify(texts)
    recalls = [sum(g == p == c for g, p in zip(gold, pred, strict=True)) / gold.count(c)
               for c in ("negative", "neutral", "positive")]
    assert sum(recalls) / 3 > 0.66  # 0.693 at commit time; plain hashing + LR: 0.646
    assert _neg_f1(gold, pred) > 0.54  # 0.585 (0.574 before the CNN); plain hashing + LR: 0.527


def test_hebrew_dev(sentiment_data: Path) -> None:
    texts, gold = _load(sentiment_data / "he_dev.jsonl")
    assert _neg_f1(gold, classify(texts)) > 0.75  # 0.785; plain hashing + LR: 0.655
