"""Escalation: page the on-call chain by SMS until someone acknowledges (design invariant 4).

State, all in the incidents table (see the paging section of `chalicelib/store/models.py`):
- one escalation item per incident, `esc#state`: phase, round, step, the people the current
  step pages, and when its ack timeout runs out. Every move is conditional on its version, so
  two sweepers never both advance it.
- one page item per (incident, round, step, person), `page#r<round>s<step>#<person>`,
  created with a conditional put BEFORE the SMS is handed to the sender. Whoever creates it
  sends; anyone else finds it and does not. A sweeper that runs twice, two sweepers at once or
  a retried Lambda therefore page a person at most once per step.

Sending again is allowed only for a page whose send failed in a way that proves nothing went
out (`send_failed`: a retryable error without `maybe_sent`), and only by whoever wins a
conditional update of its state and attempt counter. A send that may have gone out (a 500 or a
read timeout: `maybe_sent`), or a claim whose sender vanished mid-send (`sending` for longer
than `STALE_SENDING_SECONDS`), becomes `unknown` and is never resent: escalation to the next
step on timeout covers it.

A failed delivery (status callback `failed`/`undelivered`, or the vendor refusing the number)
is recorded on the timeline; when every page of the current step has failed, nobody at that
step can answer, so the escalation advances at once instead of waiting for the timeout.

Every page goes to a phone number from the roster, resolved from the escalation policy's
targets: no inbound SMS or callback can name a number to page.

All times come from `now` arguments (epoch seconds or aware datetimes), so tests need no sleeps.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.config import settings
from chalicelib.incidents import service as incidents
from chalicelib.ingest.brands import load_brands
from chalicelib.observability import PAGES_FAILED, PAGES_SENT, count
from chalicelib.paging import messages
from chalicelib.paging.oncall import UnknownTarget, resolve_targets
from chalicelib.paging.sms import DeliveryState, SendErrorKind, SentMessage, SmsSender, SmsSendError
from chalicelib.paging.twilio_sms import TwilioNotConfigured, default_sender, mask, parse_status_callback
from chalicelib.playbooks.loader import default_playbooks, default_roster_file, load_roster
from chalicelib.playbooks.models import EscalationPolicy, Person, Playbook, Roster
from chalicelib.store.models import EscalationItem, IncidentItem, PageItem, bind

log = logging.getLogger(__name__)

STATE_SK = "esc#state"
ESCALATING = "escalating"
STEPS, FALLBACK, DONE = "steps", "fallback", "done"

# Page (send) states.
SENDING = "sending"  # claimed; the SMS is being handed over (or the sender died doing it)
SENT = "sent"  # the vendor accepted it
SEND_FAILED = "send_failed"  # retryable, and provably not sent: the next sweep may send again
UNKNOWN = "unknown"  # may have been sent: never resent
REJECTED = "rejected"  # the vendor refused: this number cannot get SMS, or our request is wrong
GAVE_UP = "gave_up"  # MAX_ATTEMPTS failed attempts
FAILED_SENDS = frozenset({REJECTED})
"""Sends that prove this person cannot be reached (not our outage or configuration): they count
towards "everyone at this step failed". A Twilio outage or bad credentials must not burn through
the whole chain in one sweep; those wait for the step's timeout like an unanswered page."""

MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 300.0
STALE_SENDING_SECONDS = 120.0
"""A claim older than this with no outcome: its sender died (Lambda timeout) before or after sending."""

_DELIVERY_RANK = {
    DeliveryState.PENDING: 0,
    DeliveryState.SENT: 1,
    DeliveryState.DELIVERED: 2,
    DeliveryState.FAILED: 2,
}
_DELIVERY_FAILED = frozenset({"failed", "undelivered", "canceled"})


# --- helpers ----------------------------------------------------------------------------------


