"""Statements: versioned drafts, approvals bound to the exact text, and the publish gate (invariant 5).

Every version is an immutable item `stmt#<lang>#v<nnnn>`, written with a put conditional on the
key not existing, so two people editing at once cannot both make "version 3". Approvals are items
keyed by the version's hash *and* number (`appr#<hash>#v<nnnn>#<person>`): an edit makes a new
version, and only approvals of the current version count, which is how an edit voids earlier
approvals, even one that restores an earlier text word for word. Every step lands on the timeline.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.config import settings
from chalicelib.incidents import service as incidents
from chalicelib.ingest.brands import load_brands
from chalicelib.playbooks.loader import default_playbooks, load_roster
from chalicelib.playbooks.models import Playbook, Roster
from chalicelib.statements.hashing import same_hash, short, version_hash
from chalicelib.statements.models import Approval, ApprovalState, ChangeRequest, Draft
from chalicelib.statements.render import Facts, render_statement
from chalicelib.store.models import ApprovalItem, IncidentItem, StatementItem, StatementNoteItem, bind

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 20_000
MAX_NOTE_CHARS = 2_000
CHANNEL_WEB = "web"


class StatementError(Exception):
    """Base of the refusals below; `status` is the HTTP status a route answers with."""

    status = 400


class DraftNotFound(StatementError, LookupError):
    status = 404


class PlaybookNotFound(StatementError, LookupError):
    status = 404


class NotAnApprover(StatementError, PermissionError):
    """The person neither signs nor approves this statement."""

    status = 403


class DraftChanged(StatementError):
    """The request names a version that is no longer current (someone edited it)."""

    status = 409

    def __init__(self, message: str, current: Draft) -> None:
        super().__init__(message)
        self.current = current


class NotApproved(StatementError):
    """Publishing was asked for a version that lacks a required approval."""

    status = 409


class InvalidEdit(StatementError):
    status = 422


# --- reading ----------------------------------------------------------------------------------


def _pk(incident_id: str) -> str:
    return f"incident#{incident_id}"


def _sk(lang: str, version: int) -> str:
    return f"stmt#{lang}#v{version:04d}"


def _draft(item: StatementItem) -> Draft:
    return Draft(
        incident_id=item.incident_id,
        lang=item.lang,
        version=int(item.version),
        text=item.text,
        signer_id=item.signer_id,
        signer_name=item.signer_name,
        signer_role=item.signer_role,
        hash=item.hash,
        brand=item.brand,
        playbook=item.playbook,
        approvers=tuple(str(a) for a in item.approvers or ()),
        quorum=int(item.quorum),
        created_at=float(item.created_at),
        created_by=item.created_by,
        reason=item.reason,
        previous_hash=item.previous_hash,
    )


def current_draft(incident_id: str, lang: str) -> Draft:
    """The latest version of the statement in `lang`."""
    bind()
    items = StatementItem.query(
        _pk(incident_id),
        StatementItem.sk.startswith(f"stmt#{lang}#v"),
        scan_index_forward=False,
        limit=1,
        consistent_read=True,
    )
    for item in items:
        return _draft(item)
    raise DraftNotFound(f"no {lang!r} statement for incident {incident_id}")


def draft_version(incident_id: str, lang: str, version: int) -> Draft:
    bind()
    try:
        return _draft(StatementItem.get(_pk(incident_id), _sk(lang, version), consistent_read=True))
    except DoesNotExist as exc:
        raise DraftNotFound(f"no version {version} of the {lang!r} statement") from exc


def versions(incident_id: str, lang: str) -> list[Draft]:
    """Every version, oldest first."""
    bind()
    query = StatementItem.query(_pk(incident_id), StatementItem.sk.startswith(f"stmt#{lang}#v"), consistent_read=True)
    return [_draft(item) for item in query]


def languages(incident_id: str) -> list[str]:
    """Languages that have a statement draft for this incident."""
    bind()
    seen: dict[str, None] = {}
    for item in StatementItem.query(_pk(incident_id), StatementItem.sk.startswith("stmt#"), consistent_read=True):
        seen[item.lang] = None
    return list(seen)


def approval_state(incident_id: str, lang: str, draft: Draft | None = None) -> ApprovalState:
    """Approvals and change requests of the current version (only those count)."""
    bind()
    draft = draft or current_draft(incident_id, lang)
    approvals = [
        Approval(person=a.person, capacity=a.capacity, at=float(a.at), channel=a.channel)
        for a in ApprovalItem.query(
            _pk(incident_id),
            ApprovalItem.sk.startswith(f"appr#{draft.hash}#v{draft.version:04d}#"),
            consistent_read=True,
        )
        if a.version == draft.version and same_hash(a.hash, draft.hash)
    ]
    requests = [
        ChangeRequest(person=n.person, note=n.note, at=float(n.at))
        for n in StatementNoteItem.query(
            _pk(incident_id), StatementNoteItem.sk.startswith(f"note#{draft.hash}#"), consistent_read=True
        )
        if n.version == draft.version
    ]
    approved_at = {a.person: a.at for a in approvals}
    open_requests = sorted({r.person for r in requests if r.person not in approved_at or approved_at[r.person] < r.at})
    # Only people the version names count, in the capacity it names them: never trust the stored label alone.
    signer_approved = any(a.person == draft.signer_id for a in approvals)
    approver_count = len({a.person for a in approvals if a.person in draft.approvers and a.person != draft.signer_id})
    return ApprovalState(
        draft=draft,
        approvals=tuple(sorted(approvals, key=lambda a: a.at)),
        change_requests=tuple(sorted(requests, key=lambda r: r.at)),
        signer_approved=signer_approved,
        approver_count=approver_count,
        quorum=draft.quorum,
        open_change_requests=tuple(open_requests),
    )


def awaiting_approval(incident_id: str, person_id: str) -> list[Draft]:
    """The current versions that name `person_id` (signer or approver) and lack their approval: what
    their texted link (`/a/<code>`) opens, and what an approval request retried by the sweeper is for."""
    pending = []
    for lang in languages(incident_id):
        state = approval_state(incident_id, lang)
        done = any(a.person == person_id for a in state.approvals)
        if state.draft.capacity_of(person_id) is not None and not done:
            pending.append(state.draft)
    return pending


# --- drafting and editing ---------------------------------------------------------------------


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def brand_name(brand: str) -> str:
    """The brand's display name from the brands file (its id if the file does not list it)."""
    for b in load_brands(settings().brands_file).brands:
        if b.id == brand:
            return b.name
    return brand


