"""Incidents: exactly one open per (brand, playbook), a guarded lifecycle, an append-only timeline.

Opening is one DynamoDB transaction: the lock item `open#<brand>#<playbook>` (conditional on
not existing), the incident, its SMS code pointer and the first timeline entry. Two Lambdas
that see the same spike race on the lock; the loser merges its alarm into the winner's
incident instead of opening a second one (invariant 3). Status changes are conditional on the
current status, so an invalid or concurrent transition is refused rather than overwritten.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings, settings
from chalicelib.observability import TIME_TO_ACKNOWLEDGE, seconds
from chalicelib.store.models import IncidentItem, IncidentPointerItem, TimelineItem, bind

TRIGGERED = "triggered"
ACKNOWLEDGED = "acknowledged"
STATEMENT_APPROVED = "statement_approved"
PUBLISHED = "published"
RESOLVED = "resolved"
STATUSES = (TRIGGERED, ACKNOWLEDGED, STATEMENT_APPROVED, PUBLISHED, RESOLVED)

# Forward-only lifecycle; resolving is allowed from any open state (not every incident needs a statement).
ALLOWED: dict[str, frozenset[str]] = {
    TRIGGERED: frozenset({ACKNOWLEDGED, RESOLVED}),
    ACKNOWLEDGED: frozenset({STATEMENT_APPROVED, RESOLVED}),
    STATEMENT_APPROVED: frozenset({PUBLISHED, RESOLVED}),
    PUBLISHED: frozenset({RESOLVED}),
    RESOLVED: frozenset(),
}
_OPEN = "open"
_CODE_ATTEMPTS = 8
_MERGE_ATTEMPTS = 30


class InvalidTransition(ValueError):
    """The incident is not in a state from which this change is allowed (HTTP 409)."""


class IncidentNotFound(LookupError):
    """No incident with that id or code (HTTP 404)."""


@dataclass(frozen=True)
class Trigger:
    """Why an incident opens or grows: an alarm's figures, or a person's manual call."""

    actor: str
    channel: str
    summary: str
    observed: float = 0.0
    expected: float = 0.0
    ratio: float = 0.0


@dataclass(frozen=True)
class Opened:
    incident: IncidentItem
    created: bool


def _announce(incident: IncidentItem, entry: Any) -> None:
    """Tell outbound subscribers (chalicelib/outbound); never raises. Imported on first use: the
    webhook function never announces, and the outbound models cost ~20 ms of its cold start."""
    from chalicelib.outbound import service as outbound

    outbound.emit(incident, entry)


def _now() -> float:
    return time.time()


def _ms(ts: float) -> int:
    return int(ts * 1000)


def timeline_entry(
    incident_id: str, *, actor: str, action: str, channel: str, detail: str | None, at: float
) -> TimelineItem:
    from chalicelib.outbound.actions import ACTION_EVENTS, UNANNOUNCED

    event = action in ACTION_EVENTS  # marked in the same write: the outbox (chalicelib/outbound/service.py)
    return TimelineItem(
        f"incident#{incident_id}",
        f"t#{_ms(at):015d}#{secrets.token_hex(4)}",
        at=at,
        actor=actor,
        action=action,
        channel=channel,
        detail=detail,
        open_shard=UNANNOUNCED if event else None,
        opened_at=at if event else None,
    )


def _conn() -> Any:
    return IncidentItem._get_connection().connection  # type: ignore[attr-defined]


def open_or_update(
    *,
    brand: str,
    playbook: str,
    severity: str,
    trigger: Trigger,
    ack_seconds: int | None = None,
    response_seconds: int | None = None,
    cfg: Settings | None = None,
) -> Opened:
    """Open the (brand, playbook) incident, or merge this trigger into the one already open."""
    bind(cfg or settings())
    lock_key = (f"open#{brand}#{playbook}", "lock")
    for _ in range(_CODE_ATTEMPTS):
        now = _now()
        incident_id = f"inc_{int(now)}_{secrets.token_hex(4)}"
        code = f"{secrets.randbelow(9000) + 1000}"
        incident = IncidentItem(
            f"incident#{incident_id}",
            "meta",
            id=incident_id,
            code=code,
            brand=brand,
            playbook=playbook,
            severity=severity,
            status=TRIGGERED,
            opened_at=now,
            updated_at=now,
            opened_by=trigger.actor,
            summary=trigger.summary,
            observed=trigger.observed,
            expected=trigger.expected,
            peak_ratio=trigger.ratio,
            alarms=1,
            ack_due=now + ack_seconds if ack_seconds else None,
            response_due=now + response_seconds if response_seconds else None,
            open_shard=_OPEN,
        )
        first = timeline_entry(
            incident_id, actor=trigger.actor, action="opened", channel=trigger.channel, detail=trigger.summary, at=now
        )
        try:
            with TransactWrite(connection=_conn()) as tx:
                tx.save(
                    IncidentPointerItem(*lock_key, incident_id=incident_id),
                    condition=IncidentPointerItem.pk.does_not_exist(),
                )
                tx.save(
                    IncidentPointerItem(f"code#{code}", "code", incident_id=incident_id),
                    condition=IncidentPointerItem.pk.does_not_exist(),
                )
                tx.save(incident, condition=IncidentItem.pk.does_not_exist())
                tx.save(first)
            incident.version = 1
            _announce(incident, first)  # after the write; never raises (at-least-once, see outbound)
            return Opened(incident, created=True)
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
            if len(reasons) > 1 and reasons[0] != "ConditionalCheckFailed" and reasons[1] == "ConditionalCheckFailed":
                continue  # SMS code collision with another open incident: draw another
            if not reasons or reasons[0] != "ConditionalCheckFailed":
                raise
        # The lock exists: another alarm (maybe in a parallel Lambda) opened it first. Merge.
        try:
            lock = IncidentPointerItem.get(*lock_key, consistent_read=True)
        except DoesNotExist:
            continue  # resolved in between: try to open afresh
        return Opened(_merge(lock.incident_id, trigger), created=False)
    raise RuntimeError("could not allocate an incident code")


def _merge(incident_id: str, trigger: Trigger) -> IncidentItem:
    """Fold a continuing spike into the open incident: larger figures win, the alarm is counted.

    Version-checked update; under contention (many Lambdas alarming at once) the loser re-reads
    after a short jittered pause.
    """
    for attempt in range(_MERGE_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.005 * attempt))
        incident = get(incident_id)
        now = _now()
        actions = [
            IncidentItem.alarms.add(1),
            IncidentItem.updated_at.set(now),
        ]
        if trigger.observed > incident.observed:
            actions += [IncidentItem.observed.set(trigger.observed), IncidentItem.expected.set(trigger.expected)]
        if trigger.ratio > incident.peak_ratio:
            actions.append(IncidentItem.peak_ratio.set(trigger.ratio))
        entry = timeline_entry(
            incident_id,
            actor=trigger.actor,
            action="spike_continues",
            channel=trigger.channel,
            detail=trigger.summary,
            at=now,
        )
        try:
            with TransactWrite(connection=_conn()) as tx:  # the figures and their entry land together
                tx.update(incident, actions=actions)  # version-checked
                tx.save(entry, condition=TimelineItem.sk.does_not_exist())
        except TransactWriteError as exc:
            reasons = {r.code for r in (exc.cancellation_reasons or []) if r is not None}
            if reasons & {"ConditionalCheckFailed", "TransactionConflict"}:
                continue
            raise
        incident = get(incident_id)
        _announce(incident, entry)
        return incident
    raise RuntimeError(f"incident {incident_id} kept changing; merge abandoned")


def get(incident_id: str) -> IncidentItem:
    bind()
    try:
        return IncidentItem.get(f"incident#{incident_id}", "meta", consistent_read=True)
    except DoesNotExist as exc:
        raise IncidentNotFound(incident_id) from exc


def by_code(code: str) -> IncidentItem:
    """The incident an SMS reply's code refers to (codes are unique among open incidents)."""
    bind()
    try:
        pointer = IncidentPointerItem.get(f"code#{code}", "code", consistent_read=True)
    except DoesNotExist as exc:
        raise IncidentNotFound(code) from exc
    return get(pointer.incident_id)