def _ts(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime or epoch seconds")
        return now.timestamp()
    return float(now)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _put(attribute: Any, value: Any) -> Any:
    """SET the attribute, or REMOVE it for None (DynamoDB stores no nulls for optional attributes)."""
    return attribute.remove() if value is None else attribute.set(value)


def _conditional_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


class LazyTwilioSender:
    """`twilio_sms.default_sender()`, looked up at the first send: sweeping, acknowledging and
    stopping need no Twilio configuration, and a missing one fails the sends (kept as
    `send_failed` and retried), not the sweep or the ingest batch that opened the incident. The
    approval-request sweep (statements/notify.py) sends through it too."""

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        try:
            sender = default_sender()
        except TwilioNotConfigured as exc:
            raise SmsSendError(SendErrorKind.PERMANENT, f"Twilio not configured: {exc}") from exc
        return sender.send(to, body, status_callback)


def _sender(sender: SmsSender | None) -> SmsSender:
    return sender if sender is not None else LazyTwilioSender()


def deployed_roster() -> Roster:
    """The roster file, validated once per container (again only if the file changes).

    `load_roster()` parses and validates the whole YAML (20-30 ms): too slow to repeat between an
    alarm and its first page, or in every sweep. Handlers should pass this one to the paging calls.
    """
    path = default_roster_file()
    stat = path.stat()
    return _roster_at(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _roster_at(path: str, mtime_ns: int, size: int) -> Roster:
    return load_roster(Path(path))


def public_url() -> str | None:
    """KLAXON_PUBLIC_URL: where staff open incidents (the page's short link)."""
    return os.environ.get("KLAXON_PUBLIC_URL") or None


def status_callback_base() -> str | None:
    """KLAXON_SMS_STATUS_URL, else KLAXON_PUBLIC_URL + "/sms/status"; None: no delivery callbacks."""
    explicit = os.environ.get("KLAXON_SMS_STATUS_URL")
    if explicit:
        return explicit
    base = public_url()
    return f"{base.rstrip('/')}/sms/status" if base else None


def page_key(page: PageItem) -> str:
    """Identifies a page in its status callback URL (signed by Twilio along with the URL)."""
    return f"{page.incident_id}/{page.position}/{page.person}"


def _status_url(page: PageItem) -> str | None:
    base = status_callback_base()
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'page': page_key(page)})}"


@lru_cache(maxsize=4)
def _brand_names(path: Path) -> dict[str, str]:
    try:
        return {b.id: b.name for b in load_brands(path).brands}
    except Exception:  # noqa: BLE001 - a page must go out even if the brands file is broken
        log.exception("brand_names_unavailable path=%s", path)
        return {}


def brand_name(brand: str) -> str:
    """The brand's display name from the brands file (its id if unknown)."""
    return _brand_names(settings().brands_file).get(brand, brand)


def position_of(round_: int, step: int | None) -> str:
    """`r00s01` for round 0 step 1; `fb` for the fallback (zero-padded: positions sort in order)."""
    return "fb" if step is None else f"r{round_:02d}s{step:02d}"


def targets_of(esc: EscalationItem) -> list[str]:
    """The person ids the escalation's current position pages."""
    return [str(t) for t in esc.targets or []]


def _position(esc: EscalationItem) -> str:
    return position_of(int(esc.round), None if esc.phase == FALLBACK else int(esc.step))


def _describe(esc: EscalationItem) -> str:
    return "fallback" if esc.phase == FALLBACK else f"step {int(esc.step) + 1}, round {int(esc.round) + 1}"


def policy_for(roster: Roster, name: str) -> EscalationPolicy:
    policy = next((p for p in roster.escalation_policies if p.name == name), None)
    if policy is None:
        raise LookupError(f"no escalation policy {name!r} in the roster")
    return policy


def _step_targets(policy: EscalationPolicy, step: int | None, lead: str | None) -> list[str]:
    """The targets of `step` (None: the fallback); step 0 also pages the playbook's own schedule."""
    if step is None:
        return [policy.fallback]
    targets = list(policy.steps[step].targets)
    if step == 0 and lead and f"schedule:{lead}" not in targets:
        targets.insert(0, f"schedule:{lead}")
    return targets


def _resolve(targets: list[str], roster: Roster, now: float) -> list[str]:
    people: list[str] = []
    for target in targets:
        try:
            people += [p.id for p in resolve_targets([target], roster, _dt(now)) if p.id not in people]
        except UnknownTarget as exc:  # a roster edited mid-incident: page the others
            log.error("escalation_target_unknown target=%s error=%s", target, exc)
    return people


def _timeout(policy: EscalationPolicy, step: int | None) -> float:
    chosen = policy.steps[-1] if step is None else policy.steps[min(step, len(policy.steps) - 1)]
    return chosen.ack_timeout.total_seconds()


def _record(incident_id: str, action: str, detail: str, actor: str = "klaxon", channel: str = "sms") -> None:
    try:
        incidents.record(incident_id, actor=actor, action=action, channel=channel, detail=detail)
    except Exception:  # noqa: BLE001 - the timeline must not stop paging; the page item holds the facts
        log.exception("timeline_record_failed incident=%s action=%s", incident_id, action)


def _record_at(incident_id: str, action: str, detail: str, at: float) -> None:
    """A timeline entry stamped `at` (wall clock), for an incident the caller holds: written after
    the pages so it costs the page no time, yet sorted where it happened."""
    try:
        entry = incidents.timeline_entry(
            incident_id, actor="klaxon", action=action, channel="sms", detail=detail, at=at
        )
        entry.save(condition=type(entry).sk.does_not_exist())
    except Exception:  # noqa: BLE001 - as in _record
        log.exception("timeline_record_failed incident=%s action=%s", incident_id, action)