def _put_version(draft: Draft) -> Draft:
    """Write a new version; refuses (DraftChanged) if that version number was taken meanwhile."""
    item = StatementItem(
        _pk(draft.incident_id),
        _sk(draft.lang, draft.version),
        incident_id=draft.incident_id,
        lang=draft.lang,
        version=draft.version,
        text=draft.text,
        signer_id=draft.signer_id,
        signer_name=draft.signer_name,
        signer_role=draft.signer_role,
        hash=draft.hash,
        brand=draft.brand,
        playbook=draft.playbook,
        approvers=list(draft.approvers),
        quorum=draft.quorum,
        created_at=draft.created_at,
        created_by=draft.created_by,
        reason=draft.reason,
        previous_hash=draft.previous_hash,
    )
    try:
        item.save(condition=StatementItem.sk.does_not_exist())
    except PutError as exc:
        if _conditional_failed(exc):
            current = current_draft(draft.incident_id, draft.lang)
            raise DraftChanged(
                "someone else changed this draft at the same moment; review the new one", current
            ) from exc
        raise
    return draft


def _conditional_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _latest_or_none(incident_id: str, lang: str) -> Draft | None:
    try:
        return current_draft(incident_id, lang)
    except DraftNotFound:
        return None


def draft_for_incident(
    incident: IncidentItem,
    playbook: Playbook,
    roster: Roster,
    facts: Facts,
    languages: Iterable[str] | None = None,
    *,
    brand: str | None = None,
    actor: str = "klaxon",
    channel: str = "api",
    now: float | None = None,
) -> list[Draft]:
    """Render and store a signed draft per language (default: every language the playbook has).

    The text is the playbook's template filled with `facts` (product, what_we_know,
    what_we_are_doing, next_update; each a string or {lang: string}), the brand's name and the
    signer's name and role in that language. Drafting again makes a new version, which voids
    approvals of the earlier one.
    """
    bind()
    clock = _now(now)
    # A language named twice is drafted once: two versions in one call would void the first at once.
    langs = list(dict.fromkeys(languages)) if languages is not None else list(playbook.statements)
    if not langs:
        raise StatementError("no language to draft: name at least one (or none at all for every language)")
    unknown = [lang for lang in langs if lang not in playbook.statements]
    if unknown:
        raise InvalidEdit(f"playbook {playbook.id} has no statement in {', '.join(unknown)}")
    name = brand or _fact_brand(facts) or brand_name(incident.brand)
    rendered = []
    for lang in langs:  # render all first: a missing fact refuses the whole request, nothing half-stored
        statement = playbook.statements[lang]
        signer = roster.person(statement.signer)
        text = render_statement(statement, signer, lang, facts, name)
        rendered.append((lang, statement, signer, text))
    drafts = []
    for lang, statement, signer, text in rendered:
        previous = _latest_or_none(incident.id, lang)
        draft = _put_version(
            Draft(
                incident_id=incident.id,
                lang=lang,
                version=previous.version + 1 if previous else 1,
                text=text,
                signer_id=signer.id,
                signer_name=signer.name_in(lang),
                signer_role=signer.role_in(lang),
                hash=version_hash(text, signer.id),
                brand=incident.brand,
                playbook=playbook.id,
                approvers=tuple(statement.approvers),
                quorum=statement.quorum,
                created_at=clock,
                created_by=actor,
                reason="redrafted" if previous else "drafted",
                previous_hash=previous.hash if previous else None,
            )
        )
        detail = f"{lang} v{draft.version} {short(draft.hash)} signed by {signer.id}"
        if previous:
            detail += f"; approvals of v{previous.version} {short(previous.hash)} void"
        incidents.record(incident.id, actor=actor, action="statement_drafted", channel=channel, detail=detail)
        drafts.append(draft)
    return drafts


