"""Shared fixtures: the NAB data lives outside the repo (../shared), so tests that need it skip
cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
NAB_DIR = REPO / ".." / "shared" / "data" / "nab"


@pytest.fixture(scope="session")
def nab_dir() -> Path:
    if not (NAB_DIR / "windows.json").is_file() or not (NAB_DIR / "realTweets").is_dir():
        pytest.skip(f"NAB data not found at {NAB_DIR.resolve()}")
    return NAB_DIR.resolve()
