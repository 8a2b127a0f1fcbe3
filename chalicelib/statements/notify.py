"""Text each signer and approver when statements are drafted: the shortest path from a draft to a decision.

Until this, approval links only came back from the staff API (`"links": true`) for someone to pass
on by hand, at 3 a.m. Now every person a new draft needs (its signer and its approvers, once each
across languages) gets one SMS in their own language with a 12-character link
(`/a/<code>?t=<token>`, kind APPROVALS, chalicelib/incidents/links.py). The link opens whatever
awaits that person's approval on the incident at the moment they tap it: the current version, so a
later edit never leaves them approving stale text; the approval itself stays bound to the exact
version hash shown (chalicelib/statements/web.py).

Each (drafting round, person) is claimed in DynamoDB before the send, so a retried request or a
second call for the same drafts texts nobody twice (the same rule as pages). A send that fails is
logged and not retried: the link is also available from the staff API.

An edit voids the approvals of the version it replaces (chalicelib/statements/service.py). The
people whose approval it voided, or whose change request it answers, are texted once per new
version that their approval is needed again, with the same short link (`request_reapproval`); the
editor is not, and neither is anyone who had not acted yet: their link already opens the current
version. Several quick edits therefore text only those who approved the version just replaced.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.incidents.links import APPROVALS, sms_token
from chalicelib.statements.models import Draft

log = logging.getLogger(__name__)

LINK_TTL = 24 * 3600
LANGUAGE_NAMES = {
    "en": {"en": "English", "he": "Hebrew"},
    "he": {"en": "אנגלית", "he": "עברית"},
}


@dataclass(frozen=True)
class Requested:
    """Who was texted, who had been already (this round), and who could not be."""

    sent: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


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
    """Text everyone these drafts need; never raises (drafting must not fail because SMS did)."""
    try:
        return _request(incident_id, drafts, now)
    except Exception:  # noqa: BLE001 - Twilio or DynamoDB trouble: the links are still in the API
        log.exception("approval_requests_failed incident=%s", incident_id)
        return Requested()


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


def _request(
    incident_id: str,
    drafts: Sequence[Draft],
    now: float,
    *,
    only: Sequence[str] | None = None,
    editor: str | None = None,
) -> Requested:
    from pynamodb.exceptions import PutError

    from chalicelib.incidents import service as incidents
    from chalicelib.paging import messages
    from chalicelib.paging.service import brand_name, deployed_roster, public_url
    from chalicelib.paging.twilio_sms import TwilioNotConfigured, default_sender, mask
    from chalicelib.store.models import ApprovalRequestItem, bind

    base = public_url()
    if not drafts or not base:
        return Requested()
    try:
        sender = default_sender()
    except TwilioNotConfigured:
        log.info("approval_requests_not_sent_sms_unconfigured incident=%s", incident_id)
        return Requested()
    bind()
    incident = incidents.get(incident_id)
    roster = deployed_roster()
    key = round_key(drafts)
    sent, already, skipped = [], [], []
    editor_person = None
    if editor:
        try:
            editor_person = roster.person(editor)
        except StopIteration:
            editor_person = None
    for person_id, languages in people_to_ask(drafts).items():
        if only is not None and person_id not in only:
            continue
        try:
            person = roster.person(person_id)
        except StopIteration:
            skipped.append(person_id)
            continue
        try:  # claimed before the send: a retry never texts twice
            ApprovalRequestItem(f"incident#{incident_id}", f"aprq#{key}#{person_id}", person_id=person_id, at=now).save(
                condition=ApprovalRequestItem.sk.does_not_exist()
            )
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                already.append(person_id)
                continue
            raise
        lang = messages.language_for(person.languages)
        token = sms_token(incident.code, person_id, now + LINK_TTL, kind=APPROVALS)
        link = f"{base.rstrip('/')}/a/{incident.code}?t={token}"
        text = request_text(
            brand=brand_name(incident.brand),
            code=incident.code,
            languages=languages,
            link=link,
            lang=lang,
            edited_by=editor_person.name_in(lang) if editor_person else editor,
        )
        try:
            sender.send(person.phone, text)
        except Exception:  # noqa: BLE001 - one failed number must not stop the others
            log.exception("approval_request_send_failed incident=%s to=%s", incident_id, mask(person.phone))
            skipped.append(person_id)
            continue
        sent.append(person_id)
    log.info("approval_requests incident=%s sent=%s already=%s skipped=%s", incident_id, sent, already, skipped)
    return Requested(tuple(sent), tuple(already), tuple(skipped))
