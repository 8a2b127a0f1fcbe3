"""The real `twilio` client against the local fake Twilio, and the fake's webhooks against a local receiver.

Everything listens on 127.0.0.1; the receiver checks X-Twilio-Signature with twilio's own
RequestValidator, so a fake that signed differently from Twilio would fail here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from chalicelib.paging.sms import DeliveryState, SendErrorKind, SmsSendError
from chalicelib.paging.twilio_sms import (
    TwilioConfig,
    TwilioSender,
    default_sender,
    parse_inbound,
    parse_status_callback,
    verify_twilio_form,
)
from klaxon.fake_twilio import LOCAL_FROM, FakeTwilio, running_fake_twilio
from klaxon.stack import LOOPBACK, free_port

pytestmark = pytest.mark.integration

ON_CALL = "+972501234567"
UNREACHABLE = "+15005550011"
LANDLINE = "+15005550012"
SID_RE = re.compile(r"^SM[0-9a-f]{32}$")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    valid: bool

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.body, keep_blank_values=True))


@dataclass
class Receiver:
    """A tiny webhook endpoint: verifies X-Twilio-Signature, 200 if valid, 403 if not."""

    auth_token: str
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def wait(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.requests)}")


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running_fake_twilio(
        fail_numbers={UNREACHABLE: ("failed", 30003), LANDLINE: ("undelivered", 30006)}, step_delay=0.02
    ) as running:
        yield running


@pytest.fixture
def receiver(fake: FakeTwilio) -> Iterator[Receiver]:
    box = Receiver(auth_token=fake.auth_token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            url = box.url(self.path)
            params = dict(parse_qsl(body, keep_blank_values=True))
            valid = RequestValidator(box.auth_token).validate(url, params, self.headers.get("X-Twilio-Signature", ""))
            with box.lock:
                box.requests.append(Received(self.path, dict(self.headers), body, valid))
            answer = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>" if valid else b"forged"
            self.send_response(200 if valid else 403)
            self.send_header("Content-Type", "text/xml" if valid else "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    box.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def raw_client(fake: FakeTwilio, auth_token: str | None = None) -> Client:
    """The plain twilio client, redirected the supported way: the api domain's base_url."""
    client = Client(fake.account_sid, auth_token or fake.auth_token)
    client.api.base_url = fake.base_url
    return client


def sender(fake: FakeTwilio, **overrides: Any) -> TwilioSender:
    config = dict(account_sid=fake.account_sid, auth_token=fake.auth_token, from_=LOCAL_FROM, base_url=fake.base_url)
    return TwilioSender(TwilioConfig(**{**config, **overrides}))


def test_real_client_creates_a_message_that_looks_like_twilios(fake: FakeTwilio) -> None:
    body = "SEV1 acme: neg 212/5min. Reply ACK 4821"
    message = raw_client(fake).messages.create(to=ON_CALL, from_=LOCAL_FROM, body=body)
    assert SID_RE.match(message.sid)
    assert message.status == "queued" and message.direction == "outbound-api"
    assert message.num_segments == "1" and message.num_media == "0"
    assert message.account_sid == fake.account_sid and message.api_version == "2010-04-01"
    assert isinstance(message.date_created, datetime) and message.date_created.tzinfo is not None  # RFC 2822 parsed
    assert message.uri == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{message.sid}.json"
    assert message.error_code is None and message.price is None and message.price_unit == "USD"
    (recorded,) = fake.messages
    assert (recorded.sid, recorded.to, recorded.from_, recorded.body) == (message.sid, ON_CALL, LOCAL_FROM, body)
    done = fake.wait_for_status(message.sid, "delivered")
    assert done.statuses == ["queued", "sent", "delivered"]
    fetched = raw_client(fake).messages(message.sid).fetch()
    assert fetched.status == "delivered" and fetched.date_sent is not None and fetched.price.startswith("-")


def test_num_segments_follow_the_encoding(fake: FakeTwilio) -> None:
    client = raw_client(fake)
    cases = {"א" * 70: "1", "א" * 71: "2", "€" * 80: "1", "€" * 81: "2", "a" * 307: "3", "\U0001f6a8" * 36: "2"}
    for body, expected in cases.items():
        assert client.messages.create(to=ON_CALL, from_=LOCAL_FROM, body=body).num_segments == expected, body[:3]


