"""Multi-step work that crosses domains (Dispatch calls these flows), so handlers stay thin.

    ingest_batch:  SQS batch -> exactly-once counts -> detector -> incidents -> first pages -> triage queue
    open_by_hand:  a person opens an incident through the staff API -> first pages
    sweep_triage, sweep_approval_requests: the sweeper's parts beyond paging

Modules are imported inside the flows: each Lambda function loads only what its own events use
(the API function never loads the classifier or numpy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chalicelib.observability import ALARMS, DUPLICATES, MENTIONS_INGESTED, count, logger


@dataclass
class IngestSummary:
    """What one SQS batch did: the partial-batch response for Lambda, and figures for the log."""

    response: dict[str, Any]
    counted: int = 0
    duplicates: int = 0
    failed: int = 0
    alarms: list[str] = field(default_factory=list)
    incidents: list[tuple[str, bool]] = field(default_factory=list)
    queued: int = 0  # mentions added to a triage queue


def ingest_batch(event: dict[str, Any], now: float | None = None) -> IngestSummary:
    """Count a batch exactly once, feed the detector, open incidents and page for new ones."""
    from chalicelib.alerts import service as alerts
    from chalicelib.ingest.pipeline import process_batch
    from chalicelib.playbooks.loader import crisis_terms_for, default_playbooks

    playbooks = default_playbooks()
    response, result = process_batch(event, crisis_terms=lambda brand: crisis_terms_for(brand, playbooks))
    opened: list[Any] = []
    # Incidents open as each alarm is raised, before the detector saves the state recording it
    # (`alerts.feed`): a crash between the two must not lose the crisis.
    raised = alerts.feed_batch(
        result.touched,  # duplicates too: see BatchResult.touched
        lambda brand: alerts.params_for(brand, playbooks),
        on_alarm=lambda alarm: opened.extend(alerts.raise_incidents([alarm], playbooks)),
    )
    created = [o.incident for o in opened if o.created]
    if created:
        from chalicelib.paging import service as paging

        by_id = {p.id: p for p in playbooks}
        roster = paging.deployed_roster()  # validated once per container: 30 ms off the alarm-to-page path
        for incident in created:
            paging.start_escalation(incident, by_id[incident.playbook], roster, time.time() if now is None else now)
    # Triage last: it is idempotent, so if it fails the redelivered batch redoes only this part.
    from chalicelib.triage.service import triage_batch

    triaged = triage_batch([*result.counted, *result.already_counted], playbooks, now=now)
    if triaged.contended:
        # Posts that kept losing the race for a hot triage entry (a copy campaign, many invocations at
        # once): only their records go back to SQS, to be triaged again (as duplicates for counting),
        # not the whole batch.
        from chalicelib.ingest.pipeline import with_failures

        keys = dict.fromkeys(m.key for m in triaged.contended)
        response = with_failures(response, [i for key in keys for i in result.message_ids.get(key, [])])
        logger.warning("triage contended, records retried", extra={"mentions": len(keys)})
    count(MENTIONS_INGESTED, len(result.counted))
    count(DUPLICATES, result.duplicates)
    count(ALARMS, len(raised))
    return IngestSummary(
        response=response,
        counted=len(result.counted),
        duplicates=result.duplicates,
        failed=len(response["batchItemFailures"]),
        alarms=[f"{a.brand}: {a.alarm.explain()}" for a in raised],
        incidents=[(o.incident.id, o.created) for o in opened],
        queued=triaged.queued + triaged.joined,
    )


def sweep_triage(now: float | None = None) -> dict[str, int]:
    """The sweeper's triage part: queue entries past their response-time clock breach once each
    (`triage.breach`), then yesterday's digests that are due go out once per brand (`digest.daily`);
    then the events of either whose sweep died before queueing them are relayed (the outbox marks)."""
    from chalicelib.triage import digest, queue

    clock = time.time() if now is None else now
    breaches = queue.check_breaches(clock)
    digests = digest.send_due(clock)
    relayed = queue.announce_breaches(clock) + digest.announce_pending(clock)  # the outbox relays
    return {"triage_breaches": len(breaches), "digests": len(digests), "relayed_messages": relayed}


def sweep_approval_requests(now: float | None = None) -> dict[str, int]:
    """The sweeper's statements part: approval-request SMS whose send certainly failed are sent again
    (backoff, bounded attempts) while something still awaits that person's approval; claims whose
    sender died mid-send become `unknown` and are reported, never resent (chalicelib/statements/notify.py)."""
    from chalicelib.statements import notify

    outcomes = notify.sweep(time.time() if now is None else now)
    return {f"approval_requests_{state}": n for state, n in outcomes.items()}


class Refused(ValueError):
    """The request names something that does not exist or is not allowed (HTTP 422)."""


def open_by_hand(*, brand: Any, playbook_id: Any, summary: Any, actor: str, now: float | None = None) -> Any:
    """Open (or join) the incident of `playbook_id` for `brand`, paged like an alarm; returns `Opened`."""
    from chalicelib.incidents import service as incidents
    from chalicelib.paging import service as paging
    from chalicelib.playbooks.loader import default_playbooks

    playbook = next((p for p in default_playbooks() if p.id == playbook_id), None)
    if playbook is None:
        raise Refused(f"unknown playbook {str(playbook_id)[:64]!r}")
    if brand not in playbook.brands:
        raise Refused(f"playbook {playbook.id} does not cover brand {str(brand)[:64]!r}")
    if not isinstance(summary, str) or not summary.strip() or len(summary) > 300:
        raise Refused("summary must be 1-300 characters saying what is happening")
    targets = playbook.response_targets
    opened = incidents.open_or_update(
        brand=brand,
        playbook=playbook.id,
        severity=playbook.severity,
        trigger=incidents.Trigger(actor=actor, channel="api", summary=summary.strip()),
        ack_seconds=int(targets.acknowledge.total_seconds()),
        response_seconds=int(targets.first_public_response.total_seconds()),
    )
    if opened.created:
        logger.info("incident opened by hand", extra={"incident_id": opened.incident.id, "brand": brand})
        paging.start_escalation(
            opened.incident, playbook, paging.deployed_roster(), time.time() if now is None else now
        )
    return opened
