"""Emit incident events to subscribers through SQS, and deliver them (the `outbound` SQS handler).

Delivery is at-least-once, per (event, subscriber):
- `emit` runs after the incident write has succeeded and enqueues one message per interested
  subscriber, so a failing subscriber never holds up another. It never raises: when SQS refuses
  the enqueue, the messages are parked in DynamoDB (`outbound#parked`, counted as
  OutboundEnqueueFailed) and the sweeper sends them again every minute (`retry_parked`) until SQS
  takes them; the incident write stands either way.
- A process can also die between the incident write and the enqueue. So every timeline entry that
  is an event is written marked unannounced (`open_shard = "announce"`, in the same write as the
  fact: a transactional outbox in the sparse `open-incidents` index), and the mark is removed once
  its messages are queued or parked. The sweeper relays entries still marked after a minute
  (`announce_pending`): at least once, whatever failed in between.
- Each event's id is derived from the incident id and the timeline entry's sort key, so a re-emit
  of the same fact carries the same `webhook-id` and receivers can drop duplicates.
- `deliver_batch` POSTs with a short timeout: 2xx done; 3xx/4xx (except 408/429) permanent, logged
  and counted, not retried; 5xx, 408, 429, timeouts and connection errors are reported in
  `batchItemFailures` after setting the message's visibility timeout to an exponential backoff
  (base x 2^(receives-1), capped, jittered; Retry-After honoured up to the cap). After the queue's
  maxReceiveCount receives, SQS moves the message to the DLQ.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from chalicelib.config import Settings, settings
from chalicelib.observability import count, logger
from chalicelib.outbound.config import subscribers
from chalicelib.outbound.formats import MissingSecret, render
from chalicelib.outbound.models import ACTION_EVENTS, Message, Subscriber, address_is_public

ENQUEUED = "OutboundEnqueued"
ENQUEUE_FAILED = "OutboundEnqueueFailed"
PARKED_PK = "outbound#parked"
PARKED_DAYS = 7  # an event older than a week is news to nobody
DELIVERED = "OutboundDelivered"
RETRIED = "OutboundRetried"
DROPPED = "OutboundDropped"  # permanent failures: 4xx, refused address, unknown subscriber

MAX_VISIBILITY = 43200  # SQS's limit (12 h)
_SQS_BATCH = 10
_INCIDENT_KEYS = (
    "id",
    "code",
    "brand",
    "playbook",
    "severity",
    "status",
    "summary",
    "opened_at",
    "observed",
    "expected",
    "peak_ratio",
    "alarms",
    "acknowledged_by",
    "breaches",
)


# --- emit -------------------------------------------------------------------------------------


def event_id(incident_id: str, timeline_sk: str) -> str:
    """Stable per fact: the same timeline entry always yields the same id (the Standard Webhooks webhook-id)."""
    return event_id_for_key(f"{incident_id}|{timeline_sk}")


def event_id_for_key(key: str) -> str:
    """The event id of the fact `key` names (`emit_event`'s key, or incident|timeline entry)."""
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:32]


SUBSCRIBER_VIEWER = "subscribers"  # who the incident link is signed for: every configured subscriber


def _link(code: str | None, status: str | None) -> str | None:
    """The incident page, signed (long form) for the subscribers for a day: a Slack channel or a
    Teams team the operator configured may open it, as a paged person may from their SMS."""
    from chalicelib.incidents.links import DEFAULT_TTL, incident_link
    from chalicelib.statements.links import LinkError

    base = os.environ.get("KLAXON_PUBLIC_URL")
    if not base or not code or status == "resolved":  # a resolved incident's short code is released
        return None
    try:
        token = incident_link(code, SUBSCRIBER_VIEWER, time.time() + DEFAULT_TTL)
    except (LinkError, ValueError):  # deployed without KLAXON_LINK_SECRET: no link rather than a dead one
        return None
    return f"{base.rstrip('/')}/i/{code}?t={token}"


def event_data(incident: Any, entry: Any) -> dict[str, Any]:
    snapshot = {k: getattr(incident, k, None) for k in _INCIDENT_KEYS}
    snapshot["breaches"] = list(snapshot["breaches"] or [])
    return {
        "incident": snapshot,
        "action": entry.action,
        "actor": entry.actor,
        "channel": entry.channel,
        "detail": entry.detail,
        "seq": entry.sk,
        "link": _link(snapshot["code"], snapshot["status"]),
    }


