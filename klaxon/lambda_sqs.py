"""What Lambda's SQS event source mapping does, for the local stack and integration tests.

Receive real messages from the (moto) queue, hand them to the handler as a Lambda SQS
event, delete the ones the handler did not report in `batchItemFailures`, and leave the
rest to reappear after the visibility timeout. If the handler raises, nothing is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]


@dataclass
class DeliveryStats:
    received: int = 0
    deleted: int = 0
    failed: int = 0
    errors: int = 0


def queue_arn(client: Any, url: str) -> str:
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def to_event(messages: list[dict[str, Any]], arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The exact record shape Lambda gives an SQS-triggered function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def receive(client: Any, url: str, *, max_messages: int = 10, wait_seconds: int = 0) -> list[dict[str, Any]]:
    response = client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


def gather(
    client: Any, url: str, *, batch_size: int = 10, window_seconds: float = 0.0, wait_seconds: int = 1
) -> list[dict[str, Any]]:
    """One invocation's batch, as the event source mapping builds it: long-poll for the first messages,
    then, with a batching window, keep receiving (10 at most per call, SQS's limit) until `batch_size`
    messages are in hand or `window_seconds` have passed since the first arrived."""
    messages = receive(client, url, max_messages=min(10, batch_size), wait_seconds=wait_seconds)
    if not messages or window_seconds <= 0:
        return messages
    deadline = time.monotonic() + window_seconds
    while len(messages) < batch_size:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        more = receive(client, url, max_messages=min(10, batch_size - len(messages)), wait_seconds=int(left >= 1))
        if more:
            messages += more
        elif left < 1:
            time.sleep(min(0.05, left))  # a short poll found nothing: do not spin on the queue
    return messages


def deliver(
    client: Any, url: str, arn: str, invoke: Invoke, messages: list[dict[str, Any]], stats: DeliveryStats
) -> None:
    """Invoke the handler with `messages` and settle them with SQS as Lambda would."""
    if not messages:
        return
    stats.received += len(messages)
    try:
        response = invoke(to_event(messages, arn))
    except Exception:  # Lambda: a raised error means the whole batch returns to the queue
        stats.errors += 1
        stats.failed += len(messages)
        return
    payload = getattr(response, "payload", response) or {}
    failed_ids = {f["itemIdentifier"] for f in payload.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed_ids]
    stats.failed += len(messages) - len(done)
    for start in range(0, len(done), 10):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])]
        client.delete_message_batch(QueueUrl=url, Entries=entries)
    stats.deleted += len(done)


def drain(client: Any, url: str, invoke: Invoke, *, batch_size: int = 10, idle_rounds: int = 2) -> DeliveryStats:
    """Deliver until the queue yields nothing `idle_rounds` times in a row (tests, demo)."""
    stats = DeliveryStats()
    arn = queue_arn(client, url)
    idle = 0
    while idle < idle_rounds:
        messages = receive(client, url, max_messages=batch_size)
        if not messages:
            idle += 1
            continue
        idle = 0
        deliver(client, url, arn, invoke, messages, stats)
    return stats