def get_escalation(incident_id: str) -> EscalationItem | None:
    bind()
    try:
        return EscalationItem.get(f"incident#{incident_id}", STATE_SK, consistent_read=True)
    except DoesNotExist:
        return None


def _escalation_and_incident(incident_id: str) -> tuple[EscalationItem | None, IncidentItem | None]:
    """Both items the sweep needs for one escalation, in one strongly consistent BatchGetItem
    (one round trip instead of two, per escalation and sweep, at the same read cost)."""
    bind()
    pk = {"S": f"incident#{incident_id}"}
    table = EscalationItem.Meta.table_name
    client = EscalationItem._get_connection().connection.client  # type: ignore[attr-defined]
    response = client.batch_get_item(
        RequestItems={table: {"Keys": [{"pk": pk, "sk": {"S": STATE_SK}}, {"pk": pk, "sk": {"S": "meta"}}],
                              "ConsistentRead": True}}
    )
    if response.get("UnprocessedKeys"):  # throttled: read them one by one (each raises or answers)
        try:
            return get_escalation(incident_id), incidents.get(incident_id)
        except incidents.IncidentNotFound:
            return get_escalation(incident_id), None
    by_sk = {item["sk"]["S"]: item for item in response["Responses"].get(table, [])}
    esc = by_sk.get(STATE_SK)
    incident = by_sk.get("meta")
    return (
        EscalationItem.from_raw_data(esc) if esc else None,
        IncidentItem.from_raw_data(incident) if incident else None,
    )


def pages(incident_id: str, position: str | None = None) -> list[PageItem]:
    """The page records of an incident (of one position if given), in escalation order."""
    bind()
    prefix = f"page#{position}#" if position else "page#"
    return list(PageItem.query(f"incident#{incident_id}", PageItem.sk.startswith(prefix), consistent_read=True))


# --- paging one position ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What one call did, for logs and tests."""

    sent: list[str] = field(default_factory=list)  # "<incident>/<position>/<person>"
    failed: list[str] = field(default_factory=list)
    advanced: list[str] = field(default_factory=list)  # incident ids
    stopped: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # escalations the sweep had to start itself

    def merge(self, other: Outcome) -> Outcome:
        self.sent += other.sent
        self.failed += other.failed
        self.advanced += other.advanced
        self.stopped += other.stopped
        self.started += other.started
        return self


def _link_token(incident: IncidentItem, person: Person, now: float) -> str | None:
    """The person's signed token for the incident page (valid a day); None if links cannot be signed."""
    from chalicelib.incidents.links import DEFAULT_TTL, sms_token
    from chalicelib.statements.links import LinkError

    try:
        return sms_token(incident.code, person.id, now + DEFAULT_TTL)
    except (LinkError, ValueError):  # deployed without KLAXON_LINK_SECRET: the page still goes, code only
        log.warning("page_link_unsigned incident=%s", incident.id)
        return None


def _page_text(incident: IncidentItem, person: Person, now: float | None = None) -> tuple[str, str]:
    lang = messages.language_for(person.languages)
    base = public_url()
    text = messages.page_text(
        severity=incident.severity,
        brand=brand_name(incident.brand),
        summary=incident.summary,
        code=incident.code,
        languages=[lang],
        public_url=base,
        token=_link_token(incident, person, time.time() if now is None else now) if base else None,
    )
    return text, lang