def test_status_callbacks_arrive_signed_and_in_order(fake: FakeTwilio, receiver: Receiver) -> None:
    callback = receiver.url("/paging/sms/status?incident=inc-1&step=0")
    sent = sender(fake).send(ON_CALL, "SEV1 acme-telecom\nReply ACK 4821", status_callback=callback)
    assert SID_RE.match(sent.sid) and sent.status is DeliveryState.PENDING and sent.vendor_status == "queued"
    assert sent.segments == 1
    hits = receiver.wait(3)
    assert all(hit.valid for hit in hits), "X-Twilio-Signature must validate with the auth token"
    assert [hit.params["MessageStatus"] for hit in hits] == ["queued", "sent", "delivered"]
    for hit in hits:
        assert hit.path == "/paging/sms/status?incident=inc-1&step=0"
        assert hit.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert verify_twilio_form(callback, hit.body, hit.headers["X-Twilio-Signature"], fake.auth_token)
        params = hit.params
        assert params["MessageSid"] == params["SmsSid"] == sent.sid
        assert params["SmsStatus"] == params["MessageStatus"]
        assert (params["To"], params["From"], params["AccountSid"], params["ApiVersion"]) == (
            ON_CALL, LOCAL_FROM, fake.account_sid, "2010-04-01")
        assert "ErrorCode" not in params
    assert parse_status_callback(hits[-1].params).state is DeliveryState.DELIVERED
    assert all(attempt.http_status == 200 for attempt in fake.callbacks)


def test_failing_numbers_end_failed_or_undelivered_with_error_code(fake: FakeTwilio, receiver: Receiver) -> None:
    sms = sender(fake)
    failed = sms.send(UNREACHABLE, "page", status_callback=receiver.url("/status"))
    undelivered = sms.send(LANDLINE, "page", status_callback=receiver.url("/status"))
    assert fake.wait_for_status(failed.sid, "failed").statuses == ["queued", "failed"]
    assert fake.wait_for_status(undelivered.sid, "undelivered").statuses == ["queued", "sent", "undelivered"]
    hits = receiver.wait(5)
    assert all(hit.valid for hit in hits)
    final = {h.params["MessageSid"]: h.params for h in hits if h.params["MessageStatus"] in ("failed", "undelivered")}
    assert final[failed.sid]["ErrorCode"] == "30003" and final[undelivered.sid]["ErrorCode"] == "30006"
    unreachable = parse_status_callback(final[failed.sid])
    landline = parse_status_callback(final[undelivered.sid])
    assert unreachable.state is landline.state is DeliveryState.FAILED
    assert (unreachable.error_kind, landline.error_kind) == (SendErrorKind.RETRYABLE, SendErrorKind.RECIPIENT)
    fetched = raw_client(fake).messages(undelivered.sid).fetch()
    assert (fetched.status, fetched.error_code, fetched.error_message) == (
        "undelivered", 30006, "Landline or unreachable carrier")


