"""A fault-injecting HTTP proxy on 127.0.0.1, for putting in front of moto or the fake Twilio.

Klaxon's invariant 7 says an outage of DynamoDB, SQS or Twilio delays work but loses none. The
only honest way to test that is to make the real clients (botocore inside PynamoDB, the twilio
client) meet real failures on the wire: a throttled DynamoDB call answered with AWS's JSON error
shape, a 503, a response that never comes, a connection that drops after the write was applied.
Hooks inside the clients would skip the clients' own retry logic, which is part of what is tested.

    with running_proxy("http://127.0.0.1:5005") as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.url
        proxy.add(Rule(target="DynamoDB_20120810.TransactWriteItems", times=4, respond=throttled()))
        ...
        assert proxy.injected("DynamoDB_20120810.TransactWriteItems") == 4

A request is matched on its `X-Amz-Target` (exact, or a prefix ending in ".") and/or a regular
expression on "METHOD /path"; each rule fires for its next `times` matching requests, then is
spent. What a rule does:

- `respond`: answer with this status, body and headers without forwarding (`aws_error`,
  `throttled`, `twilio_error` build the bodies the real services send);
- `delay`: wait this long, then forward (`delay_after=True`: forward first, wait before answering,
  so the upstream applied the request while the client is still waiting);
- `drop`: close the connection without an answer, before forwarding (nothing happened) or, with
  `drop_after=True`, after forwarding (it happened, but the client cannot know).

Local tooling only (not deployed); binds 127.0.0.1 and forwards to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"})


@dataclass(frozen=True)
class Canned:
    """A response the proxy sends instead of forwarding."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def aws_error(code: str, message: str = "injected fault", *, status: int = 400) -> Canned:
    """An AWS JSON-protocol error (DynamoDB, SQS over JSON), as botocore parses it: `__type` + message."""
    namespace = "com.amazon.coral.availability" if code == "ThrottlingException" else "com.amazonaws.dynamodb.v20120810"
    body = json.dumps({"__type": f"{namespace}#{code}", "message": message}).encode()
    return Canned(status, body, (("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)))


def throttled(code: str = "ProvisionedThroughputExceededException") -> Canned:
    """DynamoDB throttling: HTTP 400 with a throttling code, which botocore retries with backoff."""
    return aws_error(code, "Rate of requests exceeds the allowed throughput (injected)")


def server_error(status: int = 500) -> Canned:
    """A bare 5xx (InternalServerError / ServiceUnavailable), retried by botocore as transient."""
    code = {500: "InternalServerError", 503: "ServiceUnavailable"}.get(status, "InternalFailure")
    return aws_error(code, "injected server error", status=status)


def twilio_error(status: int, *, retry_after: int | None = None) -> Canned:
    """Twilio's REST error JSON ({code, message, more_info, status}) for a 429 or 5xx."""
    code = {429: 20429, 503: 20503}.get(status, 20500)
    body = json.dumps(
        {"code": code, "message": "injected fault", "more_info": f"https://www.twilio.com/docs/errors/{code}",
         "status": status}
    ).encode()
    headers = [("Content-Type", "application/json")]
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return Canned(status, body, tuple(headers))


@dataclass
class Rule:
    """One fault for the next `times` matching requests (see the module docstring)."""

    target: str | None = None  # the operation (see `operation`), exact or a prefix ending in "."
    path: str | None = None  # regex searched in "METHOD /path?query"
    body: str | None = None  # regex searched in the request body (e.g. one phone number, one mention id)
    times: int = 1
    respond: Canned | None = None
    delay: float = 0.0
    delay_after: bool = False
    drop: bool = False
    drop_after: bool = False
    name: str = ""
    fired: int = 0

    def matches(self, target: str, request_line: str, body: bytes) -> bool:
        if self.target is not None:
            wanted = self.target
            if not (target == wanted or (wanted.endswith(".") and target.startswith(wanted))):
                return False
        if self.path is not None and re.search(self.path, request_line) is None:
            return False
        return self.body is None or re.search(self.body.encode(), body) is not None

    @property
    def label(self) -> str:
        return self.name or self.target or self.path or "*"


@dataclass
class Seen:
    """One request the proxy handled: what it was and what was done to it."""

    target: str
    request_line: str
    fault: str | None  # the rule's label, or None if forwarded untouched
    at: float = field(default_factory=time.monotonic)


class FaultProxy:
    """The proxy's rules and record; start it with `running_proxy()`."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in (LOOPBACK, "localhost"):
            raise ValueError("the fault proxy forwards to loopback only")
        self.upstream_host = LOOPBACK
        self.upstream_port = parts.port or 80
        self._requested_port = port
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._seen: list[Seen] = []
        self._injected: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ------------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        """Arm a rule (rules are tried in the order added; the first that matches fires)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Disarm every rule (the record of what was injected is kept)."""
        with self._lock:
            self._rules.clear()

    def injected(self, label: str | None = None) -> int:
        """How many faults were injected (by rule label, or in all)."""
        with self._lock:
            return sum(self._injected.values()) if label is None else self._injected[label]

    def pending(self) -> int:
        """Faults armed but not yet fired."""
        with self._lock:
            return sum(r.times - r.fired for r in self._rules)

    def seen(self, target: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if target is None or s.target == target]

    def _take(self, target: str, request_line: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.fired < rule.times and rule.matches(target, request_line, body):
                    rule.fired += 1
                    self._injected[rule.label] += 1
                    self._seen.append(Seen(target, request_line, rule.label))
                    return rule
            self._seen.append(Seen(target, request_line, None))
        return None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        server = _Server((LOOPBACK, self._requested_port), _handler_for(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- forwarding ---------------------------------------------------------------------------

    def forward(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, Any, bytes]:
        """Send the request upstream on a fresh connection; returns (status, headers, body)."""
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    conn.putheader(key, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


_QUERY_ACTION = re.compile(rb"(?:^|&)Action=([A-Za-z]+)")


def operation(amz_target: str | None, body: bytes) -> str:
    """The AWS operation a request calls: its X-Amz-Target ("DynamoDB_20120810.PutItem",
    "AmazonSQS.SendMessageBatch"), or for the query protocol (form body with `Action=`) the same
    name an SQS JSON request would carry, so a rule works whichever protocol the client speaks."""
    if amz_target:
        return amz_target
    match = _QUERY_ACTION.search(body[:2048])
    return f"AmazonSQS.{match.group(1).decode()}" if match else ""


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the load bench sends from several processes at once
    daemon_threads = True
    allow_reuse_address = True


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = operation(self.headers.get("X-Amz-Target"), body)
            rule = proxy._take(target, f"{self.command} {self.path}", body)
            if rule is not None and rule.drop and not rule.drop_after:
                self._drop()
                return
            if rule is not None and rule.respond is not None:
                self._answer(rule.respond.status, list(rule.respond.headers), rule.respond.body)
                return
            if rule is not None and rule.delay and not rule.delay_after:
                time.sleep(rule.delay)
            try:
                status, headers, data = proxy.forward(self.command, self.path, list(self.headers.items()), body)
            except OSError:
                self._drop()  # upstream gone: the client sees what it would see from a dead service
                return
            if rule is not None and rule.drop_after:
                self._drop()
                return
            if rule is not None and rule.delay and rule.delay_after:
                time.sleep(rule.delay)
            self._answer(status, [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP], data)

        def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            try:
                self.send_response_only(status)
                for key, value in headers:
                    if key.lower() not in ("content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                self.close_connection = True

        def _drop(self) -> None:
            """Close without a byte of answer; RST rather than FIN so the client fails at once."""
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    return Handler


@contextmanager
def running_proxy(upstream: str, port: int = 0) -> Iterator[FaultProxy]:
    """Serve a fault proxy on 127.0.0.1 in front of `upstream` for the duration of the block."""
    proxy = FaultProxy(upstream, port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
