"""Text each signer and approver when statements are drafted: the shortest path from a draft to a decision.

Every person a new draft needs (its signer and its approvers, once each across languages) gets one
SMS in their own language with a 12-character link (`/a/<code>?t=<token>`, kind APPROVALS,
chalicelib/incidents/links.py). The link opens whatever awaits that person's approval on the
incident at the moment they tap it: the current version, so a later edit never leaves them
approving stale text; the approval itself stays bound to the exact version hash shown
(chalicelib/statements/web.py). Where Klaxon is deployed this SMS is the *only* way a person gets
their link: the staff API refuses `"links": true` (KLAXON_API_APPROVAL_LINKS is off, SECURITY.md).
So a request that did not go out must be sent again, without ever texting anyone twice.

Each (drafting round, person) is claimed in DynamoDB before the send (`aprq#<round>#<person>`,
state `sending`), so a retried request or a second call for the same drafts texts nobody twice
(the same rule as pages). The send's outcome is then recorded on the claim, as paging does for a
page (chalicelib/paging/service.py):

- accepted by Twilio: `sent`; asking again answers "already".
- certainly not sent (Twilio refused before accepting it: 4xx, 429, 503; or no connection could be
  made; `SmsSendError.maybe_sent` is False): the claim is released (`send_failed`, conditional on
  the attempt that claimed it) with a retry time. The next request for the same drafts takes it at
  once; otherwise the sweeper (`sweep`, every minute) sends it again with exponential backoff, up
  to MAX_ATTEMPTS attempts in all (then `gave_up`), while something still awaits that person's
  approval and no later request has texted them (else `dropped`).
- refused because of the number itself (invalid, landline, replied STOP): `rejected`, not retried
  by the sweeper (the roster needs fixing); an explicit request for the same drafts tries again.
- outcome unknown (a read timeout or a 500/502/504 after the request went out, or the process died
  mid-send: a claim left `sending` for STALE_SENDING_SECONDS): `unknown`, never resent, since the
  SMS may have arrived. It is reported like every failure.

Every person not texted is reported with a reason (`Requested.skipped`, returned by the staff API
as `approval_requests.skipped`) and each failure lands on the incident's timeline
(`approval_request_failed`, `approval_request_sent` when the sweeper got it out).

An edit voids the approvals of the version it replaces (chalicelib/statements/service.py). The
people whose approval it voided, or whose change request it answers, are texted once per new
version that their approval is needed again, with the same short link (`request_reapproval`); the
editor is not, and neither is anyone who had not acted yet: their link already opens the current
version. Several quick edits therefore text only those who approved the version just replaced.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.incidents.links import APPROVALS, sms_token
from chalicelib.statements.models import Draft

log = logging.getLogger(__name__)

LINK_TTL = 24 * 3600

# Claim (send) states, as for pages.
SENDING = "sending"  # claimed; the SMS is being handed to Twilio (or the sender died doing it)
SENT = "sent"  # Twilio accepted it
SEND_FAILED = "send_failed"  # certainly not sent: released, retried (request or sweeper)
UNKNOWN = "unknown"  # may have been sent: never resent
REJECTED = "rejected"  # Twilio refused this number: not retried by the sweeper
GAVE_UP = "gave_up"  # MAX_ATTEMPTS attempts certainly failed
DROPPED = "dropped"  # the sweeper found it no longer needed (approved, resolved, superseded)
RETRY_SHARD = "aprq-retry"  # open_shard of a claim the sweeper must look at again (from `due`)

MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 60.0  # the sweeper runs every minute: 1, 2, 4, 8, 15 min between attempts (~30 min)
RETRY_MAX_SECONDS = 900.0
STALE_SENDING_SECONDS = 120.0
"""A claim still `sending` after this had its sender die (Lambda timeout) before or after the send."""

LANGUAGE_NAMES = {
    "en": {"en": "English", "he": "Hebrew"},
    "he": {"en": "אנגלית", "he": "עברית"},
}


@dataclass(frozen=True)
class Skipped:
    """Someone not texted by this call, why, and when the sweeper will try again (None: it will not)."""

    person: str
    reason: str
    retry_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"person": self.person, "reason": self.reason, "retry_at": self.retry_at}


@dataclass(frozen=True)
class Requested:
    """Who was texted, who had been already (this round), and who was not, each with a reason."""

    sent: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The staff API's `approval_requests`."""
        return {
            "texted": list(self.sent),
            "already": list(self.already),
            "skipped": [s.as_dict() for s in self.skipped],
        }