def _fact_brand(facts: Facts) -> str | None:
    value = facts.get("brand")
    return value.strip() or None if isinstance(value, str) else None


def find_playbook(playbook_id: str, playbooks: Sequence[Playbook] | None = None) -> Playbook:
    for playbook in playbooks if playbooks is not None else default_playbooks():
        if playbook.id == playbook_id:
            return playbook
    raise PlaybookNotFound(f"no playbook {playbook_id!r}")


def draft_statements(
    incident_id: str,
    facts: Facts,
    languages: Iterable[str] | None = None,
    *,
    actor: str,
    channel: str = "api",
    now: float | None = None,
) -> list[Draft]:
    """`draft_for_incident` for an incident id, with the deployed playbooks and roster (for routes)."""
    incident = incidents.get(incident_id)
    return draft_for_incident(
        incident,
        find_playbook(incident.playbook),
        load_roster(),
        facts,
        languages,
        actor=actor,
        channel=channel,
        now=now,
    )


def _check_current(incident_id: str, lang: str, version_hash_: str) -> Draft:
    current = current_draft(incident_id, lang)
    if not same_hash(current.hash, version_hash_ or ""):
        raise DraftChanged("this draft changed; here is the new one", current)
    return current


def _require_person(draft: Draft, person_id: str) -> str:
    capacity = draft.capacity_of(person_id)
    if capacity is None:
        raise NotAnApprover(f"{person_id} neither signs nor approves the {draft.lang} statement")
    return capacity


def edit(
    incident_id: str,
    lang: str,
    *,
    base_hash: str,
    text: str,
    person_id: str,
    channel: str = CHANNEL_WEB,
    now: float | None = None,
) -> Draft:
    """Save an edited text as a new version; earlier approvals no longer count.

    `base_hash` is the version the editor was looking at: if someone edited meanwhile the edit is
    refused (DraftChanged) rather than silently overwriting their words. Browsers send textarea
    line breaks as CRLF; they are stored as LF, and nothing else is changed.
    """
    current = _check_current(incident_id, lang, base_hash)
    _require_person(current, person_id)
    if not isinstance(text, str):
        raise InvalidEdit("the edited text is missing")
    new_text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip()
    if not new_text.strip():
        raise InvalidEdit("the edited text is empty")
    if len(new_text) > MAX_TEXT_CHARS:
        raise InvalidEdit(f"the text is longer than {MAX_TEXT_CHARS} characters")
    if new_text == current.text:
        raise InvalidEdit("the text is unchanged")
    clock = _now(now)
    draft = _put_version(
        current.model_copy(
            update={
                "version": current.version + 1,
                "text": new_text,
                "hash": version_hash(new_text, current.signer_id),
                "created_at": clock,
                "created_by": person_id,
                "reason": "edited",
                "previous_hash": current.hash,
            }
        )
    )
    incidents.record(
        incident_id,
        actor=person_id,
        action="statement_edited",
        channel=channel,
        detail=f"{lang} v{draft.version} {short(draft.hash)}; "
        f"approvals of v{current.version} {short(current.hash)} void",
    )
    return draft


