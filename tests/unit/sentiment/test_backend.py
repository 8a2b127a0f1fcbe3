"""KLAXON_SENTIMENT_BACKEND: bundled by default, 'package.module:factory' plug-ins, safe fallback."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from chalicelib.sentiment import SentimentBackend, backend, bundled, classify


class Constant:
    """A stand-in hosted model: the same label for everything, counting its calls."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.calls = 0

    def classify(self, texts: list[str]) -> list[str]:
        self.calls += 1
        return [self.label for _ in texts]


@pytest.fixture
def plugin_module() -> Iterator[types.ModuleType]:
    """An importable module 'klaxon_test_plugin' with factories good and bad."""
    module = types.ModuleType("klaxon_test_plugin")
    module.positive = lambda: Constant("positive")  # type: ignore[attr-defined]
    module.broken = lambda: Constant("ecstatic")  # type: ignore[attr-defined]
    module.not_a_backend = lambda: object()  # type: ignore[attr-defined]

    def raising() -> SentimentBackend:
        raise RuntimeError("hosted model unreachable")

    module.raising = raising  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_default_is_bundled() -> None:
    assert backend.get_backend() is bundled


def test_explicit_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend.ENV_VAR, "bundled")
    assert backend.get_backend() is bundled


def test_plugin_is_used_and_created_once(monkeypatch: pytest.MonkeyPatch, plugin_module: types.ModuleType) -> None:
    monkeypatch.setenv(backend.ENV_VAR, "klaxon_test_plugin:positive")
    assert classify(["terrible", "awful"]) == ["positive", "positive"]
    first = backend.get_backend()
    assert isinstance(first, Constant) and first.calls == 1
    classify(["x"])
    assert backend.get_backend() is first and first.calls == 2


def test_crisis_terms_apply_to_plugins(monkeypatch: pytest.MonkeyPatch, plugin_module: types.ModuleType) -> None:
    monkeypatch.setenv(backend.ENV_VAR, "klaxon_test_plugin:positive")
    assert classify(["boycott!", "fine"], crisis_terms=["boycott"]) == ["negative", "positive"]


@pytest.mark.parametrize(
    "spec", ["klaxon_test_plugin:missing", "no_such_module_xyz:factory", "klaxon_test_plugin", ":x",
             "klaxon_test_plugin:not_a_backend", "klaxon_test_plugin:raising"]
)
def test_bad_spec_falls_back_to_bundled(monkeypatch: pytest.MonkeyPatch, plugin_module: types.ModuleType,
                                        spec: str, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(backend.ENV_VAR, spec)
    assert backend.get_backend() is bundled
    assert "failed to load" in caplog.text
    with pytest.raises((ValueError, ImportError, AttributeError, TypeError, RuntimeError)):
        backend.load_backend(spec)


def test_out_of_contract_answers_fall_back(monkeypatch: pytest.MonkeyPatch, plugin_module: types.ModuleType,
                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(backend.ENV_VAR, "klaxon_test_plugin:broken")
    texts = ["I hate this, worst service ever", "love it :)"]
    assert classify(texts) == bundled.classify(texts)
    assert "unknown label" in caplog.text


def test_raising_backend_falls_back(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    class Flaky:
        def classify(self, texts: list[str]) -> list[str]:
            raise TimeoutError("hosted model timed out")

    monkeypatch.setattr(backend, "_backend", Flaky())
    monkeypatch.setattr(backend, "_backend_spec", "bundled")
    assert classify(["love it :)"]) == bundled.classify(["love it :)"])
    assert "failed on 1 texts" in caplog.text