def people_to_ask(drafts: Sequence[Draft]) -> dict[str, list[str]]:
    """person id -> the languages they sign or approve in these drafts, signers first, in draft order."""
    asked: dict[str, list[str]] = {}
    for draft in drafts:
        for person in (draft.signer_id, *draft.approvers):
            langs = asked.setdefault(person, [])
            if draft.lang not in langs:
                langs.append(draft.lang)
    return asked


def request_text(
    *, brand: str, code: str, languages: Sequence[str], link: str, lang: str, edited_by: str | None = None
) -> str:
    """The SMS: at most two segments; the link line is never cut (only the first line is)."""
    from chalicelib.paging.sms import fit

    names = ", ".join(LANGUAGE_NAMES.get(lang, LANGUAGE_NAMES["en"]).get(x, x.upper()) for x in languages)
    if edited_by and lang == "he":
        head = f"קלקסון {brand}: ההודעה לאירוע {code} ({names}) נערכה על ידי {edited_by}; נדרש אישורך מחדש"
    elif edited_by:
        head = f"KLAXON {brand}: {edited_by} edited the statement for incident {code} ({names}); approve it again"
    elif lang == "he":
        head = f"קלקסון {brand}: הודעה לאירוע {code} ({names}) ממתינה לאישורך"
    else:
        head = f"KLAXON {brand}: the statement for incident {code} ({names}) awaits your approval"
    return fit(f"{head}\n{link}", 2, trim=head)


def round_key(drafts: Sequence[Draft]) -> str:
    """The same drafts (by version hash) make the same key: asking again is a no-op."""
    return hashlib.sha256("|".join(sorted(d.hash for d in drafts)).encode()).hexdigest()[:16]



def request_approvals(incident_id: str, drafts: Sequence[Draft], *, now: float) -> Requested:
    """Text everyone these drafts need; never raises (drafting must not fail because SMS did): whoever
    could not be texted is in `skipped`, with the reason."""
    try:
        return _request(incident_id, drafts, now)
    except Exception:  # noqa: BLE001 - DynamoDB trouble before any claim: say so for everyone
        log.exception("approval_requests_failed incident=%s", incident_id)
        return _everyone(people_to_ask(drafts), "approval requests could not be sent (internal error, see the logs)")


def request_reapproval(incident_id: str, draft: Draft, *, editor: str, now: float) -> Requested:
    """After `editor` saved `draft` (an edit): text those whose approval or change request of the version
    it replaced no longer counts (see the module docstring). Never raises."""
    from chalicelib.statements import service

    try:
        previous = service.draft_version(incident_id, draft.lang, draft.version - 1)
        state = service.approval_state(incident_id, draft.lang, previous)
        acted = {a.person for a in state.approvals} | {r.person for r in state.change_requests}
        needed = (draft.signer_id, *draft.approvers)
        people = [p for p in dict.fromkeys(needed) if p in acted and p != editor]
        if not people:
            return Requested()
        return _request(incident_id, [draft], now, only=people, editor=editor)
    except Exception:  # noqa: BLE001 - the edit is saved; the approvers' links still open it
        log.exception("reapproval_requests_failed incident=%s", incident_id)
        return Requested()


def _everyone(people: Sequence[str] | dict[str, Any], reason: str) -> Requested:
    return Requested(skipped=tuple(Skipped(p, reason) for p in people))


