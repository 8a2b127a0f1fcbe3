"""Browser tests: the real local stack (moto, Chalice routes on loopback, poller, fake Twilio) driven
by Debian's chromium through Playwright, at a phone's viewport.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`tools/ensure_chromium.sh`
installs it). Without it the tests are skipped, unless KLAXON_REQUIRE_E2E is set (CI), where a
missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}


def _require_chromium() -> None:
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return
    message = f"{CHROMIUM} is missing: run `sudo tools/ensure_chromium.sh` (apt-get install chromium)"
    if os.environ.get("KLAXON_REQUIRE_E2E"):
        pytest.fail(f"KLAXON_REQUIRE_E2E is set but {message}", pytrace=False)
    pytest.skip(f"browser tests skipped: {message}")


@dataclass
class Api:
    """The staff API of the running stack, over real HTTP."""

    base_url: str
    api_key: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"x-api-key": self.api_key, "x-klaxon-actor": "e2e"}
        if data is not None:
            headers["content-type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="package")
def stack() -> Iterator[Any]:
    """One local stack for the browser tests (per xdist worker); the environment is restored afterwards.

    Package scope rather than session: the stack's environment (moto endpoint, KLAXON_PUBLIC_URL, the
    fake Twilio's credentials) is put back as soon as tests/e2e is done, before any other tests run in
    the same process.
    """
    _require_chromium()
    from chalicelib.config import settings
    from klaxon import stack as local_stack

    saved = dict(os.environ)
    for name in ("KLAXON_PUBLIC_URL", "KLAXON_OUTBOX_FILE", "KLAXON_TWILIO_ACCOUNT_SID"):
        os.environ.pop(name, None)  # links point at this stack; the outbox writes items we can read back
    settings.cache_clear()
    try:
        with local_stack.running(http_port=local_stack.free_port(), quiet=True) as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.cache_clear()


@pytest.fixture(scope="package")
def api(stack: Any) -> Api:
    from chalicelib.config import settings

    return Api(stack.base_url, settings().api_key)


@pytest.fixture(scope="package")
def browser(stack: Any) -> Iterator[Any]:
    """Debian's chromium, headless, with a throwaway profile."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="klaxon-e2e-profile-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=PHONE,
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale="en-GB",
                timeout=90_000,  # a loaded, shared 2-core machine can take a while to start chromium
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab for each test."""
    tab = browser.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