def _send(page: PageItem, person: Person, incident: IncidentItem, sender: SmsSender, now: float, out: Outcome) -> None:
    """Hand a claimed page (state `sending`, our attempt number) to the sender and record the outcome."""
    text, _ = _page_text(incident, person, now)
    attempt = int(page.attempts)
    claimed = (PageItem.state == SENDING) & (PageItem.attempts == attempt)
    key = page_key(page)
    try:
        sent = sender.send(person.phone, text, status_callback=_status_url(page))
    except SmsSendError as exc:
        retry_at: float | None = None
        if exc.maybe_sent:
            state = UNKNOWN
        elif exc.kind is SendErrorKind.RECIPIENT:
            state = REJECTED
        elif attempt >= MAX_ATTEMPTS:
            state = GAVE_UP
        else:  # retryable, or our configuration (fixable mid-incident): nothing went out, try again later
            state = SEND_FAILED
            retry_at = now + (exc.retry_after or min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1)))
        if exc.kind is SendErrorKind.PERMANENT:
            log.error("page_send_misconfigured page=%s code=%s error=%s", key, exc.code, exc)
        try:
            page.update(
                actions=[
                    PageItem.state.set(state),
                    _put(PageItem.next_attempt_at, retry_at),
                    PageItem.error.set(str(exc)[:500]),
                    _put(PageItem.error_code, exc.code),
                    PageItem.updated_at.set(now),
                ],
                condition=claimed,
            )
        except UpdateError as update_exc:
            if not _conditional_failed(update_exc):
                raise
        log.warning("page_failed page=%s to=%s state=%s kind=%s", key, mask(person.phone), state, exc.kind)
        action = {SEND_FAILED: "page_retry_scheduled", UNKNOWN: "page_unknown"}.get(state, "page_failed")
        _record(page.incident_id, action, f"{person.id} ({_label(page)}): {exc.kind}, code {exc.code}")
        out.failed.append(key)
        count(PAGES_FAILED)  # every refused or failed attempt: the PagesFailed alarm wants to know at once
        return
    page.update(
        actions=[
            PageItem.state.set(SENT),
            PageItem.sid.set(sent.sid),
            _put(PageItem.segments, sent.segments),
            PageItem.next_attempt_at.remove(),
            PageItem.updated_at.set(now),
        ],
        condition=claimed,
    )
    log.info("paged page=%s to=%s sid=%s", key, mask(person.phone), sent.sid)
    _record(page.incident_id, "paged", f"{person.id} ({_label(page)}), {sent.segments or '?'} SMS")
    out.sent.append(key)
    count(PAGES_SENT)


def _label(page: PageItem) -> str:
    match = re.fullmatch(r"r(\d+)s(\d+)", page.position)
    if not match:
        return "fallback"
    return f"step {int(match[2]) + 1}, round {int(match[1]) + 1}"


def _page_position(
    esc: EscalationItem,
    incident: IncidentItem,
    roster: Roster,
    sender: SmsSender,
    now: float,
    *,
    fresh: bool = False,
    judge: bool = True,
) -> tuple[Outcome, bool]:
    """Page everyone the current position targets who has no page record yet; retry due `send_failed` ones.

    Safe to call any number of times, concurrently: each send is preceded by a conditional write
    that only one caller wins. Returns the outcome and whether every page of the position failed.

    `fresh`: this caller has just moved the escalation to this position (or is creating it), so
    no page of it can be waiting for a retry: skip listing them, and go straight to the
    conditional puts, which alone decide who sends. One read fewer before the first page.
    `judge=False`: the caller decides about "every page failed" itself (False is returned).
    """
    out = Outcome()
    position = _position(esc)
    people = {p.id: p for p in roster.people}
    listed = [] if fresh else pages(esc.incident_id, position)
    existing = {p.person: p for p in listed}
    changed = fresh
    for person_id in targets_of(esc):
        person = people.get(person_id)
        if person is None:
            log.error("page_skipped_not_in_roster incident=%s person=%s", esc.incident_id, person_id)
            continue
        page = existing.get(person_id)
        if page is None:
            page = PageItem(
                f"incident#{esc.incident_id}",
                f"page#{position}#{person_id}",
                incident_id=esc.incident_id,
                position=position,
                person=person_id,
                phone=person.phone,
                lang=messages.language_for(person.languages),
                state=SENDING,
                attempts=1,
                created_at=now,
                updated_at=now,
            )
            try:
                page.save(condition=PageItem.sk.does_not_exist())
            except PutError as exc:
                if _conditional_failed(exc):
                    continue  # another sweeper claimed this page: it sends, we do not
                raise
            changed = True
            _send(page, person, incident, sender, now, out)
            existing[person_id] = page
        elif page.state == SEND_FAILED and (page.next_attempt_at or 0) <= now:
            attempt = int(page.attempts)
            try:
                page.update(
                    actions=[PageItem.state.set(SENDING), PageItem.attempts.set(attempt + 1),
                             PageItem.updated_at.set(now)],
                    condition=(PageItem.state == SEND_FAILED) & (PageItem.attempts == attempt),
                )
            except UpdateError as exc:
                if _conditional_failed(exc):
                    continue  # another sweeper is retrying it
                raise
            changed = True
            _send(page, person, incident, sender, now, out)
        elif page.state == SENDING and now - float(page.updated_at) > STALE_SENDING_SECONDS:
            changed = True
            try:
                page.update(
                    actions=[PageItem.state.set(UNKNOWN), PageItem.updated_at.set(now)],
                    condition=(PageItem.state == SENDING) & (PageItem.attempts == page.attempts),
                )
                _record(esc.incident_id, "page_unknown", f"{person_id} ({_label(page)}): sender vanished mid-send")
            except UpdateError as exc:
                if not _conditional_failed(exc):
                    raise
    # Whoever makes a page fail checks this after its own write (sender, status callback), so a
    # caller that changed nothing may judge by what it listed: the last failure is never missed.
    if not judge:
        return out, False
    return out, _all_failed(esc, pages(esc.incident_id, position) if changed else listed)


