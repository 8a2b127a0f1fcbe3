"""Abuse of every trust boundary, through the real routes (Chalice's local API Gateway) on a real moto server.

Each refusal is checked for its exact status AND for the state it must not have changed (tables,
queues, the fake Twilio's outbox), and most tests start from a positive control so a refusal cannot
pass by accident. What is already covered elsewhere is referenced, not repeated:

- forged, tampered, unsigned, stale and future webhooks, and a replayed Standard Webhooks id:
  tests/integration/test_webhooks.py (REJECTIONS, test_replayed_webhook_id_is_acknowledged_and_skipped);
  X and Meta deliveries replayed after counting are counted once: test_full_cycle_counts_every_mention_once;
- deployed without a secret, every check fails closed: tests/integration/test_secrets.py;
- approval links at the service level (non-approver, forged person, stale form, edit voids approvals,
  expiry, escaping): tests/integration/test_statements.py and tests/unit/statements/test_links.py;
- inbound SMS and status callbacks at the paging-service level: tests/integration/test_paging.py.

SECURITY.md describes the threat model these tests stand behind.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from chalicelib.config import settings
from chalicelib.incidents import service as incidents
from chalicelib.incidents.links import incident_link
from chalicelib.ingest import webhooks
from chalicelib.paging import service as paging
from chalicelib.playbooks.loader import load_roster
from chalicelib.statements import service as statements
from chalicelib.statements import web
from chalicelib.statements.links import LOCAL_LINK_SECRET, make_link
from klaxon.fake_twilio import FakeTwilio
from klaxon.signing import meta_headers, standard_headers, x_headers
from tests.conftest import FIXTURES
from tests.integration.test_fuzz_routes import FACTS, assert_unchanged, fake_sms, namespace, state_of

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://klaxon.example.com"
FORM = "application/x-www-form-urlencoded"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
ROSTER = load_roster()
ROSTER_PHONES = {p.phone for p in ROSTER.people}
PHONE = {p.id: p.phone for p in ROSTER.people}
OUTSIDER = "+15005550123"  # a valid E.164 number nobody in config/roster.yaml has
assert OUTSIDER not in ROSTER_PHONES


@dataclass
class Sec:
    env: Any
    fake: FakeTwilio

    @property
    def key(self) -> str:
        return settings().api_key

    def state(self) -> dict[str, Any]:
        return state_of(self.env, self.fake)

    def staff(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        sent = {"content-type": "application/json", "x-api-key": self.key, **headers}
        data = b"" if body is None else json.dumps(body).encode()
        return self.env.client.http.request(method, path, headers=sent, body=data)

    def twilio(
        self,
        path: str,
        form: dict[str, str],
        *,
        query: str = "",
        signed_url: str | None = None,
        token: str | None = None,
        signature: str | None = None,
    ) -> Any:
        """POST a form to an SMS route, signed as Twilio signs it (or over `signed_url`, or with `token`)."""
        url = signed_url or f"{PUBLIC_URL}{path}{query}"
        sig = signature or RequestValidator(token or self.fake.auth_token).compute_signature(url, form)
        headers = {"content-type": FORM, "x-twilio-signature": sig}
        return self.env.client.http.post(path + query, headers=headers, body=urlencode(form).encode())

    def outside_roster(self) -> list[str]:
        return [m.to for m in self.fake.messages if m.to not in ROSTER_PHONES]


@pytest.fixture(scope="module")
def space(moto_server: int) -> Iterator[Any]:
    """One namespace for the module (a fresh one costs seconds); each test checks its own before/after."""
    with pytest.MonkeyPatch.context() as patch, namespace(patch) as env:
        yield env


@pytest.fixture
def sec(space: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sec]:
    """A fresh fake Twilio per test; afterwards every open incident is resolved (one is allowed per
    brand and playbook, and tests reuse those). Queues are left as they are: checks are relative."""
    with fake_sms(monkeypatch) as fake:
        yield Sec(space, fake)
        assert [m.to for m in fake.messages if m.to not in ROSTER_PHONES] == []
    for incident in incidents.open_incidents():
        incidents.transition(incident.id, incidents.RESOLVED, actor="test-teardown", channel="api")
        paging.stop_escalation(incident.id, incidents.RESOLVED, time.time())


def open_outage(sec: Sec, **extra: Any) -> dict[str, Any]:
    """An Acme outage opened through the staff API: the on-call person is paged by SMS."""
    body = {"brand": "acme-telecom", "playbook": "acme-network-outage", "summary": "No 4G in Haifa", **extra}
    response = sec.staff("POST", "/incidents", body)
    assert response.status_code == 201, response.body
    opened = json.loads(response.body)
    assert sec.fake.messages, "the playbook's on-call person should have been paged"
    return opened


def actions(incident_id: str) -> list[str]:
    return [e.action for e in incidents.timeline(incident_id)]


def reason(response: Any) -> str:
    return str(json.loads(response.body)["error"])


# ---------------------------------------------------------------- webhooks: gaps beyond test_webhooks.py


def test_standard_webhook_signature_binds_its_id_and_timestamp(sec: Sec) -> None:
    """A captured delivery cannot be replayed under a fresh webhook-id (to dodge the replay memory) or
    a fresh timestamp (to dodge the 5-minute window): both are inside the signed content."""
    body = (FIXTURES / "generic_mention_created.json").read_bytes()
    headers = standard_headers(settings().webhook_secret, body, webhook_id="msg_captured")
    first = sec.env.client.http.post("/webhooks/generic", headers=headers, body=body)
    assert (first.status_code, json.loads(first.body)["enqueued"]) == (200, 1)
    before = sec.state()

    for changed in (
        {"webhook-id": "msg_fresh_id"},
        {"webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)},
        {"webhook-id": "msg_fresh_id", "webhook-timestamp": str(int(time.time()))},
    ):
        replay = sec.env.client.http.post("/webhooks/generic", headers={**headers, **changed}, body=body)
        assert (replay.status_code, reason(replay)) == (401, "webhook-signature does not match the body")
    # one second past the window, signed correctly: refused
    tolerance = settings().webhook_tolerance_seconds
    stale = standard_headers(settings().webhook_secret, body, timestamp=time.time() - tolerance - 1)
    refused = sec.env.client.http.post("/webhooks/generic", headers=stale, body=body)
    assert (refused.status_code, reason(refused)) == (401, "webhook-timestamp is outside the replay window")
    assert_unchanged(before, sec.state())


def test_standard_webhook_replay_memory_outlives_the_window(sec: Sec) -> None:
    """The remembered webhook-id expires only after the timestamp window has closed, so there is no
    moment when a replay is both inside the window and forgotten."""
    body = (FIXTURES / "generic_mention_created.json").read_bytes()
    t0 = int(time.time())
    headers = standard_headers(settings().webhook_secret, body, webhook_id="msg_once", timestamp=t0)
    assert webhooks.accept_generic(body, headers, now=t0).enqueued == 1
    tolerance = settings().webhook_tolerance_seconds
    assert webhooks.accept_generic(body, headers, now=t0 + tolerance).duplicate  # last second of the window
    with pytest.raises(webhooks.WebhookRejected) as refused:
        webhooks.accept_generic(body, headers, now=t0 + tolerance + 1)
    assert refused.value.status == 401
    from chalicelib.store.models import SeenWebhookItem

    remembered = SeenWebhookItem.get("wh#generic#msg_once", consistent_read=True)
    assert remembered.expires > t0 + tolerance  # still remembered when the window closes


@pytest.mark.parametrize(
    ("path", "sign", "status"),
    [
        ("/webhooks/meta", lambda b: x_headers(settings().x_consumer_secret, b), 401),
        ("/webhooks/generic", lambda b: x_headers(settings().x_consumer_secret, b), 401),
        ("/webhooks/x", lambda b: standard_headers(settings().webhook_secret, b), 401),
        ("/webhooks/meta", lambda b: meta_headers(settings().x_consumer_secret, b), 401),
        ("/webhooks/x", lambda b: x_headers(settings().meta_app_secret, b), 401),
    ],
    ids=["x-sig-on-meta", "x-sig-on-generic", "generic-sig-on-x", "meta-header-x-secret", "x-header-meta-secret"],
)
def test_a_signature_for_one_platform_is_no_good_on_another(sec: Sec, path: str, sign: Any, status: int) -> None:
    """A leaked secret of one platform lets its holder into that platform's route only."""
    body = (FIXTURES / "x_tweet_mention.json").read_bytes()
    before = sec.state()
    response = sec.env.client.http.post(path, headers=sign(body), body=body)
    assert response.status_code == status, response.body
    assert_unchanged(before, sec.state())


