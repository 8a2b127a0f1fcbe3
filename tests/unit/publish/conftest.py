"""A recording fake transport: no network in unit tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.publish.base import HttpResponse


@dataclass
class FakeTransport:
    """Answers each request with `respond(method, url, body)` and records it."""

    respond: Callable[[str, str, dict[str, Any]], HttpResponse]
    calls: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        self.calls.append((method, url, headers, body))
        return self.respond(method, url, json.loads(body) if body else {})

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(c[3]) for c in self.calls]


def ok(payload: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode())