def _failed(page: PageItem) -> bool:
    return page.state in FAILED_SENDS or (page.delivery or "") in _DELIVERY_FAILED


def _all_failed(esc: EscalationItem, position_pages: Iterable[PageItem]) -> bool:
    """True when every person of the position has a page and every one of them failed."""
    by_person = {p.person: p for p in position_pages}
    targets = targets_of(esc)
    return bool(targets) and all(t in by_person and _failed(by_person[t]) for t in targets)


# --- moving the escalation --------------------------------------------------------------------


def _next_position(esc: EscalationItem, policy: EscalationPolicy) -> tuple[str, int, int | None]:
    """(phase, round, step) after the current position; step None is the fallback."""
    if esc.phase == STEPS:
        step, round_ = int(esc.step), int(esc.round)
        if step + 1 < len(policy.steps):
            return STEPS, round_, step + 1
        if round_ < policy.repeat:
            return STEPS, round_ + 1, 0
        return FALLBACK, round_, None
    return DONE, int(esc.round), None


def _advance(esc: EscalationItem, roster: Roster, now: float, why: str) -> EscalationItem | None:
    """Move to the next position (conditional on the version read); None if someone else moved it first."""
    policy = policy_for(roster, esc.policy)
    phase, round_, step = _next_position(esc, policy)
    if phase == DONE:
        return _stop(esc, "exhausted", now)
    targets = _resolve(_step_targets(policy, step, esc.lead), roster, now)
    try:
        esc.update(
            actions=[
                EscalationItem.phase.set(phase),
                EscalationItem.round.set(round_),
                EscalationItem.step.set(step if step is not None else int(esc.step)),
                EscalationItem.targets.set(cast(Any, targets)),
                EscalationItem.step_started_at.set(now),
                EscalationItem.due.set(now + _timeout(policy, step)),
                EscalationItem.updated_at.set(now),
            ]
        )
    except UpdateError as exc:
        if _conditional_failed(exc):
            return None
        raise
    _record(esc.incident_id, "escalated", f"to {_describe(esc)} ({why}): {', '.join(targets) or 'nobody'}")
    return esc


def _stop(esc: EscalationItem, reason: str, now: float) -> EscalationItem | None:
    """Mark the escalation done (leaves the index); None if it changed under us."""
    if esc.phase == DONE:
        return esc
    try:
        esc.update(
            actions=[
                EscalationItem.phase.set(DONE),
                EscalationItem.reason.set(reason),
                EscalationItem.open_shard.remove(),
                EscalationItem.updated_at.set(now),
            ]
        )
    except UpdateError as exc:
        if _conditional_failed(exc):
            return None
        raise
    _record(esc.incident_id, "escalation_stopped", reason)
    return esc


def stop_escalation(incident_id: str, reason: str, now: datetime | float) -> bool:
    """Stop an incident's escalation (acknowledged, resolved); True if this call stopped it."""
    clock = _ts(now)
    for _ in range(5):
        esc = get_escalation(incident_id)
        if esc is None or esc.phase == DONE:
            return False
        if _stop(esc, reason, clock) is not None:
            return True
    return False


