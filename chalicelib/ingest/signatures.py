"""Webhook signature checks, always on the raw body bytes and in constant time.

Each function raises `SignatureError` with a short reason a sender can act on; it never
says which part of a valid-looking signature was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


class SignatureError(ValueError):
    """The request is not provably from the platform; answer 401/403 and change nothing."""


def _hmac_sha256(secret: str, data: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).digest()


def x_crc_response(consumer_secret: str, crc_token: str) -> str:
    """X Account Activity CRC challenge answer: `sha256=` + base64 HMAC of the token."""
    digest = _hmac_sha256(consumer_secret, crc_token.encode("utf-8"))
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def verify_x(consumer_secret: str, body: bytes, header: str | None) -> None:
    """`x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, body)>`."""
    if not header:
        raise SignatureError("missing x-twitter-webhooks-signature header")
    scheme, _, value = header.partition("=")
    if scheme != "sha256" or not value:
        raise SignatureError("x-twitter-webhooks-signature must be sha256=<base64>")
    expected = "sha256=" + base64.b64encode(_hmac_sha256(consumer_secret, body)).decode("ascii")
    if not hmac.compare_digest(expected.encode("ascii"), header.encode("utf-8", "replace")):
        raise SignatureError("x-twitter-webhooks-signature does not match the body")


def verify_meta(app_secret: str, body: bytes, header: str | None) -> None:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`."""
    if not header:
        raise SignatureError("missing X-Hub-Signature-256 header")
    scheme, _, value = header.partition("=")
    if scheme != "sha256" or not value:
        raise SignatureError("X-Hub-Signature-256 must be sha256=<hex>")
    expected = "sha256=" + _hmac_sha256(app_secret, body).hex()
    if not hmac.compare_digest(expected.encode("ascii"), header.lower().encode("utf-8", "replace")):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def verify_standard(
    secret: str, body: bytes, headers: Mapping[str, str], *, tolerance_seconds: int, now: float | None = None
) -> str:
    """Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); returns the webhook id.

    The reference implementation (`standardwebhooks`) checks the signature; the replay window
    is checked here too so it is configurable and testable with an explicit clock.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    if not msg_id or not stamp or not lowered.get("webhook-signature"):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(msg_id) > 256:
        raise SignatureError("webhook-id is too long")
    if len(stamp) > 4000 or not stamp.isascii() or not stamp.isdigit():
        raise SignatureError("webhook-timestamp must be integer seconds")
    clock = time.time() if now is None else now
    sent = int(stamp) if len(stamp) <= 12 else -1  # more digits than any real clock: out of window
    if sent < 0 or abs(clock - sent) > tolerance_seconds:
        raise SignatureError("webhook-timestamp is outside the replay window")
    try:
        text = body.decode("utf-8")
    except UnicodeError as exc:
        raise SignatureError("body is not valid UTF-8") from exc
    try:
        msg_id.encode("utf-8")
    except UnicodeError as exc:
        raise SignatureError("webhook-id is not valid UTF-8") from exc
    try:
        verifier = Webhook(secret)
    except Exception as exc:  # a misconfigured secret must not look like a sender's error
        raise RuntimeError("KLAXON_WEBHOOK_SECRET is not a valid whsec_ secret") from exc
    signed = verifier.sign(msg_id=msg_id, timestamp=datetime.fromtimestamp(sent, tz=UTC), data=text)
    expected = signed.split(",", 1)[1]
    for candidate in lowered["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode("utf-8", "replace"), expected.encode()):
            return msg_id
    raise SignatureError("webhook-signature does not match the body")
