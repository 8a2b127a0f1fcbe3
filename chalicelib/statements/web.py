"""What the approval routes call: GET and POST /approve/{token}, returning a ready page.

Nothing here knows Chalice: routes pass the token, the raw body and get back status, headers and
HTML. A link is verified before anything is read; the version hash inside the form must be the
version the link names and the current version, or nothing is recorded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from chalicelib.counters.service import read_series
from chalicelib.incidents import service as incidents
from chalicelib.playbooks.loader import load_roster
from chalicelib.playbooks.models import Roster
from chalicelib.statements import service
from chalicelib.statements.hashing import is_hash, same_hash
from chalicelib.statements.links import LinkClaims, LinkError, LinkOutdated, make_link, verify_link
from chalicelib.statements.models import Draft
from chalicelib.statements.page import render_approval_page, render_message_page
from chalicelib.store.models import LANGUAGES, counter_attribute

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
DEFAULT_LINK_TTL = 12 * 3600
CHART_MINUTES = 180
NEGATIVE_CELLS = tuple(counter_attribute("negative", lang) for lang in LANGUAGES)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never leak it to another site
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass(frozen=True)
class PageResponse:
    """An HTML answer for the route to return as is."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def parse_form(body: bytes | str | None) -> dict[str, str]:
    """application/x-www-form-urlencoded body -> first value of each field (bounded)."""
    if body is None:
        return {}
    if isinstance(body, bytes):
        if len(body) > MAX_FORM_BYTES:
            raise ValueError("form too large")
        body = body.decode("utf-8", errors="strict")
    if len(body) > MAX_FORM_BYTES:
        raise ValueError("form too large")
    fields = parse_qs(body, keep_blank_values=True, max_num_fields=20, errors="strict")
    return {k: v[0] for k, v in fields.items()}


def _message(status: int, title: str, message: str, lang: str = "en", link: str | None = None) -> PageResponse:
    text = "Open the new version" if lang != "he" else "לגרסה החדשה"
    return PageResponse(status, render_message_page(title, message, lang=lang, link=link, link_text=text))


def _roster() -> Roster | None:
    try:
        return load_roster()
    except Exception:  # noqa: BLE001 - the page must still show the text if the roster file is broken
        log.exception("approval_page_roster_unavailable")
        return None


def _person_name(roster: Roster | None, person_id: str, lang: str) -> str:
    if roster is None:
        return person_id
    try:
        return roster.person(person_id).name_in(lang)
    except StopIteration:
        return person_id


def negative_series(brand: str, opened_at: float, now: float) -> list[int]:
    """Negative mentions per minute around the incident, for the sparkline (empty if unreadable)."""
    end = int(now) // 60 * 60 + 60
    start = max(min(int(opened_at) - 1800, end - 3600), end - CHART_MINUTES * 60)
    try:
        points = read_series(brand, start=start, end=end, step=60, now=now)
        return [sum(p.cells[name] for name in NEGATIVE_CELLS) for p in points]
    except Exception:  # noqa: BLE001 - a missing chart must not stop an approval
        log.exception("approval_page_series_unavailable brand=%s", brand)
        return []


def issue_links(
    incident_id: str, lang: str, *, ttl_seconds: int = DEFAULT_LINK_TTL, now: float | None = None
) -> dict[str, str]:
    """A link token for the signer and each approver of the current version (person id -> token).

    Send each person only their own: `links.approval_url(token)` gives the URL for the SMS.
    """
    draft = service.current_draft(incident_id, lang)
    expires = int(_now(now)) + ttl_seconds
    people = [draft.signer_id, *[p for p in draft.approvers if p != draft.signer_id]]
    return {p: make_link(incident_id, lang, draft.hash, p, expires) for p in people}


