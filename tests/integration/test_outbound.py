"""Outbound webhooks over the local stack: real moto SQS (queue + DLQ with a redrive policy), the
delivery handler called with Lambda-shaped events, and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from chalicelib.config import settings
from chalicelib.incidents import service as incidents
from chalicelib.incidents.service import Trigger
from chalicelib.outbound import service as outbound
from chalicelib.publish import service as publish
from chalicelib.publish.outbox import OutboxPublisher
from chalicelib.statements import service as statements
from chalicelib.store.models import ParkedEventItem
from klaxon.lambda_sqs import DeliveryStats, deliver, queue_arn, receive

pytestmark = pytest.mark.integration

SECRET = "whsec_" + "dGVzdC1vdXRib3VuZC1zaWduaW5nLXNlY3JldC0xMjM0NQ=="
LIFECYCLE = [
    "incident.opened",
    "incident.updated",
    "incident.response_time_breached",
    "incident.acknowledged",
    "statement.approved",
    "statement.published",
    "incident.resolved",
]
FACTS = {
    "product": {"en": "Golden Foods hummus 400g", "he": "חומוס גולדן פודס 400 גרם"},
    "what_we_know": {"en": "Listeria was found in one batch.", "he": "נמצאה ליסטריה באצווה אחת."},
    "what_we_are_doing": {"en": "We stopped the line.", "he": "עצרנו את הקו."},
    "next_update": {"en": "by 18:00 today", "he": "עד 18:00 היום"},
}


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; `script[path]` is the statuses to answer in turn (the last one repeats)."""

    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def answer(self, path: str) -> int:
        with self.lock:
            statuses = self.script.get(path, [200])
            return statuses.pop(0) if len(statuses) > 1 else statuses[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with rec.lock:
                rec.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = rec.answer(self.path)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Outbound:
    env: Any
    url: str
    dlq_url: str

    def pump(self, *, rounds: int = 50) -> DeliveryStats:
        """The event source mapping: receive, call deliver_batch, delete what it did not report failed."""
        stats = DeliveryStats()
        arn = queue_arn(self.env.sqs, self.url)
        idle = 0
        for _ in range(rounds):
            messages = receive(self.env.sqs, self.url, max_messages=10)
            if not messages:
                idle += 1
                if idle >= 2:
                    break
                continue
            idle = 0
            deliver(self.env.sqs, self.url, arn, outbound.deliver_batch, messages, stats)
        return stats

    def depth(self, url: str) -> int:
        attrs = self.env.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subscribers: list[dict[str, Any]]) -> None:
    path = tmp_path / "subscribers.yaml"
    path.write_text(json.dumps({"subscribers": subscribers}), encoding="utf-8")  # JSON is YAML
    monkeypatch.setenv("KLAXON_SUBSCRIBERS_FILE", str(path))
    settings.cache_clear()


@pytest.fixture
def out(env: Any, monkeypatch: pytest.MonkeyPatch) -> Outbound:
    monkeypatch.setenv("KLAXON_ALLOW_LOCAL_SUBSCRIBERS", "1")
    monkeypatch.setenv("KLAXON_OUTBOUND_BACKOFF_BASE_SECONDS", "0")  # redeliver at once, as if the backoff passed
    monkeypatch.setenv("KLAXON_OUTBOUND_TEST_SECRET", SECRET)
    monkeypatch.setenv("KLAXON_PUBLIC_URL", "https://klaxon.example")
    settings.cache_clear()
    name = settings().outbound_queue_name
    assert name.endswith("-outbound") and name != "klaxon-outbound"  # per-test namespace
    url = env.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    dlq_url = env.sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    return Outbound(env, url, dlq_url)


def open_incident(brand: str = "golden-foods", playbook: str = "golden-product-recall", **kwargs: Any) -> str:
    return incidents.open_or_update(
        brand=brand,
        playbook=playbook,
        severity="sev1",
        trigger=Trigger(actor="detector", channel="ingest", summary="neg 90/5min, 6x usual", observed=90, ratio=6),
        **kwargs,
    ).incident.id


