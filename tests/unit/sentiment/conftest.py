"""Fixtures for the sentiment tests: the bundled model is used as is, the backend cache is reset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.sentiment import backend

REPO = Path(__file__).resolve().parents[3]
SENTIMENT_DATA = REPO.parent / "shared" / "data" / "sentiment"


@pytest.fixture(autouse=True)
def fresh_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with the default backend choice and leaves no plug-in behind."""
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    monkeypatch.setattr(backend, "_backend", None)
    monkeypatch.setattr(backend, "_backend_spec", None)
    yield


@pytest.fixture
def sentiment_data() -> Path:
    """../shared/data/sentiment, or a clean skip from a bare clone."""
    if not (SENTIMENT_DATA / "en_dev.jsonl").exists():
        pytest.skip(f"no shared sentiment data at {SENTIMENT_DATA}")
    return SENTIMENT_DATA
