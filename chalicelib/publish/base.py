"""The publishing interface: adapters get only approved text and its hash, and only ever create posts.

Invariant 6: nothing Klaxon does deletes, hides or blocks a public comment. So the interface has
one operation, `publish`, and the HTTP transport adapters use refuses every method but POST.
Invariant 5: an adapter re-hashes the text it was handed and refuses to send it if the hash differs.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from chalicelib.statements.hashing import same_hash, version_hash

ALLOWED_METHODS = frozenset({"POST"})
"""The only HTTP verb a publisher may use: creating a post or a reply."""


class PublishError(Exception):
    """Publishing did not happen; `status` is the HTTP status a route answers with."""

    status = 502


class HashMismatch(PublishError):
    """The text handed to the adapter is not the text that was approved."""

    status = 409


class PlatformError(PublishError):
    """The platform refused or failed; `response_status` and `detail` say how."""

    def __init__(self, message: str, response_status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.response_status = response_status
        self.detail = detail


class OutcomeUnknown(PlatformError):
    """The request reached the platform and its answer was lost or ambiguous (a read timeout, a
    connection dropped after sending, a 500/502/504, a success without an id): the post may be up.
    The publication becomes "in doubt" and is never sent again until a person checks the platform."""


MAYBE_SENT_STATUSES = frozenset({500, 502, 504})
"""Answers that may come from a hop after the platform accepted the post. Any other 4xx or 5xx
(429 and 503 included: "try again later") is a refusal: nothing was posted."""


def refusal(message: str, response: HttpResponse) -> PlatformError:
    """The error for a non-success answer: OutcomeUnknown when the post may be up, else PlatformError."""
    kind = OutcomeUnknown if response.status in MAYBE_SENT_STATUSES else PlatformError
    return kind(message, response.status, excerpt(response))


@dataclass(frozen=True)
class PublishedRef:
    """Where the text now is: the platform's id of the (first) post and its URL."""

    platform_id: str
    url: str | None = None
    part_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where and as whom to publish. `signer_id` is needed to re-hash (the hash binds text and signer)."""

    signer_id: str
    signer_name: str = ""
    incident_id: str = ""
    lang: str = ""
    reply_to: str | None = None
    """X post id or Meta comment id to answer; None posts on the account's own timeline or page."""
    surface: str | None = None
    """Meta only: "facebook" (default) or "instagram"."""
    mode: str = "thread"
    """X only: "thread" (the whole text, numbered if longer than 280) or "short" (one post)."""

    def key(self) -> str:
        """Stable id of this target among an incident's publications."""
        return f"{self.surface or 'default'}:{self.reply_to or 'post'}:{self.mode}"


@dataclass(frozen=True)
class Progress:
    """What an earlier attempt at this publication already put on the platform, and where to note
    each new part. `posted` holds the platform ids of the parts already up, in order: an adapter
    sends only the parts after them (an X thread continues as a reply to the last one). `record`
    is called with (index, id) as soon as each part is accepted, before the next is sent; if it
    raises, the adapter stops (the part is up but not recorded: the publication is in doubt)."""

    posted: tuple[str, ...] = ()
    record: Callable[[int, str], None] | None = None

    def note(self, index: int, post_id: str) -> None:
        if self.record is not None:
            self.record(index, post_id)


@runtime_checkable
class Publisher(Protocol):
    """A channel adapter. `publish` sends exactly `text` (or the thread derived from it) and nothing else.

    Raises PlatformError when the platform refused (nothing more went out; the parts already
    accepted were passed to `progress.record`), OutcomeUnknown when the last request may have
    been accepted, HashMismatch when the text is not the approved text."""

    platform: str

    def publish(
        self, text: str, version_hash: str, target: Target, progress: Progress | None = None
    ) -> PublishedRef: ...


def require_hash(text: str, approved_hash: str, signer_id: str) -> None:
    """Refuse (HashMismatch) unless sha256(text, signer) is exactly the approved hash."""
    try:
        actual = version_hash(text, signer_id)
    except ValueError as exc:
        raise HashMismatch(f"cannot hash the text: {exc}") from exc
    if not isinstance(approved_hash, str) or not same_hash(actual, approved_hash):
        raise HashMismatch("the text is not the approved text (hash mismatch); nothing was published")


# --- HTTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Transport(Protocol):
    """Sends one HTTP request. Tests inject a fake; production uses `UrllibTransport`."""

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> HttpResponse: ...


class UrllibTransport:
    """Standard-library HTTPS client (no extra dependency in the Lambda package).

    A failure while connecting or sending the request (urllib wraps those in URLError: DNS,
    refused, TLS, connect timeout, a reset before the request was complete) is a PlatformError:
    the platform never had the whole request. A failure while waiting for or reading the answer
    (read timeout, connection reset or closed, truncated answer) is OutcomeUnknown."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
            raise PlatformError(f"refusing to publish over plain HTTP: {url}")
        req = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - scheme checked above
                return HttpResponse(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            return HttpResponse(exc.code, body, dict(exc.headers or {}))
        except urllib.error.URLError as exc:  # before the request was complete: nothing was posted
            raise PlatformError(f"could not reach {url}: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:  # after sending: the post may be up
            raise OutcomeUnknown(f"sent to {url}, but no answer came back ({type(exc).__name__}: {exc})") from exc


def post_json(
    transport: Transport, url: str, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    """POST JSON through the transport: the one HTTP call publishers make."""
    return send(
        transport,
        "POST",
        url,
        json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        {
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )


def send(transport: Transport, method: str, url: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
    """Guarded call: any method other than POST is refused before it reaches the network."""
    if method.upper() not in ALLOWED_METHODS:
        raise PublishError(f"publishers only create posts; {method} is not allowed")
    try:
        return transport.request(method.upper(), url, headers, body)
    except PublishError:
        raise
    except Exception as exc:  # a transport that fails in a way we cannot read: assume it may have sent
        raise OutcomeUnknown(f"sending to {url} failed and the post may be up: {type(exc).__name__}: {exc}") from exc


def excerpt(response: HttpResponse, limit: int = 300) -> str:
    return response.body[:limit].decode("utf-8", errors="replace")