@dataclass(frozen=True)
class _Ctx:
    """What every send of one call shares."""

    incident: Any  # IncidentItem
    roster: Any  # Roster
    sender: Any  # SmsSender
    base: str
    now: float


def _request(
    incident_id: str,
    drafts: Sequence[Draft],
    now: float,
    *,
    only: Sequence[str] | None = None,
    editor: str | None = None,
) -> Requested:
    from chalicelib.incidents import service as incidents
    from chalicelib.paging.service import deployed_roster, public_url
    from chalicelib.paging.twilio_sms import TwilioNotConfigured, default_sender
    from chalicelib.store.models import bind

    people = {p: langs for p, langs in people_to_ask(drafts).items() if only is None or p in only}
    if not people:
        return Requested()
    base = public_url()
    if not base:
        return _everyone(people, "KLAXON_PUBLIC_URL is not set: there is no link to text")
    try:
        sender = default_sender()
    except TwilioNotConfigured:
        log.info("approval_requests_not_sent_sms_unconfigured incident=%s", incident_id)
        return _everyone(people, "SMS is not configured (KLAXON_TWILIO_*): nobody was texted")
    bind()
    ctx = _Ctx(incidents.get(incident_id), deployed_roster(), sender, base, now)
    key = round_key(drafts)
    sent, already, skipped = [], [], []
    for person_id, languages in people.items():
        try:
            outcome = _ask(ctx, f"aprq#{key}#{person_id}", person_id, languages, editor)
        except Exception:  # noqa: BLE001 - one person's trouble must not stop the others
            log.exception("approval_request_failed incident=%s person=%s", incident_id, person_id)
            outcome = Skipped(person_id, "could not be claimed or sent (internal error, see the logs)")
        if outcome == SENT:
            sent.append(person_id)
        elif isinstance(outcome, Skipped):
            skipped.append(outcome)
        else:
            already.append(person_id)
    log.info(
        "approval_requests incident=%s sent=%s already=%s skipped=%s",
        incident_id, sent, already, [s.person for s in skipped],
    )
    return Requested(tuple(sent), tuple(already), tuple(skipped))


def _text(ctx: _Ctx, person: Any, languages: Sequence[str], editor: str | None) -> str:
    from chalicelib.paging import messages
    from chalicelib.paging.service import brand_name

    lang = messages.language_for(person.languages)
    token = sms_token(ctx.incident.code, person.id, ctx.now + LINK_TTL, kind=APPROVALS)
    editor_name = editor
    if editor:
        try:
            editor_name = ctx.roster.person(editor).name_in(lang)
        except StopIteration:
            pass
    return request_text(
        brand=brand_name(ctx.incident.brand),
        code=ctx.incident.code,
        languages=languages,
        link=f"{ctx.base.rstrip('/')}/a/{ctx.incident.code}?t={token}",
        lang=lang,
        edited_by=editor_name,
    )


def _ask(ctx: _Ctx, sk: str, person_id: str, languages: Sequence[str], editor: str | None) -> str | Skipped:
    """Claim and send one person's request: SENT, "already", or Skipped (with the reason)."""
    from pynamodb.exceptions import PutError

    from chalicelib.statements.links import LinkError
    from chalicelib.store.models import ApprovalRequestItem

    try:
        person = ctx.roster.person(person_id)
    except StopIteration:
        return Skipped(person_id, "not in the roster: no number to text")
    try:
        text = _text(ctx, person, languages, editor)
    except LinkError as exc:  # deployed without KLAXON_LINK_SECRET: no link can be signed
        return Skipped(person_id, f"no link could be signed: {exc.reason}")
    pk = f"incident#{ctx.incident.id}"
    claim = ApprovalRequestItem(
        pk,
        sk,
        person_id=person_id,
        at=ctx.now,
        state=SENDING,
        attempts=1,
        langs=list(languages),
        editor=editor,
        updated_at=ctx.now,
        open_shard=RETRY_SHARD,  # if this process dies mid-send, the sweeper finds the claim (unknown)
        due=ctx.now + STALE_SENDING_SECONDS,
    )
    try:  # claimed before the send: a retry never texts twice
        claim.save(condition=ApprovalRequestItem.sk.does_not_exist())
    except PutError as exc:
        if not _conditional_failed(exc):
            raise
        taken = _retake(ApprovalRequestItem.get(pk, sk, consistent_read=True), ctx.now)
        if not isinstance(taken, ApprovalRequestItem):
            return taken
        claim = taken
    return _send(claim, person, text, ctx.sender, ctx.now)


