"""A local fake of Twilio's Messages API on 127.0.0.1 (tests, `make demo`; local tooling, not deployed).

It answers what the real `twilio` client sends, the way Twilio answers it, so production code
runs unchanged against it (`KLAXON_TWILIO_BASE_URL=fake.base_url`, see
`chalicelib/paging/twilio_sms.py`):

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form: To, From or MessagingServiceSid,
  Body, StatusCallback) with HTTP Basic auth → 201 and a message resource, or Twilio's error
  JSON {code, message, more_info, status}: 401/20003, 400/21211 bad To, 21212 bad From,
  21602 empty Body, 21617 body too long, 21609 bad StatusCallback, ...
- `GET .../Messages/{Sid}.json`, `GET .../Messages.json` (To/From filters, Page/PageSize, newest first).
- Status callbacks, asynchronously and in order per message: queued → sent → delivered, or
  → failed / sent → undelivered with an ErrorCode for numbers in `fail_numbers`; form-encoded
  like Twilio and signed with X-Twilio-Signature (HMAC-SHA1 with the auth token).
- Fault knobs: the next N API requests answer 500/429/503 (`fail_next`) or hang (`hang_next`).
- `send_inbound`: POST a correctly signed inbound-SMS webhook to a URL, as Twilio would.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from chalicelib.paging.sms import segments
from klaxon.stack import LOOPBACK

API_VERSION = "2010-04-01"
# Local development credentials only (recognisable, never valid at Twilio).
LOCAL_ACCOUNT_SID = "AC" + "10ca1" * 6 + "00"
LOCAL_AUTH_TOKEN = "10ca1" * 6 + "ab"
LOCAL_FROM = "+15005550006"

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_BODY_CHARS = 1600
PRICE_PER_SEGMENT = "0.00790"
WEBHOOK_TIMEOUT_SECONDS = 15.0
"""Twilio waits 15 s in total for a webhook's HTTP response, then gives up (error 11205)."""

DELIVERY_ERRORS = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
_FAULT_MESSAGES = {
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    502: (20500, "Bad Gateway"),
    503: (20503, "Service Unavailable"),
    504: (20500, "Gateway Timeout"),
}


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment)  # "Thu, 24 Aug 2023 05:01:45 +0000", as Twilio writes dates


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class FakeMessage:
    """One message the fake holds; `statuses` is every status it has had, in order."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    direction: str
    status: str
    num_segments: int
    date_created: datetime
    date_updated: datetime
    status_callback: str | None = None
    messaging_service_sid: str | None = None
    date_sent: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    price: str | None = None
    statuses: list[str] = field(default_factory=list)
    received_at: float = 0.0
    """`time.perf_counter()` when the fake had read the whole create request (benchmarks: same process)."""

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio returns for this message (v2010 Message resource)."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent) if self.date_sent else None,
            "date_updated": _rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": self.price,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": self.uri,
        }


@dataclass(frozen=True)
class CallbackAttempt:
    """A status callback the fake POSTed: what it sent and how the receiver answered."""

    url: str
    params: dict[str, str]
    signature: str
    http_status: int | None
    error: str | None = None


@dataclass(frozen=True)
class ApiRequest:
    """An API request the fake answered (for asserting how often a client tried)."""

    method: str
    path: str
    http_status: int


class WebhookResponse(NamedTuple):
    status: int
    body: str


@dataclass
class _Fault:
    status: int | None = None  # answer this HTTP status
    retry_after: int | None = None
    hang_seconds: float = 0.0  # or stall this long, then answer normally


class _TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class _Server(ThreadingHTTPServer):
    """socketserver listens with a backlog of 5: a burst of concurrent senders (50 sweepers at once)
    overflows it and the kernel resets connections, which Twilio's API never does and which the
    sender must treat as "maybe sent" (never resent). A real server's backlog is far deeper."""

    request_queue_size = 512
    daemon_threads = True


