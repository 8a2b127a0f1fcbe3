"""Configuration defaults that differ between the local stack and a deployment."""

from __future__ import annotations

import pytest

from chalicelib.config import settings


@pytest.mark.parametrize(
    ("deployed", "value", "expected"),
    [
        (False, None, True),  # local: the demo prints the approval pages
        (True, None, False),  # deployed: each person is texted their own link instead
        (True, "1", True),
        (False, "off", False),
        (True, "yes", True),
    ],
)
def test_api_approval_links_default_off_where_deployed(
    monkeypatch: pytest.MonkeyPatch, deployed: bool, value: str | None, expected: bool
) -> None:
    if deployed:
        monkeypatch.setenv("KLAXON_SECRETS_PARAMETER_PREFIX", "/klaxon/prod/")
    else:
        monkeypatch.delenv("KLAXON_SECRETS_PARAMETER_PREFIX", raising=False)
    if value is None:
        monkeypatch.delenv("KLAXON_API_APPROVAL_LINKS", raising=False)
    else:
        monkeypatch.setenv("KLAXON_API_APPROVAL_LINKS", value)
    settings.cache_clear()
    try:
        assert settings().api_approval_links is expected
    finally:
        settings.cache_clear()
