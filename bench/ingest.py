"""Ingest cost: DynamoDB write capacity per mention and handler CPU per mention.

    python -m bench.ingest [--mentions 10000] [--batch-size 100]

Replays N mentions through the real SQS queue and the ingest handler against a moto server
started here, records every DynamoDB write request the handler makes, and prices each one
by DynamoDB's published rules: 1 WCU per started KB of the item written (the larger of the
before and after images for an update), twice that inside a transaction, 1 WCU for a
conditional write that fails. Moto's own `ConsumedCapacity` is printed beside it.

CPU time is reported as a ratio to a bare `json.loads` of the same message bodies, measured
in the same process, so the figure survives a noisy shared machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.ingest.queue import INGEST_BATCH_SIZE, INGEST_BATCH_WINDOW_SECONDS

LANGS_TEXT = {
    "en": [
        "@AcmeTelecom my internet is down again, third time this week",
        "Anyone else with no signal from @AcmeTelecom in Tel Aviv?",
        "Thanks @AcmeTelecom, the technician was great today",
    ],
    "he": ["אקמי שוב אין אינטרנט כבר שלוש שעות", "השירות של אקמי מעולה, תודה לנציג", "יש תקלה באקמי באזור המרכז?"],
}


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def attribute_size(value: dict[str, Any]) -> int:
    """Size of one DynamoDB attribute value, per the published item-size rules."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in inner)
    raise ValueError(kind)


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def wcu(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def build_mentions(n: int, brands: list[str], seed: int = 7) -> list[Any]:
    from chalicelib.ingest.models import Author, Mention

    rng = random.Random(seed)
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    per_minute = 150
    out = []
    for i in range(n):
        lang = "he" if rng.random() < 0.5 else "en"
        out.append(
            Mention(
                platform="x",
                platform_id=str(1_800_000_000_000_000 + i),
                text=rng.choice(LANGS_TEXT[lang]),
                author=Author(
                    id=str(rng.randrange(10**9)), handle=f"user{rng.randrange(10**5)}", followers=rng.randrange(10**4)
                ),
                created_at=start + timedelta(seconds=60 * i / per_minute + rng.random()),
                url=f"https://x.com/i/status/{1_800_000_000_000_000 + i}",
                brands=(rng.choice(brands),),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=10_000)
    parser.add_argument(
        "--batch-size", type=int, default=INGEST_BATCH_SIZE, help="messages per invocation (the deployed mapping's)"
    )
    parser.add_argument("--brands", type=int, default=1, help="brands the stream is spread over")
    parser.add_argument("--json", type=Path, help="also write the measured figures here (bench/cost.py reads them)")
    args = parser.parse_args(argv)

    from klaxon import stack as local_stack

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # the bench prints its own figures
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with local_stack.bench_moto("bench"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:

    from chalicelib.counters.service import read_series
    from chalicelib.ingest.queue import enqueue, sqs_client
    from chalicelib.store.models import CounterItem, on_dynamodb
    from klaxon import stack as local_stack
    from klaxon.lambda_sqs import gather, queue_arn, to_event

    queue_url, _ = local_stack.provision()
    sqs = sqs_client()
    brands = ["acme-telecom", "golden-foods"][: max(1, args.brands)]
    mentions = build_mentions(args.mentions, brands)
    # A tenth of the stream arrives twice, as platform retries do: priced, never counted twice.
    replays = mentions[::10]
    # Fed to the queue a slice at a time, kept at least one batch deep so that each invocation gets a
    # full batch (the mapping's window would otherwise be waited out on every short batch).
    stream = mentions + replays
    slices = [stream[i : i + 40] for i in range(0, len(stream), 40)]
    queued = 0
    arn = queue_arn(sqs, queue_url)

    writes: list[tuple[str, int, float | None]] = []  # (operation, WCU by the rules, moto's figure)
    calls: Counter[str] = Counter()  # every DynamoDB request the handler made, by operation
    counter_updates: list[tuple[str, int]] = []
    triage_updates: list[tuple[str, str]] = []  # triage queue entries and thread counts (issue 11)
    triage_members = [0]  # posts the triage queue took (one member record each)

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        params_ctx = params
        op = model.name
        calls[op] += 1
        if op == "PutItem":
            writes.append((op, wcu(item_size(params_ctx["Item"])), None))
        elif op == "UpdateItem":
            writes.append((op, 1, None))  # a claim takeover; the item is a mention (< 1 KB)
        elif op == "TransactWriteItems":
            for entry in params_ctx["TransactItems"]:
                if "Put" in entry:
                    triage = entry["Put"]["Item"]["pk"]["S"].startswith("triage#")
                    triage_members[0] += triage and entry["Put"]["Item"]["sk"]["S"].startswith("mem#")
                    op_name = "Triage.Put" if triage else "Transact.Put"
                    writes.append((op_name, 2 * wcu(item_size(entry["Put"]["Item"])), None))
                elif "Update" in entry:
                    key = entry["Update"]["Key"]
                    if "minute" in key:
                        counter_updates.append((key["pk"]["S"], int(key["minute"]["N"])))
                        writes.append(("Transact.Update", 0, None))  # priced after the run from item size
                    else:
                        triage_updates.append((key["pk"]["S"], key["sk"]["S"]))

    moto_reported: list[float] = []

    def reported(parsed: dict[str, Any], **_: Any) -> None:
        capacity = parsed.get("ConsumedCapacity")
        if isinstance(capacity, dict):
            moto_reported.append(float(capacity.get("CapacityUnits") or 0))
        elif isinstance(capacity, list):
            moto_reported.extend(float(c.get("CapacityUnits") or 0) for c in capacity)

    on_dynamodb("provide-client-params.dynamodb", record)
    on_dynamodb("after-call.dynamodb", reported)
    bodies: list[str] = []
    handler_cpu = 0.0
    batches = 0
    started = time.perf_counter()
    with local_stack.lambda_client() as lambda_client:
        idle = 0
        while idle < 2:
            while slices and queued < args.batch_size:
                queued += enqueue(slices.pop(0))
            messages = gather(
                sqs, queue_url, batch_size=args.batch_size, window_seconds=INGEST_BATCH_WINDOW_SECONDS, wait_seconds=0
            )
            if not messages:
                idle += 1
                continue
            queued -= len(messages)
            idle = 0
            event = to_event(messages, arn)
            bodies.extend(m["Body"] for m in messages)
            cpu0 = time.process_time()
            response = lambda_client.lambda_.invoke("ingest", event).payload
            handler_cpu += time.process_time() - cpu0
            batches += 1
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
    wall = time.perf_counter() - started
    on_dynamodb("provide-client-params.dynamodb", record, remove=True)
    on_dynamodb("after-call.dynamodb", reported, remove=True)

    # Price counter updates by the size of the item they wrote (its final size bounds every image).
    sizes: dict[tuple[str, int], int] = {}
    for pk, minute in set(counter_updates):
        item = CounterItem.get(pk, minute, consistent_read=True)
        sizes[(pk, minute)] = item_size(item.serialize())
    counter_wcu = sum(2 * wcu(sizes[k]) for k in counter_updates)
    by_op: Counter[str] = Counter()
    for op, units, _ in writes:
        by_op[op] += units
    by_op["Transact.Update"] = counter_wcu
    if triage_updates:
        from chalicelib.store.models import TriageEntryItem, TriageThreadItem

        triage_sizes: dict[tuple[str, str], int] = {}
        for pk, sk in set(triage_updates):
            model = TriageEntryItem if sk.startswith("e#") else TriageThreadItem
            triage_sizes[(pk, sk)] = item_size(model.get(pk, sk, consistent_read=True).serialize())
        by_op["Triage.Update"] = sum(2 * wcu(triage_sizes[k]) for k in triage_updates)
    duplicates_priced = len(replays)  # each failed conditional put of a replay: 1 WCU, already in PutItem
    total_wcu = sum(by_op.values())

    # Baseline in the same process: a bare json.loads of the same bodies.
    cpu0 = time.process_time()
    for _ in range(5):
        for body in bodies:
            json.loads(body)
    json_cpu = (time.process_time() - cpu0) / 5

    start = int(mentions[0].created_at.timestamp()) // 3600 * 3600
    end = int(mentions[-1].created_at.timestamp()) + 3600
    counted = sum(
        int(p.as_dict()["total"])
        for b in brands
        for p in read_series(b, start=start, end=end, step=3600)  # type: ignore[arg-type]
    )
    exact = counted == len(mentions)
    print(
        f"ingest bench: {len(mentions)} distinct mentions (+{len(replays)} replayed copies), "
        f"batch size {args.batch_size}, {len(brands)} brand(s), {batches} handler invocations, {wall:.1f}s wall"
    )
    print(f"  counted exactly: {exact} ({counted} counted, {len(mentions)} distinct)")
    print("  DynamoDB write capacity by DynamoDB's rules:")
    for op, units in sorted(by_op.items()):
        print(f"    {op:16s} {units:7d} WCU")
    n = len(mentions)
    counting = sum(by_op[op] for op in ("PutItem", "UpdateItem", "Transact.Put", "Transact.Update"))
    counting_distinct = (counting - duplicates_priced) / n
    triage_wcu = by_op["Triage.Put"] + by_op["Triage.Update"]
    print(f"    total            {total_wcu:7d} WCU = {total_wcu / n:.3f} WCU per distinct mention")
    print(
        f"  counting path (mention stored with its claim, counters, ledger): {counting_distinct:.3f} WCU per "
        f"distinct mention (storing the mention alone: 1.000; target <= 1.5)"
    )
    print(
        f"    plus 1 WCU per duplicate delivery (its failed conditional put): {duplicates_priced} here, "
        f"{counting / n:.3f} per distinct mention with them"
    )
    if triage_wcu:
        print(
            f"  triage queue (posts that need a reply): {triage_wcu / n:.3f} WCU per distinct mention, "
            f"{triage_wcu / max(1, triage_members[0]):.3f} per queued post ({triage_members[0]} of {n} queued)"
        )
    if moto_reported:
        print(
            f"  moto's ReturnConsumedCapacity total: {sum(moto_reported):.0f} "
            f"({sum(moto_reported) / len(mentions):.3f} per mention; moto does not price transactions)"
        )
    per_mention_us = handler_cpu / len(bodies) * 1e6
    json_us = json_cpu / len(bodies) * 1e6
    print(
        f"  handler CPU per message: {per_mention_us:.0f} us; bare json.loads of the same body: {json_us:.2f} us; "
        f"ratio {per_mention_us / json_us:.0f}x"
    )
    if args.json:
        figures = {
            "mentions": len(mentions),
            "replayed_copies": len(replays),
            "sqs_messages": len(bodies),
            "batch_size": args.batch_size,
            "brands": len(brands),
            "invocations": batches,
            "wcu_by_operation": dict(by_op),
            "wcu_total": total_wcu,
            "wcu_counting_per_distinct_mention": counting_distinct,
            "triage_queued_posts": triage_members[0],
            "dynamodb_requests": dict(calls),
            "handler_cpu_seconds": handler_cpu,
            "counted_exactly": exact,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"  figures written to {args.json}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
