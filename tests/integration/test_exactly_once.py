"""Invariant 1: every accepted mention is counted exactly once.

Through webhook retries, SQS redelivery (also in different batch compositions), partial
batch failure, and the ingest handler dying after any one of its DynamoDB writes. All of
it against the real moto server over HTTP.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.config import settings
from chalicelib.counters.service import read_series
from chalicelib.ingest.models import Author, Mention
from chalicelib.ingest.queue import enqueue
from chalicelib.store.models import on_dynamodb
from klaxon.lambda_sqs import deliver, queue_arn, receive, to_event
from klaxon.signing import x_headers

pytestmark = pytest.mark.integration

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


class Killed(BaseException):
    """The Lambda runtime vanishing mid-invocation: not an Exception, so nothing catches it."""


def ingest_killed_after_write(env: Any, messages: list[dict[str, Any]], k: int) -> int:
    """Invoke the ingest handler on `messages` and kill it right after its k-th DynamoDB write
    (nothing is deleted from the queue: SQS will redeliver); how many writes it made."""
    done = 0

    def kill_after_k(model: Any, **_: Any) -> None:
        nonlocal done
        if model.name in WRITE_OPS:
            done += 1
            if done == k:
                raise Killed(f"killed after write {k} ({model.name})")

    on_dynamodb("after-call.dynamodb", kill_after_k)
    try:
        with pytest.raises(Killed):
            env.invoke_ingest(to_event(messages, queue_arn(env.sqs, env.queue_url)))
    finally:
        on_dynamodb("after-call.dynamodb", kill_after_k, remove=True)
    return done


def mentions(n: int, *, brands: tuple[str, ...] = ("acme-telecom",), prefix: str = "m") -> list[Mention]:
    return [
        Mention(
            platform="x",
            platform_id=f"{prefix}{i}",
            text=f"@AcmeTelecom outage report {i}",
            author=Author(handle=f"user{i}"),
            created_at=BASE + timedelta(seconds=37 * i),
            brands=brands if i % 3 else ("acme-telecom", "golden-foods"),
        )
        for i in range(n)
    ]


def expected_totals(items: list[Mention]) -> Counter[str]:
    out: Counter[str] = Counter()
    seen: set[str] = set()
    for m in items:
        if m.key in seen:
            continue
        seen.add(m.key)
        for brand in m.brands:
            out[brand] += 1
    return out


def counted(brands: tuple[str, ...] = ("acme-telecom", "golden-foods")) -> Counter[str]:
    out: Counter[str] = Counter()
    start = int(BASE.timestamp())
    for brand in brands:
        points = read_series(brand, start=start - 3600, end=start + 86400, step=3600)
        out[brand] = sum(p.as_dict()["total"] for p in points)  # type: ignore[misc]
    return out


def make_visible(env: Any, messages: list[dict[str, Any]]) -> None:
    """Expire the visibility timeout of these in-flight messages now, as if the timeout passed."""
    for message in messages:
        env.sqs.change_message_visibility(
            QueueUrl=env.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def set_visibility(env: Any, seconds: int) -> None:
    env.sqs.set_queue_attributes(QueueUrl=env.queue_url, Attributes={"VisibilityTimeout": str(seconds)})


def test_every_sqs_message_delivered_twice_counts_once(env: Any) -> None:
    items = mentions(25)
    enqueue(items)
    enqueue(items)  # the same mentions queued again, as a webhook retry would
    stats = env.drain()
    assert stats.received == 50 and stats.failed == 0
    # Redeliver every message body a second time, in a different batch composition.
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    enqueue(shuffled)
    env.drain(batch_size=7)
    assert counted() == expected_totals(items)


def test_every_webhook_posted_twice_counts_once(env: Any) -> None:
    cfg = settings()
    bodies = []
    for i in range(12):
        tweet = {
            "id_str": f"17000000000000{i:02d}",
            "created_at": (BASE + timedelta(minutes=i % 4)).strftime("%a %b %d %H:%M:%S +0000 %Y"),
            "text": f"@AcmeTelecom no signal in Haifa {i}" if i % 2 else f"אקמי שוב אין קליטה {i}",
            "user": {"id_str": f"{500 + i}", "screen_name": f"u{i}"},
        }
        bodies.append(json.dumps({"for_user_id": "1", "tweet_create_events": [tweet]}).encode())
    for _round in range(2):
        for body in bodies:
            response = env.client.http.post("/webhooks/x", body=body, headers=x_headers(cfg.x_consumer_secret, body))
            assert response.status_code == 200, response.body
    env.drain()
    assert counted() == Counter({"acme-telecom": 12})


def test_failed_record_is_retried_alone_and_reaches_dlq(env: Any) -> None:
    items = mentions(3, brands=("acme-telecom",))
    enqueue(items)
    env.sqs.send_message(QueueUrl=env.queue_url, MessageBody='{"platform": "x"}')
    arn = queue_arn(env.sqs, env.queue_url)
    batch = receive(env.sqs, env.queue_url, max_messages=10)
    assert len(batch) == 4
    response = env.invoke_ingest(to_event(batch, arn)).payload
    bad_id = next(m["MessageId"] for m in batch if m["Body"] == '{"platform": "x"}')
    assert response == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    from klaxon.lambda_sqs import DeliveryStats

    stats = DeliveryStats()
    # Settle the first delivery as Lambda would, then let the bad one come back.
    env.sqs.delete_message_batch(
        QueueUrl=env.queue_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch) if m["MessageId"] != bad_id
        ],
    )
    in_flight = [m for m in batch if m["MessageId"] == bad_id]
    for receive_count in range(2, 6):
        make_visible(env, in_flight)
        in_flight = receive(env.sqs, env.queue_url, max_messages=10)
        assert [m["MessageId"] for m in in_flight] == [bad_id]
        assert in_flight[0]["Attributes"]["ApproximateReceiveCount"] == str(receive_count)
        deliver(env.sqs, env.queue_url, arn, env.invoke_ingest, in_flight, stats)
    make_visible(env, in_flight)
    assert receive(env.sqs, env.queue_url) == []  # maxReceiveCount 5: moved to the DLQ
    dead = receive(env.sqs, env.dlq_url)
    assert [m["MessageId"] for m in dead] == [bad_id]
    assert counted() == expected_totals(items)


def _write_calls(env: Any, items: list[Mention]) -> int:
    """How many DynamoDB writes a clean run of this batch makes."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        if model.name in WRITE_OPS:
            calls.append(model.name)

    on_dynamodb("after-call.dynamodb", count)
    try:
        enqueue(items)
        env.drain()
    finally:
        on_dynamodb("after-call.dynamodb", count, remove=True)
    return len(calls)