def test_the_x_crc_challenge_cannot_be_used_to_sign_a_forged_delivery(sec: Sec) -> None:
    """X's CRC answer is base64 HMAC-SHA256(consumer secret, crc_token): exactly the delivery signature of
    a body equal to the token. Was: anyone could GET /webhooks/x?crc_token=<a JSON delivery> and post that
    delivery with the answer as its signature (accepted and enqueued). A token that could be a JSON object
    (an X delivery always is one) is now refused."""
    forged = json.dumps(
        {
            "for_user_id": "3316376208",
            "tweet_create_events": [
                {
                    "created_at": "Mon Nov 23 09:14:07 +0000 2026",
                    "id_str": "1",
                    "text": "@AcmeTelecom down",
                    "user": {"id_str": "2", "screen_name": "a", "name": "a"},
                }
            ],
        },
        separators=(",", ":"),
    )
    before = sec.state()
    for token in (forged, " " + forged, "{}"):
        crc = sec.env.client.http.get("/webhooks/x?" + urlencode({"crc_token": token}))
        assert (crc.status_code, reason(crc)) == (400, "crc_token must not contain '{'")
    assert_unchanged(before, sec.state())
    control = sec.env.client.http.get("/webhooks/x?crc_token=MzY4NjcyNjE5NDc2MzQ5NjA3")
    assert control.status_code == 200 and json.loads(control.body)["response_token"].startswith("sha256=")