def start_escalation(
    incident: IncidentItem,
    playbook: Playbook,
    roster: Roster,
    now: datetime | float,
    *,
    sender: SmsSender | None = None,
) -> EscalationItem:
    """Create the incident's escalation (once: a second call finds it) and page step 0.

    Call it when `incidents.open_or_update` returns `created=True`. Repeating the call (a retried
    Lambda) pages nobody twice.

    This is the path from an alarm to its first page, so it makes one DynamoDB call before the
    first SMS: that page's claim (conditional put, as always before a send). The escalation item
    is written right after the step's pages (conditional on not existing: one caller creates
    it), then the "escalation_started" entry, stamped with the time this call began so that it
    still sorts before the pages. Racing callers each claim step 0's pages (one wins each) and
    each try to create the item (one wins); the losers page whatever the winner's item says, as
    before. If the sends raise, the item is still written; if the process dies mid-send, the
    next sweep starts the escalation (and finds the page claimed).
    """
    bind()
    clock = _ts(now)
    wall = time.time()
    policy = policy_for(roster, playbook.escalation_policy)
    esc = EscalationItem(
        f"incident#{incident.id}",
        STATE_SK,
        incident_id=incident.id,
        playbook=playbook.id,
        policy=policy.name,
        lead=playbook.schedule,
        phase=STEPS,
        round=0,
        step=0,
        targets=_resolve(_step_targets(policy, 0, playbook.schedule), roster, clock),
        step_started_at=clock,
        due=clock + _timeout(policy, 0),
        started_at=clock,
        updated_at=clock,
        open_shard=ESCALATING,
        opened_at=clock,
    )
    chosen = _sender(sender)
    paging_now = incident.status == incidents.TRIGGERED
    try:
        if paging_now:
            _page_position(esc, incident, roster, chosen, clock, fresh=True, judge=False)
    finally:  # also when a send raised: the escalation must exist for the sweep to carry it on
        created = _create(esc)
        if created:
            _record_at(incident.id, "escalation_started", f"policy {policy.name}: {', '.join(targets_of(esc))}", wall)
    if created:
        # Judged only now that the item exists: a failed-delivery callback that came in before
        # it did found no escalation to advance, so this read is what sees that failure.
        if paging_now and _all_failed(esc, pages(incident.id, _position(esc))):
            _advance_early(incident.id, _position(esc), roster, chosen, clock)
            return get_escalation(incident.id) or esc
        return esc
    existing = get_escalation(incident.id)
    assert existing is not None
    if existing.phase != DONE and paging_now and _page_and_follow(existing, incident, roster, chosen, clock).advanced:
        return get_escalation(incident.id) or existing
    return existing


def _create(esc: EscalationItem) -> bool:
    """Write a new escalation item; False if the incident already has one."""
    try:
        esc.save()  # a new item with no version: conditional on not existing
    except PutError as exc:
        if _conditional_failed(exc):
            return False
        raise
    return True


def _page_and_follow(
    esc: EscalationItem, incident: IncidentItem, roster: Roster, sender: SmsSender, now: float, *, fresh: bool = False
) -> Outcome:
    """Page the current position; if nobody at it can be reached, move on at once."""
    out, all_failed = _page_position(esc, incident, roster, sender, now, fresh=fresh)
    if all_failed:
        out.merge(_advance_early(esc.incident_id, _position(esc), roster, sender, now))
    return out


def _sweep_one(esc: EscalationItem, roster: Roster, sender: SmsSender, now: float) -> Outcome:
    out = Outcome()
    # The index is eventually consistent; the items are not.
    fresh, incident = _escalation_and_incident(esc.incident_id)
    if fresh is None or fresh.phase == DONE:
        return out
    esc = fresh
    if incident is None:
        if _stop(esc, "incident_missing", now):
            out.stopped.append(esc.incident_id)
        return out
    if incident.status != incidents.TRIGGERED:
        if _stop(esc, incident.status, now):
            out.stopped.append(esc.incident_id)
        return out
    moved_here = False
    if now >= float(esc.due):
        moved = _advance(esc, roster, now, "no acknowledgement in time")
        if moved is None:  # another sweeper moved it: page what it now says (idempotent)
            moved = get_escalation(esc.incident_id)
        elif moved.phase != DONE:
            out.advanced.append(esc.incident_id)
            moved_here = True
        else:
            out.stopped.append(esc.incident_id)
        if moved is None or moved.phase == DONE:
            return out
        esc = moved
    return out.merge(_page_and_follow(esc, incident, roster, sender, now, fresh=moved_here))


def _advance_early(incident_id: str, position: str, roster: Roster, sender: SmsSender, now: float) -> Outcome:
    """Every page of `position` failed: move on now instead of waiting for the ack timeout."""
    out = Outcome()
    for _ in range(8):  # each round moves one position; positions whose pages all fail are skipped at once
        esc = get_escalation(incident_id)
        if esc is None or esc.phase == DONE or _position(esc) != position:
            return out
        if not _all_failed(esc, pages(incident_id, position)):
            return out
        incident = incidents.get(incident_id)
        if incident.status != incidents.TRIGGERED:
            return out
        moved = _advance(esc, roster, now, "every page of the step failed")
        if moved is None or moved.phase == DONE:
            return out
        out.advanced.append(incident_id)
        paged, all_failed = _page_position(moved, incident, roster, sender, now, fresh=True)
        out.merge(paged)
        if not all_failed:
            return out
        position = _position(moved)
    return out


def open_escalations() -> list[EscalationItem]:
    """Active escalations, from the sparse index (a query, never a scan)."""
    bind()
    return list(EscalationItem.open_index.query(ESCALATING))