def emit(incident: Any, entry: Any, cfg: Settings | None = None) -> int:
    """Enqueue the event this timeline entry is (if any) for each subscriber that wants it; how many.

    Call only after the write that produced `entry` succeeded. Never raises (see the module docstring:
    at-least-once; an entry whose messages were neither queued nor parked stays marked for the sweeper).
    """
    try:
        event_type = ACTION_EVENTS.get(entry.action)
        if event_type is None:
            return 0
        cfg = cfg or settings()
        wanted = [s for s in subscribers(cfg) if s.wants(event_type, incident.brand)]
        if not wanted:
            _announced(entry)
            return 0
        data = event_data(incident, entry)
        evt = event_id(incident.id, entry.sk)
        bodies = [
            Message(event_id=evt, type=event_type, occurred_at=entry.at, subscriber=s.name, data=data).model_dump_json()
            for s in wanted
        ]
    except Exception:  # the subscribers file or the event could not be read: nothing to send or park
        logger.exception(
            "outbound event not built; the incident write stands",
            extra={"incident_id": getattr(incident, "id", None), "action": getattr(entry, "action", None)},
        )
        count(ENQUEUE_FAILED)
        return 0
    outcome = _send_or_park(bodies, evt, cfg)
    if outcome != LOST:
        _announced(entry)  # queued, or parked in DynamoDB for `retry_parked`: no longer the relay's
    if outcome != SENT:
        return 0
    count(ENQUEUED, len(bodies))
    return len(bodies)


def _announced(entry: Any) -> None:
    """Remove the timeline entry's outbox mark (and its time)."""
    from chalicelib.outbound.actions import UNANNOUNCED
    from chalicelib.store.models import TimelineItem

    if getattr(entry, "open_shard", None) is None:
        return
    clear_mark(entry, UNANNOUNCED, also=[TimelineItem.opened_at.remove()])


def clear_mark(item: Any, shard: str, *, also: Sequence[Any] = ()) -> None:
    """Take `item` off the outbox once its event is queued or parked: remove `open_shard` (and the
    `also` actions) if it is still `shard`. A failure only means the sweeper relays the event once
    more (receivers drop the copy by its `webhook-id`), so it is logged, never raised."""
    model = type(item)
    try:
        item.update(actions=[model.open_shard.remove(), *also], condition=model.open_shard == shard)
    except Exception as exc:  # noqa: BLE001 - another relay did it, or DynamoDB trouble
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            logger.info("outbox mark not cleared; the sweeper may send the event again",
                        extra={"pk": getattr(item, "pk", None), "sk": getattr(item, "sk", None)})


def announce_pending(
    cfg: Settings | None = None, *, now: float | None = None, grace_seconds: float = 60, limit: int = 100
) -> int:
    """The outbox relay (sweeper): emit the events of timeline entries still marked unannounced more
    than `grace_seconds` after they were written (their writer died, or SQS and DynamoDB both refused);
    messages queued. The incident snapshot sent is the incident as it is now. A relay racing the
    original writer can queue an event twice; receivers drop the copy by its `webhook-id`."""
    from chalicelib.outbound.actions import UNANNOUNCED
    from chalicelib.store.models import IncidentItem, TimelineItem, bind

    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    sent = 0
    for entry in TimelineItem.unannounced_index.query(
        UNANNOUNCED, TimelineItem.opened_at <= clock - grace_seconds, limit=limit
    ):
        try:
            incident = IncidentItem.get(entry.pk, "meta", consistent_read=True)
        except IncidentItem.DoesNotExist:
            _announced(entry)
            continue
        logger.warning("outbound event relayed from the timeline", extra={"incident_id": incident.id, "sk": entry.sk})
        sent += emit(incident, entry, cfg)
    return sent


