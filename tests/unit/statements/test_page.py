"""The approval page: exact text, escaped everything, RTL for Hebrew, word diff, sparkline, forms."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from chalicelib.statements.models import Approval, ChangeRequest
from chalicelib.statements.page import render_approval_page, render_message_page, sparkline, word_diff
from tests.unit.statements.conftest import empty_state, make_draft

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'


class _Collect(HTMLParser):
    """Parse the page as a browser would: tags, attributes, and the text inside #statement."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.statement: list[str] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if self._depth:
            self._depth += 1
        elif dict(attrs).get("id") == "statement":
            self._depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.statement.append(data)


def page(text: str = "We are sorry.", **kw: Any) -> str:
    draft = make_draft(text, **{k: v for k, v in kw.items() if k in ("lang", "version", "signer_name", "signer_role")})
    previous = kw.get("previous")
    return render_approval_page(
        draft=draft,
        state=kw.get("state") or empty_state(draft),
        token="tok.en",
        person_id="maya-katz",
        person_name=str(kw.get("person_name", "Maya Katz")),
        previous=previous,
        series=[0, 1, 5, 40, 12],
        notice=kw.get("notice"),
    )


def parsed(html: str) -> _Collect:
    collector = _Collect()
    collector.feed(html)
    return collector


def test_phone_first_head() -> None:
    html = page()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert html.startswith("<!doctype html>") and "<script" not in html.lower()
    assert "min-height:48px" in html  # large tap targets


def test_shows_the_exact_text_and_signer() -> None:
    text = "Line one.\n\n  Indented line, with  two spaces.\nNoa Ben-David"
    html = page(text)
    assert "".join(parsed(html).statement) == text
    assert "Noa Ben-David</strong>, VP Communications, Acme Telecom" in html


def test_escapes_everything() -> None:
    draft = make_draft(XSS, signer_name=XSS, signer_role=XSS)
    state = empty_state(draft).model_copy(
        update={
            "approvals": (Approval(person=XSS, capacity="approver", at=1.0, channel="web"),),
            "change_requests": (ChangeRequest(person=XSS, note=XSS, at=1.0),),
        }
    )
    html = render_approval_page(
        draft=draft,
        state=state,
        token='tok"><script>',
        person_id=XSS,
        person_name=XSS,
        previous=make_draft(XSS + " old", version=1),
        series=[1, 2],
        notice=XSS,
    )
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "onerror=alert(1)>" not in html
    collected = parsed(html)
    assert "".join(collected.statement) == XSS
    for _, attrs in collected.tags:  # no attribute was broken out of
        assert not any(name.startswith("on") for name in attrs)
    actions = {attrs.get("action") for tag, attrs in collected.tags if tag == "form"}
    assert actions == {'./tok"><script>'}


def test_hebrew_is_rtl() -> None:
    text = "אנחנו מצטערים על התקלה.\nנועה בן-דוד"
    html = page(text, lang="he", signer_name="נועה בן-דוד", signer_role='סמנכ"לית תקשורת')
    assert '<html lang="he" dir="rtl">' in html
    assert 'id="statement" lang="he" dir="rtl"' in html
    assert 'textarea name="text" rows="14" dir="rtl" lang="he"' in html
    assert "סמנכ&quot;לית תקשורת" in html
    assert "אישור הנוסח המדויק הזה" in html  # Hebrew labels


def test_english_is_ltr() -> None:
    assert '<html lang="en" dir="ltr">' in page()


def test_forms_carry_the_version_hash_and_post_back_with_the_token() -> None:
    draft = make_draft("Text.")
    collected = parsed(page("Text."))
    forms = [attrs for tag, attrs in collected.tags if tag == "form"]
    assert len(forms) == 3 and all(f == {"method": "post", "action": "./tok.en"} for f in forms)
    hidden = [a for t, a in collected.tags if t == "input" and a.get("name") == "version_hash"]
    assert len(hidden) == 3 and all(a["value"] == draft.hash for a in hidden)
    actions = sorted(a["value"] or "" for t, a in collected.tags if t == "input" and a.get("name") == "action")
    assert actions == ["approve", "edit", "request_changes"]


def test_edit_textarea_keeps_a_leading_newline() -> None:
    html = page("\nStarts with a blank line.")
    assert ">\n\nStarts with a blank line.</textarea>" in html


def test_word_diff() -> None:
    diff = word_diff("Listeria was found in one batch.", "Listeria was found in batch L2291 & more.")
    assert "<del>one</del>" in diff and "L2291" in diff and "&amp;" in diff
    assert re.sub(r"</?(ins|del)>", "", diff.replace("<del>one </del>", "")).count("Listeria") == 1
    assert word_diff("a <b>", "a <c>") == "a &lt;<del>b</del><ins>c</ins>&gt;"


def test_diff_section_only_with_a_previous_version() -> None:
    assert "Changes since version" not in page("New.")
    html = page("New text.", version=2, previous=make_draft("Old text.", version=1))
    assert "Changes since version 1" in html and "<del>Old</del><ins>New</ins>" in html


def test_sparkline() -> None:
    svg = sparkline([0, 10, 5], label="Negative mentions per minute")
    assert svg.startswith("<svg") and "<polyline" in svg and "peak 10" in svg
    points = re.search(r'points="([^"]+)"', svg).group(1).split()  # type: ignore[union-attr]
    assert len(points) == 3 and points[1].endswith(",2.0")  # the peak touches the top
    assert "<polyline" in sparkline([], label="x")  # no data still draws a flat line


def test_platform_variants_are_shown() -> None:
    html = page("We are sorry. " * 40)
    assert "X thread" in html and "1/3" in html and "Facebook / Instagram reply" in html


def test_closed_page_has_no_forms() -> None:
    draft = make_draft("Text.")
    html = render_approval_page(
        draft=draft, state=empty_state(draft), token="t", person_id="p", person_name="P", can_act=False
    )
    assert "<form" not in html


def test_message_page_escapes() -> None:
    html = render_message_page(XSS, XSS, lang="he", link='./a"b', link_text=XSS)
    assert "<script" not in html and 'href="./a&quot;b"' in html and 'dir="rtl"' in html
