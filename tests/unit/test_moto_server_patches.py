"""The local moto server's SQS patches (klaxon.moto_server.quicker_sqs), on moto's backend in process:
sending, receiving and deleting cost about the same at a depth of 20,000 as at a depth of 0, where
moto alone scans the whole queue several times per message."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from klaxon.moto_server import quicker_sqs


def _timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def test_sqs_cost_does_not_grow_with_depth() -> None:
    quicker_sqs()
    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["us-east-1"]
    name = f"depth{uuid.uuid4().hex[:8]}"
    backend.create_queue(name)
    entries = {
        str(i): {"Id": str(i), "MessageBody": "x" * 300, "MessageAttributes": {}, "DelaySeconds": None}
        for i in range(10)
    }

    def send_batches() -> None:
        for _ in range(20):
            backend.send_message_batch(name, entries)

    def receive_and_delete() -> None:
        for _ in range(20):
            for message in backend.receive_message(name, 10, 0, 30):
                backend.delete_message(name, message.receipt_handle)

    shallow = min(_timed(send_batches) + _timed(receive_and_delete) for _ in range(3))
    for _ in range(2000):
        backend.send_message_batch(name, entries)  # 20,000 deep
    deep = min(_timed(send_batches) + _timed(receive_and_delete) for _ in range(3))
    backend.delete_queue(name)
    assert deep < shallow * 3, (shallow, deep)