def emit_event(
    event_type: str,
    *,
    brand: str,
    key: str,
    occurred_at: float,
    data: dict[str, Any],
    cfg: Settings | None = None,
    settled: Callable[[], None] | None = None,
) -> int:
    """Enqueue an event that is not an incident timeline entry (triage.breach, digest.daily) for each
    subscriber that wants it; how many. `key` names the fact (e.g. "triage.breach|acme|tq_..."), so a
    re-emit carries the same event id. Call after the write that recorded the fact; never raises.
    `settled()` runs once nothing is left to do for this event (queued, parked in DynamoDB for
    `retry_parked`, or wanted by nobody): the writer clears its outbox mark there."""
    try:
        cfg = cfg or settings()
        wanted = [s for s in subscribers(cfg) if s.wants(event_type, brand)]
        if not wanted:
            if settled:
                settled()
            return 0
        evt = event_id_for_key(key)
        payload = {"brand": brand, **data}
        bodies = [
            Message(event_id=evt, type=event_type, occurred_at=occurred_at, subscriber=s.name, data=payload)
            .model_dump_json()
            for s in wanted
        ]
    except Exception:
        logger.exception("outbound event not built; the write stands", extra={"event": event_type, "key": key})
        count(ENQUEUE_FAILED)
        return 0
    outcome = _send_or_park(bodies, evt, cfg)
    if outcome != LOST and settled:
        settled()
    if outcome != SENT:
        return 0
    count(ENQUEUED, len(bodies))
    return len(bodies)


SENT, PARKED, LOST = "sent", "parked", "lost"


def _send_or_park(bodies: list[str], evt: str, cfg: Settings) -> str:
    """Enqueue; if SQS refuses, keep the messages in DynamoDB for the sweeper. SENT, PARKED or LOST."""
    try:
        _send(bodies, cfg)
        return SENT
    except Exception:
        count(ENQUEUE_FAILED)
        try:
            from chalicelib.store.models import ParkedEventItem, bind

            bind(cfg)
            now = time.time()
            ParkedEventItem(
                PARKED_PK, f"{int(now * 1000):013d}#{evt}", bodies=bodies, expires=int(now) + PARKED_DAYS * 86400
            ).save()
        except Exception:
            logger.exception("outbound event not queued: SQS and DynamoDB both refused it", extra={"event_id": evt})
            return LOST
        logger.warning("outbound enqueue failed; parked for the sweeper", extra={"event_id": evt}, exc_info=True)
        return PARKED


def retry_parked(cfg: Settings | None = None, *, now: float | None = None, limit: int = 100) -> int:
    """Send the parked messages again, oldest first, deleting each item SQS took; messages sent.

    Stops at the first refusal (SQS is still down: the next sweep tries again). A message may reach
    SQS twice if a delete fails after its send; receivers drop the copy by its `webhook-id`.
    """
    from chalicelib.store.models import ParkedEventItem, bind

    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    sent = 0
    for item in ParkedEventItem.query(PARKED_PK, consistent_read=True, limit=limit):
        if item.expires <= clock:  # moto never expires items; DynamoDB does so lazily
            item.delete()
            continue
        try:
            _send(list(item.bodies), cfg)
        except Exception:
            logger.warning("parked outbound events still refused by SQS", extra={"parked": item.sk}, exc_info=True)
            break
        item.delete()
        sent += len(item.bodies)
    if sent:
        count(ENQUEUED, sent)
    return sent


def outbound_queue_url(cfg: Settings | None = None) -> str:
    from chalicelib.ingest.queue import _queue_url

    cfg = cfg or settings()
    return cfg.outbound_queue_url or _queue_url(cfg.endpoint_url, cfg.region, cfg.outbound_queue_name)


def _send(bodies: list[str], cfg: Settings) -> None:
    from chalicelib.ingest.queue import sqs_client

    client, url = sqs_client(cfg), outbound_queue_url(cfg)
    for start in range(0, len(bodies), _SQS_BATCH):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + _SQS_BATCH])]
        for _attempt in range(2):
            failed = client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
            if not failed:
                break
            ids = {f["Id"] for f in failed}
            entries = [e for e in entries if e["Id"] in ids]
        else:
            raise RuntimeError(f"SQS refused {len(entries)} outbound message(s): {failed[0].get('Code')}")


# --- deliver ----------------------------------------------------------------------------------

DONE, PERMANENT, RETRY = "done", "permanent", "retry"