# ---------------------------------------------------------------- Twilio: inbound SMS and status callbacks


def test_inbound_sms_needs_twilios_signature_over_this_exact_request(sec: Sec) -> None:
    opened = open_outage(sec)
    paged = sec.fake.messages[0].to
    form = {"From": paged, "To": "+15005550006", "Body": f"ACK {opened['code']}", "MessageSid": "SM" + "1" * 32}
    before = sec.state()
    attempts = {
        "unsigned": sec.env.client.http.post(
            "/sms/inbound", headers={"content-type": FORM}, body=urlencode(form).encode()
        ),
        "wrong-token": sec.twilio("/sms/inbound", form, token="0" * 32),
        "status-url": sec.twilio("/sms/inbound", form, signed_url=f"{PUBLIC_URL}/sms/status"),
        "http-scheme": sec.twilio("/sms/inbound", form, signed_url="http://klaxon.example.com/sms/inbound"),
        "other-host": sec.twilio("/sms/inbound", form, signed_url="https://evil.example/sms/inbound"),
        "query-dropped": sec.twilio("/sms/inbound", form, query="?x=1", signed_url=f"{PUBLIC_URL}/sms/inbound"),
        "from-swapped": sec.twilio(
            "/sms/inbound",
            {**form, "From": PHONE["noa-ben-david"] if paged != PHONE["noa-ben-david"] else PHONE["maya-katz"]},
            signature=RequestValidator(sec.fake.auth_token).compute_signature(f"{PUBLIC_URL}/sms/inbound", form),
        ),
        "sha256-style": sec.twilio("/sms/inbound", form, signature=base64.b64encode(b"\0" * 20).decode()),
    }
    for name, response in attempts.items():
        assert (name, response.status_code) == (name, 403), response.body
        assert reason(response) == "X-Twilio-Signature does not match"
    assert_unchanged(before, sec.state())
    assert incidents.get(opened["id"]).status == incidents.TRIGGERED

    genuine = sec.twilio("/sms/inbound", form)  # the control: the same request, properly signed, acts
    assert genuine.status_code == 200 and b"<Message>" in genuine.body
    assert incidents.get(opened["id"]).status == incidents.ACKNOWLEDGED