def sweep(
    now: datetime | float,
    *,
    roster: Roster | None = None,
    playbooks: Iterable[Playbook] | None = None,
    sender: SmsSender | None = None,
) -> Outcome:
    """One pass over every active escalation: stop it if acknowledged/resolved, advance it when its
    step timed out, (re)page whoever of its current step is still owed a page. Run once a minute.

    Then start the escalation of any triggered incident that has none: the Lambda that opened it
    may have died before calling `start_escalation`, and an incident nobody is paged for is the
    one failure a pager must not have. `playbooks` (default: the deployed ones) are read only then.
    """
    clock = _ts(now)
    chosen = roster or deployed_roster()
    chosen_sender = _sender(sender)
    out = Outcome()
    listed = open_escalations()
    for esc in listed:
        try:
            out.merge(_sweep_one(esc, chosen, chosen_sender, clock))
        except Exception:  # noqa: BLE001 - one broken escalation must not stop the others
            log.exception("sweep_failed incident=%s", esc.incident_id)
    escalating = {esc.incident_id for esc in listed}  # these have one: no need to read it again
    for incident in incidents.open_incidents():
        if incident.status != incidents.TRIGGERED or incident.id in escalating:
            continue
        if get_escalation(incident.id) is not None:
            continue
        by_id = {p.id: p for p in (default_playbooks() if playbooks is None else playbooks)}
        playbook = by_id.get(incident.playbook)
        if playbook is None:
            log.error("escalation_without_playbook incident=%s playbook=%s", incident.id, incident.playbook)
            continue
        try:
            start_escalation(incident, playbook, chosen, clock, sender=chosen_sender)
            out.started.append(incident.id)
        except Exception:  # noqa: BLE001 - as above
            log.exception("escalation_start_failed incident=%s", incident.id)
    return out


# --- inbound SMS ------------------------------------------------------------------------------

_COMMAND = re.compile(r"^\s*(ack|אישור|אשר|resolve|סגירה|סגור)\s*[:#.\-]?\s*(\d{4})\s*[.!]?\s*$", re.IGNORECASE)
_ACK_WORDS = frozenset({"ack", "אישור", "אשר"})


def parse_command(body: str) -> tuple[str, str] | None:
    """("ack" | "resolve", code) for "ACK 4821", "ack4821", " Ack #4821 ", "אישור 4821", "RESOLVE 4821"."""
    match = _COMMAND.match(body or "")
    if not match:
        return None
    word = match[1].lower()
    return ("ack" if word in _ACK_WORDS else "resolve"), match[2]


def person_by_phone(roster: Roster, number: str) -> Person | None:
    cleaned = re.sub(r"[\s()\-.]", "", number or "")
    return next((p for p in roster.people if p.phone == cleaned), None)


def _may_act(person: Person, incident: IncidentItem, roster: Roster) -> bool:
    """Anyone the incident's escalation could page (or has paged) may acknowledge or resolve it.

    Before its escalation exists (the moment between opening and the first page, or if starting it
    failed), the escalation it would have is read from its playbook: the same people, no one else."""
    esc = get_escalation(incident.id)
    if esc is not None:
        if any(p.person == person.id for p in pages(incident.id)):
            return True
        policy_name, lead = esc.policy, esc.lead
    else:
        from chalicelib.playbooks.loader import default_playbooks

        playbook = next((p for p in default_playbooks() if p.id == incident.playbook), None)
        if playbook is None:
            return False
        policy_name, lead = playbook.escalation_policy, playbook.schedule
    try:
        policy = policy_for(roster, policy_name)
    except LookupError:
        return False
    targets = [t for s in range(len(policy.steps)) for t in _step_targets(policy, s, lead)] + [policy.fallback]
    schedules = {s.name: s for s in roster.schedules}
    for target in targets:
        kind, _, name = target.partition(":")
        if kind == "person" and name == person.id:
            return True
        schedule = schedules.get(name) if kind == "schedule" else None
        if schedule and (person.id in schedule.members or any(o.person == person.id for o in schedule.overrides)):
            return True
    return False


def _name(roster: Roster, person_id: str | None, lang: str) -> str:
    person = next((p for p in roster.people if p.id == person_id), None)
    return person.name_in(lang) if person else (person_id or "?")


