"""A holding statement from draft to publication, clicked through in a phone-sized browser.

Per language: the staff API drafts the statement and returns each person's signed link; the signer
reads it and edits one word (a new version); every old link now says the draft changed and leads
to the new version; the signer and the quorum approve it there; the staff API publishes it to the
outbox, which must then hold exactly the approved text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.incidents import service as incidents
from chalicelib.playbooks.loader import default_playbooks
from chalicelib.publish.outbox import outbox_items
from chalicelib.statements import service as statements

FACTS = {
    "he": {
        "product": "שירותי סלולר ואינטרנט ביתי",
        "what_we_know": "תקלה באתר המיתוג הראשי בפתח תקווה ניתקה שיחות ונתונים במרכז הארץ מאז 11:40.",
        "what_we_are_doing": "מהנדסי הרשת שלנו באתר ומעבירים את התעבורה לאתר הגיבוי.",
        "next_update": "עד 13:30",
    },
    "en": {
        "product": "Golden Foods chicken nuggets (500 g, best before 12 June)",
        "what_we_know": "Some packs from our Leeds site may contain small pieces of plastic.",
        "what_we_are_doing": "We have stopped the line and are checking every batch made since 1 May.",
        "next_update": "by 6 pm today",
    },
}
CASES = {
    # lang: (playbook, word to replace, replacement, "this draft changed" heading)
    "he": ("acme-network-outage", "כרגע", "עכשיו", "הנוסח השתנה"),
    "en": ("golden-product-recall", "shop.", "store.", "This draft changed"),
}


def _open_incident(playbook_id: str) -> tuple[str, Any]:
    playbook = next(p for p in default_playbooks() if p.id == playbook_id)
    opened = incidents.open_or_update(
        brand=playbook.brands[0],
        playbook=playbook.id,
        severity=playbook.severity,
        trigger=incidents.Trigger(actor="e2e", channel="manual", summary="e2e: statement approval in the browser"),
        ack_seconds=int(playbook.response_targets.acknowledge.total_seconds()),
        response_seconds=int(playbook.response_targets.first_public_response.total_seconds()),
    )
    assert opened.created, f"an incident for {playbook_id} was already open"
    return opened.incident.id, playbook


@pytest.mark.parametrize("lang", ["he", "en"])
def test_draft_edit_approve_publish(lang: str, stack: Any, api: Any, page: Any, artifacts: Path) -> None:
    playbook_id, old_word, new_word, changed_heading = CASES[lang]
    incident_id, playbook = _open_incident(playbook_id)
    shot = 0

    def screenshot(step: str) -> None:
        nonlocal shot
        shot += 1
        page.screenshot(path=str(artifacts / f"approval_{lang}_{shot:02d}_{step}.png"), full_page=True)

    try:
        status, body = api.call(
            "POST", f"/incidents/{incident_id}/statements", {"facts": FACTS[lang], "languages": [lang], "links": True}
        )
        assert status == 201, body
        (draft,) = body["drafts"]
        links: dict[str, str] = body["links"][lang]
        signer = draft["signer"]["id"]
        approvers = draft["approvers"][: draft["quorum"]]
        assert signer == playbook.statements[lang].signer and draft["quorum"] == playbook.statements[lang].quorum
        assert set(links) >= {signer, *approvers}

        # 1. The signer opens their link and reads the exact text.
        page.goto(links[signer])
        expected_dir = "rtl" if lang == "he" else "ltr"
        assert page.locator("html").get_attribute("dir") == expected_dir
        assert page.locator("#statement").get_attribute("dir") == expected_dir
        assert page.locator("#statement").text_content() == draft["text"]
        screenshot("signer_reads")

        # 2. ... and changes one word: a new version.
        edited = draft["text"].replace(old_word, new_word, 1)
        assert edited != draft["text"]
        edit_form = page.locator("form").filter(has=page.locator('input[name="action"][value="edit"]'))
        edit_form.locator("xpath=..").locator("summary").click()
        textarea = edit_form.locator("textarea[name=text]")
        assert textarea.input_value() == draft["text"]
        textarea.fill(edited)
        screenshot("signer_edits")
        with page.expect_navigation():
            edit_form.locator("button[type=submit]").click()
        assert page.locator("p.notice.ok").is_visible()
        assert "version 2" in page.locator("p.notice").inner_text()
        assert page.locator("#statement").text_content() == edited
        assert new_word.strip(".") in page.locator(".diff ins").first.inner_text()
        screenshot("new_version")
        current = statements.current_draft(incident_id, lang)
        assert current.version == 2 and current.text == edited

        # 3. Every old link now says the draft changed and leads to the new version, where each person approves.
        for person in [signer, *approvers]:
            response = page.goto(links[person])
            assert response is not None and response.status == 200
            assert page.locator("h1").inner_text() == changed_heading
            assert page.locator("#statement").count() == 0  # nothing to approve on the stale link
            screenshot(f"{person}_old_link")
            with page.expect_navigation():
                page.locator("a.button").click()
            assert page.locator("#statement").text_content() == edited
            assert page.locator('input[name="version_hash"]').first.get_attribute("value") == current.hash
            approve = page.locator("form").filter(has=page.locator('input[name="action"][value="approve"]'))
            with page.expect_navigation():
                approve.locator("button[type=submit]").click()
            notice = page.locator("p.notice.ok").inner_text()
            assert notice.startswith("Approved"), notice
            screenshot(f"{person}_approved")
        assert "Ready to publish" in notice
        assert statements.approval_state(incident_id, lang).publishable

        # 4. Publish: the outbox holds exactly the approved text, once.
        status, published = api.call(
            "POST",
            f"/incidents/{incident_id}/publish",
            {"lang": lang, "version_hash": current.hash, "platform": "outbox"},
        )
        assert status == 200, published
        status, incident = api.call("GET", f"/incidents/{incident_id}")
        assert status == 200 and incident["status"] == incidents.PUBLISHED
        (sent,) = outbox_items(incident_id)
        assert sent.text == edited
        assert "statement_published" in [entry["action"] for entry in incident["timeline"]]
    finally:
        try:
            incidents.transition(incident_id, incidents.RESOLVED, actor="e2e", channel="api")
        except incidents.InvalidTransition:
            pass
