"""Escalation and invariant 4 against the real moto server and the real twilio client (fake Twilio API).

The SMS webhooks (status callbacks, inbound replies) are served here by a small receiver that
does what the routes will do: verify X-Twilio-Signature on the raw form, then call the paging
service. Time is passed explicitly; nothing sleeps except waiting for the fake's callbacks.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from chalicelib import observability
from chalicelib.incidents import service as incidents
from chalicelib.paging import service as paging
from chalicelib.paging import twilio_sms
from chalicelib.paging.oncall import on_call
from chalicelib.paging.sms import SendErrorKind, SentMessage, SmsSendError
from chalicelib.playbooks.loader import default_playbooks, load_roster
from chalicelib.playbooks.models import Playbook, Roster
from klaxon.fake_twilio import FakeTwilio, running_fake_twilio

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)  # a Tuesday; Sarah is on call for test-comms (checked below)
MINUTE = timedelta(minutes=1)


def _roster() -> Roster:
    """A small roster built from the shipped people (their real roster numbers) and a test policy."""
    shipped = load_roster()
    keep = ("maya-katz", "sarah-whitfield", "omar-haddad", "james-okafor", "michal-peretz", "noa-ben-david")
    return Roster.model_validate(
        {
            "people": [p.model_dump() for p in shipped.people if p.id in keep],
            "schedules": [
                {
                    "name": "test-comms",
                    "timezone": "Asia/Jerusalem",
                    "rotation": "daily",
                    "handoff": "09:00",
                    "start": "2026-01-04",
                    "members": ["maya-katz", "sarah-whitfield"],
                }
            ],
            "escalation_policies": [
                {
                    "name": "test-policy",
                    "steps": [
                        {"targets": ["schedule:test-comms"], "ack_timeout": "5m"},
                        {"targets": ["person:omar-haddad", "person:james-okafor"], "ack_timeout": "10m"},
                    ],
                    "repeat": 1,
                    "fallback": "person:michal-peretz",
                }
            ],
        }
    )


ROSTER = _roster()
PHONE = {p.id: p.phone for p in ROSTER.people}
PERSON_BY_PHONE = {p.phone: p.id for p in ROSTER.people}


def _playbook() -> Playbook:
    shipped = next(p for p in default_playbooks() if p.id == "acme-network-outage")
    return shipped.model_copy(update={"schedule": "test-comms", "escalation_policy": "test-policy"})


class _Receiver:
    """The webhook side: verifies each request's signature, then calls the paging service."""

    def __init__(self, auth_token: str) -> None:
        self.auth_token = auth_token
        self.results: list[tuple[str, Any]] = []
        self.rejected = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = receiver.url + self.path
                signature = self.headers.get(twilio_sms.SIGNATURE_HEADER)
                if not twilio_sms.verify_twilio_form(url, body, signature, receiver.auth_token):
                    with receiver.lock:
                        receiver.rejected += 1
                    self._answer(403, "forbidden")
                    return
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                if self.path.startswith("/sms/status"):
                    result: Any = paging.handle_status_callback(
                        form, page_key=paging.page_key_from_url(url), roster=ROSTER, now=receiver.now
                    )
                else:
                    inbound = twilio_sms.parse_inbound(form)
                    result = paging.handle_inbound_sms(inbound.from_, inbound.body, ROSTER, receiver.now)
                with receiver.lock:
                    receiver.results.append((urlsplit(self.path).path, result))
                self._answer(200, result or "")

            def _answer(self, status: int, text: str) -> None:
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.now: datetime = T0
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def statuses(self) -> list[Any]:
        with self.lock:
            return [r for path, r in self.results if path == "/sms/status"]


