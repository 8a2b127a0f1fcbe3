"""Generic webhook adapter: a Standard Webhooks signed POST carrying the approved text.

For channels Klaxon has no adapter for (a status page, a CMS, a chat tool): the receiver verifies
`webhook-signature` = v1,base64(HMAC-SHA256(secret, id.timestamp.body)) with any Standard Webhooks
library. The message id is derived from the hash and target, so a retry is recognisably the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from chalicelib.publish.base import (
    OutcomeUnknown,
    PlatformError,
    Progress,
    PublishedRef,
    Target,
    Transport,
    UrllibTransport,
    excerpt,
    send,
)
from chalicelib.publish.base import require_hash as _require_hash

EVENT_TYPE = "statement.published"


class WebhookPublisher:
    platform = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        transport: Transport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._url = url
        self._signer = Webhook(secret)
        self._transport = transport or UrllibTransport()
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_env(cls, transport: Transport | None = None) -> WebhookPublisher:
        url, secret = os.environ.get("KLAXON_PUBLISH_WEBHOOK_URL"), os.environ.get("KLAXON_PUBLISH_WEBHOOK_SECRET")
        if not url or not secret:
            raise PlatformError("KLAXON_PUBLISH_WEBHOOK_URL and KLAXON_PUBLISH_WEBHOOK_SECRET must be set")
        return cls(url, secret, transport)

    def publish(self, text: str, version_hash: str, target: Target, progress: Progress | None = None) -> PublishedRef:
        """One signed delivery. A lost answer is a plain PlatformError here, not OutcomeUnknown: a
        retry carries the same `webhook-id`, which Standard Webhooks receivers use to drop duplicates."""
        _require_hash(text, version_hash, target.signer_id)
        msg_id = "msg_" + hashlib.sha256(f"{version_hash}|{target.key()}".encode()).hexdigest()[:24]
        now = self._clock()
        body = json.dumps(
            {
                "type": EVENT_TYPE,
                "timestamp": now.isoformat().replace("+00:00", "Z"),
                "data": {
                    "incident_id": target.incident_id,
                    "lang": target.lang,
                    "text": text,
                    "version_hash": version_hash,
                    "signer_id": target.signer_id,
                    "signer_name": target.signer_name,
                    "reply_to": target.reply_to,
                },
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(msg_id, now, body),
        }
        try:
            response = send(self._transport, "POST", self._url, body.encode("utf-8"), headers)
        except OutcomeUnknown as exc:
            raise PlatformError(f"{exc} (a retry resends {msg_id})", exc.response_status, exc.detail) from exc
        if not 200 <= response.status < 300:  # any refusal is retryable: the receiver dedupes by webhook-id
            raise PlatformError("the webhook receiver refused the statement", response.status, excerpt(response))
        ref_id, url = msg_id, None
        try:
            answer = response.json()
            if isinstance(answer, dict):
                ref_id = str(answer.get("id") or msg_id)
                url = answer.get("url") if isinstance(answer.get("url"), str) else None
        except ValueError:
            pass  # a receiver may answer 2xx with no JSON: the message id identifies the delivery
        return PublishedRef(ref_id, url, (ref_id,))
