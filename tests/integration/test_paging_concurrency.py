"""Acceptance: 50 concurrent sweeper invocations send each page exactly once (design invariant 4).

Against the real moto server (over HTTP) and the real `twilio` client talking to the fake
Twilio API, with signed status callbacks flowing back while the sweepers run. Every round of
the escalation is swept by 50 sweepers released at the same moment: 46 threads of this process
and 4 separate Python processes (Lambda runs concurrent invocations in separate processes:
nothing shared, not even the GIL or a client), each with the namespace of the `env` fixture.
Concurrent Lambdas read slightly different clocks, so sweeper i runs at `round + i * 10 ms`.

Four incidents sit at different places in their chains at the same time:

| incident | policy: 5 min step, 10 min step, the chain twice, then Michal | how it goes |
| --- | --- | --- |
| A | step 1 Sarah (schedule), step 2 Omar + James | started by two racing "ingest" calls; reaches the fallback |
| B | same | started by the sweepers (its Lambda died); acknowledged through the API at +7 min |
| C | same | opened at +5 min, started by the sweepers; in round 2, step 2 at the end |
| D | step 1 Noa (undeliverable), step 2 Omar + James | Noa's `undelivered` callback moves it on at once; exhausted |

Rounds are swept at +0, +5, +15, +25 and +35 minutes.

What went out is read from the fake Twilio's own record of the messages it accepted (the code
in each body, the page key in each StatusCallback URL, the To number), never from our tables,
and compared with the pages the scenario owes, round by round: each exactly once, nothing else.
The incident timelines must tell the same story.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

import pytest

from chalicelib.paging import service as paging
from chalicelib.playbooks.loader import default_playbooks, load_roster
from chalicelib.playbooks.models import Playbook, Roster

pytestmark = pytest.mark.integration

SWEEPERS = 50
PROCESSES = 4
JITTER = 0.01
T0 = datetime(2026, 2, 10, 10, 0, tzinfo=UTC).timestamp()  # a Tuesday: Sarah is on call for conc-comms
MINUTE = 60.0
ROUND_TIMEOUT = 60.0


def _roster() -> Roster:
    shipped = load_roster()
    keep = ("sarah-whitfield", "maya-katz", "omar-haddad", "james-okafor", "michal-peretz", "noa-ben-david")
    second_step = {"targets": ["person:omar-haddad", "person:james-okafor"], "ack_timeout": "10m"}
    return Roster.model_validate(
        {
            "people": [p.model_dump() for p in shipped.people if p.id in keep],
            "schedules": [
                {"name": "conc-comms", "timezone": "Asia/Jerusalem", "rotation": "daily", "handoff": "09:00",
                 "start": "2026-01-04", "members": ["maya-katz", "sarah-whitfield"]},
                {"name": "conc-unreachable", "timezone": "Asia/Jerusalem", "rotation": "weekly", "handoff": "09:00",
                 "start": "2026-01-04", "members": ["noa-ben-david"]},
            ],
            "escalation_policies": [
                {"name": "conc-main", "repeat": 1, "fallback": "person:michal-peretz",
                 "steps": [{"targets": ["schedule:conc-comms"], "ack_timeout": "5m"}, second_step]},
                {"name": "conc-unreachable", "repeat": 1, "fallback": "person:michal-peretz",
                 "steps": [{"targets": ["schedule:conc-unreachable"], "ack_timeout": "5m"}, second_step]},
            ],
        }
    )


def _playbooks() -> list[Playbook]:
    shipped = next(p for p in default_playbooks() if p.id == "acme-network-outage")
    main = {"schedule": "conc-comms", "escalation_policy": "conc-main"}
    return [shipped.model_copy(update={"id": f"conc-{name}", **main}) for name in "abc"] + [
        shipped.model_copy(
            update={"id": "conc-d", "schedule": "conc-unreachable", "escalation_policy": "conc-unreachable"}
        )
    ]


ROSTER = _roster()
PLAYBOOKS = _playbooks()
PHONE = {p.id: p.phone for p in ROSTER.people}
PERSON_BY_PHONE = {p.phone: p.id for p in ROSTER.people}

Key = tuple[str, str, str]  # (incident letter, position, person)
SARAH, OMAR, JAMES, MICHAL, NOA = "sarah-whitfield", "omar-haddad", "james-okafor", "michal-peretz", "noa-ben-david"

# The pages each round must add, worked out by hand from the policies above (not from the code).
EXPECTED: dict[int, set[Key]] = {
    0: {("A", "r00s00", SARAH), ("B", "r00s00", SARAH),
        ("D", "r00s00", NOA), ("D", "r00s01", OMAR), ("D", "r00s01", JAMES)},  # Noa undelivered: on at once
    5: {("A", "r00s01", OMAR), ("A", "r00s01", JAMES), ("B", "r00s01", OMAR), ("B", "r00s01", JAMES),
        ("C", "r00s00", SARAH)},
    # +7 min: B acknowledged, so +15 stops it
    15: {("A", "r01s00", SARAH), ("C", "r00s01", OMAR), ("C", "r00s01", JAMES),
         ("D", "r01s00", NOA), ("D", "r01s01", OMAR), ("D", "r01s01", JAMES)},
    25: {("A", "r01s01", OMAR), ("A", "r01s01", JAMES), ("C", "r01s00", SARAH), ("D", "fb", MICHAL)},
    35: {("A", "fb", MICHAL), ("C", "r01s01", OMAR), ("C", "r01s01", JAMES)},  # D exhausted: nobody
}
ESCALATED = {  # timeline "escalated" entries, in order
    "A": ["step 2, round 1", "step 1, round 2", "step 2, round 2", "fallback"],
    "B": ["step 2, round 1"],
    "C": ["step 2, round 1", "step 1, round 2", "step 2, round 2"],
    "D": ["step 2, round 1", "step 1, round 2", "step 2, round 2", "fallback"],
}
STOPPED = {"A": [], "B": ["acknowledged"], "C": [], "D": ["exhausted"]}
FINAL = {"A": ("fallback", None), "B": ("done", "acknowledged"), "C": ("steps", None), "D": ("done", "exhausted")}


# --- a sweeper in its own process -------------------------------------------------------------


class _ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _child() -> None:
    """A sweeper container: for each epoch `now` read from stdin, one `sweep(now)`, answered as one JSON line."""
    errors = _ErrorCount()
    logging.getLogger("chalicelib").addHandler(errors)
    _warm()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        errors.messages.clear()
        started = time.time()
        try:
            out = paging.sweep(float(line), roster=ROSTER, playbooks=PLAYBOOKS)
            answer: dict[str, Any] = {"sent": out.sent, "error": None}
        except Exception as exc:  # noqa: BLE001 - reported to the test
            answer = {"sent": [], "error": repr(exc)}
        answer.update(started=started, ended=time.time(), logged_errors=list(errors.messages))
        print(json.dumps(answer), flush=True)


def _warm() -> None:
    """Create the DynamoDB clients before the race, as a warm container has them. (Created lazily,
    one per model class, they would be built by all 46 threads at once in the first round: 10+ s
    of botocore loading its service model over and over, which no Lambda does.)"""
    from chalicelib.store.models import raw_clients

    raw_clients()
    paging.open_escalations()


@dataclass
class _Child:
    proc: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    @classmethod
    def spawn(cls, stderr: IO[str]) -> _Child:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_paging_concurrency"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=dict(os.environ),  # the fixture's namespace, moto endpoint and fake Twilio
            cwd=Path(__file__).resolve().parents[2],
        )
        child = cls(proc)
        threading.Thread(target=child._read, daemon=True).start()
        return child

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def answer(self, timeout: float = ROUND_TIMEOUT) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout)
        assert line, f"sweeper process {self.proc.pid} exited with {self.proc.poll()}"
        return dict(json.loads(line))

    def sweep(self, now: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{now!r}\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """End of input: the process finishes its loop and exits."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def stop(self) -> None:
        self.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# --- the status callback route ----------------------------------------------------------------