def handle_inbound_sms(
    from_number: str, body: str, roster: Roster, now: datetime | float
) -> str | None:
    """Act on a (signature-verified) reply; returns the text to answer the sender with, or None.

    A number not in the roster changes nothing and gets no answer (None): we neither confirm that
    an incident exists nor page anyone because of it.
    """
    clock = _ts(now)
    person = person_by_phone(roster, from_number)
    if person is None:
        log.warning("inbound_sms_unknown_sender from=%s", mask(from_number))
        return None
    lang = messages.language_for(person.languages)
    command = parse_command(body)
    if command is None:
        return messages.reply_text("help", lang)
    verb, code = command
    try:
        incident = incidents.by_code(code)
    except incidents.IncidentNotFound:
        return messages.reply_text("unknown_code", lang, code=code)
    if not _may_act(person, incident, roster):
        _record(incident.id, "sms_refused", f"{person.id}: {verb} not allowed", actor=person.id)
        return messages.reply_text("not_allowed", lang, code=code, status=incident.status)
    target = incidents.ACKNOWLEDGED if verb == "ack" else incidents.RESOLVED
    try:
        incidents.transition(incident.id, target, actor=person.id, channel="sms")
    except incidents.InvalidTransition:
        try:
            incident = incidents.get(incident.id)
        except incidents.IncidentNotFound:
            return messages.reply_text("unknown_code", lang, code=code)
        if incident.status == incidents.RESOLVED:
            stop_escalation(incident.id, incidents.RESOLVED, clock)
            return messages.reply_text("already_resolved", lang, code=code)
        if verb == "ack" and incident.acknowledged_by:
            stop_escalation(incident.id, incidents.ACKNOWLEDGED, clock)
            return messages.reply_text("already_acknowledged", lang, code=code,
                                       by=_name(roster, incident.acknowledged_by, lang))
        return messages.reply_text("not_allowed", lang, code=code, status=incident.status)
    stop_escalation(incident.id, target, clock)
    name = person.name_in(lang)
    return messages.reply_text("acknowledged" if verb == "ack" else "resolved", lang, code=code, name=name)


# --- delivery status callbacks ----------------------------------------------------------------


def _page_from_key(key: str) -> PageItem | None:
    incident_id, _, rest = key.partition("/")
    position, _, person = rest.partition("/")
    if not (incident_id and position and person):
        return None
    bind()
    try:
        return PageItem.get(f"incident#{incident_id}", f"page#{position}#{person}", consistent_read=True)
    except DoesNotExist:
        return None


def page_key_from_url(url: str) -> str | None:
    """The `page` query parameter of a status callback URL (what the route passes as `page_key`)."""
    values = parse_qs(urlsplit(url).query).get("page")
    return values[0] if values else None


def handle_status_callback(
    params: dict[str, Any],
    *,
    page_key: str | None,
    roster: Roster | None = None,
    sender: SmsSender | None = None,
    now: datetime | float | None = None,
) -> str:
    """Record a (signature-verified) delivery status on its page; returns what happened, for logs.

    `page_key` is the `page` query parameter of the callback URL (we set it when sending; Twilio
    signs the URL, so it is as trustworthy as the form). A failed delivery lands on the timeline;
    if every page of the current step has now failed, the escalation advances at once.
    """
    update = parse_status_callback(params)
    page = _page_from_key(page_key) if page_key else None
    if page is None:
        log.warning("status_callback_unknown_page key=%s sid=%s", page_key, update.sid)
        return "unknown_page"
    if (page.sid and update.sid and page.sid != update.sid) or (update.to and update.to != page.phone):
        log.warning("status_callback_mismatch key=%s sid=%s", page_key, update.sid)
        return "mismatch"
    clock = _ts(now) if now is not None else datetime.now(UTC).timestamp()
    rank = _DELIVERY_RANK.get(update.state, 0)
    actions: list[Action] = [
        PageItem.delivery.set(update.vendor_status.lower()),
        PageItem.delivery_rank.set(rank),
        PageItem.updated_at.set(clock),
    ]
    if update.error_code is not None:
        actions.append(PageItem.error_code.set(update.error_code))
    if not page.sid and update.sid:
        actions.append(PageItem.sid.set(update.sid))
    try:
        forward = PageItem.delivery_rank.does_not_exist() | (PageItem.delivery_rank < rank)
        page.update(actions=actions, condition=forward)
    except UpdateError as exc:
        if _conditional_failed(exc):
            return "stale"  # an older status arriving late, or a repeat
        raise
    if update.state is not DeliveryState.FAILED:
        if update.state is DeliveryState.DELIVERED:
            _record(page.incident_id, "page_delivered", f"{page.person} ({_label(page)})")
        return update.vendor_status
    kind = update.error_kind or SendErrorKind.RETRYABLE
    count(PAGES_FAILED)  # accepted by Twilio, then failed or undelivered (once: the update above only moves forward)
    _record(page.incident_id, "page_undelivered",
            f"{page.person} ({_label(page)}): {update.vendor_status}, error {update.error_code} ({kind})")
    esc = get_escalation(page.incident_id)
    if esc is None or esc.phase == DONE or _position(esc) != page.position:
        return "failed"
    chosen = roster or deployed_roster()
    outcome = _advance_early(page.incident_id, page.position, chosen, _sender(sender), clock)
    return "failed_advanced" if outcome.advanced else "failed"
