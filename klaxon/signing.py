"""Sign webhook bodies the way each platform does (demo, load bench and tests send real requests)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def x_headers(consumer_secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode(),
    }


def meta_headers(app_secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-hub-signature-256": "sha256=" + digest}


def standard_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, timestamp: float | None = None
) -> dict[str, str]:
    msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    sent = int(time.time() if timestamp is None else timestamp)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=datetime.fromtimestamp(sent, tz=UTC), data=body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(sent),
        "webhook-signature": signature,
    }