def run_lifecycle() -> str:
    """opened, updated, ack target breached, acknowledged, statement approved and published, resolved."""
    incident_id = open_incident(ack_seconds=60)
    incidents.open_or_update(
        brand="golden-foods",
        playbook="golden-product-recall",
        severity="sev1",
        trigger=Trigger(actor="detector", channel="ingest", summary="neg 140/5min, 9x usual", observed=140, ratio=9),
    )
    assert incidents.check_breaches(now=time.time() + 3600) == [(incident_id, "acknowledge")]
    incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="maya-katz", channel="sms")
    en = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")[0]
    for person in ("sarah-whitfield", "avi-shapira", "james-okafor"):
        statements.approve(incident_id, "en", version_hash=en.hash, person_id=person)
    publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz", version_hash=en.hash)
    incidents.transition(incident_id, incidents.RESOLVED, actor="maya-katz", channel="api")
    return incident_id


def test_lifecycle_reaches_every_subscriber_in_order_with_valid_signatures(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        tmp_path,
        monkeypatch,
        [
            {
                "name": "generic",
                "url": receiver.url("/generic"),
                "format": "generic",
                "secret_env": "KLAXON_OUTBOUND_TEST_SECRET",
            },
            {"name": "slack", "url": receiver.url("/slack"), "format": "slack"},
            {
                "name": "teams",
                "url": receiver.url("/teams"),
                "format": "teams",
                "events": ["incident.opened", "incident.resolved"],
            },
            {"name": "other-brand", "url": receiver.url("/other"), "format": "slack", "brands": ["no-such-brand"]},
        ],
    )
    incident_id = run_lifecycle()
    assert out.depth(out.url) == 7 + 7 + 2  # one message per (event, subscriber) that wants it
    stats = out.pump()
    assert stats.failed == 0 and stats.deleted == 16
    assert out.depth(out.url) == 0 and out.depth(out.dlq_url) == 0

    generic = receiver.at("/generic")
    bodies = [Webhook(SECRET).verify(h.body, h.headers) for h in generic]  # raises on a bad signature
    ordered = sorted(bodies, key=lambda b: b["data"]["seq"])
    assert [b["type"] for b in ordered] == LIFECYCLE
    assert [b["type"] for b in bodies] == LIFECYCLE  # within one subscriber, batch order is kept
    assert {b["data"]["incident"]["id"] for b in bodies} == {incident_id}
    assert len({h.headers["webhook-id"] for h in generic}) == 7
    assert all(h.headers["webhook-id"] == b["data"]["event_id"] for h, b in zip(generic, bodies, strict=True))
    with pytest.raises(Exception):  # noqa: B017 - any verification error: the signature binds the body
        Webhook(SECRET).verify(generic[0].body.replace(b"sev1", b"sev3"), generic[0].headers)
    assert bodies[0]["data"]["link"].startswith("https://klaxon.example/i/") and bodies[-1]["data"]["link"] is None
    from chalicelib.incidents.links import verify_incident_link

    code, token = bodies[0]["data"]["link"].rsplit("/", 1)[1].split("?t=")
    assert verify_incident_link(token, code, time.time()) == "subscribers"  # the link opens the page
    assert bodies[2]["data"]["detail"] == "acknowledge"
    assert bodies[3]["data"]["actor"] == "maya-katz"

    slack = [h.json() for h in receiver.at("/slack")]
    assert len(slack) == 7
    assert "[SEV1]" in slack[0]["text"] and "Incident opened" in slack[0]["text"]
    assert slack[0]["blocks"][0]["type"] == "section" and "Golden" in slack[0]["blocks"][0]["text"]["text"]
    assert "<https://klaxon.example/i/" in slack[0]["blocks"][1]["elements"][0]["text"]
    assert "Missed the acknowledgement target" in slack[2]["text"]
    assert "Resolved by maya-katz" in slack[-1]["text"]

    teams = [h.json() for h in receiver.at("/teams")]
    assert len(teams) == 2
    card = teams[0]["attachments"][0]
    assert teams[0]["type"] == "message" and card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["text"].startswith("[SEV1]")
    facts = {f["title"]: f["value"] for f in card["content"]["body"][2]["facts"]}
    assert facts["Incident"] == incidents.get(incident_id).code and facts["Event"] == "incident.opened"
    assert card["content"]["actions"][0]["url"].startswith("https://klaxon.example/i/")
    assert receiver.at("/other") == []


