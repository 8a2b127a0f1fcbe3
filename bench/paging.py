"""Paging latency: from an alarm to the Twilio API call, against a bare `messages.create`.

    python -m bench.paging [--incidents 1000] [--warmup 20]

Starts its own local stack (the moto server in its own process, the fake Twilio API in this
one), then alternates, once per incident:

- Klaxon: what the ingest handler does once the detector has an alarm (app.py `ingest`,
  `chalicelib/flows.py` `ingest_batch`): `alerts.raise_incidents` opens the incident,
  `load_roster()`, `paging.start_escalation` pages step 1 through the default sender (the real
  `twilio` client, pointed at the fake).
- Klaxon, roster cached: the same with `paging.deployed_roster()` (validated once per
  container) in place of `load_roster()` (parses and validates the YAML on every call).
- Baseline: one bare `client.messages.create(to, from_, body, status_callback)` on a `twilio`
  client of its own, against the same fake server.

Both clocks start immediately before the call (`alerts.raise_incidents`, resp.
`messages.create`) and stop when the fake Twilio server has read the whole `messages.create`
request ("request received"); for Klaxon that is its first page of the incident (step 1 pages
two people; the second follows the first). A second pair of figures stops the clocks when
`messages.create` returns to the caller. All clocks are `time.perf_counter()` in this one
process. The order of the two alternates every incident, so machine noise hits both alike.

Two properties of moto 5.2 that DynamoDB does not have are kept out of the figures, outside
the timed part:
- A transaction deep-copies every table it touches, once per item, so the incident-opening
  transaction slows down linearly with the table (40 ms at 50 incidents, 260 ms at 300 here).
  Each incident is resolved, its escalation stopped and its items deleted once measured.
- moto keeps every model object it ever created (`BaseModel.instances_tracked`, for its
  dashboard), including each of those table copies: its memory and garbage-collection pauses
  grow with every transaction (6 GB and a 4x slower p50 after 3,000 incidents). The bench
  empties moto (`POST /moto-api/reset`), provisions the tables again and warms up again
  every `--reset-every` incidents (25; at 100 the collector's pauses still put 250 ms into
  the p99 of the two DynamoDB calls, at 25 it is 33 ms).

The DynamoDB calls Klaxon makes before its first send are counted and timed per incident.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from statistics import mean
from typing import Any

TARGET_ADDED_P99_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class _Sink(BaseHTTPRequestHandler):
    """Answers the fake's status callbacks 204 and does nothing (not what is measured)."""

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return


@dataclass
class _Calls:
    """DynamoDB calls between `start()` and `stop()`: operation names and time spent in them."""

    active: bool = False
    ops: list[str] = field(default_factory=list)
    seconds: float = 0.0
    _began: float = 0.0

    def start(self) -> None:
        self.active, self.ops, self.seconds = True, [], 0.0

    def stop(self) -> None:
        self.active = False

    def before(self, model: Any, **_: Any) -> None:
        if self.active:
            self.ops.append(model.name)
            self._began = time.perf_counter()

    def after(self, model: Any, **_: Any) -> None:
        if self.active:
            self.seconds += time.perf_counter() - self._began


@dataclass
class _TimedSender:
    """The default sender, noting when its first send of an incident starts and returns."""

    inner: Any
    calls: _Calls
    send_started: float | None = None
    send_returned: float | None = None

    def reset(self) -> None:
        self.send_started = self.send_returned = None

    def send(self, to: str, body: str, status_callback: str | None = None) -> Any:
        if self.send_started is None:
            self.send_started = time.perf_counter()
            self.calls.stop()
        result = self.inner.send(to, body, status_callback)
        if self.send_returned is None:
            self.send_returned = time.perf_counter()
        return result