class _Callbacks:
    """Where Twilio posts delivery statuses: verify the signature, then `handle_status_callback`, as the route does."""

    def __init__(self, auth_token: str) -> None:
        from chalicelib.paging import twilio_sms

        self.now = T0
        self.results: list[str] = []
        self.refused = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = receiver.url + self.path
                if not twilio_sms.verify_twilio_form(url, body, self.headers.get(twilio_sms.SIGNATURE_HEADER),
                                                     auth_token):
                    with receiver.lock:
                        receiver.refused += 1
                    self._answer(403, b"forbidden")
                    return
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                try:
                    result = paging.handle_status_callback(
                        form, page_key=paging.page_key_from_url(url), roster=ROSTER, now=receiver.now
                    )
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    result = f"error: {exc!r}"
                with receiver.lock:
                    receiver.results.append(result)
                self._answer(200, result.encode())

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the race ---------------------------------------------------------------------------------


@dataclass
class _Round:
    minute: int
    sent: list[str]  # page keys the sweepers said they sent
    errors: list[str]
    in_flight: int  # most sweepers inside sweep() at the same instant
    seconds: float
    spans: list[tuple[float, float]]


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def _race(minute: int, children: list[_Child], extra: list[Callable[[], Any]] | None = None) -> _Round:
    """50 sweepers at `T0 + minute`, released together (plus `extra` calls racing them)."""
    base = T0 + minute * MINUTE
    go = threading.Event()
    lock = threading.Lock()
    sent: list[str] = []
    errors: list[str] = []
    spans: list[tuple[float, float]] = []
    threads_n = SWEEPERS - len(children)

    def sweeper(i: int) -> None:
        go.wait()
        started = time.time()
        try:
            out = paging.sweep(base + i * JITTER, roster=ROSTER, playbooks=PLAYBOOKS)
            with lock:
                sent.extend(out.sent)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(f"thread {i}: {exc!r}")
        with lock:
            spans.append((started, time.time()))

    def call(fn: Callable[[], Any]) -> None:
        go.wait()
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            with lock:
                errors.append(f"extra: {exc!r}")

    threads = [threading.Thread(target=sweeper, args=(i,)) for i in range(threads_n)]
    threads += [threading.Thread(target=call, args=(fn,)) for fn in extra or []]
    for t in threads:
        t.start()
    clock = time.monotonic()
    for k, child in enumerate(children):  # first: once the threads run, this thread waits for the GIL
        child.sweep(base + (threads_n + k) * JITTER)
    go.set()
    for t in threads:
        t.join(ROUND_TIMEOUT)
        assert not t.is_alive(), f"a sweeper thread of round +{minute} min is stuck"
    for child in children:
        answer = child.answer()
        sent.extend(answer["sent"])
        spans.append((answer["started"], answer["ended"]))
        if answer["error"] or answer["logged_errors"]:
            errors.append(f"process {child.proc.pid}: {answer['error']} {answer['logged_errors']}")
    return _Round(minute, sent, errors, _most_at_once(spans), time.monotonic() - clock, sorted(spans))