def test_killed_after_each_write_then_redelivered_counts_exact(env: Any) -> None:
    """Kill the handler after its k-th DynamoDB write, for every k; redelivery must fix it up."""
    probe = mentions(6, prefix="probe")
    writes = _write_calls(env, probe)
    assert writes >= 6 + 1  # six claims and at least one counting transaction
    all_items = list(probe)
    for k in range(1, writes + 1):
        items = mentions(6, prefix=f"k{k}-")
        items.append(items[0])  # a duplicate inside the batch too
        all_items.extend(items)
        enqueue(items)
        batch = receive(env.sqs, env.queue_url, max_messages=10)
        assert len(batch) == len(items)
        assert ingest_killed_after_write(env, batch, k) == k
        # Nothing was deleted from the queue; SQS redelivers, here in smaller batches.
        make_visible(env, batch)
        env.drain(batch_size=3)
        assert counted() == expected_totals(all_items), f"after a kill at write {k}"


def test_concurrent_takeover_never_double_counts(env: Any) -> None:
    """A batch that stalls after claiming loses its mentions to a redelivery and cannot commit."""
    from chalicelib.ingest import pipeline

    items = mentions(4, prefix="slow")
    enqueue(items)
    batch = receive(env.sqs, env.queue_url, max_messages=10)
    arn = queue_arn(env.sqs, env.queue_url)
    state = {"writes": 0}

    def stall_before_commit(model: Any, params: Any = None, **_: Any) -> None:
        # Before the slow batch's transaction goes out, a redelivered copy runs to completion.
        if model.name == "TransactWriteItems" and not state.get("raced"):
            state["raced"] = True
            make_visible(env, batch)
            again = receive(env.sqs, env.queue_url, max_messages=10)
            from klaxon.lambda_sqs import DeliveryStats

            deliver(env.sqs, env.queue_url, arn, env.invoke_ingest, again, DeliveryStats())

    on_dynamodb("before-call.dynamodb", stall_before_commit)
    try:
        with pytest.raises(Exception) as raised:
            pipeline.process_batch(to_event(batch, arn))
    finally:
        on_dynamodb("before-call.dynamodb", stall_before_commit, remove=True)
    assert getattr(raised.value, "cause_response_code", None) == "TransactionCanceledException"
    assert counted() == expected_totals(items)


