"""Drafting statements texts each signer and approver a short link to what awaits them (real twilio
client against the shipped fake Twilio server, moto for the tables, routes through chalice.test)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from chalicelib.incidents import service as incidents
from chalicelib.incidents.service import Trigger
from chalicelib.paging import twilio_sms
from chalicelib.playbooks.loader import load_roster
from chalicelib.statements import service as statements
from chalicelib.statements.notify import request_approvals
from klaxon.fake_twilio import FakeTwilio, running_fake_twilio

pytestmark = pytest.mark.integration

FACTS = {
    "product": {"en": "Golden Foods hummus 400g", "he": "חומוס גולדן פודס 400 גרם"},
    "what_we_know": {"en": "Listeria was found in one batch.", "he": "נמצאה ליסטריה באצווה אחת."},
    "what_we_are_doing": {"en": "We stopped the line.", "he": "עצרנו את הקו."},
    "next_update": {"en": "by 18:00 today", "he": "עד 18:00 היום"},
}
BASE = "https://klaxon.example"
SIGNER = "sarah-whitfield"


def headers() -> dict[str, str]:
    """Staff headers with this test's configured API key (another test may have changed it)."""
    from chalicelib.config import settings

    return {"x-api-key": settings().api_key, "content-type": "application/json", "x-klaxon-actor": "maya-katz"}


