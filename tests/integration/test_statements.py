"""Invariant 5 end to end against the real moto server: draft, approve through signed links, publish.

Uses the shipped Golden Foods recall playbook: the English statement is signed by sarah-whitfield
and needs 2 of avi-shapira, james-okafor, rachel-goldberg.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.incidents import service as incidents
from chalicelib.incidents.service import Trigger
from chalicelib.publish import service as publish
from chalicelib.publish.base import OutcomeUnknown, PlatformError, PublishedRef, Target
from chalicelib.publish.outbox import OutboxPublisher, outbox_items
from chalicelib.statements import service as statements
from chalicelib.statements import web
from chalicelib.statements.links import make_link

pytestmark = pytest.mark.integration

FACTS = {
    "product": {"en": "Golden Foods hummus 400g (best before 12 May)", "he": "חומוס גולדן פודס 400 גרם"},
    "what_we_know": {"en": "Listeria was found in one batch.", "he": "נמצאה ליסטריה באצווה אחת."},
    "what_we_are_doing": {"en": "We stopped the line and called the regulator.", "he": "עצרנו את הקו ודיווחנו."},
    "next_update": {"en": "by 18:00 today", "he": "עד 18:00 היום"},
}
SIGNER, APPROVERS = "sarah-whitfield", ("avi-shapira", "james-okafor", "rachel-goldberg")


def open_incident() -> str:
    opened = incidents.open_or_update(
        brand="golden-foods",
        playbook="golden-product-recall",
        severity="sev1",
        trigger=Trigger(actor="detector", channel="ingest", summary="neg 90/5min, 6x usual", observed=90, ratio=6),
    )
    return opened.incident.id


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


def post(token: str, action: str, version_hash: str, **extra: str) -> web.PageResponse:
    return web.approval_post(token, form(action=action, version_hash=version_hash, **extra))


def actions(incident_id: str) -> list[str]:
    return [entry.action for entry in incidents.timeline(incident_id)]


def test_draft_approve_quorum_publish_through_outbox(env: Any) -> None:
    incident_id = open_incident()
    drafts = statements.draft_statements(incident_id, FACTS, ["en", "he"], actor="maya-katz")
    en = drafts[0]
    assert en.signer_id == SIGNER and en.version == 1 and en.quorum == 2
    assert "Golden Foods hummus 400g" in en.text and en.text.endswith("Sarah Whitfield\n" + en.signer_role)
    assert "אבי שפירא" in drafts[1].text  # the Hebrew statement is signed with the local name

    links = web.issue_links(incident_id, "en")
    assert set(links) == {SIGNER, *APPROVERS}
    page = web.approval_get(links[SIGNER])
    assert page.status == 200 and "Golden Foods hummus 400g" in page.body and f'value="{en.hash}"' in page.body
    assert 'dir="ltr"' in page.body and page.headers["Referrer-Policy"] == "no-referrer"

    with pytest.raises(statements.NotApproved):  # nobody approved yet
        publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz")

    assert post(links[SIGNER], "approve", en.hash).status == 200
    assert post(links["avi-shapira"], "approve", en.hash).status == 200
    with pytest.raises(statements.NotApproved):  # signer plus one approver: quorum is 2
        publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz")
    assert incidents.get(incident_id).status == incidents.TRIGGERED

    done = post(links["rachel-goldberg"], "approve", en.hash)
    assert done.status == 200 and "Ready to publish" in done.body
    assert incidents.get(incident_id).status == incidents.STATEMENT_APPROVED

    result = publish.publish_statement(
        incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz", version_hash=en.hash
    )
    assert result.platform == "outbox" and result.platform_id.startswith("outbox_") and not result.already
    (sent,) = outbox_items(incident_id)
    assert sent.text == en.text and sent.hash == en.hash
    stored = publish.get_publication(incident_id, en.hash, "outbox", result.target)
    assert stored is not None and stored.state == "published" and stored.platform_id == result.platform_id
    incident = incidents.get(incident_id)
    assert incident.status == incidents.PUBLISHED and incident.first_response_at is not None

    again = publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz")
    assert again.already and again.platform_id == result.platform_id and len(outbox_items(incident_id)) == 1

    log = actions(incident_id)
    assert log.count("statement_drafted") == 2 and log.count("statement_approval") == 3
    for expected in ("statement_approval_complete", "acknowledged", "statement_approved", "statement_published"):
        assert expected in log
    assert log[-1] == "published"


def test_edit_voids_approvals_and_old_links_show_the_new_version(env: Any) -> None:
    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    links = web.issue_links(incident_id, "en")
    post(links[SIGNER], "approve", en.hash)
    post(links["avi-shapira"], "approve", en.hash)
    assert statements.approval_state(incident_id, "en").approver_count == 1

    edited_text = en.text.replace("Listeria was found in one batch.", "Listeria was found in batch L2291.")
    edited = post(links["james-okafor"], "edit", en.hash, text=edited_text.replace("\n", "\r\n"))
    assert edited.status == 200 and "Saved as version 2" in edited.body
    assert "<del>2291</del>" not in edited.body and "<ins>L2291</ins>" in edited.body  # word diff on the page
    v2 = statements.current_draft(incident_id, "en")
    assert v2.version == 2 and v2.text == edited_text and v2.hash != en.hash and v2.created_by == "james-okafor"
    state = statements.approval_state(incident_id, "en")
    assert state.approvals == () and not state.signer_approved and not state.publishable

    # The signer's old link approves nothing: it says the draft changed and links to the new one.
    stale = post(links[SIGNER], "approve", en.hash)
    assert stale.status == 409 and "changed" in stale.body and "./" in stale.body
    assert statements.approval_state(incident_id, "en").approvals == ()
    page = web.approval_get(links[SIGNER])
    assert page.status == 200 and "here is the new one" in page.body
    new_token = page.body.split('href="./', 1)[1].split('"', 1)[0]
    assert post(new_token, "approve", v2.hash).status == 200
    with pytest.raises(statements.NotApproved):
        publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz")

    # Editing back to the first text is a third version: the approvals of version 1 do not return.
    fresh = web.issue_links(incident_id, "en")
    post(fresh["avi-shapira"], "edit", v2.hash, text=en.text)
    v3 = statements.current_draft(incident_id, "en")
    assert v3.version == 3 and v3.hash == en.hash
    assert statements.approval_state(incident_id, "en").approvals == ()
    log = actions(incident_id)
    assert log.count("statement_edited") == 2

    # A publication claimed for an old version is refused once a newer one exists.
    with pytest.raises(statements.DraftChanged):
        publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="x", version_hash=v2.hash)


def test_request_changes_blocks_until_that_person_approves(env: Any) -> None:
    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    links = web.issue_links(incident_id, "en")
    for person in (SIGNER, "avi-shapira", "james-okafor"):
        post(links[person], "approve", en.hash)
    assert post(links["rachel-goldberg"], "request_changes", en.hash, note="Say <which> batch").status == 200
    state = statements.approval_state(incident_id, "en")
    assert state.open_change_requests == ("rachel-goldberg",) and not state.publishable
    page = web.approval_get(links["rachel-goldberg"])
    assert "Say &lt;which&gt; batch" in page.body and "<which>" not in page.body
    post(links["rachel-goldberg"], "approve", en.hash)
    assert statements.approval_state(incident_id, "en").publishable
    assert "statement_changes_requested" in actions(incident_id)


def test_approval_by_a_non_approver_is_refused(env: Any) -> None:
    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    with pytest.raises(statements.NotAnApprover):
        statements.approve(incident_id, "en", version_hash=en.hash, person_id="noa-ben-david")
    outsider = make_link(incident_id, "en", en.hash, "noa-ben-david", int(time.time()) + 600)
    assert web.approval_get(outsider).status == 403
    assert post(outsider, "approve", en.hash).status == 403
    # A link signed for an approver, with the payload rewritten to someone else, is a forgery.
    token = web.issue_links(incident_id, "en")["avi-shapira"]
    forged = make_link(incident_id, "en", en.hash, "james-okafor", int(time.time()) + 600).split(".")[0]
    assert post(forged + "." + token.split(".")[1], "approve", en.hash).status == 403
    assert statements.approval_state(incident_id, "en").approvals == ()
    assert "statement_approval" not in actions(incident_id)


def test_publish_refused_before_quorum_and_adapter_refuses_other_text(env: Any) -> None:
    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    statements.approve(incident_id, "en", version_hash=en.hash, person_id=SIGNER)
    statements.approve(incident_id, "en", version_hash=en.hash, person_id="avi-shapira")

    class Recorder:
        platform = "recorder"
        calls: list[str] = []

        def publish(self, text: str, version_hash: str, target: Target, progress: Any = None) -> PublishedRef:
            self.calls.append(text)
            return PublishedRef("r1")

    recorder = Recorder()
    with pytest.raises(statements.NotApproved, match="1 more approver"):
        publish.publish_statement(incident_id, "en", publisher=recorder, actor="maya-katz")
    assert recorder.calls == [] and incidents.get(incident_id).status == incidents.TRIGGERED
    statements.approve(incident_id, "en", version_hash=en.hash, person_id="james-okafor")
    publish.publish_statement(incident_id, "en", publisher=recorder, actor="maya-katz")
    assert recorder.calls == [en.text]


def test_failed_publication_is_recorded_and_can_be_retried(env: Any) -> None:
    """A refusal (nothing went out) leaves the publication `failed` and a retry publishes; an unknown
    outcome (the platform may have the post) leaves it in doubt, and a retry sends nothing."""
    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    for person in (SIGNER, "avi-shapira", "james-okafor"):
        statements.approve(incident_id, "en", version_hash=en.hash, person_id=person)

    class Flaky:
        platform = "flaky"
        fail: Exception | None = PlatformError("platform refused", 429)
        calls = 0

        def publish(self, text: str, version_hash: str, target: Target, progress: Any = None) -> PublishedRef:
            self.calls += 1
            if self.fail is not None:
                raise self.fail
            return PublishedRef("p-1", "https://example.test/p-1")

    flaky = Flaky()
    with pytest.raises(PlatformError, match="refused"):
        publish.publish_statement(incident_id, "en", publisher=flaky, actor="maya-katz")
    assert "statement_publish_failed" in actions(incident_id)
    stored = publish.get_publication(incident_id, en.hash, "flaky", "default:post:thread")
    assert stored is not None and stored.state == "failed" and "refused" in (stored.error or "")
    assert incidents.get(incident_id).status == incidents.STATEMENT_APPROVED
    flaky.fail = None
    result = publish.publish_statement(incident_id, "en", publisher=flaky, actor="maya-katz")
    assert result.platform_id == "p-1" and incidents.get(incident_id).status == incidents.PUBLISHED
    assert flaky.calls == 2 and actions(incident_id).count("statement_published") == 1

    # Another target: the answer was lost after sending. In doubt; never sent again by a retry.
    flaky.fail, flaky.calls = OutcomeUnknown("no answer came back"), 0
    with pytest.raises(publish.PublishInDoubt) as caught:
        publish.publish_statement(incident_id, "en", publisher=flaky, actor="maya-katz", reply_to="c_7")
    assert caught.value.status == 502 and caught.value.details["part"] == 1
    flaky.fail = None
    with pytest.raises(publish.PublishInDoubt, match="part 1 of 1 may or may not be on the platform"):
        publish.publish_statement(incident_id, "en", publisher=flaky, actor="maya-katz", reply_to="c_7")
    assert flaky.calls == 1 and "statement_publish_in_doubt" in actions(incident_id)


def test_routes_helpers_draft_and_publish_json(env: Any) -> None:
    from chalicelib.publish.api import publish_request
    from chalicelib.statements.api import draft_request

    incident_id = open_incident()
    assert draft_request(incident_id, {"facts": FACTS, "bogus": 1}, actor="maya-katz").status == 422
    missing = draft_request(incident_id, {"facts": {"next_update": "soon"}, "languages": ["en"]}, actor="maya-katz")
    assert missing.status == 422 and "product" in missing.body["error"]
    assert draft_request("inc_0_nothing", {"facts": FACTS}, actor="maya-katz").status == 404
    made = draft_request(incident_id, {"facts": FACTS, "languages": ["en"], "links": True}, actor="maya-katz")
    assert made.status == 201
    (en,) = made.body["drafts"]
    assert en["signer"]["id"] == SIGNER and en["approval"]["publishable"] is False
    assert set(made.body["links"]["en"]) == {SIGNER, *APPROVERS}
    assert all("/approve/" in url for url in made.body["links"]["en"].values())

    body = {"lang": "en", "version_hash": en["version_hash"], "platform": "outbox"}
    refused = publish_request(incident_id, body, actor="maya-katz")
    assert refused.status == 409 and "waiting for" in refused.body["error"]
    for person in (SIGNER, "avi-shapira", "james-okafor"):
        statements.approve(incident_id, "en", version_hash=en["version_hash"], person_id=person)
    stale = publish_request(incident_id, {**body, "version_hash": "0" * 64}, actor="maya-katz")
    assert stale.status == 409 and stale.body["current_version_hash"] == en["version_hash"]
    done = publish_request(incident_id, body, actor="maya-katz")
    assert done.status == 200 and done.body["platform"] == "outbox" and done.body["platform_id"]
    assert publish_request(incident_id, {**body, "platform": "myspace"}, actor="x").status == 422


def test_page_refuses_expired_links_and_stale_forms_and_escapes_facts(env: Any) -> None:
    incident_id = open_incident()
    evil = {**FACTS, "product": {"en": '<script>alert("x")</script> hummus', "he": "<b>חומוס</b>"}}
    (en,) = statements.draft_statements(incident_id, evil, ["en"], actor="maya-katz")
    now = time.time()
    expired = make_link(incident_id, "en", en.hash, SIGNER, int(now) - 1)
    assert web.approval_get(expired).status == 410
    assert post(expired, "approve", en.hash).status == 410

    token = web.issue_links(incident_id, "en")[SIGNER]
    page = web.approval_get(token)
    assert "<script>alert" not in page.body and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; hummus" in page.body
    # A form whose hidden hash is not the link's version records nothing.
    other = "f" * 64
    assert post(token, "approve", other).status == 409
    assert post(token, "approve", "").status == 409
    assert statements.approval_state(incident_id, "en").approvals == ()
    assert post(token, "dance", en.hash).status == 400
    assert post(token, "request_changes", en.hash, note="   ").status == 422
    assert post(token, "edit", en.hash, text=en.text).status == 422  # unchanged
    assert web.approval_post(token, b"\xff\xfe").status == 400


def test_two_simultaneous_edits_from_the_same_version_make_one_new_version(env: Any) -> None:
    import threading

    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    outcomes: list[str] = []

    def edit(person: str) -> None:
        try:
            statements.edit(incident_id, "en", base_hash=en.hash, text=en.text + f"\n({person})", person_id=person)
            outcomes.append("saved")
        except statements.DraftChanged:
            outcomes.append("changed")

    threads = [threading.Thread(target=edit, args=(p,)) for p in APPROVERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["changed", "changed", "saved"]
    assert [d.version for d in statements.versions(incident_id, "en")] == [1, 2]


def test_resolved_incident_publishes_nothing(env: Any) -> None:
    incident_id = open_incident()
    (en,) = statements.draft_statements(incident_id, FACTS, ["en"], actor="maya-katz")
    for person in (SIGNER, "avi-shapira", "james-okafor"):
        statements.approve(incident_id, "en", version_hash=en.hash, person_id=person)
    incidents.transition(incident_id, incidents.RESOLVED, actor="maya-katz", channel="api")
    with pytest.raises(publish.IncidentClosed):
        publish.publish_statement(incident_id, "en", publisher=OutboxPublisher(), actor="maya-katz")
    assert outbox_items(incident_id) == []
    token = web.issue_links(incident_id, "en")["rachel-goldberg"]
    page = web.approval_get(token)
    assert page.status == 200 and "resolved" in page.body and "<form" not in page.body