def _forget(incident_id: str) -> None:
    """Delete every item of the incident's partition (incident, timeline, escalation, pages)."""
    from chalicelib.store.models import IncidentItem

    connection = IncidentItem._get_connection().connection  # type: ignore[attr-defined]
    table = IncidentItem.Meta.table_name
    keys = connection.client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"incident#{incident_id}"}},
        ProjectionExpression="pk, sk",
        ConsistentRead=True,
    )["Items"]
    for start in range(0, len(keys), 25):
        requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        connection.client.batch_write_item(RequestItems={table: requests})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20, help="untimed incidents and bare calls first")
    parser.add_argument("--reset-every", type=int, default=25, help="empty moto after this many incidents")
    args = parser.parse_args(argv)

    from klaxon import stack as local_stack
    from klaxon.fake_twilio import running_fake_twilio

    sink = ThreadingHTTPServer((local_stack.LOOPBACK, 0), _Sink)
    sink.daemon_threads = True
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["KLAXON_PUBLIC_URL"] = "https://klaxon.example.com"
    os.environ["KLAXON_SMS_STATUS_URL"] = f"http://{local_stack.LOOPBACK}:{sink.server_address[1]}/sms/status"
    try:
        # Status changes after "queued" are scheduled an hour out: no callback storm during the run.
        with local_stack.bench_moto("benchpg") as port, running_fake_twilio(step_delay=3600) as fake:
            os.environ.update(fake.environment())
            return _run(args, fake, port)
    finally:
        sink.shutdown()