def test_bad_credentials_are_twilio_20003(fake: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as caught:
        raw_client(fake, auth_token="wrong").messages.create(to=ON_CALL, from_=LOCAL_FROM, body="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    with pytest.raises(SmsSendError) as mapped:
        sender(fake, auth_token="wrong").send(ON_CALL, "x")
    assert (mapped.value.kind, mapped.value.code, mapped.value.http_status) == (SendErrorKind.PERMANENT, 20003, 401)
    assert not mapped.value.retryable
    assert fake.messages == []


def test_validation_errors_use_twilio_codes(fake: FakeTwilio) -> None:
    client = raw_client(fake)
    for kwargs, status, code in [
        ({"to": "0501234567", "from_": LOCAL_FROM, "body": "x"}, 400, 21211),
        ({"to": ON_CALL, "from_": "not a number!", "body": "x"}, 400, 21212),
        ({"to": ON_CALL, "from_": LOCAL_FROM, "body": ""}, 400, 21602),
        ({"to": ON_CALL, "from_": LOCAL_FROM, "body": "x" * 1601}, 400, 21617),
        ({"to": ON_CALL, "from_": LOCAL_FROM, "body": "x", "status_callback": "ftp://x"}, 400, 21609),
    ]:
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(**kwargs)
        assert (caught.value.status, caught.value.code) == (status, code), kwargs
    with pytest.raises(SmsSendError) as bad_number:
        sender(fake).send("0501234567", "x")
    assert (bad_number.value.kind, bad_number.value.code) == (SendErrorKind.RECIPIENT, 21211)
    with pytest.raises(SmsSendError) as empty:
        sender(fake).send(ON_CALL, "   ")
    assert (empty.value.kind, empty.value.code) == (SendErrorKind.PERMANENT, 21602)
    assert fake.messages == []


def test_server_errors_and_throttling_are_retryable(fake: FakeTwilio) -> None:
    sms = sender(fake)
    fake.fail_next(1, 500)
    with pytest.raises(SmsSendError) as server_error:
        sms.send(ON_CALL, "x")
    assert server_error.value.retryable and server_error.value.http_status == 500 and server_error.value.maybe_sent
    fake.fail_next(2, 429, retry_after=2)
    for _ in range(2):
        with pytest.raises(SmsSendError) as throttled:
            sms.send(ON_CALL, "x")
        assert throttled.value.retryable and throttled.value.code == 20429
        assert throttled.value.retry_after == 2.0 and not throttled.value.maybe_sent
    assert sms.send(ON_CALL, "x").status is DeliveryState.PENDING  # knobs used up
    assert [r.http_status for r in fake.requests] == [500, 429, 429, 201]
    assert len(fake.messages) == 1


def test_raw_client_sees_500_as_rest_exception(fake: FakeTwilio) -> None:
    fake.fail_next(1, 503)
    with pytest.raises(TwilioRestException) as caught:
        raw_client(fake).messages.create(to=ON_CALL, from_=LOCAL_FROM, body="x")
    assert (caught.value.status, caught.value.code) == (503, 20503)


def test_a_hang_is_a_retryable_timeout_that_may_still_send(fake: FakeTwilio) -> None:
    fake.hang_next(1, seconds=0.8)
    started = time.monotonic()
    with pytest.raises(SmsSendError) as caught:
        sender(fake, timeout=0.2).send(ON_CALL, "x")
    assert time.monotonic() - started < 0.7
    assert caught.value.retryable and caught.value.maybe_sent
    fake.wait_for(lambda f: len(f.messages) == 1, timeout=5)  # the slow request went through after all


def test_nothing_listening_is_retryable_and_not_sent() -> None:
    port = free_port()
    sms = TwilioSender(TwilioConfig("AC" + "0" * 32, "t", LOCAL_FROM, base_url=f"http://{LOOPBACK}:{port}", timeout=2))
    with pytest.raises(SmsSendError) as caught:
        sms.send(ON_CALL, "x")
    assert caught.value.retryable and not caught.value.maybe_sent


def test_list_filters_by_to_and_pages_through_the_fake(fake: FakeTwilio) -> None:
    client = raw_client(fake)
    for i in range(3):
        client.messages.create(to=ON_CALL, from_=LOCAL_FROM, body=f"page {i}")
    client.messages.create(to="+15551230000", from_=LOCAL_FROM, body="other")
    listed = client.messages.list(to=ON_CALL, page_size=2)  # follows next_page_uri through the fake
    assert [m.body for m in listed] == ["page 2", "page 1", "page 0"]  # newest first, like Twilio
    assert len(client.messages.list()) == 4
    assert [m.to for m in fake.messages] == [ON_CALL] * 3 + ["+15551230000"]


def test_messaging_service_sender(fake: FakeTwilio) -> None:
    service = "MG" + "ab" * 16
    sent = sender(fake, from_=service).send(ON_CALL, "x")
    recorded = fake.message(sent.sid)
    assert (recorded.messaging_service_sid, recorded.from_, sent.vendor_status) == (service, None, "accepted")


def test_inbound_helper_posts_a_correctly_signed_reply(fake: FakeTwilio, receiver: Receiver) -> None:
    url = receiver.url("/paging/sms/inbound")
    answer = fake.send_inbound(url, from_=ON_CALL, to=LOCAL_FROM, body="ACK 4821")
    assert answer.status == 200 and "<Response/>" in answer.body
    (hit,) = receiver.wait(1)
    assert hit.valid
    assert verify_twilio_form(url, hit.body, hit.headers["X-Twilio-Signature"], fake.auth_token)
    params = hit.params
    assert SID_RE.match(params["MessageSid"]) and params["SmsSid"] == params["MessageSid"]
    assert (params["From"], params["To"], params["Body"], params["NumMedia"]) == (ON_CALL, LOCAL_FROM, "ACK 4821", "0")
    assert (params["AccountSid"], params["SmsStatus"], params["ApiVersion"]) == (
        fake.account_sid, "received", "2010-04-01")
    assert params["FromCity"] == ""  # blank fields are sent, and signed
    inbound = parse_inbound(params)
    assert (inbound.from_, inbound.body) == (ON_CALL, "ACK 4821")
    assert [m.body for m in fake.inbound] == ["ACK 4821"] and fake.messages == []


def test_inbound_helper_can_forge_for_negative_tests(fake: FakeTwilio, receiver: Receiver) -> None:
    answer = fake.send_inbound(receiver.url("/paging/sms/inbound"), ON_CALL, LOCAL_FROM, "RESOLVE 4821",
                               auth_token="not-the-token")
    assert (answer.status, answer.body) == (403, "forged")
    assert not receiver.wait(1)[0].valid


def test_hebrew_reply_signature_survives_utf8(fake: FakeTwilio, receiver: Receiver) -> None:
    answer = fake.send_inbound(receiver.url("/inbound?lang=he"), ON_CALL, LOCAL_FROM, "אישור 4821 ✅")
    assert answer.status == 200 and receiver.wait(1)[0].params["Body"] == "אישור 4821 ✅"


def test_callback_receiver_down_is_recorded_and_does_not_stall(fake: FakeTwilio) -> None:
    dead = f"http://{LOOPBACK}:{free_port()}/status"
    sent = sender(fake).send(ON_CALL, "x", status_callback=dead)
    assert fake.wait_for_status(sent.sid, "delivered").statuses[-1] == "delivered"
    assert all(a.http_status is None and a.error for a in fake.callbacks)


def test_default_sender_from_the_fakes_environment(fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in fake.environment().items():
        monkeypatch.setenv(key, value)
    default_sender.cache_clear()
    try:
        sent = default_sender().send(ON_CALL, "from env")
        assert fake.message(sent.sid).body == "from env"
    finally:
        default_sender.cache_clear()