@dataclass
class Paging:
    fake: FakeTwilio
    receiver: _Receiver
    playbook: Playbook

    def open_incident(
        self, summary: str = "neg 212/5min, 9.2x usual (expected 23)", brand: str = "acme-telecom"
    ) -> incidents.IncidentItem:
        opened = incidents.open_or_update(
            brand=brand,
            playbook=self.playbook.id,
            severity="sev1",
            trigger=incidents.Trigger(actor="detector", channel="ingest", summary=summary, observed=212,
                                      expected=23, ratio=9.2),
        )
        assert opened.created
        return opened.incident

    def sent_to(self) -> list[str]:
        """Person ids of every outbound SMS, in order."""
        return [PERSON_BY_PHONE[m.to] for m in self.fake.messages]

    def wait_for_final_statuses(self) -> None:
        """Every outbound message reached a final status and its callback was answered."""
        for message in self.fake.messages:
            self.fake.wait_for_status(message.sid)


@pytest.fixture
def pg(env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Paging]:
    with running_fake_twilio(step_delay=0.01) as fake:
        receiver = _Receiver(fake.auth_token)
        for key, value in fake.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KLAXON_PUBLIC_URL", "https://klaxon.example.com")
        monkeypatch.setenv("KLAXON_SMS_STATUS_URL", receiver.url + "/sms/status")
        twilio_sms.default_sender.cache_clear()
        try:
            yield Paging(fake=fake, receiver=receiver, playbook=_playbook())
        finally:
            receiver.stop()
            twilio_sms.default_sender.cache_clear()


def test_roster_assumptions() -> None:
    schedule = ROSTER.schedules[0]
    assert on_call(schedule, T0) == "sarah-whitfield"
    assert on_call(schedule, T0 + 40 * MINUTE) == "sarah-whitfield"  # no hand-off during these tests


def test_step_zero_pages_exactly_the_on_call_person(pg: Paging) -> None:
    incident = pg.open_incident()
    esc = paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    assert esc.targets == ["sarah-whitfield"]
    assert pg.sent_to() == ["sarah-whitfield"]
    (message,) = pg.fake.messages
    assert message.body.startswith("KLAXON SEV1 Acme Telecom\nneg 212/5min")
    link = rf"https://klaxon\.example\.com/i/{incident.code}\?t=[\w-]{{12}}"
    assert re.search(rf"\nIncident {incident.code}: {link}\n", message.body), message.body
    assert message.body.endswith(f"\nReply ACK {incident.code}")
    assert message.num_segments == 1
    # a retried Lambda starting it again pages nobody twice
    paging.start_escalation(incident, pg.playbook, ROSTER, T0 + timedelta(seconds=3))
    assert pg.sent_to() == ["sarah-whitfield"]
    (page,) = paging.pages(incident.id)
    assert (page.state, page.sid, page.person, page.attempts) == ("sent", message.sid, "sarah-whitfield", 1)
    pg.wait_for_final_statuses()
    assert paging.pages(incident.id)[0].delivery == "delivered"
    actions = [e.action for e in incidents.timeline(incident.id)]
    assert actions.count("paged") == 1 and "escalation_started" in actions and "page_delivered" in actions