def _reset_moto(port: int) -> None:
    """Drop everything moto holds (tables and its leaked table copies), then provision again."""
    from klaxon import stack as local_stack

    request = urllib.request.Request(f"http://{local_stack.LOOPBACK}:{port}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the local moto server
        response.read()
    local_stack.provision()


def _run(args: argparse.Namespace, fake: Any, port: int) -> int:
    from chalicelib import observability
    from chalicelib.alerts import service as alerts
    from chalicelib.detect.alarm import Alarm
    from chalicelib.incidents import service as incidents
    from chalicelib.paging import service as paging
    from chalicelib.paging import twilio_sms
    from chalicelib.playbooks.loader import default_playbooks, load_roster
    from chalicelib.store.models import on_dynamodb
    from klaxon import stack as local_stack

    local_stack.provision()
    playbooks = default_playbooks()
    by_id = {p.id: p for p in playbooks}
    calls = _Calls()
    sender = _TimedSender(twilio_sms.default_sender(), calls)

    def hook() -> None:
        """(Re-)attach the DynamoDB call counters: provisioning again may bind new clients."""
        for event, handler in (("before-call.dynamodb", calls.before), ("after-call.dynamodb", calls.after)):
            on_dynamodb(event, handler, remove=True)
            on_dynamodb(event, handler)

    config = twilio_sms.TwilioConfig.from_env()
    bare = twilio_sms.make_client(config)  # a client of its own: its own connection pool
    status_url = os.environ["KLAXON_SMS_STATUS_URL"]
    recipients = [p.phone for p in load_roster().people]

    @dataclass
    class Sample:
        to_request: float
        to_return: float
        dynamodb: float = 0.0  # time in DynamoDB calls before the first send

    klaxon: list[Sample] = []
    cached: list[Sample] = []
    baseline: list[Sample] = []
    roster_seconds: list[float] = []
    ddb_seconds: list[float] = []
    ddb_ops: Counter[str] = Counter()
    pages_per_incident: Counter[int] = Counter()

    def one_incident(i: int, get_roster: Callable[[], Any] = load_roster) -> Sample:
        alarm = alerts.BrandAlarm(
            "acme-telecom",
            Alarm(bucket_start=1_767_225_600 + 60 * i, observed=212, expected=23, ratio=9.2, window_seconds=300,
                  series="negative"),
        )
        before = seen[0]
        sender.reset()
        calls.start()
        t0 = time.perf_counter()
        # --- the ingest handler, from the alarm on ---
        opened = alerts.raise_incidents([alarm], playbooks)
        created = [o.incident for o in opened if o.created]
        r0 = time.perf_counter()
        roster = get_roster()
        if recording[0] and get_roster is load_roster:
            roster_seconds.append(time.perf_counter() - r0)
        for incident in created:
            paging.start_escalation(incident, by_id[incident.playbook], roster, time.time(), sender=sender)
        # --- end ---
        calls.stop()
        new = fake.messages_after(before)
        seen[0] = before + len(new)
        if len(created) != 1 or not new or sender.send_returned is None:
            raise RuntimeError(f"incident {i}: {len(created)} opened, {len(new)} SMS sent")
        if recording[0] and get_roster is load_roster:
            ddb_seconds.append(calls.seconds)
            ddb_ops.update(calls.ops)
            pages_per_incident[len(new)] += 1
        incident = created[0]
        incidents.transition(incident.id, incidents.RESOLVED, actor="bench", channel="bench")
        paging.stop_escalation(incident.id, incidents.RESOLVED, time.time())
        _forget(incident.id)
        observability.metrics.clear_metrics()  # a handler publishes them after the invocation
        return Sample(new[0].received_at - t0, sender.send_returned - t0, calls.seconds)

    def one_bare(i: int) -> Sample:
        before = seen[0]
        t0 = time.perf_counter()
        bare.messages.create(
            to=recipients[i % len(recipients)],
            from_=config.from_,
            body=f"KLAXON SEV1 Acme Telecom\nneg 212/5min, 9.2x usual (expected 23)\nReply ACK {1000 + i % 9000}",
            status_callback=status_url,
        )
        returned = time.perf_counter()
        new = fake.messages_after(before)
        seen[0] = before + len(new)
        return Sample(new[0].received_at - t0, returned - t0)

    seen = [0]
    recording = [False]
    runs: list[tuple[str, Callable[[int], Sample], list[Sample]]] = [
        ("klaxon", one_incident, klaxon),
        ("bare", one_bare, baseline),
        ("cached", lambda i: one_incident(i, paging.deployed_roster), cached),
    ]

    def warm(count: int) -> None:
        """Untimed rounds: first connections, table descriptions, caches."""
        recording[0] = False
        for j in range(count):
            for _, run, _ in runs:
                run(j)
        recording[0] = True

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    hook()
    warm(args.warmup)
    for i in range(args.incidents):
        if i and i % args.reset_every == 0:
            print(f"  {i}/{args.incidents} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
            _reset_moto(port)
            hook()
            warm(3)
        shift = i % len(runs)  # rotate who goes first, so drift and noise hit every series alike
        for _, run, out in runs[shift:] + runs[:shift]:
            out.append(run(i))
    wall = time.perf_counter() - started

    def ms(values: list[float], q: float) -> float:
        return 1000 * percentile(values, q)

    n = len(klaxon)
    print(
        f"paging bench: {n} incidents (+{args.warmup} warm-up), local moto server + fake Twilio, {wall:.0f}s wall, "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    print("  clock: from just before alerts.raise_incidents (Klaxon) / messages.create (bare)")
    for label, attr in (("to request received by Twilio", "to_request"), ("to messages.create returned", "to_return")):
        b = [getattr(s, attr) for s in baseline]
        print(f"  {label}:")
        print(f"    bare messages.create            p50 {ms(b, 50):7.1f} ms   p99 {ms(b, 99):7.1f} ms")
        for name, series in (("roster read per batch", klaxon), ("roster cached (what runs)", cached)):
            k = [getattr(s, attr) for s in series]
            added = ms(k, 99) - ms(b, 99)
            verdict = "met" if added < TARGET_ADDED_P99_MS else "MISSED"
            print(
                f"    {name:31s} p50 {ms(k, 50):7.1f} ms   p99 {ms(k, 99):7.1f} ms   "
                f"({percentile(k, 50) / percentile(b, 50):.1f}x / {percentile(k, 99) / percentile(b, 99):.1f}x bare); "
                f"adds p50 {ms(k, 50) - ms(b, 50):.1f} ms, p99 {added:.1f} ms "
                f"(target under {TARGET_ADDED_P99_MS:.0f} ms p99: {verdict})"
            )
    print("  Klaxon's own time (to request received, minus its DynamoDB calls before the send):")
    for name, series in (("roster read per batch", klaxon), ("roster cached (what runs)", cached)):
        own = [s.to_request - s.dynamodb for s in series]
        print(f"    {name:31s} p50 {ms(own, 50):7.1f} ms   p99 {ms(own, 99):7.1f} ms")
    per = {op: count / n for op, count in sorted(ddb_ops.items())}
    print(
        "  before Klaxon's first send: "
        + ", ".join(f"{op} x{count:g}" for op, count in per.items())
        + f" per incident; DynamoDB time p50 {ms(ddb_seconds, 50):.1f} ms p99 {ms(ddb_seconds, 99):.1f} ms, "
        f"mean {1000 * mean(ddb_seconds):.1f} ms"
    )
    print(
        f"  load_roster() per batch (before deployed_roster): p50 {ms(roster_seconds, 50):.1f} ms "
        f"p99 {ms(roster_seconds, 99):.1f} ms (paging.deployed_roster() validates once per container)"
    )
    print(f"  SMS per incident (step 1; the first is timed): {dict(sorted(pages_per_incident.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
