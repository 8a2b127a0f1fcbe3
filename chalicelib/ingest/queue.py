"""Hand mentions to the ingest queue (SQS) in batches of ten.

The webhook path sends through `chalicelib.awsjson` (SigV4 over http.client) rather than botocore:
importing botocore and building a client would more than double the webhook function's cold start
(see that module). `sqs_client()` is the botocore client for everything that is not on that path
(the local poller, the demo, outbound deliveries).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from chalicelib import awsjson
from chalicelib.config import Settings, settings
from chalicelib.ingest.models import Mention

_SQS_BATCH = 10
# The ingest function's event source mapping: up to 100 mentions per invocation, gathered for at most
# a second once the first arrives. A bigger batch shares its per-batch writes (the counting
# transaction, triage reads, the detector's state) among more mentions: fewer requests, fewer WCU and
# fewer invocations per mention under a flood, for at most a second's wait when the stream is quiet.
INGEST_BATCH_SIZE = 100
INGEST_BATCH_WINDOW_SECONDS = 1
ENQUEUE_BUDGET_SECONDS = 4.0  # then 503: platforms retry, and a webhook that hangs is retried anyway


class QueueUnavailable(RuntimeError):
    """SQS refused or timed out; the sender should retry later (HTTP 503)."""


@lru_cache(maxsize=4)
def _client(endpoint_url: str | None, region: str) -> Any:
    import botocore.session
    from botocore.config import Config

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


@lru_cache(maxsize=8)
def _queue_url(endpoint_url: str | None, region: str, name: str) -> str:
    """The queue's URL by name; `endpoint_url` is part of the cache key so tests can re-point it."""
    return str(awsjson.call("sqs", "GetQueueUrl", {"QueueName": name}, region=region)["QueueUrl"])


def queue_url(cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    return cfg.queue_url or _queue_url(cfg.endpoint_url, cfg.region, cfg.queue_name)


def enqueue(mentions: Sequence[Mention], cfg: Settings | None = None) -> int:
    """Send every mention or raise `QueueUnavailable`; entries SQS refuses are retried once."""
    if not mentions:
        return 0
    cfg = cfg or settings()
    deadline = time.monotonic() + ENQUEUE_BUDGET_SECONDS
    try:
        url = queue_url(cfg)
        for start in range(0, len(mentions), _SQS_BATCH):
            chunk = mentions[start : start + _SQS_BATCH]
            entries = [{"Id": str(i), "MessageBody": m.model_dump_json()} for i, m in enumerate(chunk)]
            for _attempt in range(2):
                answer = awsjson.call(
                    "sqs",
                    "SendMessageBatch",
                    {"QueueUrl": url, "Entries": entries},
                    region=cfg.region,
                    deadline=deadline,
                )
                failed = answer.get("Failed") or []
                if not failed:
                    break
                failed_ids = {f["Id"] for f in failed}
                entries = [e for e in entries if e["Id"] in failed_ids]
            else:
                raise QueueUnavailable(f"SQS refused {len(entries)} message(s): {failed[0].get('Code')}")
    except awsjson.AwsError as exc:
        raise QueueUnavailable(f"SQS unavailable: {exc}") from exc
    return len(mentions)