class FakeTwilio:
    """The fake's state and knobs; start it with `running_fake_twilio()`.

    `fail_numbers` maps a To number to the final status ("failed" or "undelivered") and
    ErrorCode its messages get (e.g. {"+15005550009": ("undelivered", 30006)}); it may be changed
    while running. `step_delay` is the time between status changes.
    """

    def __init__(
        self,
        *,
        account_sid: str = LOCAL_ACCOUNT_SID,
        auth_token: str = LOCAL_AUTH_TOKEN,
        fail_numbers: Mapping[str, tuple[str, int]] | None = None,
        step_delay: float = 0.05,
        port: int | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.fail_numbers: dict[str, tuple[str, int]] = dict(fail_numbers or {})
        self.step_delay = step_delay
        self._requested_port = port or 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._all: list[FakeMessage] = []
        self._callbacks: list[CallbackAttempt] = []
        self._requests: list[ApiRequest] = []
        self._faults: deque[_Fault] = deque()
        self._events: list[tuple[float, int, str, str]] = []  # (due, seq, sid, status) heap
        self._seq = itertools.count()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        self._server = _Server((LOOPBACK, self._requested_port), _handler_for(self))
        server = self._server
        for target, name in (
            (lambda: server.serve_forever(poll_interval=0.05), "fake-twilio-http"),
            (self._dispatch, "fake-twilio-cb"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Replaces https://api.twilio.com (KLAXON_TWILIO_BASE_URL)."""
        return f"http://{LOOPBACK}:{self.port}"

    def environment(self, from_: str = LOCAL_FROM) -> dict[str, str]:
        """KLAXON_TWILIO_* variables that point `chalicelib.paging.twilio_sms` at this fake."""
        return {
            "KLAXON_TWILIO_ACCOUNT_SID": self.account_sid,
            "KLAXON_TWILIO_AUTH_TOKEN": self.auth_token,
            "KLAXON_TWILIO_FROM": from_,
            "KLAXON_TWILIO_BASE_URL": self.base_url,
        }

    # --- inspection -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[FakeMessage]:
        """Outbound messages in the order received (copies: safe to read while callbacks run)."""
        with self._lock:
            return [replace(m, statuses=list(m.statuses)) for m in self._all if m.direction == "outbound-api"]

    @property
    def inbound(self) -> list[FakeMessage]:
        """Inbound messages posted with `send_inbound`."""
        with self._lock:
            return [replace(m, statuses=list(m.statuses)) for m in self._all if m.direction == "inbound"]

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        with self._lock:
            return list(self._callbacks)

    @property
    def requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._requests)

    def messages_after(self, count: int) -> list[FakeMessage]:
        """Outbound messages after the first `count` (copies), without copying all of them as `messages` does."""
        with self._lock:
            outbound = [m for m in self._all if m.direction == "outbound-api"]
            return [replace(m, statuses=list(m.statuses)) for m in outbound[count:]]

    def message(self, sid: str) -> FakeMessage:
        with self._lock:
            for m in self._all:
                if m.sid == sid:
                    return replace(m, statuses=list(m.statuses))
        raise KeyError(sid)

    def wait_for(self, predicate: Callable[[FakeTwilio], bool], timeout: float = 5.0) -> None:
        """Block until `predicate(self)` holds (re-checked on every change), or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("fake Twilio: condition not met in time")
            with self._changed:
                self._changed.wait(min(remaining, 0.1))

    def wait_for_status(self, sid: str, *statuses: str, timeout: float = 5.0) -> FakeMessage:
        """Wait until message `sid` reached one of `statuses` and its callback (if any) was POSTed."""
        wanted = set(statuses) or {"delivered", "undelivered", "failed"}

        def done(fake: FakeTwilio) -> bool:
            m = fake.message(sid)
            if m.status not in wanted:
                return False
            return m.status_callback is None or any(
                c.params.get("MessageSid") == sid and c.params.get("MessageStatus") == m.status for c in fake.callbacks
            )

        self.wait_for(done, timeout)
        return self.message(sid)

    # --- fault knobs ----------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, retry_after: int | None = 1) -> None:
        """The next `n` API requests answer `status` (429 and 503 carry Retry-After)."""
        with self._lock:
            for _ in range(n):
                self._faults.append(_Fault(status=status, retry_after=retry_after if status in (429, 503) else None))

    def hang_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """The next `n` API requests stall `seconds` and are then processed normally (a slow Twilio:
        a client that gave up may still have sent the SMS)."""
        with self._lock:
            for _ in range(n):
                self._faults.append(_Fault(hang_seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # --- inbound --------------------------------------------------------------------------------

    def send_inbound(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        *,
        auth_token: str | None = None,
        extra: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> WebhookResponse:
        """POST an inbound-SMS webhook to `url` as Twilio does, signed with the auth token
        (or `auth_token`, to forge one); returns the receiver's HTTP status and body."""
        sid = "SM" + uuid.uuid4().hex
        now = _now()
        info = segments(body)
        params = {
            "ToCountry": "US",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "",
            "To": to,
            "ToZip": "",
            "NumSegments": str(max(info.segments, 1)),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
            **dict(extra or {}),
        }
        with self._changed:
            self._all.append(
                FakeMessage(
                    sid=sid,
                    account_sid=self.account_sid,
                    to=to,
                    from_=from_,
                    body=body,
                    direction="inbound",
                    status="received",
                    num_segments=max(info.segments, 1),
                    date_created=now,
                    date_updated=now,
                    date_sent=now,
                    statuses=["received"],
                )
            )
            self._changed.notify_all()
        status, text, _ = _post_form(url, params, self._sign(url, params, auth_token), timeout)
        return WebhookResponse(status, text)

    # --- the API --------------------------------------------------------------------------------

    def _sign(self, url: str, params: Mapping[str, str], auth_token: str | None = None) -> str:
        return str(RequestValidator(auth_token or self.auth_token).compute_signature(url, params))

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _log_request(self, method: str, path: str, status: int) -> None:
        with self._changed:
            self._requests.append(ApiRequest(method, path, status))
            self._changed.notify_all()

    def handle(
        self, method: str, path: str, query: str, authorization: str, body: bytes, received_at: float = 0.0
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One API request → (HTTP status, JSON body, extra headers); `received_at` is when it was read."""
        fault = self._take_fault()
        if fault and fault.hang_seconds:
            self._stopping.wait(fault.hang_seconds)
        elif fault and fault.status:
            code, message = _FAULT_MESSAGES.get(fault.status, (20000 + fault.status, "Error"))
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return fault.status, _TwilioError(fault.status, code, message).body(), extra
        try:
            return self._route(method, path, query, authorization, body, received_at)
        except _TwilioError as err:
            return err.status, err.body(), err.headers

    def _route(
        self, method: str, path: str, query: str, authorization: str, body: bytes, received_at: float = 0.0
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        match = re.fullmatch(rf"/{API_VERSION}/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json", path)
        if not match:
            raise _TwilioError(404, 20404, f"The requested resource {path} was not found")
        self._authenticate(authorization, match.group(1))
        sid = match.group(2)
        if method == "POST" and sid is None:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            return 201, self._create(form, received_at).resource(), {}
        if method == "GET" and sid is not None:
            try:
                return 200, self.message(sid).resource(), {}
            except KeyError:
                raise _TwilioError(404, 20404, f"The requested resource {path} was not found") from None
        if method == "GET":
            return 200, self._page(path, dict(parse_qsl(query, keep_blank_values=True))), {}
        raise _TwilioError(405, 20004, "Method not allowed")

    def _authenticate(self, header: str, path_account: str) -> None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise _TwilioError(
                401,
                20003,
                "Authentication Error - No credentials provided",
                {"WWW-Authenticate": 'Basic realm="Twilio API"'},
            )
        try:
            username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            username = password = ""
        if username != self.account_sid or password != self.auth_token:
            raise _TwilioError(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if path_account != self.account_sid:
            resource = f"/{API_VERSION}/Accounts/{path_account}"
            raise _TwilioError(404, 20404, f"The requested resource {resource} was not found")

    def _create(self, form: Mapping[str, str], received_at: float = 0.0) -> FakeMessage:
        to = form.get("To", "")
        from_ = form.get("From") or None
        service = form.get("MessagingServiceSid") or None
        body = form.get("Body", "")
        callback = form.get("StatusCallback") or None
        if not to:
            raise _TwilioError(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise _TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if from_ is None and service is None:
            raise _TwilioError(400, 21603, "A 'From' phone number is required.")
        if from_ is not None and not (E164.match(from_) or ALPHANUMERIC_SENDER.match(from_)):
            raise _TwilioError(400, 21212, f"Invalid From Number (caller ID): {from_}")
        if service is not None and not MESSAGING_SERVICE_SID.match(service):
            raise _TwilioError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if from_ == to:
            raise _TwilioError(400, 21266, "'To' and 'From' number cannot be the same")
        if not body.strip() and not form.get("MediaUrl"):
            raise _TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            raise _TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if callback is not None and urlsplit(callback).scheme not in ("http", "https"):
            raise _TwilioError(400, 21609, f"Invalid StatusCallback url: {callback}")
        now = _now()
        message = FakeMessage(
            sid="SM" + uuid.uuid4().hex,
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=body,
            direction="outbound-api",
            status="accepted" if service and not from_ else "queued",
            num_segments=max(segments(body).segments, 1),
            date_created=now,
            date_updated=now,
            status_callback=callback,
            messaging_service_sid=service,
            received_at=received_at,
        )
        message.statuses.append(message.status)
        outcome = self.fail_numbers.get(to)
        plan = ["queued"]
        if outcome is None:
            plan += ["sent", "delivered"]
        elif outcome[0] == "failed":
            plan += ["failed"]
        else:
            plan += ["sent", outcome[0]]
        with self._changed:
            self._all.append(message)
            start = time.monotonic()
            for step, status in enumerate(plan):
                heapq.heappush(self._events, (start + step * self.step_delay, next(self._seq), message.sid, status))
            self._changed.notify_all()
        return message

    def _page(self, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        filters = {"To": "to", "From": "from_"}
        with self._lock:
            rows = [
                m
                for m in reversed(self._all)
                if all(getattr(m, attr) == query[key] for key, attr in filters.items() if query.get(key))
            ]
        try:
            size = max(1, min(1000, int(query.get("PageSize", "50"))))
            page = max(0, int(query.get("Page", "0")))
        except ValueError:
            raise _TwilioError(400, 20001, "Invalid paging parameter") from None
        chunk = rows[page * size : (page + 1) * size]
        kept = {k: v for k, v in query.items() if k in filters and v}

        def uri(number: int) -> str:
            return f"{path}?{urlencode({**kept, 'PageSize': size, 'Page': number})}"

        has_next = (page + 1) * size < len(rows)
        return {
            "end": page * size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "messages": [m.resource() for m in chunk],
            "next_page_uri": uri(page + 1) if has_next else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": page * size,
            "uri": uri(page),
        }

    # --- status callbacks -----------------------------------------------------------------------

    def _dispatch(self) -> None:
        """One thread applies status changes when due and POSTs their callbacks, in order."""
        while not self._stopping.is_set():
            with self._changed:
                if not self._events:
                    self._changed.wait(0.05)
                    continue
                due, _, sid, status = self._events[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._changed.wait(min(wait, 0.05))
                    continue
                heapq.heappop(self._events)
                message = next(m for m in self._all if m.sid == sid)
                params = self._advance(message, status)
            if params is not None and message.status_callback:
                self._post_callback(message.status_callback, params)

    def _advance(self, message: FakeMessage, status: str) -> dict[str, str] | None:
        """Apply `status` to `message` (lock held) and return its callback form."""
        now = _now()
        if status != message.status:
            message.status = status
            message.statuses.append(status)
        message.date_updated = now
        if status == "sent":
            message.date_sent = now
            message.price = f"-{float(PRICE_PER_SEGMENT) * message.num_segments:.5f}"
        if status in ("failed", "undelivered"):
            code = self.fail_numbers.get(message.to, (status, 30008))[1]
            message.error_code = code
            message.error_message = DELIVERY_ERRORS.get(code, "Unknown error")
        self._changed.notify_all()
        params = {
            "SmsSid": message.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": message.to,
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        return params

    def _post_callback(self, url: str, params: dict[str, str]) -> None:
        signature = self._sign(url, params)
        try:
            status, _, _ = _post_form(url, params, signature, timeout=WEBHOOK_TIMEOUT_SECONDS)
            attempt = CallbackAttempt(url, params, signature, status)
        except OSError as exc:  # receiver down: Twilio logs it (11200) and moves on; so do we
            attempt = CallbackAttempt(url, params, signature, None, f"{type(exc).__name__}: {exc}")
        with self._changed:
            self._callbacks.append(attempt)
            self._changed.notify_all()


def _post_form(url: str, params: Mapping[str, str], signature: str, timeout: float) -> tuple[int, str, dict[str, str]]:
    """POST a form the way Twilio's webhook client does; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(
        url,
        data=urlencode(params).encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback receivers
            return response.status, response.read().decode("utf-8", "replace"), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace"), dict(err.headers)


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API; every answer has Content-Length
        server_version = "nginx"
        sys_version = ""
        timeout = 30

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            received_at = time.perf_counter()
            parts = urlsplit(self.path)
            authorization = self.headers.get("Authorization") or ""
            status, payload, extra = fake.handle(
                self.command, parts.path, parts.query, authorization, body, received_at
            )
            data = json.dumps(payload).encode("utf-8")
            fake._log_request(self.command, parts.path, status)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Twilio-Request-Id", "RQ" + uuid.uuid4().hex)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. a hang knob)
                self.close_connection = True

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    return Handler


@contextmanager
def running_fake_twilio(
    port: int | None = None,
    account_sid: str = LOCAL_ACCOUNT_SID,
    auth_token: str = LOCAL_AUTH_TOKEN,
    *,
    fail_numbers: Mapping[str, tuple[str, int]] | None = None,
    step_delay: float = 0.05,
) -> Iterator[FakeTwilio]:
    """Serve a fake Twilio on 127.0.0.1 (`port` None: any free port) for the duration of the block."""
    fake = FakeTwilio(
        account_sid=account_sid, auth_token=auth_token, fail_numbers=fail_numbers, step_delay=step_delay, port=port
    )
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def main(argv: list[str] | None = None) -> None:
    """`python -m klaxon.fake_twilio [--port N]`: serve until Ctrl-C and print the environment to use."""
    import argparse

    parser = argparse.ArgumentParser(description="Local fake of Twilio's Messages API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="port (default: any free port)")
    parser.add_argument("--step-delay", type=float, default=0.5, help="seconds between status changes")
    args = parser.parse_args(argv)
    with running_fake_twilio(args.port, step_delay=args.step_delay) as fake:
        for key, value in fake.environment().items():
            print(f"export {key}={value}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