def test_sweep_waits_for_the_timeout_then_escalates(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    assert paging.sweep(T0 + 4 * MINUTE, roster=ROSTER).sent == []
    assert pg.sent_to() == ["sarah-whitfield"]
    outcome = paging.sweep(T0 + 5 * MINUTE, roster=ROSTER)
    assert outcome.advanced == [incident.id]
    assert pg.sent_to() == ["sarah-whitfield", "omar-haddad", "james-okafor"]
    assert paging.sweep(T0 + 6 * MINUTE, roster=ROSTER).sent == []
    assert len(pg.fake.messages) == 3


def test_repeat_rounds_then_fallback_then_stop(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    for minutes in (5, 15, 20, 30, 40, 50, 60):
        paging.sweep(T0 + minutes * MINUTE, roster=ROSTER)
    assert pg.sent_to() == [
        "sarah-whitfield",  # round 1, step 1
        "omar-haddad", "james-okafor",  # round 1, step 2 (at +5m)
        "sarah-whitfield",  # round 2, step 1 (+15m)
        "omar-haddad", "james-okafor",  # round 2, step 2 (+20m)
        "michal-peretz",  # fallback (+30m)
    ]
    esc = paging.get_escalation(incident.id)
    assert esc is not None and (esc.phase, esc.reason) == ("done", "exhausted")
    assert paging.open_escalations() == []
    positions = [p.position for p in paging.pages(incident.id)]
    assert positions == ["fb", "r00s00", "r00s01", "r00s01", "r01s00", "r01s01", "r01s01"]


def test_concurrent_sweeps_page_each_person_once_per_step(pg: Paging) -> None:
    incident = pg.open_incident()
    starts = [threading.Thread(target=paging.start_escalation, args=(incident, pg.playbook, ROSTER, T0))
              for _ in range(4)]
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    assert pg.sent_to() == ["sarah-whitfield"]
    errors: list[BaseException] = []

    def run(at: datetime) -> None:
        try:
            paging.sweep(at, roster=ROSTER)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for minutes in (5, 15):
        threads = [threading.Thread(target=run, args=(T0 + minutes * MINUTE + i * timedelta(seconds=1),))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    sent = pg.sent_to()
    assert sorted(sent) == sorted(["sarah-whitfield", "omar-haddad", "james-okafor", "sarah-whitfield"])
    esc = paging.get_escalation(incident.id)
    assert esc is not None and (esc.round, esc.step) == (1, 0)
    escalated = [e for e in incidents.timeline(incident.id) if e.action == "escalated"]
    assert len(escalated) == 2  # one advance per timeout, whoever won it


def test_sms_ack_stops_escalation_and_the_signature_is_checked(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    pg.receiver.now = T0 + 2 * MINUTE
    inbound_url = pg.receiver.url + "/sms/inbound"
    forged = pg.fake.send_inbound(inbound_url, PHONE["sarah-whitfield"], "+15005550006", f"ACK {incident.code}",
                                  auth_token="not-the-token")
    assert forged.status == 403 and pg.receiver.rejected == 1
    assert incidents.get(incident.id).status == incidents.TRIGGERED
    answer = pg.fake.send_inbound(inbound_url, PHONE["sarah-whitfield"], "+15005550006", f"  ack  {incident.code} ")
    assert answer.status == 200
    assert answer.body == f"Thanks, Sarah Whitfield. Incident {incident.code} is acknowledged; escalation stopped."
    stored = incidents.get(incident.id)
    assert (stored.status, stored.acknowledged_by) == ("acknowledged", "sarah-whitfield")
    esc = paging.get_escalation(incident.id)
    assert esc is not None and (esc.phase, esc.reason) == ("done", "acknowledged")
    assert paging.sweep(T0 + 30 * MINUTE, roster=ROSTER).sent == []
    assert pg.sent_to() == ["sarah-whitfield"]
    ack = [e for e in incidents.timeline(incident.id) if e.action == "acknowledged"]
    assert [(e.actor, e.channel) for e in ack] == [("sarah-whitfield", "sms")]
    # a second ACK, in Hebrew from a Hebrew speaker, names who acknowledged
    again = paging.handle_inbound_sms(PHONE["maya-katz"], f"אישור {incident.code}", ROSTER, T0 + 3 * MINUTE)
    assert again == f"אירוע {incident.code} כבר אושר על ידי Sarah Whitfield."


def test_ack_found_by_the_next_sweep_when_acknowledged_elsewhere(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    incidents.transition(incident.id, incidents.ACKNOWLEDGED, actor="maya-katz", channel="api")
    outcome = paging.sweep(T0 + 5 * MINUTE, roster=ROSTER)
    assert outcome.stopped == [incident.id] and outcome.sent == []
    assert pg.sent_to() == ["sarah-whitfield"]


def test_hebrew_ack_and_resolve_by_sms(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    reply = paging.handle_inbound_sms(PHONE["maya-katz"], f"אישור {incident.code}", ROSTER, T0 + MINUTE)
    assert reply == f"תודה, מאיה כץ. אירוע {incident.code} אושר והסלמה הופסקה."
    assert incidents.get(incident.id).acknowledged_by == "maya-katz"
    reply = paging.handle_inbound_sms(PHONE["omar-haddad"], f"RESOLVE {incident.code}", ROSTER, T0 + 2 * MINUTE)
    assert reply == f"אירוע {incident.code} נסגר. תודה, עומר חדאד."
    assert incidents.get(incident.id).status == incidents.RESOLVED
    assert paging.handle_inbound_sms(PHONE["omar-haddad"], f"ACK {incident.code}", ROSTER, T0) == (
        f"אין אירוע פתוח עם הקוד {incident.code}. בדקו את הקוד בהודעה."
    )


def test_strangers_and_outsiders_change_nothing(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    pg.wait_for_final_statuses()
    before = len(incidents.timeline(incident.id))
    for body in (f"ACK {incident.code}", f"RESOLVE {incident.code}", "ACK 0000", "hello"):
        assert paging.handle_inbound_sms("+15005550123", body, ROSTER, T0 + MINUTE) is None
    answer = pg.fake.send_inbound(pg.receiver.url + "/sms/inbound", "+15005550123", "+15005550006",
                                  f"ACK {incident.code}")
    assert (answer.status, answer.body) == (200, "")
    # Noa is in the roster but not in this incident's escalation policy
    reply = paging.handle_inbound_sms(PHONE["noa-ben-david"], f"ACK {incident.code}", ROSTER, T0 + MINUTE)
    assert reply == f"לא ניתן לעדכן כך את אירוע {incident.code} כרגע (ממתין לאישור)."
    unknown = paging.handle_inbound_sms(PHONE["sarah-whitfield"], "ACK 0000", ROSTER, T0 + MINUTE)
    assert unknown == "No open incident has code 0000. Check the code in the page."
    assert paging.handle_inbound_sms(PHONE["sarah-whitfield"], "yes", ROSTER, T0) == (
        "Reply ACK <code> to acknowledge or RESOLVE <code> to resolve."
    )
    assert incidents.get(incident.id).status == incidents.TRIGGERED
    timeline = incidents.timeline(incident.id)
    assert [e.action for e in timeline[before:]] == ["sms_refused"]
    assert pg.sent_to() == ["sarah-whitfield"]  # no reply of any kind became a page
    esc = paging.get_escalation(incident.id)
    assert esc is not None and esc.phase == "steps"


def test_failed_delivery_advances_at_once_when_nobody_at_the_step_can_receive(pg: Paging) -> None:
    pg.fake.fail_numbers[PHONE["sarah-whitfield"]] = ("undelivered", 30006)
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    pg.fake.wait_for_status(pg.fake.messages[0].sid, "undelivered")  # its callback has been answered
    assert pg.sent_to() == ["sarah-whitfield", "omar-haddad", "james-okafor"]
    # Moved on by the callback, or (if it came before the escalation item was written, right
    # after step 1's pages) by start_escalation's own check: once, either way.
    statuses = pg.receiver.statuses()
    assert statuses.count("failed") + statuses.count("failed_advanced") == 1
    sarah = paging.pages(incident.id, "r00s00")[0]
    assert (sarah.state, sarah.delivery, sarah.error_code) == ("sent", "undelivered", 30006)
    esc = paging.get_escalation(incident.id)
    assert esc is not None and (esc.round, esc.step) == (0, 1)
    timeline = incidents.timeline(incident.id)
    actions = [e.action for e in timeline]
    assert "page_undelivered" in actions
    assert [e.detail for e in timeline if e.action == "escalated"] == [
        "to step 2, round 1 (every page of the step failed): omar-haddad, james-okafor"
    ]
    pg.wait_for_final_statuses()
    assert paging.sweep(T0 + 2 * MINUTE, roster=ROSTER).sent == []  # the step's own timeout now runs


def test_one_failed_delivery_in_a_step_waits_for_the_timeout(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    pg.fake.fail_numbers[PHONE["omar-haddad"]] = ("failed", 30005)
    paging.sweep(T0 + 5 * MINUTE, roster=ROSTER)
    pg.wait_for_final_statuses()
    assert pg.sent_to() == ["sarah-whitfield", "omar-haddad", "james-okafor"]
    omar = paging.pages(incident.id, "r00s01")
    assert {p.person: p.delivery for p in omar} == {"omar-haddad": "failed", "james-okafor": "delivered"}
    esc = paging.get_escalation(incident.id)
    assert esc is not None and (esc.round, esc.step) == (0, 1)


def test_twilio_unavailable_is_retried_by_the_next_sweep_without_a_duplicate(pg: Paging) -> None:
    incident = pg.open_incident()
    pg.fake.fail_next(1, status=503)  # 503: Twilio refused before accepting anything
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    assert pg.fake.messages == []
    (page,) = paging.pages(incident.id)
    assert (page.state, page.attempts, page.error_code) == ("send_failed", 1, 20503)
    assert paging.sweep(T0 + timedelta(seconds=0.5), roster=ROSTER).sent == []  # Retry-After: 1
    threads = [threading.Thread(target=paging.sweep, args=(T0 + timedelta(seconds=2),), kwargs={"roster": ROSTER})
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pg.sent_to() == ["sarah-whitfield"]
    (page,) = paging.pages(incident.id)
    assert (page.state, page.attempts) == ("sent", 2)
    assert paging.sweep(T0 + MINUTE, roster=ROSTER).sent == []
    assert pg.sent_to() == ["sarah-whitfield"]
    actions = [e.action for e in incidents.timeline(incident.id)]
    assert actions.count("page_retry_scheduled") == 1 and actions.count("paged") == 1


def test_twilio_500_may_have_sent_so_it_is_never_resent(pg: Paging) -> None:
    incident = pg.open_incident()
    pg.fake.fail_next(1, status=500)  # a 500 may come after Twilio accepted the message
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    (page,) = paging.pages(incident.id)
    assert page.state == "unknown"
    paging.sweep(T0 + 2 * MINUTE, roster=ROSTER)
    assert pg.fake.messages == []
    paging.sweep(T0 + 5 * MINUTE, roster=ROSTER)  # escalation on timeout covers the unknown page
    assert pg.sent_to() == ["omar-haddad", "james-okafor"]
    assert "page_unknown" in [e.action for e in incidents.timeline(incident.id)]


def test_hebrew_speaker_gets_a_hebrew_page_within_two_segments(pg: Paging) -> None:
    incident = pg.open_incident(summary="neg 1240/5min, 31x usual (expected 40)")
    paging.start_escalation(incident, pg.playbook, ROSTER, T0 + timedelta(days=1))  # Maya's day
    (message,) = pg.fake.messages
    assert PERSON_BY_PHONE[message.to] == "maya-katz"
    # the numbers stay whole; the ratio clause makes room for the person's link
    assert message.body.startswith("קלקסון SEV1: Acme Telecom\n1240 תגובות שליליות ב-5 דק׳")
    assert f"\nhttps://klaxon.example.com/i/{incident.code}?t=" in message.body
    assert message.body.endswith(f"לאישור השיבו ACK {incident.code}")
    assert message.num_segments <= 2


def _link_in(body: str) -> tuple[str, str]:
    """(code, token) of the incident link in a page SMS."""
    match = re.search(r"https://klaxon\.example\.com/i/(\d+)\?t=([\w-]+)", body)
    assert match, body
    return match[1], match[2]


@pytest.mark.parametrize("day", [0, 1], ids=["english page", "hebrew page"])
def test_the_link_in_the_page_opens_the_incident_page_for_that_person_only(pg: Paging, day: int) -> None:
    from chalicelib.incidents.links import verify_incident_link
    from chalicelib.incidents.web import incident_page_response
    from chalicelib.statements.links import LinkTampered

    incident = pg.open_incident(summary="neg 1240/5min, 31x usual (expected 40)")
    sent_at = T0 + timedelta(days=day)
    paging.start_escalation(incident, pg.playbook, ROSTER, sent_at)
    (message,) = pg.fake.messages
    assert message.num_segments <= 2  # the Hebrew page keeps its link within two UCS-2 segments
    code, token = _link_in(message.body)
    assert code == incident.code
    person = PERSON_BY_PHONE[message.to]
    people = [p.id for p in ROSTER.people]
    now = sent_at.timestamp() + 3 * 3600
    assert verify_incident_link(token, code, now, people=people) == person

    status, html, headers = incident_page_response(code, token, now)
    assert status == 200 and f"ACK {code}" in html and headers["Cache-Control"] == "no-store"
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:8], token + "A"):
        assert incident_page_response(code, bad, now)[0] == 403
    other = "0000" if code != "0000" else "0001"
    assert incident_page_response(other, token, now)[0] == 403  # a token opens its own incident only
    status, html, _ = incident_page_response(code, token, sent_at.timestamp() + 25 * 3600)
    assert status == 403 and "expired" in html
    with pytest.raises(LinkTampered):  # someone taken off the roster: their links stop working
        verify_incident_link(token, code, now, people=[p for p in people if p != person])


class _RefusingSender:
    """The real TwilioSender, except that the vendor refuses one number as unable to take SMS."""

    def __init__(self, refused: str) -> None:
        self.real = twilio_sms.default_sender()
        self.refused = refused

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        if to == self.refused:
            raise SmsSendError(SendErrorKind.RECIPIENT, "'To' is not a mobile number", code=21614, http_status=400)
        return self.real.send(to, body, status_callback)


def _metric_total(name: str) -> float:
    entry = observability.metrics.metric_set.get(name)
    return sum(entry["Value"]) if entry else 0.0


def test_a_number_the_vendor_refuses_moves_the_step_on_at_once(pg: Paging) -> None:
    incident = pg.open_incident()
    sender = _RefusingSender(PHONE["sarah-whitfield"])
    observability.metrics.clear_metrics()
    esc = paging.start_escalation(incident, pg.playbook, ROSTER, T0, sender=sender)
    assert (esc.round, esc.step) == (0, 1)
    assert pg.sent_to() == ["omar-haddad", "james-okafor"]
    # The PagesFailed alarm and the dashboard read these (chalicelib/observability.py).
    assert (_metric_total("PagesSent"), _metric_total("PagesFailed")) == (2, 1)
    observability.metrics.clear_metrics()
    (sarah,) = paging.pages(incident.id, "r00s00")
    assert (sarah.state, sarah.error_code) == ("rejected", 21614)
    assert paging.sweep(T0 + MINUTE, roster=ROSTER, sender=sender).sent == []


def test_bad_credentials_do_not_burn_through_the_chain_and_are_retried_once_fixed(pg: Paging) -> None:
    incident = pg.open_incident()
    config = twilio_sms.TwilioConfig.from_env()
    wrong = twilio_sms.TwilioSender(replace(config, auth_token="wrong-token"))
    esc = paging.start_escalation(incident, pg.playbook, ROSTER, T0, sender=wrong)
    assert (esc.round, esc.step) == (0, 0)  # our misconfiguration is not the recipient's failure
    (page,) = paging.pages(incident.id)
    assert (page.state, page.error_code) == ("send_failed", 20003)
    assert pg.fake.messages == []
    paging.sweep(T0 + MINUTE, roster=ROSTER)  # fixed configuration: the default sender
    assert pg.sent_to() == ["sarah-whitfield"]
    assert paging.pages(incident.id)[0].attempts == 2


class _DyingSender:
    """A sender whose Lambda is killed mid-send: nobody can tell whether the SMS went out."""

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        raise RuntimeError("Task timed out after 30.00 seconds")


def test_a_sender_that_died_mid_send_is_never_resent(pg: Paging) -> None:
    incident = pg.open_incident()
    with pytest.raises(RuntimeError):
        paging.start_escalation(incident, pg.playbook, ROSTER, T0, sender=_DyingSender())
    assert paging.pages(incident.id)[0].state == "sending"
    paging.sweep(T0 + MINUTE, roster=ROSTER)  # too early to call it lost
    assert paging.pages(incident.id)[0].state == "sending"
    paging.sweep(T0 + 3 * MINUTE, roster=ROSTER)
    assert paging.pages(incident.id)[0].state == "unknown"
    assert pg.fake.messages == []
    paging.sweep(T0 + 5 * MINUTE, roster=ROSTER)
    assert pg.sent_to() == ["omar-haddad", "james-okafor"]


def test_status_callbacks_only_move_forward_and_must_match_their_page(pg: Paging) -> None:
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)
    pg.wait_for_final_statuses()
    (page,) = paging.pages(incident.id)
    key = paging.page_key(page)
    form = {"MessageSid": page.sid, "MessageStatus": "sent", "To": page.phone}
    assert paging.handle_status_callback(form, page_key=key, roster=ROSTER) == "stale"
    assert paging.handle_status_callback({**form, "MessageStatus": "delivered"}, page_key=key) == "stale"
    assert paging.handle_status_callback({**form, "MessageSid": "SMother"}, page_key=key) == "mismatch"
    assert paging.handle_status_callback({**form, "To": PHONE["michal-peretz"]}, page_key=key) == "mismatch"
    assert paging.handle_status_callback(form, page_key="inc_1_x/r00s00/sarah-whitfield") == "unknown_page"
    assert paging.handle_status_callback(form, page_key=None) == "unknown_page"
    assert paging.pages(incident.id)[0].delivery == "delivered"
    assert pg.sent_to() == ["sarah-whitfield"]


def test_the_sweep_starts_an_escalation_the_opening_lambda_never_started(pg: Paging) -> None:
    incident = pg.open_incident()  # ... and the Lambda died before start_escalation
    outcome = paging.sweep(T0, roster=ROSTER, playbooks=[pg.playbook])
    assert outcome.started == [incident.id]
    assert pg.sent_to() == ["sarah-whitfield"]
    assert paging.sweep(T0 + MINUTE, roster=ROSTER, playbooks=[pg.playbook]).started == []
    assert pg.sent_to() == ["sarah-whitfield"]
    incidents.transition(incident.id, incidents.ACKNOWLEDGED, actor="sarah-whitfield", channel="api")
    other = incidents.open_or_update(
        brand="golden-foods", playbook="no-such-playbook", severity="sev2",
        trigger=incidents.Trigger(actor="maya-katz", channel="api", summary="manual"),
    ).incident
    assert paging.sweep(T0 + 2 * MINUTE, roster=ROSTER, playbooks=[pg.playbook]).started == []
    assert paging.get_escalation(other.id) is None and pg.sent_to() == ["sarah-whitfield"]


def test_without_twilio_configuration_sweeps_still_run_and_pages_wait(
    pg: Paging, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in pg.fake.environment():
        monkeypatch.delenv(key)
    twilio_sms.default_sender.cache_clear()
    incident = pg.open_incident()
    paging.start_escalation(incident, pg.playbook, ROSTER, T0)  # does not raise: the page waits
    (page,) = paging.pages(incident.id)
    assert (page.state, page.attempts) == ("send_failed", 1)
    paging.sweep(T0 + 10 * MINUTE, roster=ROSTER)  # still unconfigured: the escalation moves on regardless
    assert {p.state for p in paging.pages(incident.id)} == {"send_failed"}
    for key, value in pg.fake.environment().items():
        monkeypatch.setenv(key, value)
    twilio_sms.default_sender.cache_clear()
    paging.sweep(T0 + 11 * MINUTE, roster=ROSTER)  # configured again: the current step's pages go out
    assert pg.sent_to() == ["omar-haddad", "james-okafor"]


class _InstantlyUndelivered:
    """The real sender, except that Sarah's page is reported undelivered before `send` even
    returns: the failure callback arrives while start_escalation is still paging step 1, before
    the escalation item exists (it is written right after step 1's pages)."""

    def __init__(self) -> None:
        self.real = twilio_sms.default_sender()
        self.callbacks: list[str] = []

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        sent = self.real.send(to, body, status_callback)
        if to != PHONE["sarah-whitfield"]:
            return sent
        form = {"MessageSid": sent.sid, "MessageStatus": "undelivered", "To": to, "ErrorCode": "30006"}
        key = paging.page_key_from_url(status_callback or "")
        self.callbacks.append(paging.handle_status_callback(form, page_key=key, roster=ROSTER, now=T0))
        return sent


def test_a_failure_reported_before_the_escalation_item_exists_still_moves_it_on(pg: Paging) -> None:
    incident = pg.open_incident()
    sender = _InstantlyUndelivered()
    esc = paging.start_escalation(incident, pg.playbook, ROSTER, T0, sender=twilio_sms.default_sender())
    assert esc.step == 0  # control: a delivered page leaves step 1 waiting for its timeout
    other = pg.open_incident(brand="golden-foods")
    esc = paging.start_escalation(other, pg.playbook, ROSTER, T0, sender=sender)
    assert sender.callbacks[0] == "failed"  # nothing to advance yet: no escalation item
    assert (esc.round, esc.step) == (0, 1)  # start_escalation saw the failure once the item existed
    assert [PERSON_BY_PHONE[m.to] for m in pg.fake.messages if f"ACK {other.code}" in m.body] == [
        "sarah-whitfield", "omar-haddad", "james-okafor"
    ]


def test_fifty_concurrent_sends_all_reach_the_fake() -> None:
    """A burst of concurrent `messages.create` calls (50 sweepers at once) is answered, not reset:
    the fake's listen backlog is deep enough (a reset would be a "maybe sent" page, never resent)."""
    with running_fake_twilio(step_delay=0.01) as fake:
        sender = twilio_sms.TwilioSender(twilio_sms.TwilioConfig.from_env(fake.environment()))
        errors: list[BaseException] = []
        go = threading.Event()

        def send(i: int) -> None:
            go.wait()
            try:
                sender.send(f"+1500777{i:04d}", f"burst {i}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(m.to for m in fake.messages) == [f"+1500777{i:04d}" for i in range(50)]


def test_before_its_escalation_exists_only_the_people_its_playbook_would_page_may_act(env: Any) -> None:
    """Between opening and the first page (or if starting the escalation failed), an SMS ACK is judged
    against the escalation the incident's playbook would start: anyone in it may act, other roster
    people may not (before: any roster person could acknowledge or resolve it)."""
    roster = load_roster()
    playbook = next(p for p in default_playbooks() if p.id == "acme-network-outage")
    policy = paging.policy_for(roster, playbook.escalation_policy)
    schedules = {s.name: s for s in roster.schedules}
    targets = [t for step in policy.steps for t in step.targets] + [policy.fallback, f"schedule:{playbook.schedule}"]
    allowed: set[str] = set()
    for target in targets:
        kind, _, name = target.partition(":")
        allowed |= {name} if kind == "person" else set(schedules[name].members)
    outsider = next(p for p in roster.people if p.id not in allowed)
    insider = next(p for p in roster.people if p.id in allowed)
    opened = incidents.open_or_update(
        brand="acme-telecom", playbook=playbook.id, severity=playbook.severity,
        trigger=incidents.Trigger(actor="detector", channel="ingest", summary="spike", observed=90, expected=9,
                                  ratio=10.0),
    )
    incident = opened.incident
    assert paging.get_escalation(incident.id) is None
    paging.handle_inbound_sms(outsider.phone, f"ACK {incident.code}", roster, T0)
    assert incidents.get(incident.id).status == incidents.TRIGGERED
    assert [e.action for e in incidents.timeline(incident.id)][-1] == "sms_refused"
    paging.handle_inbound_sms(insider.phone, f"ACK {incident.code}", roster, T0 + MINUTE)
    stored = incidents.get(incident.id)
    assert (stored.status, stored.acknowledged_by) == (incidents.ACKNOWLEDGED, insider.id)