def transition(
    incident_id: str, to_status: str, *, actor: str, channel: str, detail: str | None = None
) -> IncidentItem:
    """Move the incident forward; refuses anything the lifecycle does not allow."""
    if to_status not in STATUSES:
        raise InvalidTransition(f"unknown status {to_status!r}")
    incident = get(incident_id)
    if to_status not in ALLOWED[incident.status]:
        raise InvalidTransition(f"cannot go from {incident.status} to {to_status}")
    now = _now()
    actions = [IncidentItem.status.set(to_status), IncidentItem.updated_at.set(now)]
    if to_status == ACKNOWLEDGED:
        actions += [IncidentItem.acknowledged_at.set(now), IncidentItem.acknowledged_by.set(actor)]
    if to_status == PUBLISHED and incident.first_response_at is None:
        actions.append(IncidentItem.first_response_at.set(now))
    if to_status == RESOLVED:
        actions += [IncidentItem.resolved_at.set(now), IncidentItem.open_shard.remove()]
    entry = timeline_entry(incident_id, actor=actor, action=to_status, channel=channel, detail=detail, at=now)
    try:
        with TransactWrite(connection=_conn()) as tx:
            tx.update(incident, actions=actions, condition=IncidentItem.status == incident.status)
            if to_status == RESOLVED:
                tx.delete(
                    IncidentPointerItem(f"open#{incident.brand}#{incident.playbook}", "lock"),
                    condition=IncidentPointerItem.incident_id == incident_id,
                )
                tx.delete(IncidentPointerItem(f"code#{incident.code}", "code"))
            tx.save(entry)
    except TransactWriteError as exc:
        raise InvalidTransition(f"incident {incident_id} changed concurrently; reload and retry") from exc
    if to_status == ACKNOWLEDGED:  # once per incident: the transaction above is conditional on status
        seconds(TIME_TO_ACKNOWLEDGE, now - incident.opened_at)
    updated = get(incident_id)
    _announce(updated, entry)  # acknowledged / resolved; other statuses come as statement events
    return updated


