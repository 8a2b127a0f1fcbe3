"""Accept a platform webhook: size check, signature on the raw bytes, parse, enqueue.

Nothing here waits for classification or counting: a webhook is answered as soon as its
mentions are safely on the queue. Every refusal raises a `WebhookRejected` carrying the HTTP
status and a reason; nothing is enqueued or stored before the signature is proven.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import awsjson
from chalicelib.config import Settings, settings
from chalicelib.ingest import signatures
from chalicelib.ingest.brands import BrandMatcher, load_brands
from chalicelib.ingest.platforms import Parsed, PayloadError, parse_generic, parse_meta, parse_x
from chalicelib.ingest.queue import QueueUnavailable, enqueue


class WebhookRejected(Exception):
    """Refuse the request with `status` and a reason the sender can read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Accepted:
    """What a valid delivery produced; returned to the sender as the 200 body."""

    enqueued: int
    ignored: int
    unmatched: int
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": True,
            "enqueued": self.enqueued,
            "ignored": self.ignored,
            "unmatched": self.unmatched,
            "duplicate": self.duplicate,
        }


def _check_size(body: bytes, cfg: Settings) -> None:
    if len(body) > cfg.max_body_bytes:
        raise WebhookRejected(413, f"body is {len(body)} bytes; the limit is {cfg.max_body_bytes}")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise WebhookRejected(400, "body is nested too deeply") from exc


def _parse(parser: Callable[[Any, BrandMatcher], Parsed], payload: Any, cfg: Settings) -> Parsed:
    try:
        return parser(payload, load_brands(cfg.brands_file))
    except PayloadError as exc:
        raise WebhookRejected(422, str(exc)) from exc
    except RecursionError as exc:
        raise WebhookRejected(400, "body is nested too deeply") from exc


def _enqueue(parsed: Parsed, cfg: Settings) -> Accepted:
    try:
        enqueue(parsed.mentions, cfg)
    except QueueUnavailable as exc:
        raise WebhookRejected(503, "queue unavailable, retry later") from exc
    return Accepted(enqueued=len(parsed.mentions), ignored=parsed.ignored, unmatched=parsed.unmatched)


def _configured(value: str, name: str) -> str:
    """Deployed without this secret, nothing can be verified: refuse rather than check against ""."""
    if not value:
        raise WebhookRejected(503, f"{name} is not configured on this deployment")
    return value


def accept_x(body: bytes, headers: Mapping[str, str], cfg: Settings | None = None) -> Accepted:
    cfg = cfg or settings()
    _configured(cfg.x_consumer_secret, "KLAXON_X_CONSUMER_SECRET")
    _check_size(body, cfg)
    try:
        signatures.verify_x(cfg.x_consumer_secret, body, headers.get("x-twitter-webhooks-signature"))
    except signatures.SignatureError as exc:
        raise WebhookRejected(401, str(exc)) from exc
    return _enqueue(_parse(parse_x, _json(body), cfg), cfg)


def accept_meta(body: bytes, headers: Mapping[str, str], cfg: Settings | None = None) -> Accepted:
    cfg = cfg or settings()
    _configured(cfg.meta_app_secret, "KLAXON_META_APP_SECRET")
    _check_size(body, cfg)
    try:
        signatures.verify_meta(cfg.meta_app_secret, body, headers.get("x-hub-signature-256"))
    except signatures.SignatureError as exc:
        raise WebhookRejected(401, str(exc)) from exc
    return _enqueue(_parse(parse_meta, _json(body), cfg), cfg)


def meta_challenge(params: Mapping[str, str], cfg: Settings | None = None) -> str:
    """Meta's subscription handshake: echo `hub.challenge` if the verify token matches."""
    cfg = cfg or settings()
    if params.get("hub.mode") != "subscribe":
        raise WebhookRejected(400, "hub.mode must be subscribe")
    _configured(cfg.meta_verify_token, "KLAXON_META_VERIFY_TOKEN")
    token = params.get("hub.verify_token") or ""
    if not signatures.hmac.compare_digest(token.encode(), cfg.meta_verify_token.encode()):
        raise WebhookRejected(403, "hub.verify_token does not match")
    challenge = params.get("hub.challenge")
    if not challenge or len(challenge) > 256:
        raise WebhookRejected(400, "hub.challenge is missing or too long")
    return challenge


def x_challenge(params: Mapping[str, str], cfg: Settings | None = None) -> dict[str, str]:
    cfg = cfg or settings()
    _configured(cfg.x_consumer_secret, "KLAXON_X_CONSUMER_SECRET")
    token = params.get("crc_token")
    if not token or len(token) > 512:
        raise WebhookRejected(400, "crc_token is missing or too long")
    if "{" in token:
        # The answer is HMAC(consumer secret, token), the very signature of a delivery whose body is the
        # token: answering a token that could be a JSON object would sign a forged delivery for anyone.
        raise WebhookRejected(400, "crc_token must not contain '{'")
    return {"response_token": signatures.x_crc_response(cfg.x_consumer_secret, token)}


def accept_generic(
    body: bytes, headers: Mapping[str, str], cfg: Settings | None = None, *, now: float | None = None
) -> Accepted:
    """Standard Webhooks delivery; a `webhook-id` already accepted is answered 200 and skipped."""
    cfg = cfg or settings()
    _configured(cfg.webhook_secret, "KLAXON_WEBHOOK_SECRET")
    _check_size(body, cfg)
    try:
        webhook_id = signatures.verify_standard(
            cfg.webhook_secret, body, headers, tolerance_seconds=cfg.webhook_tolerance_seconds, now=now
        )
    except signatures.SignatureError as exc:
        raise WebhookRejected(401, str(exc)) from exc
    parsed = _parse(parse_generic, _json(body), cfg)
    key = f"wh#generic#{webhook_id}"
    try:
        # Check, enqueue, then remember: if enqueueing fails the sender's retry is not mistaken
        # for a duplicate; a race between two copies is harmless because ingest dedupes mentions.
        if _seen(key, cfg):
            return Accepted(enqueued=0, ignored=0, unmatched=0, duplicate=True)
        accepted = _enqueue(parsed, cfg)
        clock = time.time() if now is None else now
        _remember(key, int(clock) + 2 * cfg.webhook_tolerance_seconds + 60, cfg)
    except awsjson.AwsError as exc:
        raise WebhookRejected(503, "storage unavailable, retry later") from exc
    return accepted


# The seen-id item is `SeenWebhookItem` in chalicelib/store/models.py (mentions table, hash key `pk`,
# TTL attribute `expires`), written here with the light client: PynamoDB would bring botocore into
# the webhook function's cold start (chalicelib/awsjson.py says why that matters).
def _seen(key: str, cfg: Settings) -> bool:
    answer = awsjson.call(
        "dynamodb",
        "GetItem",
        {"TableName": cfg.mentions_table, "Key": {"pk": {"S": key}}, "ConsistentRead": True},
        region=cfg.region,
    )
    expires = answer.get("Item", {}).get("expires", {}).get("N")
    return expires is not None and float(expires) > time.time()


def _remember(key: str, expires: int, cfg: Settings) -> None:
    item = {"pk": {"S": key}, "expires": {"N": str(expires)}}
    awsjson.call("dynamodb", "PutItem", {"TableName": cfg.mentions_table, "Item": item}, region=cfg.region)
