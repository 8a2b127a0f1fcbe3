"""The queue page's link and rendering, without a store."""

from __future__ import annotations

import struct

import pytest

from chalicelib.statements.links import LinkExpired, LinkTampered, _b64, _sign
from chalicelib.triage.web import render_queue, triage_link, verify_triage_link

SECRET = b"test-secret"


def entry(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "entry_id": "tq_0123456789abcdef0123", "status": "open", "urgency": 72, "count": 3, "platform": "x",
        "author": "dana", "followers": 12000, "topics": ["outage"], "crisis": True, "playbook": "acme-network-outage",
        "question": True, "text": "למה אין קליטה? <b>bold</b>", "url": "https://x.com/dana/status/1",
        "handled_at": None, "handled_by": None, "seconds_left": -480, "waited_seconds": 2280, "breached": True,
    }
    base.update(over)
    return base


def test_link_is_bound_to_brand_expiry_and_kind() -> None:
    token = triage_link("acme-telecom", "noa-ben-david", 2_000, secret=SECRET)
    assert verify_triage_link(token, "acme-telecom", 1_999, secret=SECRET) == "noa-ben-david"
    with pytest.raises(LinkExpired):
        verify_triage_link(token, "acme-telecom", 2_000, secret=SECRET)
    with pytest.raises(LinkTampered):
        verify_triage_link(token, "golden-foods", 1_000, secret=SECRET)
    with pytest.raises(LinkTampered):
        verify_triage_link(token, "acme-telecom", 1_000, secret=b"other-secret")
    for kind in (1, 2, 3):  # same shape, signed with the same secret, but another kind of link
        payload = struct.pack(">BI", kind, 2_000) + b"acme-telecom|noa-ben-david"
        with pytest.raises(LinkTampered):
            verify_triage_link(f"{_b64(payload)}.{_b64(_sign(payload, SECRET))}", "acme-telecom", 1_000, secret=SECRET)
    with pytest.raises(ValueError):
        triage_link("acme|x", "p", 2_000, secret=SECRET)


def test_hebrew_page_is_rtl_escaped_and_marks_late_entries() -> None:
    html = render_queue(
        "acme-telecom", [entry(), entry(entry_id="tq_" + "1" * 20, urgency=20, breached=False, seconds_left=600,
                                        crisis=False, question=False, topics=[], count=1)],
        token="tok", filters={"status": "open", "topic": None, "language": None}, lang="he", labels={"outage": "תקלה"},
    )
    assert html.startswith('<!doctype html><html lang="he" dir="rtl">')
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    assert html.count('class="entry late"') == 1 and "8 דק׳ באיחור" in html and "10 דק׳ נותרו" in html
    assert "תקלה" in html and "מונח משבר: acme-network-outage" in html and "×3 פוסטים" in html
    assert 'action="/brands/acme-telecom/triage/page/tq_0123456789abcdef0123/handled?status=open&amp;t=tok"' in html
    assert "12,000 עוקבים" in html


def test_english_page_handled_entry_shows_who_and_no_button() -> None:
    html = render_queue(
        "golden-foods",
        [entry(status="handled", handled_at=1.0, handled_by="maya-katz", breached=False, seconds_left=None)],
        token="tok", filters={"status": "handled", "topic": None, "language": None}, lang="en", labels={},
    )
    assert '<html lang="en" dir="ltr">' in html and "by maya-katz" in html and "<form" not in html
    assert "answered after 38 min" in html
