"""The incident page behind the SMS short link: GET /i/{code}?t=<token>, server-rendered for a phone.

A 4-digit code is guessable, so the code alone shows nothing: the link carries a signed, expiring,
per-person token (chalicelib/incidents/links.py: a 16-character form that fits in the page SMS, and
a long form).

Nothing here knows Chalice: the route passes the code, the token and the clock, and gets back
status, HTML and headers. Every value from the store or a person is escaped; text people wrote is
marked dir="auto" so Hebrew lines lay out right to left inside the English page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib.counters.service import MAX_SERIES_POINTS, Point, read_series
from chalicelib.incidents import service as incidents
from chalicelib.incidents.links import verify_incident_link
from chalicelib.statements.links import LinkError, LinkExpired
from chalicelib.statements.page import CSS, e
from chalicelib.store.models import IncidentItem, TimelineItem

log = logging.getLogger(__name__)

CHART_LEAD = 2 * 3600  # the chart starts two hours before the incident opened

SECURITY_HEADERS: dict[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never leak it to another site
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
}

PAGE_CSS = (
    CSS
    + """
.sev{display:inline-block;padding:2px 8px;border-radius:6px;background:#c01c28;color:#fff;font-weight:700}
.st{display:inline-block;padding:2px 8px;border-radius:6px;background:#e8e8e8}
.targets{list-style:none;padding:0;margin:0}.targets li{padding:6px 0;border-bottom:1px solid #ddd}
.breached{color:#a00;font-weight:700}.met{color:#265;font-weight:600}
.chart svg{height:120px;background:#fff;border:1px solid #ccc;border-radius:8px}
.legend{font-size:.9rem;color:#444}.neg{color:#c01c28}.tot{color:#777}
.tl{list-style:none;padding:0;margin:0}.tl li{background:#fff;border:1px solid #ddd;border-radius:8px;
padding:8px 10px;margin:6px 0}.tl .when{color:#555;font-size:.9rem}.tl .detail{overflow-wrap:anywhere}
"""
)

ACTIONS = {
    "opened": "opened the incident",
    "spike_continues": "spike continues",
    "acknowledged": "acknowledged",
    "statement_approved": "statement approved",
    "published": "published",
    "resolved": "resolved",
    "target_breached": "missed a response-time target",
    "statement_drafted": "drafted a statement",
    "statement_edited": "edited the statement",
    "statement_approval": "approved the statement",
    "statement_changes_requested": "asked for changes",
    "statement_approval_complete": "statement fully approved",
    "statement_published": "published the statement",
    "statement_publish_failed": "publishing failed",
    "statement_publish_in_doubt": "publishing IN DOUBT: check the platform, then resolve",
    "statement_publish_resolved": "checked the platform for a publication in doubt",
}


# --- the signed link (chalicelib/incidents/links.py) ------------------------------------------


def incident_url(code: str, token: str, base_url: str) -> str:
    """The URL to send by SMS: base + /i/<code>?t=<token> (the token is URL-safe as is)."""
    return f"{base_url.rstrip('/')}/i/{code}?t={token}"


# --- rendering ---------------------------------------------------------------------------------


def _hm(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M") if ts else "-"


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


def _minutes(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _target(label: str, due: float | None, done: float | None, breached: bool, now: float) -> str:
    """One response-time target: met, breached, or how long is left."""
    if due is None:
        return f"<li>{e(label)}: no target</li>"
    head = f"{e(label)} by {e(_hm(due))} UTC"
    if done is not None:
        late = done > due
        mark = f'<span class="breached">✗ late by {e(_minutes(done - due))}</span>' if late else ""
        ok = "" if late else f'<span class="met">✓ met at {e(_hm(done))}</span>'
        return f'<li data-target="{e(label)}" data-state="{"breached" if late else "met"}">{head}: {ok}{mark}</li>'
    if breached or now > due:
        return (
            f'<li data-target="{e(label)}" data-state="breached">{head}: '
            f'<span class="breached">✗ BREACHED, {e(_minutes(now - due))} overdue</span></li>'
        )
    return f'<li data-target="{e(label)}" data-state="due">{head}: due in {e(_minutes(due - now))}</li>'


def chart(points: Sequence[Point], *, opened_at: float | None = None, width: int = 360, height: int = 120) -> str:
    """Inline SVG: total (grey) and negative (red) mentions per minute, a mark where the incident opened."""
    values = [p.as_dict() for p in points]
    totals = [int(v["total"]) for v in values]  # type: ignore[call-overload]
    negatives = [int(v["negative"]) for v in values]  # type: ignore[call-overload]
    peak_total, peak_negative = max(totals, default=0), max(negatives, default=0)
    label = (
        f"Mentions per minute: negative peak {peak_negative}, total peak {peak_total}, "
        f"last minute {negatives[-1] if negatives else 0} negative of {totals[-1] if totals else 0}"
    )
    if len(points) < 2:
        return f'<p class="chart-empty">{e(label)}</p>'
    top = max(peak_total, 1)
    step = width / (len(points) - 1)

    def line(series: list[int]) -> str:
        return " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 6):.1f}" for i, v in enumerate(series))

    marker = ""
    first, last = points[0].start, points[-1].start
    if opened_at is not None and first <= opened_at <= last and last > first:
        x = (opened_at - first) / (last - first) * width
        marker = (
            f'<line class="opened" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" '
            'stroke="#1a5fb4" stroke-dasharray="4 3"/>'
        )
    return (
        f'<svg class="mentions" viewBox="0 0 {width} {height}" role="img" aria-label="{e(label)}" '
        f'preserveAspectRatio="none" data-points="{len(points)}" data-peak-negative="{peak_negative}" '
        f'data-peak-total="{peak_total}"><title>{e(label)}</title>{marker}'
        f'<polyline class="total" fill="none" stroke="#999" stroke-width="1.5" points="{line(totals)}"/>'
        f'<polyline class="negative" fill="none" stroke="#c01c28" stroke-width="2" points="{line(negatives)}"/>'
        "</svg>"
    )


def _timeline(entries: Sequence[TimelineItem], opened_at: float) -> str:
    rows = []
    for entry in sorted(entries, key=lambda t: (t.at, t.sk)):
        offset = float(entry.at) - opened_at
        rel = f"+{_minutes(offset)}" if offset >= 60 else ""
        detail = f'<div class="detail" dir="auto">{e(entry.detail)}</div>' if entry.detail else ""
        rows.append(
            f'<li data-action="{e(entry.action)}"><div class="when">{e(_when(entry.at))} {e(rel)} · '
            f"via {e(entry.channel)}</div>"
            f'<div><b dir="auto">{e(entry.actor)}</b> {e(ACTIONS.get(entry.action, entry.action))}</div>{detail}</li>'
        )
    return '<ol class="tl">' + "".join(rows) + "</ol>" if rows else "<p>No entries yet.</p>"


def _doc(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en" dir="ltr">',
            '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex, nofollow">',
            f"<title>{e(title)}</title><style>{PAGE_CSS}</style></head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
        ]
    )


def render_incident_page(
    incident: IncidentItem, timeline: Sequence[TimelineItem], points: Sequence[Point], *, now: float | None = None
) -> str:
    """The whole page: what, how bad, the response-time targets, the mention chart and the timeline."""
    clock = time.time() if now is None else now
    breaches = set(incident.breaches or [])
    ratio = f", {float(incident.peak_ratio):.1f}× usual" if incident.peak_ratio else ""
    figures = f"{int(incident.observed)} observed vs {int(incident.expected)} expected{ratio}"
    body = [
        f'<h1><span class="sev">{e(incident.severity.upper())}</span> <span dir="auto">{e(incident.brand)}</span></h1>',
        f'<p class="meta">Incident <b>{e(incident.code)}</b> · <span class="st" data-status="{e(incident.status)}">'
        f"{e(incident.status.replace('_', ' '))}</span> · playbook "
        f'<span dir="auto">{e(incident.playbook)}</span></p>',
        f'<p class="stmt summary" dir="auto">{e(incident.summary)}</p>',
        f'<p class="meta">{e(figures)} · {int(incident.alarms)} alarm(s) · opened {e(_when(incident.opened_at))} '
        f'by <span dir="auto">{e(incident.opened_by)}</span></p>',
        "<h2>Response-time targets</h2>",
        '<ul class="targets">',
        _target("Acknowledge", incident.ack_due, incident.acknowledged_at, "acknowledge" in breaches, clock),
        _target(
            "First public response",
            incident.response_due,
            incident.first_response_at,
            "first_response" in breaches,
            clock,
        ),
        "</ul>",
    ]
    if incident.acknowledged_by:
        body.append(f'<p class="meta">Acknowledged by <span dir="auto">{e(incident.acknowledged_by)}</span></p>')
    body += [
        "<h2>Mentions per minute</h2>",
        '<div class="chart">',
        chart(points, opened_at=float(incident.opened_at)),
        '<p class="legend"><span class="neg">■ negative</span> <span class="tot">■ all mentions</span> · '
        "dashed line: incident opened</p></div>",
        "<h2>Timeline</h2>",
        _timeline(timeline, float(incident.opened_at)),
        f'<p class="meta">Page generated {e(_when(clock))}. '
        f"Reply ACK {e(incident.code)} to the SMS to acknowledge.</p>",
    ]
    return _doc(f"{incident.severity.upper()} {incident.brand} · incident {incident.code}", body)


def render_refusal(status: int, title: str, message: str) -> str:
    """A short page saying why the incident is not shown."""
    return _doc(title, [f"<h1>{e(title)}</h1>", f'<p class="notice error">{e(message)}</p>'])


# --- what the route calls ----------------------------------------------------------------------


def series_for(incident: IncidentItem, now: float) -> list[Point]:
    """Per-minute counts from two hours before the incident opened until now (empty if unreadable)."""
    end = int(now) // 60 * 60 + 60
    start = max(int(incident.opened_at) - CHART_LEAD, end - (MAX_SERIES_POINTS - 1) * 60)
    try:
        return read_series(incident.brand, start=start, end=end, step=60, now=now)
    except Exception:  # noqa: BLE001 - the page must show the incident even without its chart
        log.exception("incident_page_series_unavailable brand=%s", incident.brand)
        return []


def incident_page_response(code: str, token: str | None, now: float) -> tuple[int, str, dict[str, str]]:
    """GET /i/{code}?t=<token>: (status, html, headers). The token is checked before anything is read."""
    headers = dict(SECURITY_HEADERS)
    if not token:
        message = "This page needs the full link from the SMS (it was cut short or is missing its key)."
        return 403, render_refusal(403, "Link not usable", message), headers
    try:
        verify_incident_link(token, code, now)
    except LinkExpired:
        message = "This link has expired. Reply to the SMS or ask the on-call lead for a new one."
        return 403, render_refusal(403, "Link expired", message), headers
    except LinkError as exc:
        return 403, render_refusal(403, "Link not usable", exc.reason), headers
    try:
        incident = incidents.by_code(code)
    except incidents.IncidentNotFound:
        message = f"No open incident has code {code}; it may have been resolved."
        return 404, render_refusal(404, "Not found", message), headers
    html = render_incident_page(incident, incidents.timeline(incident.id), series_for(incident, now), now=now)
    return 200, html, headers