def test_deployed_batch_size_gathers_up_to_a_hundred_within_the_window_and_counts_once(env: Any) -> None:
    """The ingest event source mapping (app.py): up to 100 messages per invocation, gathered for at
    most INGEST_BATCH_WINDOW_SECONDS once the first arrives; a full batch does not wait."""
    import time

    from chalicelib.ingest.queue import INGEST_BATCH_SIZE, INGEST_BATCH_WINDOW_SECONDS
    from klaxon.lambda_sqs import DeliveryStats, gather

    assert INGEST_BATCH_SIZE == 100
    items = mentions(130)
    enqueue(items)
    enqueue(items[:10])  # a webhook retry: ten of them queued twice
    arn = queue_arn(env.sqs, env.queue_url)
    stats = DeliveryStats()
    sizes, waits = [], []
    while True:
        started = time.monotonic()
        batch = gather(env.sqs, env.queue_url, batch_size=INGEST_BATCH_SIZE, window_seconds=INGEST_BATCH_WINDOW_SECONDS)
        if not batch:
            break
        waits.append(time.monotonic() - started)
        sizes.append(len(batch))
        deliver(env.sqs, env.queue_url, arn, env.invoke_ingest, batch, stats)
    assert sizes == [100, 40]
    assert waits[1] >= INGEST_BATCH_WINDOW_SECONDS  # a short batch waited out the window for more
    assert (stats.received, stats.deleted, stats.failed, stats.errors) == (140, 140, 0, 0)
    assert counted() == expected_totals(items)


def test_counts_in_shards_above_a_lowered_shard_count_are_read_with_read_shards(env: Any) -> None:
    """Counts written while KLAXON_COUNTER_SHARDS was 8 stay readable after it is lowered to 2, as long as
    KLAXON_COUNTER_READ_SHARDS keeps the old value; without it the higher shards' counts are not read."""
    from dataclasses import replace

    from chalicelib.counters.service import commit, shard_for

    wide = replace(settings(), counter_shards=8)
    minute = int(BASE.timestamp())
    tokens = [f"tok-{i}" for i in range(40)]
    assert {shard_for(t, 8) for t in tokens} == set(range(8))
    for token in tokens:
        commit(token=token, totals={("acme-telecom", minute): Counter({"neg_en": 1})}, ledger_ids=b"x", cfg=wide)

    def total(cfg: Any) -> int:
        points = read_series("acme-telecom", start=minute, end=minute + 60, cfg=cfg)
        return sum(int(p.as_dict()["total"]) for p in points)  # type: ignore[call-overload]

    assert total(wide) == 40
    lowered = replace(settings(), counter_shards=2)
    assert total(lowered) == sum(1 for t in tokens if shard_for(t, 8) < 2) < 40
    assert total(replace(lowered, counter_read_shards=8)) == 40
