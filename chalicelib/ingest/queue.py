"""Hand mentions to the ingest queue (SQS) in batches of ten.

botocore directly rather than boto3: PynamoDB already loads botocore, and skipping boto3's
session machinery keeps the webhook Lambda's cold start short.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import Settings, settings
from chalicelib.ingest.models import Mention

_SQS_BATCH = 10


class QueueUnavailable(RuntimeError):
    """SQS refused or timed out; the sender should retry later (HTTP 503)."""


@lru_cache(maxsize=4)
def _client(endpoint_url: str | None, region: str) -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "sqs",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}),
    )


def sqs_client(cfg: Settings | None = None) -> Any:
    cfg = cfg or settings()
    return _client(cfg.endpoint_url, cfg.region)


@lru_cache(maxsize=4)
def _queue_url(endpoint_url: str | None, region: str, name: str) -> str:
    return str(_client(endpoint_url, region).get_queue_url(QueueName=name)["QueueUrl"])


def queue_url(cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    return cfg.queue_url or _queue_url(cfg.endpoint_url, cfg.region, cfg.queue_name)


def enqueue(mentions: Sequence[Mention], cfg: Settings | None = None) -> int:
    """Send every mention or raise `QueueUnavailable`; entries SQS refuses are retried once."""
    if not mentions:
        return 0
    cfg = cfg or settings()
    try:
        client, url = sqs_client(cfg), queue_url(cfg)
        for start in range(0, len(mentions), _SQS_BATCH):
            chunk = mentions[start : start + _SQS_BATCH]
            entries = [{"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)]
            for _attempt in range(2):
                failed = client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
                if not failed:
                    break
                failed_ids = {f["Id"] for f in failed}
                entries = [e for e in entries if e["Id"] in failed_ids]
            else:
                raise QueueUnavailable(f"SQS refused {len(entries)} message(s): {failed[0].get('Code')}")
    except (BotoCoreError, ClientError) as exc:
        raise QueueUnavailable(f"SQS unavailable: {exc}") from exc
    return len(mentions)
