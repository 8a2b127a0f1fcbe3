"""The sentiment backend extension point: bundled numpy model by default, or a hosted one by env var.

``KLAXON_SENTIMENT_BACKEND`` is "bundled" (default) or "package.module:factory", where ``factory()``
returns any object with ``classify(texts) -> labels``. A broken plug-in must not stop alerting, so
load errors and failing or malformed calls fall back to the bundled model, with an error logged.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import logging

ENV_VAR = "KLAXON_SENTIMENT_BACKEND"
LABELS = ("negative", "neutral", "positive")


def _log() -> logging.Logger:
    """This module's logger, imported on first use: only failures log, and `import logging` costs a cold
    start 5-8 ms (the sentiment import is on the ingest handler's cold path)."""
    import logging

    return logging.getLogger(__name__)


class SentimentBackend(Protocol):
    """Anything that labels a batch of texts, one label from LABELS per text, in order."""

    def classify(self, texts: list[str]) -> list[str]: ...


_backend: SentimentBackend | None = None
_backend_spec: str | None = None


def _bundled() -> SentimentBackend:
    """The bundled model module (imported here so a hosted deployment never loads its weights)."""
    from chalicelib.sentiment import bundled

    return bundled


def load_backend(spec: str) -> SentimentBackend:
    """Resolve a backend spec ("bundled" or "package.module:factory") to a backend."""
    if spec in ("", "bundled"):
        return _bundled()
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not module_name or not factory_name:
        raise ValueError(f"{ENV_VAR} must be 'bundled' or 'package.module:factory', got {spec!r}")
    backend = getattr(importlib.import_module(module_name), factory_name)()
    if not callable(getattr(backend, "classify", None)):
        raise TypeError(f"{spec} returned {type(backend).__name__}, which has no classify(texts)")
    return backend


def get_backend() -> SentimentBackend:
    """The configured backend, created once per container (again only if the env var changes)."""
    global _backend, _backend_spec
    spec = os.environ.get(ENV_VAR, "bundled").strip()
    if _backend is None or spec != _backend_spec:
        try:
            _backend = load_backend(spec)
        except Exception:
            _log().exception("sentiment backend %r failed to load; using the bundled model", spec)
            _backend = _bundled()
        _backend_spec = spec
    return _backend


def classify_with(backend: SentimentBackend, texts: list[str]) -> list[str]:
    """Labels from the backend, or from the bundled model when it raises or answers out of contract."""
    bundled = _bundled()
    if backend is bundled:
        return bundled.classify(texts)
    try:
        labels = list(backend.classify(texts))
    except Exception:
        _log().exception("sentiment backend failed on %d texts; using the bundled model", len(texts))
        return bundled.classify(texts)
    if len(labels) != len(texts) or any(label not in LABELS for label in labels):
        _log().error("sentiment backend returned %d labels for %d texts or an unknown label; "
                  "using the bundled model", len(labels), len(texts))
        return bundled.classify(texts)
    return labels