def _conditional_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _retake(existing: Any, now: float) -> Any:
    """A second request for the same round and person found `existing`: "already" if it went out, the
    claim taken over (a conditional update) if it certainly did not, else Skipped with the reason."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.store.models import ApprovalRequestItem as Item

    person = existing.person_id
    state = existing.state or SENT  # claims written before states existed were sent
    if state == SENT:
        return "already"
    if state == UNKNOWN:
        return Skipped(person, _unknown_reason(existing.error))
    if state == DROPPED:
        return Skipped(person, existing.error or "no longer needed")
    if state == SENDING:
        if now - float(existing.updated_at or existing.at) > STALE_SENDING_SECONDS:
            _settle(existing, UNKNOWN, now, error="its sender stopped mid-send")
            return Skipped(person, _unknown_reason("its sender stopped mid-send"))
        return Skipped(person, "another request is sending it right now")
    attempt = int(existing.attempts or 1)
    try:  # send_failed, rejected or gave_up: nothing went out, and someone asks again
        existing.update(
            actions=[
                Item.state.set(SENDING),
                Item.attempts.set(attempt + 1),
                Item.updated_at.set(now),
                Item.open_shard.set(RETRY_SHARD),
                Item.due.set(now + STALE_SENDING_SECONDS),
            ],
            condition=(Item.state == state) & (Item.attempts == attempt),
        )
    except UpdateError as exc:
        if _conditional_failed(exc):
            return Skipped(person, "another request is sending it right now")
        raise
    return existing


def _unknown_reason(detail: str | None) -> str:
    why = f" ({detail})" if detail else ""
    return f"the send's outcome is unknown{why}: the SMS may have arrived, so it is not sent again"


def _backoff(attempt: int, retry_after: float | None) -> float:
    return max(retry_after or 0.0, min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1)))


def _at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def _settle(
    claim: Any,
    state: str,
    now: float,
    *,
    retry_at: float | None = None,
    error: str | None = None,
    code: int | None = None,
    sid: str | None = None,
) -> None:
    """Record the outcome of the attempt that holds `claim` (conditional on that attempt: a lost race
    changes nothing). Only a released claim (`retry_at`) stays in the sweeper's index."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.store.models import ApprovalRequestItem as Item

    def put(attribute: Any, value: Any) -> Any:
        return attribute.remove() if value is None else attribute.set(value)

    actions = [
        Item.state.set(state),
        Item.updated_at.set(now),
        put(Item.error, error[:500] if error else None),
        put(Item.error_code, code),
        put(Item.open_shard, RETRY_SHARD if retry_at is not None else None),
        put(Item.due, retry_at),
    ]
    if sid is not None:
        actions.append(Item.sid.set(sid))
    held = claim.state
    try:
        claim.update(
            actions=actions,
            condition=(Item.state == held) & (Item.attempts == int(claim.attempts or 1)),
        )
    except UpdateError as exc:
        if not _conditional_failed(exc):
            raise
        log.warning("approval_request_settle_lost pk=%s sk=%s state=%s", claim.pk, claim.sk, state)


