"""Helpers for the ingest unit tests: fixture payloads and the shipped brands file."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.ingest.brands import BrandMatcher, load_brands
from tests.conftest import FIXTURES


def load_fixture(name: str) -> Any:
    """A platform payload from tests/fixtures, parsed."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def matcher() -> BrandMatcher:
    """The brands in config/brands.yaml (Acme Telecom, Golden Foods)."""
    return load_brands(Settings().brands_file)