@pytest.fixture
def fake(env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with running_fake_twilio(step_delay=0.0) as twilio:
        for key, value in twilio.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KLAXON_PUBLIC_URL", BASE)
        twilio_sms.default_sender.cache_clear()
        try:
            yield twilio
        finally:
            twilio_sms.default_sender.cache_clear()


def open_incident() -> incidents.IncidentItem:
    return incidents.open_or_update(
        brand="golden-foods",
        playbook="golden-product-recall",
        severity="sev1",
        trigger=Trigger(actor="detector", channel="ingest", summary="neg 90/5min, 6x usual", observed=90, ratio=6),
    ).incident


def texted(fake: FakeTwilio) -> dict[str, str]:
    """person id -> the SMS body they got."""
    by_phone = {p.phone: p.id for p in load_roster().people}
    return {by_phone[m.to]: m.body for m in fake.messages}


def link_path(body: str) -> tuple[str, dict[str, str]]:
    match = re.search(re.escape(BASE) + r"(/a/\d+)\?t=([\w-]{12})$", body)
    assert match, body
    return match[1], {"t": match[2]}


def test_drafting_texts_every_signer_and_approver_once_with_a_link_to_their_approval(
    env: Any, fake: FakeTwilio
) -> None:
    incident = open_incident()
    answer = env.client.http.post(
        f"/incidents/{incident.id}/statements",
        headers=headers(),
        body=json.dumps({"facts": FACTS, "languages": ["en", "he"]}),
    )
    assert answer.status_code == 201, answer.body
    drafts = [statements.current_draft(incident.id, lang) for lang in ("en", "he")]
    everyone = sorted({d.signer_id for d in drafts} | {a for d in drafts for a in d.approvers})
    assert len(everyone) == 5  # en: Sarah signs; he: Avi signs; approvers overlap (Avi, Rachel)
    assert sorted(answer.json_body["approval_requests"]["texted"]) == everyone
    bodies = texted(fake)
    assert sorted(bodies) == everyone and len(fake.messages) == 5  # one SMS each, whatever the languages
    assert all(m.num_segments <= 2 for m in fake.messages)
    hebrew_reader = next(p.id for p in load_roster().people if p.languages[0] == "he" and p.id in bodies)
    assert bodies[hebrew_reader].startswith("קלקסון ")
    assert f"incident {incident.code}" in bodies[SIGNER] or f"לאירוע {incident.code}" in bodies[SIGNER]

    # Asking again for the same drafts (a retried request) texts nobody twice.
    again = request_approvals(incident.id, drafts, now=time.time())
    assert again.sent == () and sorted(again.already) == everyone
    assert len(fake.messages) == 5

    # Rachel approves in both languages: her link lists both; James approves English only and goes
    # straight to that approval page, for the current version.
    path, query = link_path(bodies["rachel-goldberg"])
    listing = env.client.http.get(f"{path}?{urlencode(query)}")
    assert listing.status_code == 200 and listing.body.decode().count("/approve/") == 2
    english_only = "james-okafor"
    assert english_only in drafts[0].approvers and english_only not in drafts[1].approvers
    path, query = link_path(bodies[english_only])
    redirect = env.client.http.get(f"{path}?{urlencode(query)}")
    assert redirect.status_code == 303
    approval_page = env.client.http.get(urlsplit(redirect.headers["Location"]).path)
    assert approval_page.status_code == 200 and drafts[0].hash in approval_page.body.decode()

    # Once they approved, their link says there is nothing left; a forged or foreign link opens nothing.
    statements.approve(incident.id, "en", version_hash=drafts[0].hash, person_id=english_only)
    done = env.client.http.get(f"{path}?{urlencode(query)}")
    assert done.status_code == 200 and "Nothing awaits" in done.body.decode()
    forged = query["t"][:-1] + ("A" if query["t"][-1] != "A" else "B")
    assert env.client.http.get(f"{path}?t={forged}").status_code == 403
    other = "0000" if incident.code != "0000" else "0001"
    assert env.client.http.get(f"/a/{other}?{urlencode(query)}").status_code == 403
    assert env.client.http.get(f"{path}").status_code == 403
    page_link = re.search(r"\?t=([\w-]+)", bodies[SIGNER])
    assert page_link and env.client.http.get(f"/i/{incident.code}?t={page_link[1]}").status_code == 403  # kinds apart


def test_without_sms_configured_drafting_still_works_and_texts_nobody(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAXON_PUBLIC_URL", BASE)
    for name in ("KLAXON_TWILIO_ACCOUNT_SID", "KLAXON_TWILIO_AUTH_TOKEN", "KLAXON_TWILIO_FROM"):
        monkeypatch.delenv(name, raising=False)
    twilio_sms.default_sender.cache_clear()
    incident = open_incident()
    answer = env.client.http.post(
        f"/incidents/{incident.id}/statements",
        headers=headers(),
        body=json.dumps({"facts": FACTS, "languages": ["en"]}),
    )
    assert answer.status_code == 201
    requests = answer.json_body["approval_requests"]
    assert requests["texted"] == [] and requests["already"] == []
    draft = statements.current_draft(incident.id, "en")
    assert sorted(s["person"] for s in requests["skipped"]) == sorted({draft.signer_id, *draft.approvers})
    assert all("SMS is not configured" in s["reason"] and s["retry_at"] is None for s in requests["skipped"])


def test_an_edit_texts_those_whose_approval_it_voided_once_per_version(env: Any, fake: FakeTwilio) -> None:
    """Drafting texts everyone; then James approves, Rachel asks for changes and Avi has not acted when
    Sarah (the signer) edits on her page: James and Rachel are texted that their approval is needed
    again (a short link to the new version), Sarah and Avi are not. A second edit texts only those who
    acted on the version it replaced."""
    from chalicelib.statements import web

    incident = open_incident()
    v1 = statements.draft_statements(incident.id, FACTS, ["en"], actor="maya-katz")[0]
    assert request_approvals(incident.id, [v1], now=time.time()).sent
    assert {"james-okafor", "rachel-goldberg", "avi-shapira"} <= set(v1.approvers) and v1.signer_id == SIGNER
    first_round = len(fake.messages)
    statements.approve(incident.id, "en", version_hash=v1.hash, person_id="james-okafor")
    statements.request_changes(incident.id, "en", version_hash=v1.hash, person_id="rachel-goldberg",
                               note="say when the next update is")

    def edit(person: str, base: str, text: str) -> None:
        link = web.issue_links(incident.id, "en")[person]  # approval links are bound to a version
        body = f"action=edit&version_hash={base}&" + urlencode({"text": text})
        assert web.approval_post(link, body.encode()).status == 200

    edit(SIGNER, v1.hash, v1.text.replace("We stopped the line.", "We stopped the line at 09:00."))
    v2 = statements.current_draft(incident.id, "en")
    assert v2.version == 2
    new = fake.messages[first_round:]
    by_phone = {p.phone: p.id for p in load_roster().people}
    assert sorted(by_phone[m.to] for m in new) == ["james-okafor", "rachel-goldberg"]
    for message in new:
        assert "Sarah Whitfield edited the statement" in message.body and message.num_segments <= 2
        path, query = link_path(message.body)
        redirect = env.client.http.get(f"{path}?{urlencode(query)}")
        assert redirect.status_code == 303  # straight to the approval page of version 2
        assert v2.hash in env.client.http.get(urlsplit(redirect.headers["Location"]).path).body.decode()

    # Nobody acted on v2: a further edit (by Avi) texts nobody; once James approves v3, Rachel's edit
    # texts James alone.
    edit("avi-shapira", v2.hash, v2.text.replace("09:00", "09:15"))
    assert len(fake.messages) == first_round + 2
    v3 = statements.current_draft(incident.id, "en")
    statements.approve(incident.id, "en", version_hash=v3.hash, person_id="james-okafor")
    edit("rachel-goldberg", v3.hash, v3.text.replace("09:15", "09:20"))
    assert [by_phone[m.to] for m in fake.messages[first_round + 2 :]] == ["james-okafor"]


# --- sends that fail: released and sent again once, or reported and never resent ------------------


def approval_sms(fake: FakeTwilio) -> list[tuple[str, str]]:
    """(person id, body) of each approval-request SMS (not pages), in order."""
    by_phone = {p.phone: p.id for p in load_roster().people}
    return [(by_phone[m.to], m.body) for m in fake.messages if f"{BASE}/a/" in m.body]


def by_person(fake: FakeTwilio) -> dict[str, int]:
    """person id -> how many approval-request SMS they got."""
    counts: dict[str, int] = {}
    for person, _ in approval_sms(fake):
        counts[person] = counts.get(person, 0) + 1
    return counts


def claim_of(incident_id: str, person: str) -> Any:
    from chalicelib.store.models import ApprovalRequestItem

    query = ApprovalRequestItem.query(f"incident#{incident_id}", ApprovalRequestItem.sk.startswith("aprq#"))
    claims = [c for c in query if c.person_id == person]
    assert len(claims) == 1
    return claims[0]


def test_a_refused_request_is_reported_and_sent_by_the_next_sweep_exactly_once(env: Any, fake: FakeTwilio) -> None:
    """Twilio refuses the signer's SMS (503: nothing accepted): the API says so (skipped, with the reason
    and the retry time) instead of a clean 201; asking again for the same drafts takes the released
    claim at once; failing that, the sweeper sends it once backoff allows, and never again."""
    from chalicelib.flows import sweep_approval_requests
    from chalicelib.statements import notify

    incident = open_incident()
    fake.fail_next(1, status=503)  # the first send is the signer's (signers first)
    answer = env.client.http.post(
        f"/incidents/{incident.id}/statements",
        headers=headers(),
        body=json.dumps({"facts": FACTS, "languages": ["en"]}),
    )
    assert answer.status_code == 201, answer.body
    requests = answer.json_body["approval_requests"]
    draft = statements.current_draft(incident.id, "en")
    assert sorted(requests["texted"]) == sorted(draft.approvers) and requests["already"] == []
    [skipped] = requests["skipped"]
    assert skipped["person"] == SIGNER and "HTTP 503" in skipped["reason"] and "nothing was sent" in skipped["reason"]
    started = time.time()
    assert started < skipped["retry_at"] <= started + notify.RETRY_BASE_SECONDS + 5
    assert SIGNER not in by_person(fake) and claim_of(incident.id, SIGNER).state == notify.SEND_FAILED
    assert any(t.action == "approval_request_failed" and SIGNER in (t.detail or "") for t in incidents.timeline(
        incident.id))

    # Not due yet: the sweep leaves it; the real scheduled handler runs too (now), changing nothing.
    assert sweep_approval_requests(started + 5) == {}
    env.client.lambda_.invoke("sweeper", env.client.events.generate_cw_event("Scheduled Event", "", {}, []))
    assert SIGNER not in by_person(fake)

    # Due: the next sweep texts the signer (once), with the short link to what awaits her.
    assert sweep_approval_requests(skipped["retry_at"] + 1) == {"approval_requests_sent": 1}
    assert by_person(fake)[SIGNER] == 1
    [body] = [b for person, b in approval_sms(fake) if person == SIGNER]
    path, query = link_path(body)
    redirect = env.client.http.get(f"{path}?{urlencode(query)}")
    assert redirect.status_code == 303 and "awaits your approval" in body
    claim = claim_of(incident.id, SIGNER)
    assert (claim.state, claim.attempts, claim.open_shard) == (notify.SENT, 2, None)
    for later in (60, 600, 3600):  # and never again
        assert sweep_approval_requests(skipped["retry_at"] + later) == {}
    again = request_approvals(incident.id, [draft], now=time.time())
    assert again.sent == () and SIGNER in again.already
    assert by_person(fake) == {person: 1 for person in {SIGNER, *draft.approvers}}


def test_a_released_request_is_taken_by_the_next_request_and_dropped_once_nothing_awaits(
    env: Any, fake: FakeTwilio
) -> None:
    from chalicelib.flows import sweep_approval_requests
    from chalicelib.statements import notify

    incident = open_incident()
    draft = statements.draft_statements(incident.id, FACTS, ["en"], actor="maya-katz")[0]
    fake.fail_next(1, status=429, retry_after=1)  # the signer's first attempt is throttled...
    first = request_approvals(incident.id, [draft], now=time.time())
    assert [s.person for s in first.skipped] == [SIGNER] and first.skipped[0].retry_at
    fake.fail_next(1, status=429, retry_after=1)  # ...and so is the second
    second = request_approvals(incident.id, [draft], now=time.time())  # the same drafts again: taken at once
    assert [s.person for s in second.skipped] == [SIGNER] and sorted(second.already) == sorted(draft.approvers)
    assert "the sweeper retries from" in second.skipped[0].reason and claim_of(incident.id, SIGNER).attempts == 2
    assert SIGNER not in by_person(fake)

    # Meanwhile the signer approved through some other way (say, the local API's links): nothing awaits her,
    # so the sweeper drops the request instead of texting her.
    statements.approve(incident.id, "en", version_hash=draft.hash, person_id=SIGNER)
    assert sweep_approval_requests(time.time() + 3600) == {"approval_requests_dropped": 1}
    assert SIGNER not in by_person(fake) and claim_of(incident.id, SIGNER).state == notify.DROPPED
    assert sweep_approval_requests(time.time() + 7200) == {}


def test_an_unknown_outcome_is_reported_and_never_sent_again(
    env: Any, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio takes too long to answer: the client gives up, but the SMS went out after all. Klaxon cannot
    tell, so it reports the outcome as unknown and neither the next request nor any sweep sends it again."""
    from chalicelib.flows import sweep_approval_requests
    from chalicelib.statements import notify

    monkeypatch.setenv("KLAXON_TWILIO_TIMEOUT_SECONDS", "0.5")
    twilio_sms.default_sender.cache_clear()
    incident = open_incident()
    draft = statements.draft_statements(incident.id, FACTS, ["en"], actor="maya-katz")[0]
    fake.hang_next(1, seconds=1.5)  # the signer's send: answered after the client's timeout
    first = request_approvals(incident.id, [draft], now=time.time())
    [skipped] = first.skipped
    assert skipped.person == SIGNER and skipped.retry_at is None and "outcome is unknown" in skipped.reason
    assert "not sent again" in skipped.reason and sorted(first.sent) == sorted(draft.approvers)
    fake.wait_for(lambda f: by_person(f).get(SIGNER) == 1, timeout=10)  # it did go out
    claim = claim_of(incident.id, SIGNER)
    assert (claim.state, claim.open_shard) == (notify.UNKNOWN, None)

    again = request_approvals(incident.id, [draft], now=time.time())
    assert [s.person for s in again.skipped] == [SIGNER] and "outcome is unknown" in again.skipped[0].reason
    for later in (61, 600, 3600):
        assert sweep_approval_requests(time.time() + later) == {}
    time.sleep(0.2)
    assert by_person(fake)[SIGNER] == 1


def test_a_sender_that_died_mid_send_leaves_an_unknown_request_never_resent(env: Any, fake: FakeTwilio) -> None:
    """The Lambda died between the claim and Twilio's answer: the sweeper finds the claim still `sending`
    after STALE_SENDING_SECONDS, records it as unknown (on the timeline) and sends nothing."""
    from chalicelib.flows import sweep_approval_requests
    from chalicelib.statements import notify

    class Dies:
        def send(self, to: str, body: str, status_callback: str | None = None) -> Any:
            raise SystemExit("killed mid-send")  # not an Exception: nothing records the outcome

    incident = open_incident()
    draft = statements.draft_statements(incident.id, FACTS, ["en"], actor="maya-katz")[0]
    claimed_at = time.time()
    twilio_sms.default_sender()  # built, then swapped for one that dies
    with pytest.raises(SystemExit):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(twilio_sms, "default_sender", lambda: Dies())
            notify._request(incident.id, [draft], claimed_at)
    assert claim_of(incident.id, SIGNER).state == notify.SENDING
    assert sweep_approval_requests(claimed_at + 30) == {}  # not stale yet
    assert sweep_approval_requests(claimed_at + notify.STALE_SENDING_SECONDS + 1) == {"approval_requests_unknown": 1}
    assert claim_of(incident.id, SIGNER).state == notify.UNKNOWN
    assert any(t.action == "approval_request_failed" and "unknown" in (t.detail or "")
               for t in incidents.timeline(incident.id))
    assert sweep_approval_requests(claimed_at + 3600) == {} and by_person(fake) == {}


def test_languages_must_name_something_and_count_once(env: Any, fake: FakeTwilio) -> None:
    incident = open_incident()
    empty = env.client.http.post(
        f"/incidents/{incident.id}/statements", headers=headers(), body=json.dumps({"facts": FACTS, "languages": []})
    )
    assert empty.status_code == 400 and "languages" in empty.json_body["error"]
    assert statements.languages(incident.id) == [] and fake.messages == []

    twice = env.client.http.post(
        f"/incidents/{incident.id}/statements",
        headers=headers(),
        body=json.dumps({"facts": FACTS, "languages": ["en", "en"]}),
    )
    assert twice.status_code == 201, twice.body
    assert [(d["lang"], d["version"]) for d in twice.json_body["drafts"]] == [("en", 1)]
    assert [d.version for d in statements.versions(incident.id, "en")] == [1]
    assert len(fake.messages) == len(twice.json_body["approval_requests"]["texted"])


def test_a_released_request_superseded_by_a_later_one_is_not_sent_again(env: Any, fake: FakeTwilio) -> None:
    """The signer's request is refused; before it is due, the statement is redrafted and the new round
    texts her (the same short link): the sweep drops the old request instead of texting her twice."""
    from chalicelib.flows import sweep_approval_requests

    incident = open_incident()
    v1 = statements.draft_statements(incident.id, FACTS, ["en"], actor="maya-katz")[0]
    fake.fail_next(1, status=503)
    assert [s.person for s in request_approvals(incident.id, [v1], now=time.time()).skipped] == [SIGNER]
    facts = {**FACTS, "next_update": {"en": "by 19:00 today", "he": "עד 19:00 היום"}}
    v2 = statements.draft_statements(incident.id, facts, ["en"], actor="maya-katz")[0]
    assert SIGNER in request_approvals(incident.id, [v2], now=time.time() + 1).sent
    assert sweep_approval_requests(time.time() + 3600) == {"approval_requests_dropped": 1}
    assert by_person(fake)[SIGNER] == 1
