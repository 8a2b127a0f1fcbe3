"""The triage queue page: server-rendered for a phone, no scripts, everything escaped; Hebrew brands get
a right-to-left page. GET /brands/{brand}/triage/page?t=<token>[&topic=&language=&status=].

The page is opened from a signed, expiring, per-person link (the approval links' HMAC scheme and secret,
chalicelib.statements.links), format byte 0x04 so no other kind of token is accepted as this one:
expires_at as 4 bytes big-endian epoch seconds, then ASCII `brand|person_id`. The staff API makes such
links (GET /brands/{brand}/triage/link?person=...). The page's "handled" buttons post the same token,
and the person it names is recorded as who handled the entry.

Nothing here knows Chalice: the routes pass strings and the clock, and get (status, html, headers).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from chalicelib.incidents.links import subject_link, verify_subject_link
from chalicelib.statements.links import (
    LinkError,
    LinkExpired,
    LinkTampered,
    link_secret,
)
from chalicelib.statements.page import CSS, e
from chalicelib.triage import config as triage_config
from chalicelib.triage import queue
from chalicelib.triage.api import known_brand, parse_filters

_FORMAT = 4  # 1 approval links, 2 and 3 incident page links (long and short forms, chalicelib/incidents)
DEFAULT_TTL = 12 * 3600

HEADERS: dict[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
}

PAGE_CSS = (
    CSS
    + """
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:.3rem 0}.chips a{padding:8px 12px;border-radius:16px;
background:#e8e8e8;color:#111;text-decoration:none;min-height:40px}.chips a.on{background:#1a5fb4;color:#fff}
.entry{background:#fff;border:1px solid #ccc;border-radius:8px;padding:10px 12px;margin:8px 0}
.entry.late{border-color:#c01c28;border-width:2px}.u{display:inline-block;min-width:2.4em;text-align:center;
padding:2px 6px;border-radius:6px;background:#555;color:#fff;font-weight:700}.u.hi{background:#c01c28}
.u.mid{background:#c36a00}.text{white-space:pre-wrap;overflow-wrap:anywhere;margin:.4rem 0}
.clock{font-weight:600}.clock.late{color:#a00}.tag{display:inline-block;padding:1px 8px;border-radius:6px;
background:#eef;margin-inline-end:4px;font-size:.9rem}
"""
)

TEXT = {
    "en": {
        "title": "Replies needed",
        "count": "entries",
        "open": "Waiting",
        "handled": "Handled",
        "all": "All",
        "any_topic": "All topics",
        "any_language": "All languages",
        "posts": "posts",
        "followers": "followers",
        "left": "min left",
        "late": "min late",
        "answered": "answered after",
        "min": "min",
        "mark": "Mark handled",
        "open_post": "Open the post",
        "empty": "Nothing waiting for a reply.",
        "crisis": "crisis term",
        "question": "question",
        "by": "by",
    },
    "he": {
        "title": "פניות שמחכות למענה",
        "count": "פניות",
        "open": "ממתינות",
        "handled": "טופלו",
        "all": "הכול",
        "any_topic": "כל הנושאים",
        "any_language": "כל השפות",
        "posts": "פוסטים",
        "followers": "עוקבים",
        "left": "דק׳ נותרו",
        "late": "דק׳ באיחור",
        "answered": "נענתה אחרי",
        "min": "דק׳",
        "mark": "סימון כטופל",
        "open_post": "לפוסט",
        "empty": "אין פניות שמחכות למענה.",
        "crisis": "מונח משבר",
        "question": "שאלה",
        "by": "על ידי",
    },
}


# --- the signed link ---------------------------------------------------------------------------


def triage_link(brand: str, person_id: str, expires: int | float, *, secret: bytes | None = None) -> str:
    """A token letting one person see and work `brand`'s queue until `expires` (epoch seconds)."""
    return subject_link(_FORMAT, brand, person_id, expires, secret=secret)


def verify_triage_link(token: str | None, brand: str, now: float, *, secret: bytes | None = None) -> str:
    """The person the token was issued to, if authentic, unexpired and for `brand`; else LinkError."""
    key = secret or link_secret()
    if not isinstance(token, str):
        raise LinkTampered(LinkTampered.reason)
    return verify_subject_link(token, _FORMAT, brand, now, key, other="brand")


# --- rendering ---------------------------------------------------------------------------------


def _doc(title: str, body: list[str], lang: str) -> str:
    direction = "rtl" if lang == "he" else "ltr"
    return (
        f'<!doctype html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)}</title><style>{PAGE_CSS}</style></head><body>" + "".join(body) + "</body></html>"
    )


def _href(brand: str, token: str, filters: dict[str, Any], **change: Any) -> str:
    query = {k: v for k, v in {**filters, **change}.items() if v}
    return f"/brands/{e(brand)}/triage/page?" + e(urlencode({**query, "t": token}))


def _chips(options: list[tuple[str, str | None]], key: str, brand: str, token: str, filters: dict[str, Any]) -> str:
    links = []
    for label, value in options:
        on = ' class="on"' if filters.get(key) == value else ""
        links.append(f'<a{on} href="{_href(brand, token, filters, **{key: value or ""})}">{e(label)}</a>')
    return '<nav class="chips">' + "".join(links) + "</nav>"


def _clock(entry: dict[str, Any], t: dict[str, str]) -> str:
    if entry["handled_at"] is not None:
        return f'<span class="clock">{t["answered"]} {round(entry["waited_seconds"] / 60)} {t["min"]}</span>'
    left = entry["seconds_left"]
    if left is not None and left < 0:
        return f'<span class="clock late">{round(-left / 60)} {t["late"]}</span>'
    return f'<span class="clock">{round((left or 0) / 60)} {t["left"]}</span>'


def render_queue(
    brand: str, entries: list[dict[str, Any]], *, token: str, filters: dict[str, Any], lang: str, labels: dict[str, str]
) -> str:
    t = TEXT[lang]
    body = [f"<h1>{e(t['title'])}: {e(_brand_name(brand))}</h1>"]
    statuses: list[tuple[str, str | None]] = [(t["open"], "open"), (t["handled"], "handled"), (t["all"], "all")]
    body.append(_chips(statuses, "status", brand, token, filters))
    body.append(_chips([(t["any_topic"], None)] + [(v, k) for k, v in labels.items()], "topic", brand, token, filters))
    body.append(_chips([(t["any_language"], None), ("עברית", "he"), ("English", "en"), ("عربي", "ar"),
                        ("Русский", "ru")], "language", brand, token, filters))
    body.append(f'<p class="meta">{len(entries)} {e(t["count"])}</p>')
    if not entries:
        body.append(f'<p class="notice">{e(t["empty"])}</p>')
    for entry in entries:
        urgency = entry["urgency"]
        level = "hi" if urgency >= 60 else "mid" if urgency >= 35 else ""
        late = entry["breached"] and entry["handled_at"] is None
        tags = [f'<span class="tag">{e(labels.get(x, x))}</span>' for x in entry["topics"]]
        if entry["crisis"]:
            playbook = f': {e(entry["playbook"])}' if entry["playbook"] else ""
            tags.append(f'<span class="tag">{e(t["crisis"])}{playbook}</span>')
        if entry["question"]:
            tags.append(f'<span class="tag">{e(t["question"])}</span>')
        who = e(entry["author"] or "?")
        if entry["followers"]:
            who += f' · {entry["followers"]:,} {e(t["followers"])}'
        parts = [
            f'<article class="entry{" late" if late else ""}" id="{e(entry["entry_id"])}">',
            f'<div><span class="u {level}">{urgency}</span> {_clock(entry, t)} · {e(entry["platform"])} · {who}'
            + (f' · ×{entry["count"]} {e(t["posts"])}' if entry["count"] > 1 else "")
            + "</div>",
            f'<div>{"".join(tags)}</div>',
            f'<p class="text" dir="auto">{e(entry["text"] or "")}</p>',
        ]
        if entry["url"] and str(entry["url"]).startswith(("https://", "http://")):
            parts.append(
                f'<a href="{e(entry["url"])}" rel="noopener noreferrer" target="_blank">{e(t["open_post"])}</a>'
            )
        if entry["status"] == queue.OPEN:
            action = f"/brands/{e(brand)}/triage/page/{e(entry['entry_id'])}/handled?" + e(
                urlencode({**{k: v for k, v in filters.items() if v}, "t": token})
            )
            parts.append(f'<form method="post" action="{action}"><button>{e(t["mark"])}</button></form>')
        elif entry["handled_by"]:
            parts.append(f'<p class="meta">{e(t["by"])} {e(entry["handled_by"])}</p>')
        parts.append("</article>")
        body.append("".join(parts))
    return _doc(f"{t['title']}: {_brand_name(brand)}", body, lang)


def _brand_name(brand: str) -> str:
    from chalicelib.outbound.formats import brand_name

    return brand_name(brand)


def refusal(status: int, title: str, message: str) -> tuple[int, str, dict[str, str]]:
    page = _doc(title, [f"<h1>{e(title)}</h1>", f'<p class="notice error">{e(message)}</p>'], "en")
    return status, page, dict(HEADERS)


# --- what the routes call ------------------------------------------------------------------------


def _person(brand: str, token: str | None, api_key_ok: bool, now: float) -> str | tuple[int, str, dict[str, str]]:
    if not known_brand(brand):
        return refusal(404, "Not found", "No such brand.")
    if token:
        try:
            return verify_triage_link(token, brand, now)
        except LinkExpired:
            return refusal(403, "Link expired", "This link has expired; ask for a new one.")
        except LinkError as exc:
            return refusal(exc.status, "Link not usable", exc.reason)
    if api_key_ok:
        return "staff-api"
    return refusal(403, "Link not usable", "This page needs its full link (it was cut short or is missing its key).")


def queue_page(brand: str, params: dict[str, str], *, api_key_ok: bool, now: float) -> tuple[int, str, dict[str, str]]:
    """GET /brands/{brand}/triage/page: (status, html, headers)."""
    person = _person(brand, params.get("t"), api_key_ok, now)
    if isinstance(person, tuple):
        return person
    try:
        filters = parse_filters(params)
    except ValueError as exc:
        return refusal(400, "Bad filter", str(exc))
    own = triage_config.brand_settings(brand)
    labels = {topic.id: topic.labels.get(own.locale, topic.id) for topic in own.topics}
    entries = [queue.as_dict(x, now) for x in queue.list_entries(brand, now=now, **filters)]
    html = render_queue(brand, entries, token=params.get("t") or "", filters=filters, lang=own.locale, labels=labels)
    return 200, html, dict(HEADERS)


def handled_from_page(
    brand: str, entry_id: str, params: dict[str, str], *, now: float
) -> tuple[int, str, dict[str, str]]:
    """POST /brands/{brand}/triage/page/{entry_id}/handled?t=...: mark handled, then back to the page (303)."""
    from chalicelib.triage.api import handled

    person = _person(brand, params.get("t"), False, now)
    if isinstance(person, tuple):
        return person
    status, body = handled(brand, entry_id, actor=person, via="page", now=now)
    if status != 200:
        return refusal(status, "Not done", str(body.get("error")))
    query = {k: v for k, v in params.items() if k in ("topic", "language", "status", "t") and v}
    headers = {**HEADERS, "Location": f"/brands/{brand}/triage/page?{urlencode(query)}"}
    return 303, "", headers
