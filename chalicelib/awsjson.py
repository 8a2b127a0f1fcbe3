"""A small AWS JSON-protocol client (SigV4 over http.client) for the cold-start-critical calls.

Why not botocore here: the webhook function answers platforms that time out and retry, and every
container starts cold once. Importing botocore and building one client costs more than the whole
rest of the webhook path (measured in the Lambda package, fresh `python -I -S -B` processes:
`import botocore.session` +240 ms, `create_client("sqs")` +180 ms, against ~300 ms for Chalice,
Powertools Logger, pydantic and Klaxon's own modules together; `bench/coldstart.py`). SQS, DynamoDB
and SSM all speak the same JSON protocol (one signed POST, `X-Amz-Target`), so the webhook path
(SendMessageBatch, GetItem/PutItem of a webhook id) and the secrets load at cold start
(GetParametersByPath) go through this module, and everything else keeps botocore/PynamoDB.

What it keeps from botocore: endpoint resolution (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`,
else the regional endpoint), credentials from the environment (what Lambda sets; botocore's
resolver is used only when the environment has none, e.g. a developer's profile), the standard
retry rules (throttling, 5xx and connection errors; 3 attempts, jittered exponential backoff),
connect/read timeouts, and keep-alive connections reused across invocations. The signature is
checked byte for byte against botocore's SigV4Auth in tests/unit/test_awsjson.py.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# service -> (endpoint prefix and signing name, X-Amz-Target prefix, content type)
SERVICES: dict[str, tuple[str, str]] = {
    "sqs": ("AmazonSQS", "application/x-amz-json-1.0"),
    "dynamodb": ("DynamoDB_20120810", "application/x-amz-json-1.0"),
    "ssm": ("AmazonSSM", "application/x-amz-json-1.1"),
}
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "LimitExceededException",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0


class AwsError(RuntimeError):
    """An AWS error answer (code from `__type`) or a transport failure (code "ConnectionError")."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def credentials() -> Credentials:
    """Lambda's role credentials from the environment; botocore's full chain only without them."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    import botocore.session  # profiles, SSO, container credentials: rare here, so paid only then

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise AwsError("NoCredentials", "no AWS credentials in the environment or the AWS config")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def endpoint(service: str, region: str) -> str:
    """The URL botocore would use: service-specific override, global override, regional endpoint."""
    env = os.environ
    override = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    return override.rstrip("/") if override else f"https://{service}.{region}.amazonaws.com"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    service: str,
    region: str,
    creds: Credentials,
    now: datetime,
) -> dict[str, str]:
    """SigV4 (AWS4-HMAC-SHA256) headers for a request without a query string: what to add to `headers`."""
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    host = parts.hostname or ""
    if parts.port and not (
        (parts.scheme == "https" and parts.port == 443) or (parts.scheme == "http" and parts.port == 80)
    ):
        host = f"{host}:{parts.port}"
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    if creds.token:
        signed["x-amz-security-token"] = creds.token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            "",
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + creds.secret_key).encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    added = {
        "Host": host,
        "X-Amz-Date": amz_date,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        ),
    }
    if creds.token:
        added["X-Amz-Security-Token"] = creds.token
    return added


_local = threading.local()  # one keep-alive connection per host and thread (Lambda: one thread)


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    key = (parts.scheme, parts.hostname, parts.port)
    pool: dict[Any, http.client.HTTPConnection] = _local.__dict__.setdefault("pool", {})
    conn = pool.get(key)
    if conn is None:
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT)
        pool[key] = conn
    return conn


def _drop(url: str) -> None:
    parts = urlsplit(url)
    conn = _local.__dict__.get("pool", {}).pop((parts.scheme, parts.hostname, parts.port), None)
    if conn is not None:
        conn.close()


def _send(url: str, headers: dict[str, str], body: bytes, read_timeout: float) -> tuple[int, bytes]:
    conn = _connection(url)
    try:
        if conn.sock is None:
            conn.timeout = min(CONNECT_TIMEOUT, read_timeout)
            conn.connect()
        conn.sock.settimeout(read_timeout)  # type: ignore[union-attr]
        conn.request("POST", urlsplit(url).path or "/", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        _drop(url)
        raise AwsError("ConnectionError", f"{type(exc).__name__}: {exc}") from exc
    if response.will_close:
        _drop(url)
    return response.status, data


def _error(status: int, data: bytes) -> AwsError:
    try:
        doc = json.loads(data or b"{}")
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    code = str(doc.get("__type") or doc.get("code") or f"HTTP{status}").rsplit("#", 1)[-1]
    message = str(doc.get("message") or doc.get("Message") or "")
    return AwsError(code, message, status)


def call(
    service: str, operation: str, payload: dict[str, Any], *, region: str, deadline: float | None = None
) -> dict[str, Any]:
    """One JSON-protocol operation, e.g. `call("sqs", "SendMessageBatch", {...}, region="eu-west-1")`.

    Raises `AwsError` with the service's error code after the retry budget, or once `deadline`
    (a `time.monotonic()` instant) has passed: a webhook must answer 503 in time for the sender to
    retry, not after every timeout has run out. Client errors such as
    ConditionalCheckFailedException are raised at once.
    """
    target_prefix, content_type = SERVICES[service]
    url = endpoint(service, region)
    body = json.dumps(payload, separators=(",", ":")).encode()
    base = {"Content-Type": content_type, "X-Amz-Target": f"{target_prefix}.{operation}"}
    creds = credentials()
    failure = AwsError("Timeout", f"{service}.{operation}: no time left")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        left = READ_TIMEOUT if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise failure
        headers = dict(base)
        headers.update(
            sign(
                method="POST",
                url=url,
                headers=base,
                body=body,
                service=service,
                region=region,
                creds=creds,
                now=datetime.now(UTC),
            )
        )
        try:
            status, data = _send(url, headers, body, min(READ_TIMEOUT, left))
        except AwsError as exc:
            failure = exc
        else:
            if status < 300:
                return json.loads(data) if data else {}
            failure = _error(status, data)
            if status < 500 and failure.code not in RETRYABLE_CODES:
                raise failure
        if attempt == MAX_ATTEMPTS:
            raise failure
        if attempt == 1 and failure.code == "ConnectionError":
            continue  # most often a keep-alive connection closed while the container was frozen
        time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))  # full jitter, like botocore's standard mode
    raise AssertionError("unreachable")