def test_replayed_inbound_sms_acts_once(sec: Sec) -> None:
    """Twilio retries, and anyone who captured a request can resend it byte for byte: an ACK or RESOLVE
    counts once and a replay pages nobody."""
    opened = open_outage(sec)
    paged = sec.fake.messages[0].to
    sent = len(sec.fake.messages)
    ack = {"From": paged, "To": "+15005550006", "Body": f"ACK {opened['code']}", "MessageSid": "SM" + "2" * 32}
    replies = [sec.twilio("/sms/inbound", ack).body for _ in range(3)]
    assert b"<Message>" in replies[0]
    assert all(r != replies[0] for r in replies[1:])  # "already acknowledged by ...", not a second ack
    resolve = {**ack, "Body": f"RESOLVE {opened['code']}", "MessageSid": "SM" + "3" * 32}
    for _ in range(2):
        assert sec.twilio("/sms/inbound", resolve).status_code == 200
    log = actions(opened["id"])
    assert (log.count("acknowledged"), log.count("resolved")) == (1, 1)
    assert incidents.get(opened["id"]).status == incidents.RESOLVED
    esc = paging.get_escalation(opened["id"])
    assert esc is not None and esc.phase == "done"
    assert len(sec.fake.messages) == sent  # no reply became an outbound page


def test_replayed_failed_status_callback_advances_the_escalation_once(sec: Sec) -> None:
    opened = open_outage(sec)
    step0 = paging.pages(opened["id"])
    assert step0 and all(p.sid for p in step0)
    position = paging.get_escalation(opened["id"])
    assert position is not None

    def fail_all() -> list[str]:
        outcomes = []
        for page in step0:
            form = {"MessageSid": page.sid, "MessageStatus": "undelivered", "To": page.phone, "ErrorCode": "30006"}
            query = "?" + urlencode({"page": paging.page_key(page)})
            response = sec.twilio("/sms/status", form, query=query)
            assert response.status_code == 200, response.body
            outcomes.append(json.loads(response.body)["status"])
        return outcomes

    first = fail_all()
    assert first[-1] == "failed_advanced"  # nobody at step 0 can be reached: step 1 is paged at once
    after_first = len(sec.fake.messages)
    assert after_first > len(step0)
    moved = paging.get_escalation(opened["id"])
    assert moved is not None and (moved.round, moved.step) != (position.round, position.step)

    assert set(fail_all()) == {"stale"}  # the same callbacks again: recorded already, nothing moves
    again = paging.get_escalation(opened["id"])
    assert again is not None and (again.round, again.step) == (moved.round, moved.step)
    assert len(sec.fake.messages) == after_first
    assert actions(opened["id"]).count("escalated") == 1


def test_sms_from_a_number_not_in_the_roster_changes_nothing(sec: Sec) -> None:
    """Properly signed by Twilio (so the sender really is that number), but nobody Klaxon knows: no
    answer (not even confirming the code exists), no change, no SMS."""
    opened = open_outage(sec)
    paged = sec.fake.messages[0].to
    before = sec.state()
    lookalikes = [paged + "0", paged[1:], "00" + paged[1:], paged[:-1], "", "anonymous"]
    tries = [(OUTSIDER, body) for body in (f"RESOLVE {opened['code']}", "ACK 0000", "help")]
    tries += [(sender, f"ACK {opened['code']}") for sender in [OUTSIDER, *lookalikes]]
    for sender, body in tries:
        form = {"From": sender, "To": "+15005550006", "Body": body, "MessageSid": "SM" + "4" * 32}
        response = sec.twilio("/sms/inbound", form)
        assert (sender, response.status_code, response.body) == (sender, 200, EMPTY_TWIML)
    assert_unchanged(before, sec.state())
    assert incidents.get(opened["id"]).status == incidents.TRIGGERED