@pytest.fixture
def callbacks_and_fake(env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, _Callbacks]]:
    from chalicelib.paging import twilio_sms
    from klaxon.fake_twilio import running_fake_twilio

    with running_fake_twilio(step_delay=0.01, fail_numbers={PHONE[NOA]: ("undelivered", 30006)}) as fake:
        receiver = _Callbacks(fake.auth_token)
        for key, value in fake.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KLAXON_PUBLIC_URL", "https://klaxon.example.com")
        monkeypatch.setenv("KLAXON_SMS_STATUS_URL", receiver.url + "/sms/status")
        twilio_sms.default_sender.cache_clear()
        try:
            yield fake, receiver
        finally:
            receiver.stop()
            twilio_sms.default_sender.cache_clear()


def test_fifty_concurrent_sweepers_send_each_page_exactly_once(
    callbacks_and_fake: tuple[Any, _Callbacks], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.incidents import service as incidents

    fake, receiver = callbacks_and_fake
    caplog.set_level(logging.ERROR, logger="chalicelib")
    stderr = open(tmp_path / "sweepers.log", "w")  # noqa: SIM115 - closed below
    children = [_Child.spawn(stderr) for _ in range(PROCESSES)]  # their imports overlap our setup
    try:
        by_letter: dict[str, incidents.IncidentItem] = {}
        playbook = {p.id: p for p in PLAYBOOKS}

        def open_incident(letter: str) -> incidents.IncidentItem:
            opened = incidents.open_or_update(
                brand="acme-telecom", playbook=f"conc-{letter.lower()}", severity="sev1",
                trigger=incidents.Trigger(actor="detector", channel="ingest", summary=f"neg 212/5min ({letter})"),
            )
            assert opened.created
            by_letter[letter] = opened.incident
            return opened.incident

        _warm()
        a, d = open_incident("A"), open_incident("D")
        open_incident("B")  # its ingest Lambda "died": the sweepers must start it
        for child in children:
            assert "ready" in child.answer(), "sweeper process did not start"

        def ingest(incident: incidents.IncidentItem) -> Callable[[], Any]:
            return lambda: paging.start_escalation(incident, playbook[incident.playbook], ROSTER, T0)

        rounds: list[_Round] = []
        arrived: dict[int, list[Any]] = {}
        total = 0
        for minute in sorted(EXPECTED):
            if minute == 5:
                open_incident("C")
            if minute == 15:
                incidents.transition(by_letter["B"].id, incidents.ACKNOWLEDGED, actor=OMAR, channel="api")
            receiver.now = T0 + minute * MINUTE  # callbacks of this round happen at its start
            before = len(fake.messages)
            extra = [ingest(a), ingest(a), ingest(d), ingest(d)] if minute == 0 else []
            rounds.append(_race(minute, children, extra))
            total += len(EXPECTED[minute])
            # Pages sent by a callback (D's step after Noa's undelivered page) belong to this round too.
            fake.wait_for(lambda f, n=total: len(f.messages) >= n, timeout=ROUND_TIMEOUT)
            for message in fake.messages:
                fake.wait_for_status(message.sid, timeout=ROUND_TIMEOUT)
            arrived[minute] = fake.messages[before:]
    finally:
        for child in children:
            child.close()  # all at once: they exit in parallel
        for child in children:
            child.stop()
        stderr.close()

    code_to_letter = {i.code: letter for letter, i in by_letter.items()}
    id_to_letter = {i.id: letter for letter, i in by_letter.items()}

    def key_of(message: Any) -> Key:
        """(incident, position, person) from what the fake received: body, StatusCallback URL, To."""
        page_key = paging.page_key_from_url(message.status_callback or "")
        assert page_key is not None, message
        incident_id, position, person = page_key.split("/")
        letter = id_to_letter[incident_id]
        assert person == PERSON_BY_PHONE[message.to]
        assert f"ACK {by_letter[letter].code}" in message.body
        assert [c for c in code_to_letter if f"ACK {c}" in message.body] == [by_letter[letter].code]
        return letter, position, person

    # 1. What Twilio received: every page owed, in its round, exactly once; nothing else.
    assert [r.errors for r in rounds] == [[]] * len(rounds)
    assert [r.message for r in caplog.records] == []
    everything = [key_of(m) for m in fake.messages]
    duplicates = {k: n for k, n in Counter(everything).items() if n > 1}
    assert duplicates == {}
    for minute, messages in arrived.items():
        assert {key_of(m) for m in messages} == EXPECTED[minute], f"round +{minute} min"
    expected_total = sum(len(v) for v in EXPECTED.values())
    assert expected_total == 23 and len(fake.messages) == expected_total
    creates = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/Messages.json")]
    assert [r.http_status for r in creates] == [201] * expected_total  # no failed or repeated API call
    delivered = Counter(m.status for m in fake.messages)
    assert delivered == {"delivered": 21, "undelivered": 2}

    # 2. The race was real: 50 sweepers at once, in every round, and they did the sending.
    # (The first sweepers released can finish before the last of 50 threads got the GIL to start.)
    assert min(r.in_flight for r in rounds) >= SWEEPERS * 0.9, [(r.minute, r.in_flight) for r in rounds]
    by_sweepers = [tuple(k.split("/")) for r in rounds for k in r.sent]
    assert len(by_sweepers) == len(set(by_sweepers))  # no two sweepers both claim to have sent a page
    sent_keys = {(id_to_letter[i], pos, person) for i, pos, person in by_sweepers}
    assert sent_keys <= set(everything)
    # Pages that only a sweeper moving an escalation on its timeout can send (not step 1 of round 1,
    # sent by whoever starts the escalation, nor D's step 2, which Noa's failed delivery moves to):
    on_timeout = {k for k in everything if k[1] != "r00s00" and not (k[0] == "D" and k[1].endswith("s01"))}
    assert len(on_timeout) == 15 and on_timeout <= sent_keys
    assert receiver.refused == 0 and not [r for r in receiver.results if r.startswith("error")]
    # Noa's two undelivered pages each moved D on at once: from the callback, or from the sweeper
    # that sent the page and, under load, already saw the failure when it checked its step.
    assert receiver.results.count("failed") + receiver.results.count("failed_advanced") == 2

    # 3. Our state and timelines agree with what Twilio saw.
    states = {letter: paging.get_escalation(i.id) for letter, i in by_letter.items()}
    assert {k: (e.phase, e.reason) for k, e in states.items() if e is not None} == FINAL
    assert sorted(e.incident_id for e in paging.open_escalations()) == sorted([by_letter["A"].id, by_letter["C"].id])
    for letter, incident in by_letter.items():
        timeline = incidents.timeline(incident.id)
        actions = Counter(e.action for e in timeline)
        mine = sorted((pos, person) for l_, pos, person in everything if l_ == letter)
        assert actions["escalation_started"] == 1, letter
        assert [e.detail.split(" (")[0] for e in timeline if e.action == "escalated"] == [
            f"to {label}" for label in ESCALATED[letter]
        ], letter
        early = [e for e in timeline if e.action == "escalated" and "(every page of the step failed)" in e.detail]
        assert len(early) == (2 if letter == "D" else 0), letter
        assert [e.detail for e in timeline if e.action == "escalation_stopped"] == STOPPED[letter], letter
        paged = sorted(str(e.detail).rsplit(", ", 1)[0] for e in timeline if e.action == "paged")
        assert len(paged) == len(mine), letter
        assert paged == sorted(f"{person} ({_label(pos)})" for pos, person in mine), letter
        undelivered = 2 if letter == "D" else 0
        assert actions["page_delivered"] == len(mine) - undelivered, letter
        assert actions["page_undelivered"] == undelivered, letter
        assert not {"page_unknown", "page_failed", "page_retry_scheduled", "sms_refused"} & set(actions), letter
        started_at = next(e.at for e in timeline if e.action == "escalation_started")
        assert all(e.at >= started_at for e in timeline if e.action == "paged"), letter
        records = paging.pages(incident.id)
        assert sorted((p.position, p.person) for p in records) == mine, letter
        assert {p.state for p in records} == {"sent"}, letter
        assert {p.sid for p in records} == {m.sid for m in fake.messages if key_of(m)[0] == letter}, letter
    print("rounds:", [(r.minute, round(r.seconds, 1), r.in_flight) for r in rounds])


def _label(position: str) -> str:
    if position == "fb":
        return "fallback"
    return f"step {int(position[4:6]) + 1}, round {int(position[1:3]) + 1}"


if __name__ == "__main__":
    _child()