def approve(
    incident_id: str,
    lang: str,
    *,
    version_hash: str,
    person_id: str,
    channel: str = CHANNEL_WEB,
    now: float | None = None,
) -> ApprovalState:
    """Record `person_id`'s approval of the exact current text; idempotent per person and version.

    When this completes the approvals (signer plus quorum), the incident moves to
    statement_approved (acknowledging it first if nobody had: approving is acting on it).
    """
    current = _check_current(incident_id, lang, version_hash)
    capacity = _require_person(current, person_id)
    clock = _now(now)
    item = ApprovalItem(
        _pk(incident_id),
        f"appr#{current.hash}#v{current.version:04d}#{person_id}",
        incident_id=incident_id,
        lang=lang,
        version=current.version,
        hash=current.hash,
        person=person_id,
        capacity=capacity,
        channel=channel,
        at=clock,
    )
    try:
        item.save(condition=ApprovalItem.sk.does_not_exist())
    except PutError as exc:
        if not _conditional_failed(exc):
            raise
        state = approval_state(incident_id, lang, current)  # already approved: nothing new to record,
        if state.publishable and incidents.get(incident_id).status in (incidents.TRIGGERED, incidents.ACKNOWLEDGED):
            _approval_complete(incident_id, current, person_id, channel)  # unless a crash cut the first try short
        return state
    state = approval_state(incident_id, lang, current)
    incidents.record(
        incident_id,
        actor=person_id,
        action="statement_approval",
        channel=channel,
        detail=f"{lang} v{current.version} {short(current.hash)} as {capacity}; "
        f"signer {'yes' if state.signer_approved else 'no'}, approvers {state.approver_count}/{state.quorum}",
    )
    if state.publishable:
        _approval_complete(incident_id, current, person_id, channel)
    return state


def _approval_complete(incident_id: str, draft: Draft, actor: str, channel: str) -> None:
    detail = f"{draft.lang} v{draft.version} {short(draft.hash)} approved by the signer and quorum"
    incidents.record(incident_id, actor=actor, action="statement_approval_complete", channel=channel, detail=detail)
    status = incidents.get(incident_id).status
    try:
        if status == incidents.TRIGGERED:
            incidents.transition(
                incident_id, incidents.ACKNOWLEDGED, actor=actor, channel=channel, detail="by approving a statement"
            )
        incidents.transition(incident_id, incidents.STATEMENT_APPROVED, actor=actor, channel=channel, detail=detail)
    except incidents.InvalidTransition as exc:  # already approved, published or resolved: the record stands
        log.info("statement_approved_transition_skipped incident=%s reason=%s", incident_id, exc)


def request_changes(
    incident_id: str,
    lang: str,
    *,
    version_hash: str,
    person_id: str,
    note: str,
    channel: str = CHANNEL_WEB,
    now: float | None = None,
) -> ApprovalState:
    """Ask for changes to the current version; it cannot be published until this person approves it
    or someone edits it (a new version)."""
    current = _check_current(incident_id, lang, version_hash)
    _require_person(current, person_id)
    note = (note or "").replace("\r\n", "\n").strip()
    if not note:
        raise InvalidEdit("say what should change")
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidEdit(f"the note is longer than {MAX_NOTE_CHARS} characters")
    clock = _now(now)
    StatementNoteItem(
        _pk(incident_id),
        f"note#{current.hash}#{int(clock * 1000):015d}#{person_id}#{secrets.token_hex(3)}",
        incident_id=incident_id,
        lang=lang,
        version=current.version,
        hash=current.hash,
        person=person_id,
        note=note,
        channel=channel,
        at=clock,
    ).save()
    incidents.record(
        incident_id,
        actor=person_id,
        action="statement_changes_requested",
        channel=channel,
        detail=f"{lang} v{current.version} {short(current.hash)}: {note[:200]}",
    )
    return approval_state(incident_id, lang, current)


def require_publishable(incident_id: str, lang: str, version_hash_: str | None = None) -> ApprovalState:
    """The current version's state if it carries every required approval; NotApproved otherwise."""
    current = current_draft(incident_id, lang)
    if version_hash_ is not None and not same_hash(current.hash, version_hash_):
        raise DraftChanged("this draft changed; the new version needs its own approvals", current)
    state = approval_state(incident_id, lang, current)
    if not state.publishable:
        raise NotApproved(f"the {lang} statement v{current.version} is waiting for " + "; ".join(state.waiting_for()))
    return state