def _send(claim: Any, person: Any, text: str, sender: Any, now: float) -> str | Skipped:
    """Hand a claimed request (state `sending`) to Twilio and record what happened on the claim."""
    from chalicelib.paging.sms import SendErrorKind, SmsSendError
    from chalicelib.paging.twilio_sms import mask

    incident_id = claim.pk.removeprefix("incident#")
    attempt = int(claim.attempts or 1)
    try:
        message = sender.send(person.phone, text)
    except SmsSendError as exc:
        detail = f"HTTP {exc.http_status}, code {exc.code}" if exc.http_status else str(exc.args[0])[:120]
        retry_at = None
        if exc.maybe_sent:
            state, reason = UNKNOWN, _unknown_reason(detail)
        elif exc.kind is SendErrorKind.RECIPIENT:
            state, reason = REJECTED, f"Twilio refused the number ({detail}): not retried; correct the roster"
        elif attempt >= MAX_ATTEMPTS:
            state, reason = GAVE_UP, f"Twilio refused it {attempt} times (last: {detail}); no more retries"
        else:  # busy, down, rate limited, or our configuration: nothing went out, try again later
            state, retry_at = SEND_FAILED, now + _backoff(attempt, exc.retry_after)
            reason = f"Twilio refused it ({detail}), so nothing was sent; the sweeper retries from {_at(retry_at)}"
        _settle(claim, state, now, retry_at=retry_at, error=detail, code=exc.code)
    except Exception as exc:  # noqa: BLE001 - not a classified send error: it may have gone out
        detail = type(exc).__name__
        state, retry_at, reason = UNKNOWN, None, _unknown_reason(detail)
        log.exception("approval_request_send_error incident=%s to=%s", incident_id, mask(person.phone))
        _settle(claim, state, now, error=detail)
    else:
        try:
            _settle(claim, SENT, now, sid=str(message.sid))
        except Exception:  # noqa: BLE001 - it went out; the claim stays `sending` and becomes unknown, never resent
            log.exception("approval_request_sent_unrecorded incident=%s sid=%s", incident_id, message.sid)
        return SENT
    log.warning(
        "approval_request_not_sent incident=%s to=%s state=%s attempt=%s",
        incident_id, mask(person.phone), state, attempt,
    )
    _record(incident_id, "approval_request_failed", f"{person.id}: {state}, attempt {attempt}: {reason}")
    return Skipped(person.id, reason, retry_at)


def _record(incident_id: str, action: str, detail: str) -> None:
    from chalicelib.incidents import service as incidents

    try:
        incidents.record(incident_id, actor="klaxon", action=action, channel="sms", detail=detail)
    except Exception:  # noqa: BLE001 - the timeline must not stop the sends; the claim holds the facts
        log.exception("timeline_record_failed incident=%s action=%s", incident_id, action)


# --- the sweeper: released requests are sent again ------------------------------------------------


def sweep(now: float | None = None, *, sender: Any = None, limit: int = 50) -> dict[str, int]:
    """Once a minute (app.py sweeper, through chalicelib/flows.py): send again each released request
    that is due, while something still awaits that person's approval; mark claims left `sending` by a
    sender that died as `unknown` (never resent). Returns how many claims ended how, for the log."""
    from chalicelib.store.models import ApprovalRequestItem, bind

    clock = time.time() if now is None else now
    bind()
    due = list(ApprovalRequestItem.retry_index.query(RETRY_SHARD, ApprovalRequestItem.due <= clock, limit=limit))
    outcomes: Counter[str] = Counter()
    for item in due:
        try:
            outcomes[_sweep_one(item, clock, sender)] += 1
        except Exception:  # noqa: BLE001 - one broken claim must not stop the others
            log.exception("approval_request_sweep_failed pk=%s sk=%s", item.pk, item.sk)
            outcomes["error"] += 1
    return dict(outcomes)


