"""AWS and SMS cost per million mentions and per incident, from measured request counts.

    python -m bench.cost [--figures build/ingest-figures.json] [--mentions 3000] [--prices prices.json]

Per million mentions, the DynamoDB write units, DynamoDB requests, handler invocations and handler
CPU come from bench/ingest.py's replay on the local stack (run here with `--json` unless a figures
file is given). Per incident, the DynamoDB requests and SMS messages come from a measured incident
run here on the local stack: an alarm opens an incident, the first step is paged, nobody answers so
the sweeper escalates once, the second person acknowledges by SMS reply, and everyone paged gets the
acknowledgement notice (the fake Twilio server counts messages and segments).

Prices are list prices (us-east-1, USD) as written in PRICES below, with the date they were read;
pass `--prices FILE` (JSON with the same keys) for your region or a newer price list. What cannot be
measured here (Lambda durations in AWS, request sizes at API Gateway) is an explicit assumption in
ASSUMPTIONS, printed with the result. docs/cost.md holds one run's output and how to read it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# USD, us-east-1 list prices; the operator should check the current figures for their region.
PRICES: dict[str, float] = {
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,  # x86_64
    "apigw_rest_per_million_requests": 3.50,
    "sqs_per_million_requests": 0.40,  # standard queue, per 64 KB chunk
    "dynamodb_per_million_write_units": 0.625,  # on-demand
    "dynamodb_per_million_read_units": 0.125,  # on-demand
    "dynamodb_storage_per_gb_month": 0.25,
    "cloudwatch_logs_per_gb_ingested": 0.50,
    "sms_per_segment_us": 0.0083,  # Twilio US outbound, before carrier fees
}
PRICES_READ = "list prices as published for us-east-1 / Twilio US, read 2025; check before budgeting"

ASSUMPTIONS: dict[str, float] = {
    "mentions_per_webhook_request": 1.0,  # X sends one event per post; Meta may batch (cheaper)
    "webhook_lambda_ms": 25.0,  # verify + one SQS SendMessage in-region
    "api_memory_gb": 0.5,  # .chalice/config.json
    "ingest_memory_gb": 1.0,
    "sweeper_memory_gb": 0.5,
    "dynamodb_request_ms": 6.0,  # in-region round trip added to ingest handler CPU time
    "log_bytes_per_invocation": 700.0,  # START/END/REPORT lines plus one JSON line of ours
    "mention_item_bytes": 600.0,
    "retention_days": 30.0,
    "status_callbacks_per_sms": 3.0,  # queued/sent/delivered posted back to /sms/status
    "detector_state_write_units": 2.0,  # per brand per batch: one versioned write of <= 2 KB
}


def _ingest_figures(path: Path | None, mentions: int) -> dict[str, Any]:
    if path and path.exists():
        return dict(json.loads(path.read_text()))
    out = path or ROOT / "build" / "ingest-figures.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"measuring ingest: python -m bench.ingest --mentions {mentions} --json {out}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--mentions", str(mentions), "--json", str(out)], cwd=ROOT, check=True
    )
    return dict(json.loads(out.read_text()))


def _measure_incident() -> dict[str, float]:
    """One incident on the local stack: page, one escalation, ACK by SMS, notices; requests counted."""
    from klaxon import stack as local_stack
    from klaxon.fake_twilio import running_fake_twilio

    with local_stack.bench_moto("costbench"), running_fake_twilio(step_delay=0.0) as fake:
        os.environ.update(fake.environment())
        os.environ.setdefault("KLAXON_PUBLIC_URL", "https://klaxon.example.com")
        return _incident_run(fake)


def _incident_run(fake: Any) -> dict[str, float]:
    from chalicelib import flows
    from chalicelib.config import settings
    from chalicelib.paging import service as paging
    from chalicelib.paging import twilio_sms
    from chalicelib.playbooks.loader import default_playbooks, load_roster
    from chalicelib.store.models import on_dynamodb
    from klaxon import stack as local_stack

    settings.cache_clear()
    twilio_sms.default_sender.cache_clear()
    local_stack.provision()
    roster = load_roster()
    playbook = next(p for p in default_playbooks() if not p.triggers.manual)
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    on_dynamodb("provide-client-params.dynamodb", record)
    try:
        now = datetime.now(UTC).timestamp()
        opened = flows.open_by_hand(
            brand=playbook.brands[0], playbook_id=playbook.id, summary="neg 212/5min, 9.2x usual", actor="cost", now=now
        )
        incident = opened.incident
        esc = paging.get_escalation(incident.id)
        first_step = list(paging.targets_of(esc)) if esc else []
        sweeps = 0
        # Nobody answers step 1: sweep once a minute until the next step is paged (as the schedule does).
        for minute in range(1, 61):
            paging.sweep(now + 60 * minute, roster=roster)
            sweeps += 1
            esc = paging.get_escalation(incident.id)
            if esc and list(paging.targets_of(esc)) != first_step:
                break
        pages = paging.pages(incident.id)
        responder = next(p for p in roster.people if p.id == pages[-1].person)
        paging.handle_inbound_sms(responder.phone, f"ACK {incident.code}", roster, now + 60 * sweeps + 30)
        time.sleep(0.5)  # let the fake server record the notices
    finally:
        on_dynamodb("provide-client-params.dynamodb", record, remove=True)
    outbound = fake.messages  # outbound API messages only
    segments = sum(m.num_segments for m in outbound)
    writes = sum(v for k, v in calls.items() if k in {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})
    return {
        "sms_messages": float(len(outbound)),
        "sms_segments": float(segments) + 1.0,  # + the TwiML reply to the ACK, billed as one outbound message
        "dynamodb_write_requests": float(writes),
        "dynamodb_read_requests": float(sum(calls.values()) - writes),
        "sweeps_until_escalation": float(sweeps),
        "pages": float(len(pages)),
    }


def _per_million(fig: dict[str, Any], price: dict[str, float], a: dict[str, float]) -> list[tuple[str, float, str]]:
    scale = 1_000_000 / fig["mentions"]
    invocations = fig["invocations"] * scale
    webhooks = 1_000_000 / a["mentions_per_webhook_request"]
    requests: dict[str, int] = fig["dynamodb_requests"]
    writes = sum(v for k, v in requests.items() if k in {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})
    reads = sum(requests.values()) - writes
    detector_wcu = invocations * fig["brands"] * a["detector_state_write_units"]
    write_units = fig["wcu_total"] * scale + detector_wcu
    read_units = reads * scale + invocations * fig["brands"]  # + the detector state read per brand per batch
    ingest_seconds = (fig["handler_cpu_seconds"] + (writes + reads) * a["dynamodb_request_ms"] / 1000) * scale
    # SendMessage per webhook; per batch, a Receive and a DeleteMessageBatch per 10 messages (SQS's limit)
    sqs_requests = webhooks + 2 * max(invocations, 1_000_000 / 10)
    log_gb = (webhooks + invocations) * a["log_bytes_per_invocation"] / 1e9
    storage_gb = 1_000_000 * a["mention_item_bytes"] / 1e9 * a["retention_days"] / 30
    rows = [
        (
            "API Gateway (webhook requests)",
            webhooks / 1e6 * price["apigw_rest_per_million_requests"],
            f"{webhooks:,.0f} requests",
        ),
        (
            "Lambda: webhook function",
            webhooks / 1e6 * price["lambda_per_million_requests"]
            + webhooks * a["webhook_lambda_ms"] / 1000 * a["api_memory_gb"] * price["lambda_per_gb_second"],
            f"{webhooks:,.0f} invocations x {a['webhook_lambda_ms']:.0f} ms",
        ),
        ("SQS", sqs_requests / 1e6 * price["sqs_per_million_requests"], f"{sqs_requests:,.0f} requests"),
        (
            "Lambda: ingest function",
            invocations / 1e6 * price["lambda_per_million_requests"]
            + ingest_seconds * a["ingest_memory_gb"] * price["lambda_per_gb_second"],
            f"{invocations:,.0f} batches, {ingest_seconds:,.0f} s",
        ),
        (
            "DynamoDB writes",
            write_units / 1e6 * price["dynamodb_per_million_write_units"],
            f"{write_units:,.0f} WRU ({write_units / 1e6:.2f} per mention, detector state included)",
        ),
        ("DynamoDB reads", read_units / 1e6 * price["dynamodb_per_million_read_units"], f"{read_units:,.0f} RRU"),
        (
            "DynamoDB storage, one month",
            storage_gb * price["dynamodb_storage_per_gb_month"],
            f"{storage_gb:.2f} GB of mentions kept {a['retention_days']:.0f} days",
        ),
        ("CloudWatch Logs", log_gb * price["cloudwatch_logs_per_gb_ingested"], f"{log_gb:.2f} GB"),
    ]
    return rows


def _per_incident(inc: dict[str, float], price: dict[str, float], a: dict[str, float]) -> list[tuple[str, float, str]]:
    callbacks = inc["sms_messages"] * a["status_callbacks_per_sms"] + 1  # + the inbound ACK webhook
    return [
        (
            "SMS (US rate)",
            inc["sms_segments"] * price["sms_per_segment_us"],
            f"{inc['sms_messages']:.0f} messages + ACK reply, {inc['sms_segments']:.0f} segments",
        ),
        (
            "API Gateway + Lambda (Twilio callbacks)",
            callbacks / 1e6 * (price["apigw_rest_per_million_requests"] + price["lambda_per_million_requests"]),
            f"{callbacks:.0f} requests",
        ),
        (
            "DynamoDB",
            inc["dynamodb_write_requests"] * 2 / 1e6 * price["dynamodb_per_million_write_units"]
            + inc["dynamodb_read_requests"] / 1e6 * price["dynamodb_per_million_read_units"],
            f"{inc['dynamodb_write_requests']:.0f} writes, {inc['dynamodb_read_requests']:.0f} reads",
        ),
    ]


def _fixed_monthly(price: dict[str, float], a: dict[str, float]) -> list[tuple[str, float, str]]:
    sweeps = 60 * 24 * 30
    return [
        (
            "Sweeper (once a minute)",
            sweeps / 1e6 * price["lambda_per_million_requests"]
            + sweeps * 0.2 * a["sweeper_memory_gb"] * price["lambda_per_gb_second"],
            f"{sweeps:,} invocations x 200 ms",
        ),
    ]


def _table(title: str, rows: list[tuple[str, float, str]]) -> float:
    print(f"\n{title}")
    for name, usd, basis in rows:
        print(f"  {name:<40} ${usd:>9.4f}   {basis}")
    total = sum(usd for _, usd, _ in rows)
    print(f"  {'total':<40} ${total:>9.4f}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", type=Path, help="bench/ingest.py --json output (measured now if absent)")
    parser.add_argument("--mentions", type=int, default=3000, help="mentions to replay when measuring ingest")
    parser.add_argument("--prices", type=Path, help="JSON overriding PRICES")
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    price = {**PRICES, **(json.loads(args.prices.read_text()) if args.prices else {})}
    fig = _ingest_figures(args.figures, args.mentions)
    if not fig.get("counted_exactly"):
        print("the ingest run did not count exactly; refusing to price it", file=sys.stderr)
        return 1
    incident = _measure_incident()
    print(f"prices: {PRICES_READ}" + (f" (overridden from {args.prices})" if args.prices else ""))
    print(
        f"measured: ingest {fig['mentions']:,} mentions in {fig['invocations']:,} batches of {fig['batch_size']}, "
        f"{fig['wcu_total']:,} WCU, {sum(fig['dynamodb_requests'].values()):,} DynamoDB requests, "
        f"handler CPU {fig['handler_cpu_seconds']:.1f} s; incident: "
        + ", ".join(f"{k} {v:g}" for k, v in incident.items())
    )
    per_million = _table("per million mentions", _per_million(fig, price, ASSUMPTIONS))
    per_incident = _table(
        "per incident (page, one escalation, ACK by SMS, notices)", _per_incident(incident, price, ASSUMPTIONS)
    )
    fixed = _table("fixed, per month", _fixed_monthly(price, ASSUMPTIONS))
    print(f"\nassumptions: {json.dumps(ASSUMPTIONS)}")
    print(
        f"example month, 3M mentions and 4 incidents: ${3 * per_million + 4 * per_incident + fixed:.2f} "
        f"(AWS free tiers ignored)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