def test_5xx_is_retried_with_backoff_and_succeeds_later(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.script["/flaky"] = [500, 503, 200]
    configure(tmp_path, monkeypatch, [{"name": "flaky", "url": receiver.url("/flaky"), "format": "slack"}])
    open_incident()
    messages = receive(out.env.sqs, out.url)
    assert len(messages) == 1
    arn = queue_arn(out.env.sqs, out.url)

    # First attempt: 500 -> reported failed, and its visibility set to the backoff (base 0 here: visible again).
    result = outbound.deliver_batch(_event(messages, arn))
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    again = receive(out.env.sqs, out.url)
    assert [m["MessageId"] for m in again] == [messages[0]["MessageId"]]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    stats = DeliveryStats()
    deliver(out.env.sqs, out.url, arn, outbound.deliver_batch, again, stats)  # 503
    assert stats.failed == 1
    stats = out.pump()  # 200
    assert stats.deleted == 1 and stats.failed == 0
    hits = receiver.at("/flaky")
    assert len(hits) == 3 and len({h.headers["webhook-id"] for h in hits}) == 1  # same event id on every attempt
    assert out.depth(out.url) == 0 and out.depth(out.dlq_url) == 0


def test_backoff_sets_the_visibility_timeout_exponentially(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.script["/down"] = [502]
    monkeypatch.setenv("KLAXON_OUTBOUND_BACKOFF_BASE_SECONDS", "30")
    configure(tmp_path, monkeypatch, [{"name": "down", "url": receiver.url("/down"), "format": "slack"}])
    open_incident()
    messages = receive(out.env.sqs, out.url)
    event = _event(messages, queue_arn(out.env.sqs, out.url))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
    calls: list[dict[str, Any]] = []
    real = outbound.deliver_batch.__globals__["backoff_seconds"]
    monkeypatch.setattr(outbound, "backoff_seconds", lambda n, cfg: calls.append({"n": n}) or real(n, cfg))
    assert outbound.deliver_batch(event)["batchItemFailures"]
    assert calls == [{"n": 3}]
    assert receive(out.env.sqs, out.url) == []  # hidden for 60-120 s, not the queue's default
    cfg = settings()
    delays = [outbound.backoff_seconds(n, cfg) for n in range(1, 10)]
    assert 15 <= delays[0] <= 30 and 60 <= delays[2] <= 120 and all(450 <= d <= 900 for d in delays[5:])


def test_failing_subscriber_lands_in_dlq_and_never_blocks_another(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.script["/dead"] = [500]
    configure(
        tmp_path,
        monkeypatch,
        [
            {
                "name": "dead",
                "url": receiver.url("/dead"),
                "format": "generic",
                "secret_env": "KLAXON_OUTBOUND_TEST_SECRET",
            },
            {
                "name": "alive",
                "url": receiver.url("/alive"),
                "format": "generic",
                "secret_env": "KLAXON_OUTBOUND_TEST_SECRET",
            },
        ],
    )
    open_incident()
    stats = out.pump()
    budget = settings().outbound_max_receives
    assert budget == 8
    assert len(receiver.at("/alive")) == 1  # once, though its sibling failed eight times
    assert len(receiver.at("/dead")) == budget
    assert stats.deleted == 1 and stats.failed == budget
    assert out.depth(out.url) == 0
    (dead,) = receive(out.env.sqs, out.dlq_url)
    body = json.loads(dead["Body"])
    assert body["subscriber"] == "dead" and body["type"] == "incident.opened"
    assert body["event_id"] == receiver.at("/alive")[0].headers["webhook-id"]


def test_4xx_is_permanent_but_408_and_429_are_retried(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.script["/gone"] = [404]
    receiver.script["/busy"] = [429, 408, 200]
    configure(
        tmp_path,
        monkeypatch,
        [
            {"name": "gone", "url": receiver.url("/gone"), "format": "slack"},
            {"name": "busy", "url": receiver.url("/busy"), "format": "teams"},
        ],
    )
    open_incident()
    stats = out.pump()
    assert len(receiver.at("/gone")) == 1  # given up at once: retrying a 404 will not help
    assert len(receiver.at("/busy")) == 3
    assert stats.deleted == 2 and stats.failed == 2
    assert out.depth(out.url) == 0 and out.depth(out.dlq_url) == 0


def test_unreachable_receiver_is_retried_and_private_address_refused_without_the_local_flag(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klaxon.stack import free_port

    closed = free_port()  # nothing listens there: connection refused
    configure(tmp_path, monkeypatch, [{"name": "closed", "url": f"http://127.0.0.1:{closed}/x", "format": "slack"}])
    open_incident()
    messages = receive(out.env.sqs, out.url)
    result = outbound.deliver_batch(_event(messages, queue_arn(out.env.sqs, out.url)))
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [messages[0]["MessageId"]]

    # A name that resolves to a private address is refused at delivery (no request) without the local flag.
    monkeypatch.setenv("KLAXON_ALLOW_LOCAL_SUBSCRIBERS", "0")
    url = receiver.url("/x").replace("127.0.0.1", "hooks.example.com")
    configure(tmp_path, monkeypatch, [{"name": "sneaky", "url": url, "format": "slack"}])
    monkeypatch.setattr(outbound.socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("169.254.169.254", 80))])
    outcome = outbound.post(outbound.subscribers()[0], b"{}", {}, settings())
    assert outcome.kind == outbound.PERMANENT and "private" in outcome.reason
    assert receiver.at("/x") == []


def test_enqueue_failure_never_fails_the_incident_write(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, [{"name": "s", "url": receiver.url("/s"), "format": "slack"}])
    monkeypatch.setenv("KLAXON_OUTBOUND_QUEUE_NAME", "no-such-queue-outbound")
    settings.cache_clear()
    incident_id = open_incident()
    assert incidents.get(incident_id).status == incidents.TRIGGERED
    incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="maya-katz", channel="api")
    assert [e.action for e in incidents.timeline(incident_id)] == ["opened", "acknowledged"]

    # A broken subscribers file does not fail the write either.
    bad = tmp_path / "bad.yaml"
    bad.write_text("subscribers:\n  - name: x\n    url: ftp://nope\n    format: slack\n", encoding="utf-8")
    monkeypatch.setenv("KLAXON_SUBSCRIBERS_FILE", str(bad))
    settings.cache_clear()
    incidents.transition(incident_id, incidents.RESOLVED, actor="maya-katz", channel="api")
    assert incidents.get(incident_id).status == incidents.RESOLVED


def test_events_sqs_refused_are_parked_and_sent_by_the_sweeper(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from klaxon.stack import lambda_client

    configure(tmp_path, monkeypatch, [{"name": "s", "url": receiver.url("/s"), "format": "slack"}])
    monkeypatch.setenv("KLAXON_OUTBOUND_QUEUE_URL", out.url + "-gone")  # SQS answers: no such queue
    settings.cache_clear()
    incident_id = open_incident()
    incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="maya-katz", channel="api")
    assert out.depth(out.url) == 0
    def parked() -> dict[str, str]:
        """event id -> parked item key, for every parked message."""
        items = ParkedEventItem.query(outbound.PARKED_PK, consistent_read=True)
        return {json.loads(body)["event_id"]: item.sk for item in items for body in item.bodies}

    first = parked()
    opened_and_acked = {outbound.event_id(incident_id, e.sk) for e in incidents.timeline(incident_id)}
    assert set(first) == opened_and_acked  # both events kept, none sent

    with lambda_client() as client:  # SQS still refusing: the sweep keeps them (and parks its own events)
        client.lambda_.invoke("sweeper", client.events.generate_cw_event("Scheduled Event", "", {}, []))
    still = parked()
    assert all(still.get(evt) == key for evt, key in first.items())

    monkeypatch.delenv("KLAXON_OUTBOUND_QUEUE_URL")  # SQS is back
    settings.cache_clear()
    with lambda_client() as client:
        client.lambda_.invoke("sweeper", client.events.generate_cw_event("Scheduled Event", "", {}, []))
    assert parked() == {}
    out.pump()
    delivered = [h.headers["webhook-id"] for h in receiver.at("/s")]
    assert set(still) <= set(delivered) and len(delivered) == len(set(delivered))  # every parked event, once
    assert outbound.retry_parked() == 0


def test_event_id_is_stable_per_timeline_entry(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, monkeypatch, [{"name": "s", "url": receiver.url("/s"), "format": "slack"}])
    incident_id = open_incident()
    (entry,) = incidents.timeline(incident_id)
    incident = incidents.get(incident_id)
    assert outbound.emit(incident, entry) == 1  # a re-emit of the same fact (e.g. from a sweeper)
    out.pump()
    ids = [h.headers["webhook-id"] for h in receiver.at("/s")]
    assert len(ids) == 2 and ids[0] == ids[1] == outbound.event_id(incident_id, entry.sk)


def _event(messages: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    from klaxon.lambda_sqs import to_event

    return to_event(messages, arn)


def unannounced() -> list[str]:
    """Sort keys of the timeline entries still marked unannounced (the outbox), whatever their age."""
    from chalicelib.outbound.actions import UNANNOUNCED
    from chalicelib.store.models import TimelineItem

    return [e.sk for e in TimelineItem.unannounced_index.query(UNANNOUNCED)]


def test_an_event_whose_writer_died_before_the_enqueue_is_relayed_once_by_the_sweeper(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The incident is opened and acknowledged, but the process 'dies' right after each write (the
    enqueue never runs). Both timeline entries carry the outbox mark written with them; the sweeper
    leaves them alone for a minute (their writer may still be at it), then relays each event once,
    with the event id the writer would have used; the pages and pings of a live writer are untouched."""
    from klaxon.stack import lambda_client

    configure(tmp_path, monkeypatch, [{"name": "s", "url": receiver.url("/s"), "format": "slack"}])
    assert unannounced() == []
    live = open_incident()  # a writer that lives: its entry is unmarked once queued
    assert unannounced() == []
    out.pump()
    monkeypatch.setattr(incidents, "_announce", lambda incident, entry: None)  # dies after each write
    incident_id = run_lifecycle_until_acknowledged()
    marked = unannounced()
    entries = {e.sk: e.action for e in incidents.timeline(incident_id)}
    assert sorted(entries[sk] for sk in marked) == ["acknowledged", "opened"]
    assert out.depth(out.url) == 0

    assert outbound.announce_pending() == 0  # within the minute: the writer may still enqueue
    with lambda_client() as client, monkeypatch.context() as later:  # the deployed sweeper, a minute later
        later.setattr(time, "time", lambda real=time.time: real() + 61)
        client.lambda_.invoke("sweeper", client.events.generate_cw_event("Scheduled Event", "", {}, []))
    assert unannounced() == []
    out.pump()
    ids = [h.headers["webhook-id"] for h in receiver.at("/s")]
    assert sorted(ids.count(outbound.event_id(incident_id, sk)) for sk in marked) == [1, 1]
    assert ids.count(outbound.event_id(live, next(e.sk for e in incidents.timeline(live)))) == 1
    assert outbound.announce_pending(now=time.time() + 3600) == 0  # relayed once


def run_lifecycle_until_acknowledged() -> str:
    incident_id = open_incident("acme-telecom", "acme-network-outage")
    incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="maya-katz", channel="api")
    return incident_id


def test_an_event_neither_queued_nor_parked_stays_marked_until_the_relay_sends_it(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS and the parking write both refuse: the entry keeps its mark, and once SQS is back the relay
    sends the event (where before this the event was logged as lost)."""
    configure(tmp_path, monkeypatch, [{"name": "s", "url": receiver.url("/s"), "format": "slack"}])
    monkeypatch.setenv("KLAXON_OUTBOUND_QUEUE_URL", out.url + "-gone")
    settings.cache_clear()

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("DynamoDB refused the parking write")

    monkeypatch.setattr(ParkedEventItem, "save", refuse)
    incident_id = open_incident()
    assert len(unannounced()) == 1
    monkeypatch.delenv("KLAXON_OUTBOUND_QUEUE_URL")
    settings.cache_clear()
    assert outbound.announce_pending(now=time.time() + 61) == 1
    out.pump()
    opened = next(e.sk for e in incidents.timeline(incident_id) if e.action == "opened")
    assert [h.headers["webhook-id"] for h in receiver.at("/s")] == [outbound.event_id(incident_id, opened)]
    assert unannounced() == []


def test_a_slow_receiver_cannot_make_the_batch_outlast_the_function(
    out: Outbound, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the batch's time budget no new delivery starts: those records come back later, and the ones
    delivered are not in batchItemFailures (a Lambda timeout would have redelivered all of them)."""
    configure(tmp_path, monkeypatch, [{"name": "slow", "url": receiver.url("/slow"), "format": "slack"}])
    run_lifecycle()
    messages = []
    while batch := receive(out.env.sqs, out.url, max_messages=10):
        messages += batch
    assert len(messages) == 7
    real_post = outbound.post

    def slow_post(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # a receiver that takes its time to answer
        return real_post(*args, **kwargs)

    monkeypatch.setattr(outbound, "post", slow_post)
    monkeypatch.setattr(outbound, "BATCH_BUDGET_SECONDS", 0.5)
    started = time.monotonic()
    result = outbound.deliver_batch(_event(messages, queue_arn(out.env.sqs, out.url)))
    assert time.monotonic() - started < 2.0
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    delivered = len(receiver.at("/slow"))
    assert 1 <= delivered <= 3 and len(failed) == 7 - delivered
    sent_ids = {m["MessageId"] for m in messages[:delivered]}
    assert not failed & sent_ids  # batch order: the first ones went out and are not sent again


def test_a_receiver_trickling_its_answer_is_given_up_after_the_attempt_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each byte of the status line arrives within the socket timeout, so no read times out; the attempt's
    wall-clock bound ends it, and the record is retried."""
    import socket

    from chalicelib.outbound.models import Subscriber

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                if stop.wait(0.2):
                    return
                conn.sendall(bytes([byte]))

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    monkeypatch.setenv("KLAXON_ALLOW_LOCAL_SUBSCRIBERS", "1")
    monkeypatch.setenv("KLAXON_OUTBOUND_TIMEOUT_SECONDS", "1")
    cfg = settings()
    subscriber = Subscriber.model_validate(
        {"name": "trickle", "url": f"http://127.0.0.1:{listener.getsockname()[1]}/h", "format": "slack"},
        context={"allow_local": True},
    )
    try:
        started = time.monotonic()
        outcome = outbound.post_within(subscriber, b"{}", {"Content-Type": "application/json"}, cfg, seconds=1.5)
        elapsed = time.monotonic() - started
        assert outcome.kind == outbound.RETRY and "no complete answer within 1.5 s" in outcome.reason
        assert 1.4 < elapsed < 2.5  # the whole answer would take ~8 s, and no single read exceeds 1 s
    finally:
        stop.set()
        server.join(5)
        listener.close()


def test_the_attempt_bound_passes_answers_and_errors_through(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.outbound.models import Subscriber

    subscriber = Subscriber(name="s", url="https://hooks.example/x", format="slack")
    monkeypatch.setattr(outbound, "post", lambda *a: outbound.Outcome(outbound.DONE, "HTTP 200"))
    assert outbound.post_within(subscriber, b"", {}, settings()).reason == "HTTP 200"

    def broken(*_: Any) -> Any:
        raise ValueError("bad status line")

    monkeypatch.setattr(outbound, "post", broken)
    with pytest.raises(ValueError, match="bad status line"):
        outbound.post_within(subscriber, b"", {}, settings())