def record(incident_id: str, *, actor: str, action: str, channel: str, detail: str | None = None) -> TimelineItem:
    """Append a timeline entry (pages sent, drafts, approvals...) without changing status."""
    incident = get(incident_id)
    entry = timeline_entry(incident_id, actor=actor, action=action, channel=channel, detail=detail, at=_now())
    entry.save(condition=TimelineItem.sk.does_not_exist())  # append-only: never overwrite an entry
    _announce(incident, entry)  # statement approved/published, response-time breach (others are ignored)
    return entry


def announce(incident_id: str, entry: TimelineItem) -> None:
    """Tell outbound subscribers about an entry the caller wrote in its own transaction (built with
    `timeline_entry`, so it carries the outbox mark the sweeper relays if this never runs)."""
    _announce(get(incident_id), entry)


def timeline(incident_id: str) -> list[TimelineItem]:
    bind()
    return list(TimelineItem.query(f"incident#{incident_id}", TimelineItem.sk.startswith("t#"), consistent_read=True))


def open_incidents() -> list[IncidentItem]:
    bind()
    return list(IncidentItem.open_index.query(_OPEN))


def check_breaches(now: float | None = None) -> list[tuple[str, str]]:
    """Record each response-time target an open incident has missed, once; returns what was new."""
    clock = _now() if now is None else now
    found: list[tuple[str, str]] = []
    for incident in open_incidents():
        due = []
        if incident.ack_due and incident.acknowledged_at is None and clock > incident.ack_due:
            due.append("acknowledge")
        if incident.response_due and incident.first_response_at is None and clock > incident.response_due:
            due.append("first_response")
        for target in due:
            if target in (incident.breaches or []):
                continue
            # The mark and its timeline entry in one transaction: a sweep dying between two writes would
            # leave the breach marked (so never recorded again) with no entry and no event.
            entry = timeline_entry(
                incident.id, actor="klaxon", action="target_breached", channel="scheduler", detail=target, at=_now()
            )
            try:
                with TransactWrite(connection=_conn()) as tx:
                    tx.update(incident, actions=[IncidentItem.breaches.set((incident.breaches or []) + [target])])
                    tx.save(entry, condition=TimelineItem.sk.does_not_exist())
            except TransactWriteError:
                continue  # changed concurrently; the next sweep sees it again
            incident = get(incident.id)
            _announce(incident, entry)
            found.append((incident.id, target))
    return found


def as_dict(incident: IncidentItem) -> dict[str, Any]:
    keys = (
        "id",
        "code",
        "brand",
        "playbook",
        "severity",
        "status",
        "opened_at",
        "updated_at",
        "opened_by",
        "summary",
        "observed",
        "expected",
        "peak_ratio",
        "alarms",
        "ack_due",
        "response_due",
        "acknowledged_at",
        "acknowledged_by",
        "first_response_at",
        "resolved_at",
        "breaches",
    )
    return {k: getattr(incident, k) for k in keys}