def test_sms_routes_fail_closed_without_twilio_configuration(sec: Sec, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = open_outage(sec)
    form = {"From": sec.fake.messages[0].to, "Body": f"ACK {opened['code']}"}
    signed = sec.twilio("/sms/inbound", form, signature=None)
    assert signed.status_code == 200  # control, then the same without an auth token configured
    opened_again = incidents.get(opened["id"])
    monkeypatch.delenv("KLAXON_TWILIO_AUTH_TOKEN")
    before = sec.state()
    for path in ("/sms/inbound", "/sms/status"):
        response = sec.twilio(path, {**form, "Body": f"RESOLVE {opened['code']}"})
        assert response.status_code == 503 and "KLAXON_TWILIO_AUTH_TOKEN" in reason(response)
    assert_unchanged(before, sec.state())
    assert incidents.get(opened["id"]).status == opened_again.status


# ---------------------------------------------------------------- approval links and incident-page links


@dataclass
class Statement:
    incident_id: str
    code: str
    version_hash: str
    links: dict[str, str]


def drafted(brand: str = "golden-foods", playbook: str = "golden-product-recall") -> Statement:
    opened = incidents.open_or_update(
        brand=brand,
        playbook=playbook,
        severity="sev1",
        trigger=incidents.Trigger(actor="detector", channel="ingest", summary="neg 90/5min, 6x usual"),
    )
    (draft,) = statements.draft_statements(opened.incident.id, FACTS, ["en"], actor="maya-katz")
    return Statement(opened.incident.id, opened.incident.code, draft.hash, web.issue_links(opened.incident.id, "en"))


def approve(sec: Sec, token: str, version_hash: str, action: str = "approve", **extra: str) -> Any:
    body = urlencode({"action": action, "version_hash": version_hash, **extra}).encode()
    return sec.env.client.http.post(f"/approve/{token}", headers={"content-type": FORM}, body=body)


def _flip(token: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return token[:at] + alphabet[(alphabet.index(token[at]) + 1) % 64] + token[at + 1 :]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tampered_approval_links_approve_nothing(sec: Sec, monkeypatch: pytest.MonkeyPatch) -> None:
    # the deployment's own link secret: a link signed with the public local default must not pass
    monkeypatch.setenv("KLAXON_LINK_SECRET", "a-real-deployment-secret-" + "x" * 20)
    golden = drafted()
    acme = drafted("acme-telecom", "acme-network-outage")
    token = golden.links["avi-shapira"]
    payload, signature = token.split(".")
    raw = _unb64(payload)
    # payload layout (chalicelib/statements/links.py): 0x01, expires (4 bytes), sha256 (32), "incident|lang|person"
    forged_payloads = {
        "later-expiry": raw[:1] + (int.from_bytes(raw[1:5], "big") + 86400).to_bytes(4, "big") + raw[5:],
        "other-hash": raw[:5] + bytes.fromhex(acme.version_hash) + raw[37:],
        "other-person": raw.replace(b"|avi-shapira", b"|james-okafor"),
        "other-incident": raw.replace(golden.incident_id.encode(), acme.incident_id.encode()),
        "format-2": b"\x02" + raw[1:],
    }
    tampered = {name: f"{_b64(p)}.{signature}" for name, p in forged_payloads.items()}
    tampered |= {
        "payload-byte": f"{_flip(payload, 10)}.{signature}",
        "signature-byte": f"{payload}.{_flip(signature, 5)}",
        "signature-of-another-person": f"{payload}.{golden.links['james-okafor'].split('.')[1]}",
        "truncated": token[:-2],
        "no-signature": payload,
        "two-dots": token + ".x",
        "incident-page-token": incident_link(golden.code, "avi-shapira", time.time() + 3600),
    }
    tampered["public-local-secret"] = make_link(
        golden.incident_id,
        "en",
        golden.version_hash,
        "avi-shapira",
        time.time() + 3600,
        secret=LOCAL_LINK_SECRET.encode(),
    )
    genuine = make_link(golden.incident_id, "en", golden.version_hash, "avi-shapira", time.time() + 3600)
    before = sec.state()
    for name, forged in tampered.items():
        page = sec.env.client.http.get(f"/approve/{forged}")
        posted = approve(sec, forged, golden.version_hash)
        assert (name, page.status_code, posted.status_code) == (name, 403, 403), posted.body[:300]
        assert b"Link not usable" in posted.body and golden.version_hash.encode() not in page.body
    # the genuine link for one incident, posting another incident's (or version's) hash: out of date, nothing recorded
    assert approve(sec, genuine, acme.version_hash).status_code == 409
    acme_link = make_link(acme.incident_id, "en", acme.version_hash, "noa-ben-david", time.time() + 3600)
    assert approve(sec, acme_link, golden.version_hash).status_code == 409
    assert_unchanged(before, sec.state())
    assert statements.approval_state(golden.incident_id, "en").approvals == ()
    assert statements.approval_state(acme.incident_id, "en").approvals == ()

    assert approve(sec, genuine, golden.version_hash).status_code == 200  # the control
    assert statements.approval_state(golden.incident_id, "en").approver_count == 1


def test_incident_page_links_are_bound_to_their_code_and_expiry(sec: Sec) -> None:
    golden = drafted()
    acme = drafted("acme-telecom", "acme-network-outage")
    token = incident_link(golden.code, "sarah-whitfield", time.time() + 3600)
    assert sec.env.client.http.get(f"/i/{golden.code}?t={token}").status_code == 200  # control
    refused = {
        "other-code": f"/i/{acme.code}?t={token}",
        "approval-token": f"/i/{golden.code}?t={golden.links['avi-shapira']}",
        "expired": f"/i/{golden.code}?t={incident_link(golden.code, 'sarah-whitfield', time.time() - 1)}",
        "flipped": f"/i/{golden.code}?t={_flip(token, 3)}",
        "no-token": f"/i/{golden.code}",
    }
    for name, path in refused.items():
        response = sec.env.client.http.get(path)
        assert (name, response.status_code) == (name, 403)
        assert b"neg 90/5min" not in response.body and golden.incident_id.encode() not in response.body


def test_expired_links_approve_nothing(sec: Sec) -> None:
    golden = drafted()
    before = sec.state()
    now = int(time.time())
    for expires in (now - 3600, now - 1, now):  # a link is dead from its expiry second on
        token = make_link(golden.incident_id, "en", golden.version_hash, "avi-shapira", expires)
        assert sec.env.client.http.get(f"/approve/{token}").status_code == 410
        response = approve(sec, token, golden.version_hash)
        assert response.status_code == 410 and b"expired" in response.body
    assert_unchanged(before, sec.state())


def test_a_link_used_again_counts_once_and_cannot_make_a_quorum_alone(sec: Sec) -> None:
    golden = drafted()
    for _ in range(3):
        assert approve(sec, golden.links["sarah-whitfield"], golden.version_hash).status_code == 200
        assert approve(sec, golden.links["avi-shapira"], golden.version_hash).status_code == 200
    state = statements.approval_state(golden.incident_id, "en")
    assert (state.signer_approved, state.approver_count, state.publishable) == (True, 1, False)
    assert actions(golden.incident_id).count("statement_approval") == 2
    publish = sec.staff(
        "POST", f"/incidents/{golden.incident_id}/publish", {"lang": "en", "version_hash": golden.version_hash}
    )
    assert publish.status_code == 409 and "waiting for" in reason(publish)

    # after the incident is resolved, the links still open but record nothing
    incidents.transition(golden.incident_id, incidents.RESOLVED, actor="maya-katz", channel="api")
    before = sec.state()
    late = approve(sec, golden.links["james-okafor"], golden.version_hash)
    assert late.status_code == 409 and b"resolved" in late.body
    edit = approve(sec, golden.links["james-okafor"], golden.version_hash, "edit", text="Everything is fine.")
    assert edit.status_code == 409
    assert_unchanged(before, sec.state())


def test_an_outdated_link_approves_nothing_even_with_the_new_hash(sec: Sec) -> None:
    golden = drafted()
    old = golden.links["sarah-whitfield"]
    assert approve(sec, old, golden.version_hash).status_code == 200
    text = statements.current_draft(golden.incident_id, "en").text
    new_text = text.replace("Listeria was found in one batch.", "Listeria was found in batch L2291.")
    edited = approve(sec, golden.links["james-okafor"], golden.version_hash, "edit", text=new_text)
    assert edited.status_code == 200 and b"Saved as version 2" in edited.body
    v2 = statements.current_draft(golden.incident_id, "en")
    before = sec.state()
    for posted in (golden.version_hash, v2.hash):  # the old link names version 1: it approves neither
        response = approve(sec, old, posted)
        assert response.status_code == 409 and b"changed" in response.body
    assert_unchanged(before, sec.state())
    state = statements.approval_state(golden.incident_id, "en")
    assert state.approvals == () and not state.signer_approved


# ---------------------------------------------------------------- the staff API key


STAFF_CALLS = [
    ("GET", "/incidents", None),
    ("POST", "/incidents", {"brand": "acme-telecom", "playbook": "acme-network-outage", "summary": "forged"}),
    ("GET", "/incidents/{id}", None),
    ("POST", "/incidents/{id}/acknowledge", {}),
    ("POST", "/incidents/{id}/resolve", {"note": "forged"}),
    ("POST", "/incidents/{id}/statements", {"facts": FACTS, "languages": ["en"], "links": True}),
    ("POST", "/incidents/{id}/publish", {"lang": "en", "version_hash": "{hash}"}),
    ("GET", "/brands/golden-foods/counts?from=2026-11-23T09:00:00Z&to=2026-11-23T10:00:00Z", None),
]


def _bad_credentials(key: str) -> dict[str, dict[str, str]]:
    """Header sets that must not authorise: missing, wrong, or the right key in the wrong place or form."""
    return {
        "none": {},
        "empty": {"x-api-key": ""},
        "wrong": {"x-api-key": "wrong-key"},
        "upper-case-value": {"x-api-key": key.upper()},
        "trailing-space": {"x-api-key": key + " "},
        "trailing-newline": {"x-api-key": key + "\r\n"},
        "prefix": {"x-api-key": key[:-1]},
        "bearer": {"authorization": f"Bearer {key}"},
        "basic": {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
        "other-header": {"api-key": key},
        "x-api-key-typo": {"x-api_key": key},
        "actor-header": {"x-klaxon-actor": key},
        "cookie": {"cookie": f"x-api-key={key}"},
    }


def test_the_staff_api_refuses_a_missing_wrong_or_misplaced_key(sec: Sec) -> None:
    golden = drafted()
    key = sec.key
    before = sec.state()
    for method, template, body in STAFF_CALLS:
        path = template.replace("{id}", golden.incident_id)
        data = json.dumps(body).encode().replace(b"{hash}", golden.version_hash.encode()) if body is not None else b""
        for name, headers in _bad_credentials(key).items():
            for query in ("", f"{'&' if '?' in path else '?'}x-api-key={key}"):  # the key in the query string
                response = sec.env.client.http.request(
                    method, path + query, headers={"content-type": "application/json", **headers}, body=data
                )
                assert (method, path, name, response.status_code) == (method, path, name, 401), response.body
                assert reason(response) == "missing or wrong x-api-key header"
    assert_unchanged(before, sec.state())
    assert incidents.get(golden.incident_id).status == incidents.TRIGGERED
    # HTTP header names are case-insensitive: the right key under X-API-KEY is the right key
    assert sec.env.client.http.get("/incidents", headers={"X-API-KEY": key}).status_code == 200


def test_a_deployment_without_api_approval_links_refuses_them_before_drafting(
    sec: Sec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where `"links": true` is off (the deployed default), the API key cannot collect every approver's
    link: the request is refused with the reason and drafts nothing; drafting without it still works."""
    monkeypatch.setenv("KLAXON_API_APPROVAL_LINKS", "0")
    settings.cache_clear()
    opened = incidents.open_or_update(
        brand="golden-foods",
        playbook="golden-product-recall",
        severity="sev1",
        trigger=incidents.Trigger(actor="detector", channel="ingest", summary="neg 90/5min, 6x usual"),
    ).incident
    before = sec.state()
    refused = sec.staff("POST", f"/incidents/{opened.id}/statements", {"facts": FACTS, "links": True})
    assert refused.status_code == 403 and "texts each signer and approver their own link" in reason(refused)
    assert_unchanged(before, sec.state())
    assert statements.languages(opened.id) == []
    drafted_now = sec.staff("POST", f"/incidents/{opened.id}/statements", {"facts": FACTS})
    assert drafted_now.status_code == 201 and "links" not in json.loads(drafted_now.body)
    monkeypatch.delenv("KLAXON_API_APPROVAL_LINKS")
    settings.cache_clear()  # the cached settings would outlive the environment


# ---------------------------------------------------------------- nothing pages a number outside the roster


def test_no_input_makes_klaxon_text_a_number_outside_the_roster(sec: Sec) -> None:
    """Phone numbers smuggled into every input that reaches Klaxon; only roster numbers are ever texted."""
    evil = OUTSIDER
    # 1. a hand-opened incident whose body names numbers, targets and policies of the caller's choosing
    opened = open_outage(
        sec,
        summary=f"Call {evil} now",
        phone=evil,
        to=evil,
        targets=[f"phone:{evil}", "person:rachel-goldberg"],
        escalation_policy="group-executive",
        schedule="group-leadership",
    )
    paged = [m.to for m in sec.fake.messages]
    assert paged and set(paged) <= ROSTER_PHONES
    # 2. statements whose facts carry the number, with approval links requested
    drafts = sec.staff(
        "POST",
        f"/incidents/{opened['id']}/statements",
        {"facts": {k: f"{v['en']} Text {evil}" for k, v in FACTS.items()}, "languages": ["en"], "links": True},
    )
    assert drafts.status_code == 201, drafts.body
    # drafting texts the draft's own signer and approvers (roster people) their approval link, nobody else
    (draft,) = json.loads(drafts.body)["drafts"]
    people = {draft["signer"]["id"], *draft["approvers"]}
    asked = [m.to for m in sec.fake.messages][len(paged) :]
    assert set(asked) <= ROSTER_PHONES and len(asked) == len(set(asked)) == len(people)
    paged = paged + asked
    # 3. inbound SMS from a roster number naming the outsider in To, in the body, as a command
    sender = paged[0]
    for form in (
        {"From": sender, "To": evil, "Body": f"ACK {opened['code']} {evil}"},
        {"From": sender, "To": evil, "Body": f"PAGE {evil}"},
        {"From": evil, "To": sender, "Body": f"ACK {opened['code']}"},
    ):
        assert sec.twilio("/sms/inbound", form).status_code == 200
    # 4. a status callback claiming the page went to the outsider
    page = paging.pages(opened["id"])[0]
    form = {"MessageSid": page.sid, "MessageStatus": "failed", "To": evil, "ErrorCode": "30003"}
    answer = sec.twilio("/sms/status", form, query="?" + urlencode({"page": paging.page_key(page)}))
    assert json.loads(answer.body) == {"status": "mismatch"}
    # 5. a signed mention carrying the number, ingested
    mention = json.loads((FIXTURES / "x_tweet_mention.json").read_bytes())
    event = mention["tweet_create_events"][0]
    event["text"] = f"@AcmeTelecom outage again, text me on {evil} or page {evil}"
    event["user"]["name"] = evil
    body = json.dumps(mention).encode()
    delivered = sec.env.client.http.post(
        "/webhooks/x", headers=x_headers(settings().x_consumer_secret, body), body=body
    )
    assert delivered.status_code == 200 and json.loads(delivered.body)["enqueued"] == 1
    sec.env.drain()
    sent = [m.to for m in sec.fake.messages]
    assert evil not in sent and set(sent) <= ROSTER_PHONES
    assert sent[: len(paged)] == paged and len(sent) == len(paged)  # none of the above sent anything more
