"""The approval page: server-rendered HTML for a phone, no scripts, everything escaped.

What a signer or approver sees is exactly the text whose hash they approve (plus the posts derived
from it), who signs it, what changed since the previous version, and how the crisis is moving.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib.statements.hashing import short
from chalicelib.statements.models import ApprovalState, Draft

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)

CSS = """
*{box-sizing:border-box}body{font:17px/1.5 system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:0;
padding:12px;max-width:40rem;margin-inline:auto;color:#111;background:#fafafa}
h1{font-size:1.25rem;margin:.2rem 0 .6rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.stmt,.diff,.post{white-space:pre-wrap;background:#fff;border:1px solid #ccc;border-radius:8px;padding:12px;
overflow-wrap:anywhere}.meta{color:#444;font-size:.95rem}.notice{background:#fff4c2;border:1px solid #e0c200;
padding:10px;border-radius:8px}.error{background:#ffe1e1;border-color:#d33}.ok{background:#e3f7e3;border-color:#3a3}
ins{background:#c8f0c8;text-decoration:none}del{background:#f6c8c8}
button,textarea,a.button{font:inherit;width:100%;min-height:48px;border-radius:8px;margin:.3rem 0}
button{border:0;padding:12px;font-weight:600;color:#fff;background:#1a5fb4}button.secondary{background:#555}
textarea{padding:10px;border:1px solid #999;min-height:8rem}a.button{display:block;text-align:center;
padding:12px;background:#1a5fb4;color:#fff;text-decoration:none}svg{width:100%;height:64px;display:block}
details{margin:.6rem 0}summary{min-height:44px;padding:10px 0;cursor:pointer;font-weight:600}
"""

_TEXT = {
    "en": {
        "title": "Holding statement for approval",
        "signed": "Signed by",
        "version": "Version",
        "status": "Approvals",
        "signer_ok": "signer approved",
        "signer_wait": "signer has not approved yet",
        "ready": "Ready to publish.",
        "waiting": "Waiting for",
        "diff": "Changes since version",
        "first": "First version.",
        "chart": "Negative mentions per minute",
        "posts": "What each platform gets",
        "x_thread": "X thread",
        "x_short": "X, one post",
        "meta": "Facebook / Instagram reply",
        "approve": "Approve this exact text",
        "changes": "Request changes",
        "note": "What should change?",
        "edit": "Edit the text",
        "save": "Save as a new version",
        "edit_help": "Saving makes a new version; every approval so far no longer counts.",
        "requests": "Change requests",
        "you": "You are",
    },
    "he": {
        "title": "הודעה לאישור",
        "signed": "חתום/ה",
        "version": "גרסה",
        "status": "אישורים",
        "signer_ok": "החותם/ת אישר/ה",
        "signer_wait": "החותם/ת עוד לא אישר/ה",
        "ready": "מוכן לפרסום.",
        "waiting": "ממתין ל",
        "diff": "שינויים מאז גרסה",
        "first": "גרסה ראשונה.",
        "chart": "אזכורים שליליים לדקה",
        "posts": "מה יפורסם בכל פלטפורמה",
        "x_thread": "שרשור ב-X",
        "x_short": "X, פוסט אחד",
        "meta": "תגובה בפייסבוק / אינסטגרם",
        "approve": "אישור הנוסח המדויק הזה",
        "changes": "בקשת שינויים",
        "note": "מה צריך לשנות?",
        "edit": "עריכת הנוסח",
        "save": "שמירה כגרסה חדשה",
        "edit_help": "שמירה יוצרת גרסה חדשה; כל האישורים עד עכשיו מתבטלים.",
        "requests": "בקשות לשינוי",
        "you": "את/ה",
    },
}


def e(value: object) -> str:
    """HTML-escape anything, quotes included (attribute-safe)."""
    return html.escape(str(value), quote=True)


def word_diff(old: str, new: str) -> str:
    """Word-level diff as escaped HTML with <del> and <ins>; whitespace and punctuation are tokens."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(e("".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{e(''.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{e(''.join(b[j1:j2]))}</ins>")
    return "".join(out)


def sparkline(values: Sequence[int], *, label: str, width: int = 300, height: int = 60) -> str:
    """Inline SVG polyline of a series (no script, no external request)."""
    peak = max(values, default=0)
    title = f"{label}: peak {peak}, last {values[-1] if values else 0}"
    if len(values) < 2:
        values = [values[0] if values else 0] * 2
    top = max(peak, 1)
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}" preserveAspectRatio="none">'
        f"<title>{e(title)}</title>"
        f'<polyline fill="none" stroke="#c01c28" stroke-width="2" points="{points}"/></svg>'
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_approval_page(
    *,
    draft: Draft,
    state: ApprovalState,
    token: str,
    person_id: str,
    person_name: str,
    previous: Draft | None = None,
    series: Sequence[int] = (),
    notice: str | None = None,
    notice_kind: str = "notice",
    action_url: str | None = None,
    can_act: bool = True,
) -> str:
    """The whole page. Forms POST to `action_url` (default `./<token>`: relative, so it works under an
    API Gateway stage prefix) with the version hash hidden inside, so a stale page cannot approve a
    text it does not show."""
    t = _TEXT.get(draft.lang, _TEXT["en"])
    direction = "rtl" if draft.rtl else "ltr"
    url = action_url or f"./{token}"
    variants = draft.variants()
    parts = [
        "<!doctype html>",
        f'<html lang="{e(draft.lang)}" dir="{direction}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="robots" content="noindex, nofollow">',
        f"<title>{e(t['title'])}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(t['title'])}</h1>",
    ]
    if notice:
        kind = notice_kind if notice_kind in ("notice", "error", "ok") else "notice"
        parts.append(f'<p class="notice {kind}" role="status">{e(notice)}</p>')
    parts += [
        f'<p class="meta">{e(t["you"])}: {e(person_name)} · {e(t["version"])} {draft.version} · '
        f"<code>{e(short(draft.hash))}</code> · {e(_when(draft.created_at))}</p>",
        f'<div class="stmt" id="statement" lang="{e(draft.lang)}" dir="{direction}">{e(draft.text)}</div>',
        f'<p class="meta">{e(t["signed"])}: <strong>{e(draft.signer_name)}</strong>, {e(draft.signer_role)}</p>',
        f"<h2>{e(t['status'])}</h2>",
        f"<p>{e(t['signer_ok'] if state.signer_approved else t['signer_wait'])}; "
        f"{state.approver_count}/{state.quorum}. ",
        e(t["ready"]) if state.publishable else f"{e(t['waiting'])}: {e('; '.join(state.waiting_for()))}",
        "</p>",
    ]
    if state.approvals:
        parts.append("<ul>" + "".join(f"<li>{e(a.person)} ({e(a.capacity)})</li>" for a in state.approvals) + "</ul>")
    if state.change_requests:
        parts.append(f"<h2>{e(t['requests'])}</h2><ul>")
        parts += [f"<li><strong>{e(r.person)}</strong>: {e(r.note)}</li>" for r in state.change_requests]
        parts.append("</ul>")
    if previous is not None:
        parts += [
            f"<h2>{e(t['diff'])} {previous.version}</h2>",
            f'<div class="diff" dir="{direction}">{word_diff(previous.text, draft.text)}</div>',
        ]
    else:
        parts.append(f'<p class="meta">{e(t["first"])}</p>')
    parts += [f"<h2>{e(t['chart'])}</h2>", sparkline(list(series), label=t["chart"])]
    parts.append(f"<details><summary>{e(t['posts'])}</summary>")
    parts.append(f"<h2>{e(t['x_thread'])} ({variants.x_length}/280)</h2>")
    parts += [f'<div class="post" dir="{direction}">{e(p)}</div>' for p in variants.x_thread]
    parts.append(f'<h2>{e(t["x_short"])}</h2><div class="post" dir="{direction}">{e(variants.x_short)}</div>')
    parts.append(f"<h2>{e(t['meta'])}</h2>")
    parts += [f'<div class="post" dir="{direction}">{e(p)}</div>' for p in variants.meta]
    parts.append("</details>")
    if can_act:
        hidden = f'<input type="hidden" name="version_hash" value="{e(draft.hash)}">'
        parts += [
            f'<form method="post" action="{e(url)}">{hidden}'
            f'<input type="hidden" name="action" value="approve">'
            f'<button type="submit">{e(t["approve"])}</button></form>',
            f'<details><summary>{e(t["changes"])}</summary><form method="post" action="{e(url)}">{hidden}'
            f'<input type="hidden" name="action" value="request_changes">'
            f'<label for="note">{e(t["note"])}</label>'
            f'<textarea id="note" name="note" required maxlength="2000" dir="auto"></textarea>'
            f'<button type="submit" class="secondary">{e(t["changes"])}</button></form></details>',
            # The newline after <textarea> is eaten by the HTML parser, so a text's own first line survives.
            f'<details><summary>{e(t["edit"])}</summary><form method="post" action="{e(url)}">{hidden}'
            f'<input type="hidden" name="action" value="edit">'
            f'<p class="meta">{e(t["edit_help"])}</p>'
            f'<textarea name="text" rows="14" dir="{direction}" lang="{e(draft.lang)}">\n{e(draft.text)}</textarea>'
            f'<button type="submit" class="secondary">{e(t["save"])}</button></form></details>',
        ]
    parts += ["</body>", "</html>"]
    return "\n".join(parts)


def render_message_page(
    title: str, message: str, *, lang: str = "en", link: str | None = None, link_text: str = ""
) -> str:
    """A short page for refusals (expired or forged link) and for "this draft changed" with a new link."""
    direction = "rtl" if lang in ("he", "ar") else "ltr"
    button = f'<a class="button" href="{e(link)}">{e(link_text or link)}</a>' if link else ""
    return "\n".join(
        [
            "<!doctype html>",
            f'<html lang="{e(lang)}" dir="{direction}">',
            '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex, nofollow">',
            f"<title>{e(title)}</title><style>{CSS}</style></head>",
            f'<body><h1>{e(title)}</h1><p class="notice">{e(message)}</p>{button}</body></html>',
        ]
    )