def _verified(token: str, now: float) -> tuple[LinkClaims, Draft]:
    """Verify the link and that it names the current version; raises LinkError / StatementError."""
    claims = verify_link(token, now)
    current = service.current_draft(claims.incident_id, claims.lang)
    verify_link(token, now, current_hash=current.hash)  # LinkOutdated when the draft changed
    if current.capacity_of(claims.person_id) is None:
        raise service.NotAnApprover(f"{claims.person_id} does not sign or approve this statement")
    return claims, current


def _outdated(exc: LinkOutdated, status: int) -> PageResponse:
    """'This draft changed; here is the new one': a fresh link to the current version, same person
    and expiry, if that person still signs or approves it. Nothing is approved."""
    claims = exc.claims
    lang = claims.lang
    current = service.current_draft(claims.incident_id, lang)
    title = "This draft changed" if lang != "he" else "הנוסח השתנה"
    if current.capacity_of(claims.person_id) is None:
        return _message(403, title, "This draft changed and you are no longer asked to approve it.", lang)
    fresh = make_link(claims.incident_id, lang, current.hash, claims.person_id, claims.expires_at)
    message = f"This draft changed since the link was sent (now version {current.version}); here is the new one."
    if lang == "he":
        message = f"הנוסח השתנה מאז שנשלח הקישור (עכשיו גרסה {current.version}); הנה הגרסה החדשה."
    return _message(status, title, message, lang, link=f"./{fresh}")


def _page(
    claims: LinkClaims,
    draft: Draft,
    token: str,
    now: float,
    notice: str | None = None,
    kind: str = "notice",
    status: int = 200,
) -> PageResponse:
    roster = _roster()
    previous = service.draft_version(draft.incident_id, draft.lang, draft.version - 1) if draft.version > 1 else None
    incident = incidents.get(draft.incident_id)
    state = service.approval_state(draft.incident_id, draft.lang, draft)
    closed = incident.status == incidents.RESOLVED
    if closed and notice is None:
        notice, kind = "This incident is resolved; nothing more can be published.", "notice"
    body = render_approval_page(
        draft=draft,
        state=state,
        token=token,
        person_id=claims.person_id,
        person_name=_person_name(roster, claims.person_id, draft.lang),
        previous=previous,
        series=negative_series(draft.brand, float(incident.opened_at), now),
        notice=notice,
        notice_kind=kind,
        can_act=not closed,
    )
    return PageResponse(status, body)


def _refusal(exc: Exception) -> PageResponse:
    if isinstance(exc, LinkError):
        return _message(exc.status, "Link not usable", exc.reason)
    if isinstance(exc, incidents.IncidentNotFound | service.DraftNotFound):
        return _message(404, "Not found", "There is no statement behind this link any more.")
    if isinstance(exc, service.NotAnApprover):
        return _message(403, "Not allowed", "You do not sign or approve this statement.")
    raise exc


def approval_get(token: str, *, now: float | None = None) -> PageResponse:
    """GET /approve/{token}: the page, or why the link cannot be used."""
    clock = _now(now)
    try:
        claims, draft = _verified(token, clock)
    except LinkOutdated as exc:
        return _outdated(exc, 200)
    except (LinkError, incidents.IncidentNotFound, service.DraftNotFound, service.NotAnApprover) as exc:
        return _refusal(exc)
    return _page(claims, draft, token, clock)