def _sweep_one(item: Any, now: float, sender: Any) -> str:
    from pynamodb.exceptions import DoesNotExist, UpdateError

    from chalicelib.incidents import service as incidents
    from chalicelib.paging.service import LazyTwilioSender, deployed_roster, public_url
    from chalicelib.store.models import ApprovalRequestItem as Item

    try:  # the index is eventually consistent; the item is not
        claim = Item.get(item.pk, item.sk, consistent_read=True)
    except DoesNotExist:
        return "gone"
    if claim.open_shard != RETRY_SHARD or float(claim.due or 0) > now:
        return "not_due"
    incident_id = claim.pk.removeprefix("incident#")
    person_id = claim.person_id
    if claim.state == SENDING:
        if now - float(claim.updated_at or claim.at) <= STALE_SENDING_SECONDS:
            return "not_due"
        _settle(claim, UNKNOWN, now, error="its sender stopped mid-send")
        reason = _unknown_reason("its sender stopped mid-send")
        _record(incident_id, "approval_request_failed", f"{person_id}: {UNKNOWN}: {reason}")
        return UNKNOWN
    if claim.state != SEND_FAILED:  # settled meanwhile: take it out of the index
        _settle(claim, claim.state or SENT, now, error=claim.error, code=claim.error_code)
        return "settled"
    base = public_url()
    if not base:
        log.error("approval_request_retry_without_public_url pk=%s sk=%s", claim.pk, claim.sk)
        return "not_configured"
    roster = deployed_roster()
    why_not, languages = _still_needed(claim, incident_id, roster)
    if why_not:
        _settle(claim, DROPPED, now, error=why_not)
        log.info("approval_request_dropped incident=%s person=%s why=%s", incident_id, person_id, why_not)
        return DROPPED
    attempt = int(claim.attempts or 1)
    try:  # take it: only one sweeper (or request) sends each attempt
        claim.update(
            actions=[
                Item.state.set(SENDING),
                Item.attempts.set(attempt + 1),
                Item.updated_at.set(now),
                Item.due.set(now + STALE_SENDING_SECONDS),
            ],
            condition=(Item.state == SEND_FAILED) & (Item.attempts == attempt),
        )
    except UpdateError as exc:
        if _conditional_failed(exc):
            return "taken"
        raise
    person = roster.person(person_id)
    ctx = _Ctx(incidents.get(incident_id), roster, sender or LazyTwilioSender(), base, now)
    outcome = _send(claim, person, _text(ctx, person, languages, claim.editor), ctx.sender, now)
    if outcome == SENT:
        _record(incident_id, "approval_request_sent", f"{person_id}: sent by the sweeper, attempt {attempt + 1}")
        return SENT
    return str(claim.state)


def _still_needed(claim: Any, incident_id: str, roster: Any) -> tuple[str | None, list[str]]:
    """(why it is no longer needed, or None; the languages awaiting the person's approval now).

    Needed while the incident is not resolved, the person is in the roster, something awaits their
    approval (the current versions: an edit since does not make their link useless), and no later
    request to them went out, may have, or will be retried: every request carries the same link."""
    from chalicelib.incidents import service as incidents
    from chalicelib.statements import service
    from chalicelib.store.models import ApprovalRequestItem as Item

    person_id = claim.person_id
    try:
        incident = incidents.get(incident_id)
    except incidents.IncidentNotFound:
        return "the incident no longer exists", []
    if incident.status == incidents.RESOLVED:
        return "the incident is resolved", []
    try:
        roster.person(person_id)
    except StopIteration:
        return "no longer in the roster", []
    claims = Item.query(claim.pk, Item.sk.startswith("aprq#"), consistent_read=True)
    covering = (None, SENT, SENDING, SEND_FAILED, UNKNOWN)  # went out, may have, or will be retried
    if any(o.person_id == person_id and float(o.at) > float(claim.at) and o.state in covering for o in claims):
        return "superseded by a later request to the same person", []
    pending = [d.lang for d in service.awaiting_approval(incident_id, person_id)]
    if not pending:
        return "nothing awaits their approval any more", []
    first = [lang for lang in claim.langs or [] if lang in pending]
    return None, first + [lang for lang in pending if lang not in first]