@dataclass(frozen=True)
class Outcome:
    kind: str  # DONE | PERMANENT | RETRY
    reason: str
    retry_after: float | None = None


def classify(status: int) -> str:
    if 200 <= status < 300:
        return DONE
    if status in (408, 429) or status >= 500:
        return RETRY
    return PERMANENT  # 3xx (redirects are not followed) and other 4xx: retrying will not help


def backoff_seconds(receive_count: int, cfg: Settings, rand: Callable[[float, float], float] = random.uniform) -> int:
    """base x 2^(receives-1), capped, with equal jitter (half fixed, half random)."""
    ceiling = min(cfg.outbound_backoff_cap_seconds, cfg.outbound_backoff_base_seconds * 2 ** max(0, receive_count - 1))
    return int(min(MAX_VISIBILITY, rand(ceiling / 2, ceiling)))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: a receiver must not bounce us to an internal address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@lru_cache(maxsize=1)
def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _resolves_public(host: str, port: int) -> bool:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return bool(infos) and all(address_is_public(str(info[4][0]).split("%")[0]) for info in infos)


def post(subscriber: Subscriber, body: bytes, headers: dict[str, str], cfg: Settings) -> Outcome:
    """One HTTP attempt, classified."""
    parts = urlsplit(subscriber.url)
    try:
        if not cfg.allow_local_subscribers and not _resolves_public(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        ):
            return Outcome(PERMANENT, "refused: the host resolves to a private or reserved address")
    except OSError as exc:  # DNS failure: may be transient
        return Outcome(RETRY, f"cannot resolve host: {exc}")
    request = urllib.request.Request(subscriber.url, data=body, headers=headers, method="POST")
    try:
        with _opener().open(request, timeout=cfg.outbound_timeout_seconds) as response:
            response.read(1024)
            return Outcome(classify(response.status), f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        retry_after = None
        raw = exc.headers.get("Retry-After") if exc.headers else None
        if raw and raw.strip().isdigit():
            retry_after = float(raw.strip())
        return Outcome(classify(exc.code), f"HTTP {exc.code}", retry_after)
    except (urllib.error.URLError, OSError) as exc:  # timeouts, refused connections, TLS errors
        return Outcome(RETRY, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")


ATTEMPT_SECONDS = 10.0
"""Wall-clock bound on one delivery attempt, answer included. The socket timeout bounds each read, not the
whole answer: a receiver trickling its status line a byte every few seconds kept an attempt going for
minutes. 15 s of batch budget + 10 s < the function's 30 s."""


def post_within(subscriber: Subscriber, body: bytes, headers: dict[str, str], cfg: Settings,
                seconds: float = ATTEMPT_SECONDS) -> Outcome:
    """post(), given up after `seconds`: the attempt runs in a daemon thread that is left to finish on its
    own (each of its reads still times out), and the record is retried later. The receiver may already
    have the event; the webhook-id lets it de-duplicate, as for any retry after a lost answer."""
    box: list[Outcome | BaseException] = []

    def attempt() -> None:
        try:
            box.append(post(subscriber, body, headers, cfg))
        except BaseException as exc:  # handed to the caller's own handling
            box.append(exc)

    worker = threading.Thread(target=attempt, name="outbound-post", daemon=True)
    worker.start()
    worker.join(seconds)
    if not box:
        return Outcome(RETRY, f"no complete answer within {seconds:g} s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


@dataclass
class _Result:
    record: dict[str, Any]
    subscriber: str
    outcome: Outcome


BATCH_BUDGET_SECONDS = 15.0
"""No new delivery starts this long after the batch began (the outbound function's timeout is 30 s).
Records not tried come back later (RETRY). Without it, a slow receiver (3.5 s per answer is ordinary
for some chat webhooks) made ten records outlast the function: a Lambda timeout returns no partial
response, so SQS redelivered all ten, including those delivered, up to the DLQ's eight receives."""


def _deliver_group(
    subscriber: Subscriber | None,
    records: list[tuple[dict[str, Any], Message]],
    cfg: Settings,
    deadline: float | None = None,
) -> list[_Result]:
    """One subscriber's records, in batch order. After a retryable failure the rest wait for the
    next try without an attempt, so a dead receiver costs one timeout per batch, not ten; past
    `deadline` (time.monotonic()) nothing new is attempted."""
    results: list[_Result] = []
    blocked: Outcome | None = None
    for record, message in records:
        if subscriber is None:
            outcome = Outcome(PERMANENT, "subscriber no longer configured")
        elif blocked is None and deadline is not None and time.monotonic() > deadline:
            blocked = Outcome(RETRY, "the batch's time budget is spent")
            outcome = Outcome(RETRY, f"not tried: {blocked.reason}")
        elif blocked is not None:
            outcome = Outcome(RETRY, f"not tried: {blocked.reason}", blocked.retry_after)
        else:
            try:
                secret = os.environ.get(subscriber.secret_env) if subscriber.secret_env else None
                body, headers = render(subscriber, message, now=time.time(), secret=secret)
                outcome = post_within(subscriber, body, headers, cfg)
            except MissingSecret as exc:
                outcome = Outcome(RETRY, str(exc))
            except Exception as exc:  # a bug rendering one message must not sink the batch
                logger.exception("outbound render failed", extra={"subscriber": subscriber.name})
                outcome = Outcome(RETRY, f"{type(exc).__name__}: {exc}")
            if outcome.kind == RETRY:
                blocked = outcome
        results.append(_Result(record, message.subscriber, outcome))
    return results


def _queue_url_from_arn(arn: str, cfg: Settings) -> str:
    from chalicelib.ingest.queue import _queue_url

    return _queue_url(cfg.endpoint_url, cfg.region, arn.rsplit(":", 1)[-1])


def deliver_batch(event: dict[str, Any], cfg: Settings | None = None) -> dict[str, Any]:
    """The `outbound` SQS handler: deliver each record, return the partial-batch response.

    Records of different subscribers are delivered concurrently; a failed record is reported in
    `batchItemFailures` with its visibility set to the backoff, so only it comes back, later.
    """
    cfg = cfg or settings()
    deadline = time.monotonic() + BATCH_BUDGET_SECONDS
    configured = {s.name: s for s in subscribers(cfg)}  # an invalid file raises: the whole batch retries
    groups: dict[str, list[tuple[dict[str, Any], Message]]] = {}
    results: list[_Result] = []
    for record in event.get("Records", []):
        try:
            message = Message.model_validate_json(record["body"])
        except Exception as exc:  # malformed: keep it for inspection (it reaches the DLQ)
            results.append(_Result(record, "?", Outcome(RETRY, f"malformed message: {exc}"[:200])))
            continue
        groups.setdefault(message.subscriber, []).append((record, message))
    if groups:
        with ThreadPoolExecutor(max_workers=min(8, len(groups)), thread_name_prefix="outbound") as pool:
            futures = [
                pool.submit(_deliver_group, configured.get(name), recs, cfg, deadline) for name, recs in groups.items()
            ]
            for future in futures:
                results.extend(future.result())
    failures = []
    for r in results:
        receives = int((r.record.get("attributes") or {}).get("ApproximateReceiveCount", "1") or 1)
        log = {"subscriber": r.subscriber, "message_id": r.record.get("messageId"), "reason": r.outcome.reason}
        if r.outcome.kind == DONE:
            count(DELIVERED)
            continue
        if r.outcome.kind == PERMANENT:
            logger.warning("outbound delivery dropped (permanent failure)", extra=log)
            count(DROPPED)
            continue
        delay = backoff_seconds(receives, cfg)
        if r.outcome.retry_after is not None:
            delay = max(delay, int(min(r.outcome.retry_after, cfg.outbound_backoff_cap_seconds)))
        try:
            from chalicelib.ingest.queue import sqs_client

            sqs_client(cfg).change_message_visibility(
                QueueUrl=_queue_url_from_arn(r.record["eventSourceARN"], cfg),
                ReceiptHandle=r.record["receiptHandle"],
                VisibilityTimeout=delay,
            )
        except Exception as exc:  # the queue's own visibility timeout applies instead
            log["visibility_error"] = str(exc)[:200]
        logger.info("outbound delivery will be retried", extra={**log, "receives": receives, "delay": delay})
        count(RETRIED)
        failures.append({"itemIdentifier": r.record["messageId"]})
    return {"batchItemFailures": failures}