def approval_post(token: str, body: bytes | str | None, *, now: float | None = None) -> PageResponse:
    """POST /approve/{token} with form fields action (approve | request_changes | edit),
    version_hash (hidden), note, text. Answers with the updated page."""
    clock = _now(now)
    try:
        claims, draft = _verified(token, clock)
    except LinkOutdated as exc:
        return _outdated(exc, 409)
    except (LinkError, incidents.IncidentNotFound, service.DraftNotFound, service.NotAnApprover) as exc:
        return _refusal(exc)
    try:
        form = parse_form(body)
    except (ValueError, UnicodeDecodeError):
        return _page(claims, draft, token, clock, "The form could not be read.", "error", 400)
    posted = form.get("version_hash", "")
    if not is_hash(posted) or not same_hash(posted, claims.version_hash):
        # The page was for another version than the link (or forged): show the current one, record nothing.
        return _page(
            claims, draft, token, clock, "This page was out of date; here is the current version.", "error", 409
        )
    if incidents.get(draft.incident_id).status == incidents.RESOLVED:
        return _page(claims, draft, token, clock, "This incident is resolved.", "error", 409)
    action = form.get("action", "")
    person = claims.person_id
    try:
        if action == "approve":
            state = service.approve(draft.incident_id, draft.lang, version_hash=posted, person_id=person, now=clock)
            notice = (
                "Approved. Ready to publish."
                if state.publishable
                else ("Approved. Waiting for " + "; ".join(state.waiting_for()) + ".")
            )
            return _page(claims, draft, token, clock, notice, "ok")
        if action == "request_changes":
            service.request_changes(
                draft.incident_id,
                draft.lang,
                version_hash=posted,
                person_id=person,
                note=form.get("note", ""),
                now=clock,
            )
            return _page(claims, draft, token, clock, "Your request for changes is recorded.", "ok")
        if action == "edit":
            new = service.edit(
                draft.incident_id, draft.lang, base_hash=posted, text=form.get("text", ""), person_id=person, now=clock
            )
            from chalicelib.statements.notify import request_reapproval

            request_reapproval(new.incident_id, new, editor=person, now=clock)
            fresh = make_link(new.incident_id, new.lang, new.hash, person, claims.expires_at)
            new_claims = verify_link(fresh, clock)
            notice = f"Saved as version {new.version}. Earlier approvals no longer count; approve it if it is right."
            return _page(new_claims, new, fresh, clock, notice, "ok")
    except service.DraftChanged:
        return _outdated(LinkOutdated(claims), 409)
    except service.StatementError as exc:
        return _page(claims, draft, token, clock, str(exc), "error", exc.status)
    return _page(claims, draft, token, clock, "Unknown action.", "error", 400)


# --- the link texted to signers and approvers: GET /a/{code}?t=<token> --------------------------


def approval_requests_response(code: str, token: str | None, now: float | None = None) -> PageResponse:
    """What awaits this person's approval on the incident now: one statement → straight to its
    approval page (303); several → a list of them; none → a short page saying so.

    The short token names the person and the incident's code only; the approval link it leads to is
    minted for the *current* version, and approving still posts that exact version's hash.
    """
    from chalicelib.incidents.links import APPROVALS, verify_incident_link
    from chalicelib.statements.links import LinkExpired, approval_url
    from chalicelib.statements.page import e

    clock = _now(now)
    if not token:
        return _message(403, "Link not usable", "This page needs the full link from the SMS.")
    try:
        person_id = verify_incident_link(token, code, clock, kind=APPROVALS)
    except LinkExpired:
        return _message(403, "Link expired", "This link has expired. Ask the incident lead for a new one.")
    except LinkError as exc:
        return _message(exc.status if exc.status == 503 else 403, "Link not usable", exc.reason)
    try:
        incident = incidents.by_code(code)
    except incidents.IncidentNotFound:
        return _message(404, "Not found", f"No open incident has code {code}; it may have been resolved.")
    pending = service.awaiting_approval(incident.id, person_id)
    if not pending:
        return _message(200, "Nothing to approve", f"Nothing awaits your approval on incident {code} right now.")
    expires = int(clock) + DEFAULT_LINK_TTL
    urls = [(d, approval_url(make_link(incident.id, d.lang, d.hash, person_id, expires))) for d in pending]
    if len(urls) == 1:
        response = PageResponse(303, "")
        response.headers["Location"] = urls[0][1]
        return response
    items = "".join(
        f'<li><a class="button" href="{e(url)}">{e(d.lang.upper())} v{d.version}</a></li>' for d, url in urls
    )
    body = render_message_page("Statements awaiting your approval", f"Incident {code}", lang="en")
    return PageResponse(200, body.replace("</body>", f'<ul class="pending">{items}</ul></body>', 1))
