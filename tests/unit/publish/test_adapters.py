"""Channel adapters against fake transports: exact approved text only, platform ids returned."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib.publish.base import (
    HashMismatch,
    HttpResponse,
    OutcomeUnknown,
    PlatformError,
    Progress,
    Publisher,
    PublishError,
    Target,
    send,
)
from chalicelib.publish.meta import MetaPublisher
from chalicelib.publish.outbox import OutboxPublisher
from chalicelib.publish.webhook import WebhookPublisher
from chalicelib.publish.x import XPublisher
from chalicelib.statements.hashing import version_hash
from chalicelib.statements.xtext import weighted_length
from tests.unit.publish.conftest import FakeTransport, ok

SIGNER = "noa-ben-david"
TEXT = "Our network is down in the north. We are fixing it. Next update by 18:00.\n\nNoa Ben-David"
HASH = version_hash(TEXT, SIGNER)
LONG = ("We are sorry for the outage in the north. " * 15) + "\n\nNoa Ben-David"
LONG_HASH = version_hash(LONG, SIGNER)
TARGET = Target(signer_id=SIGNER, signer_name="Noa Ben-David", incident_id="inc_1", lang="en")
WHSEC = "whsec_" + "dGVzdC1wdWJsaXNoLXNlY3JldC0xMjM0NTY3ODkw"


def x_transport() -> FakeTransport:
    ids = itertools.count(1800)
    return FakeTransport(lambda m, u, b: ok({"data": {"id": str(next(ids)), "text": b["text"]}}, 201))


def test_every_adapter_satisfies_the_protocol(tmp_path: Path) -> None:
    adapters = [
        XPublisher("t", x_transport()),
        MetaPublisher("t", x_transport()),
        WebhookPublisher("https://hooks.example/x", WHSEC, x_transport()),
        OutboxPublisher(tmp_path / "out.jsonl"),
    ]
    for adapter in adapters:
        assert isinstance(adapter, Publisher) and adapter.platform


@pytest.mark.parametrize(
    "make",
    [
        lambda t, p: XPublisher("t", t),
        lambda t, p: MetaPublisher("t", t, page_id="123"),
        lambda t, p: WebhookPublisher("https://hooks.example/x", WHSEC, t),
        lambda t, p: OutboxPublisher(p / "out.jsonl"),
    ],
)
@pytest.mark.parametrize(
    ("text", "h", "signer"),
    [
        (TEXT + " ", HASH, SIGNER),  # one trailing space
        (TEXT.replace("18:00", "19:00"), HASH, SIGNER),  # a changed word
        (TEXT, HASH, "maya-katz"),  # same words, another signer
        (TEXT, HASH.upper(), SIGNER),  # the hash in another spelling
        (TEXT, "", SIGNER),
    ],
)
def test_adapters_refuse_text_that_is_not_the_approved_text(
    make: Any, text: str, h: str, signer: str, tmp_path: Path
) -> None:
    transport = x_transport()
    adapter = make(transport, tmp_path)
    with pytest.raises(HashMismatch):
        adapter.publish(text, h, Target(signer_id=signer, incident_id="inc_1", lang="en"))
    assert transport.calls == [] and not (tmp_path / "out.jsonl").exists()


def test_x_single_post() -> None:
    transport = x_transport()
    ref = XPublisher("user-token", transport).publish(TEXT, HASH, TARGET)
    assert ref.platform_id == "1800" and ref.url == "https://x.com/i/web/status/1800"
    ((method, url, headers, _),) = transport.calls
    assert (method, url, headers["Authorization"]) == ("POST", "https://api.x.com/2/tweets", "Bearer user-token")
    assert transport.bodies() == [{"text": TEXT}]


def test_x_reply_thread_chains_each_part_to_the_previous() -> None:
    transport = x_transport()
    target = Target(signer_id=SIGNER, signer_name="Noa Ben-David", reply_to="999")
    ref = XPublisher("t", transport).publish(LONG, LONG_HASH, target)
    bodies = transport.bodies()
    assert len(bodies) == 3 and ref.part_ids == ("1800", "1801", "1802") and ref.platform_id == "1800"
    assert [b["reply"]["in_reply_to_tweet_id"] for b in bodies] == ["999", "1800", "1801"]
    assert all(weighted_length(b["text"]) <= 280 for b in bodies)
    assert " ".join(b["text"].rsplit("\n", 1)[0] for b in bodies).split() == LONG.split()


def test_x_short_mode_is_one_post() -> None:
    transport = x_transport()
    XPublisher("t", transport).publish(LONG, LONG_HASH, Target(signer_id=SIGNER, signer_name="Noa", mode="short"))
    (body,) = transport.bodies()
    assert body["text"].endswith("…\n— Noa") and weighted_length(body["text"]) <= 280


def test_x_error_stops_the_thread_and_says_how_far_it_got() -> None:
    """A refusal on part 2 (429: nothing posted) stops the thread with part 1 recorded; the retry,
    given what is recorded, sends only parts 2 and 3, part 2 replying to part 1."""
    answers = iter([ok({"data": {"id": "1"}}, 201), HttpResponse(429, b'{"title":"Too Many Requests"}')])
    transport = FakeTransport(lambda m, u, b: next(answers))
    recorded: list[tuple[int, str]] = []
    progress = Progress((), lambda index, post_id: recorded.append((index, post_id)))
    with pytest.raises(PlatformError, match="after 1 of 3 posts") as caught:
        XPublisher("t", transport).publish(LONG, LONG_HASH, TARGET, progress)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert caught.value.response_status == 429 and len(transport.calls) == 2 and recorded == [(0, "1")]

    retry = x_transport()
    ref = XPublisher("t", retry).publish(
        LONG, LONG_HASH, TARGET, Progress(("1",), lambda i, p: recorded.append((i, p)))
    )
    bodies = retry.bodies()
    assert [b["reply"]["in_reply_to_tweet_id"] for b in bodies] == ["1", "1800"]
    first = transport.bodies()[0]["text"]
    assert [first] + [b["text"] for b in bodies] == [b["text"] for b in x_transport_thread()]
    assert ref.part_ids == ("1", "1800", "1801") and recorded == [(0, "1"), (1, "1800"), (2, "1801")]


def x_transport_thread() -> list[dict[str, Any]]:
    transport = x_transport()
    XPublisher("t", transport).publish(LONG, LONG_HASH, TARGET)
    return transport.bodies()


def test_x_with_every_part_recorded_sends_nothing() -> None:
    transport = x_transport()
    ref = XPublisher("t", transport).publish(LONG, LONG_HASH, TARGET, Progress(("7", "8", "9")))
    assert transport.calls == [] and ref.part_ids == ("7", "8", "9")
    with pytest.raises(PlatformError, match="4 posts are recorded for a thread of 3"):
        XPublisher("t", transport).publish(LONG, LONG_HASH, TARGET, Progress(("6", "7", "8", "9")))


@pytest.mark.parametrize("status", [500, 502, 504])
def test_x_answers_that_may_follow_acceptance_are_outcome_unknown(status: int) -> None:
    answers = iter([ok({"data": {"id": "1"}}, 201), HttpResponse(status, b"upstream")])
    transport = FakeTransport(lambda m, u, b: next(answers))
    with pytest.raises(OutcomeUnknown) as caught:
        XPublisher("t", transport).publish(LONG, LONG_HASH, TARGET)
    assert caught.value.response_status == status


@pytest.mark.parametrize("status", [400, 401, 403, 429, 503])
def test_x_refusals_are_not_outcome_unknown(status: int) -> None:
    transport = FakeTransport(lambda m, u, b: HttpResponse(status, b"no"))
    with pytest.raises(PlatformError) as caught:
        XPublisher("t", transport).publish(TEXT, HASH, TARGET)
    assert not isinstance(caught.value, OutcomeUnknown) and caught.value.response_status == status


def test_a_success_without_an_id_or_a_transport_crash_is_outcome_unknown() -> None:
    no_id = FakeTransport(lambda m, u, b: ok({"data": {}}, 201))
    with pytest.raises(OutcomeUnknown, match="without a post id"):
        XPublisher("t", no_id).publish(TEXT, HASH, TARGET)

    def hang(m: str, u: str, b: dict[str, Any]) -> HttpResponse:
        raise TimeoutError("read timed out")

    with pytest.raises(OutcomeUnknown, match="TimeoutError"):
        XPublisher("t", FakeTransport(hang)).publish(TEXT, HASH, TARGET)
    with pytest.raises(OutcomeUnknown, match="without an id"):
        MetaPublisher("t", FakeTransport(lambda m, u, b: ok({}))).publish(
            TEXT, HASH, Target(signer_id=SIGNER, reply_to="1")
        )


def test_meta_continues_after_the_recorded_replies() -> None:
    text = ("Listeria was found in one batch of hummus. " * 400).strip() + "\n\nNoa Ben-David"
    h = version_hash(text, SIGNER)
    full = FakeTransport(lambda m, u, b: ok({"id": "c_all"}))
    MetaPublisher("t", full).publish(text, h, Target(signer_id=SIGNER, reply_to="1"))
    assert len(full.calls) >= 2
    rest = FakeTransport(lambda m, u, b: ok({"id": "c_2"}))
    ref = MetaPublisher("t", rest).publish(text, h, Target(signer_id=SIGNER, reply_to="1"), Progress(("c_1",)))
    assert rest.bodies() == full.bodies()[1:] and ref.part_ids[0] == "c_1"
    with pytest.raises(OutcomeUnknown):
        MetaPublisher("t", FakeTransport(lambda m, u, b: HttpResponse(500, b"{}"))).publish(
            TEXT, HASH, Target(signer_id=SIGNER, reply_to="1")
        )


def test_meta_facebook_and_instagram_replies() -> None:
    transport = FakeTransport(lambda m, u, b: ok({"id": "c_42"}))
    meta = MetaPublisher("page-token", transport)
    ref = meta.publish(TEXT, HASH, Target(signer_id=SIGNER, reply_to="111_222"))
    assert ref.platform_id == "c_42"
    meta.publish(TEXT, HASH, Target(signer_id=SIGNER, reply_to="1789", surface="instagram"))
    urls = [c[1] for c in transport.calls]
    assert urls == ["https://graph.facebook.com/v21.0/111_222/comments", "https://graph.facebook.com/v21.0/1789/replies"]
    assert transport.bodies() == [{"message": TEXT}, {"message": TEXT}]
    assert all(c[0] == "POST" and c[2]["Authorization"] == "Bearer page-token" for c in transport.calls)


def test_meta_needs_somewhere_to_reply() -> None:
    with pytest.raises(PlatformError, match="reply_to"):
        MetaPublisher("t", x_transport()).publish(TEXT, HASH, TARGET)


def test_meta_page_post_when_configured() -> None:
    transport = FakeTransport(lambda m, u, b: ok({"id": "123_9"}))
    MetaPublisher("t", transport, page_id="123").publish(TEXT, HASH, TARGET)
    assert transport.calls[0][1] == "https://graph.facebook.com/v21.0/123/feed"


def test_meta_error() -> None:
    transport = FakeTransport(lambda m, u, b: HttpResponse(400, b'{"error":{"message":"bad"}}'))
    with pytest.raises(PlatformError) as caught:
        MetaPublisher("t", transport).publish(TEXT, HASH, Target(signer_id=SIGNER, reply_to="1"))
    assert caught.value.response_status == 400 and "bad" in caught.value.detail


def test_webhook_is_a_verifiable_standard_webhook() -> None:
    transport = FakeTransport(lambda m, u, b: ok({"id": "rcv_1", "url": "https://status.example/1"}))
    now = datetime.now(UTC).replace(microsecond=0)  # the verifier checks its 5-minute window
    ref = WebhookPublisher("https://hooks.example/in", WHSEC, transport, clock=lambda: now).publish(TEXT, HASH, TARGET)
    assert ref.platform_id == "rcv_1" and ref.url == "https://status.example/1"
    ((method, url, headers, body),) = transport.calls
    assert method == "POST" and url == "https://hooks.example/in"
    payload = Webhook(WHSEC).verify(body, headers)
    assert payload["type"] == "statement.published"
    assert payload["data"]["text"] == TEXT and payload["data"]["version_hash"] == HASH
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-timestamp"] == str(int(now.timestamp()))


def test_webhook_id_is_stable_for_retries() -> None:
    transport = FakeTransport(lambda m, u, b: HttpResponse(204))
    hook = WebhookPublisher("https://hooks.example/in", WHSEC, transport)
    first, second = hook.publish(TEXT, HASH, TARGET), hook.publish(TEXT, HASH, TARGET)
    assert first.platform_id == second.platform_id == transport.calls[0][2]["webhook-id"]


def test_webhook_refusal() -> None:
    transport = FakeTransport(lambda m, u, b: HttpResponse(500, b"boom"))
    with pytest.raises(PlatformError):
        WebhookPublisher("https://hooks.example/in", WHSEC, transport).publish(TEXT, HASH, TARGET)


def test_webhook_lost_answer_is_retryable_because_the_retry_carries_the_same_id() -> None:
    def hang(m: str, u: str, b: dict[str, Any]) -> HttpResponse:
        raise TimeoutError("read timed out")

    with pytest.raises(PlatformError) as caught:
        WebhookPublisher("https://hooks.example/in", WHSEC, FakeTransport(hang)).publish(TEXT, HASH, TARGET)
    assert not isinstance(caught.value, OutcomeUnknown) and "a retry resends msg_" in str(caught.value)


def test_outbox_file_appends_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "outbox.jsonl"
    box = OutboxPublisher(out)
    first = box.publish(TEXT, HASH, TARGET)
    box.publish(LONG, LONG_HASH, TARGET)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines] == [TEXT, LONG]
    assert lines[0]["id"] == first.platform_id and lines[0]["version_hash"] == HASH
    assert first.url == out.resolve().as_uri()


def test_the_guarded_transport_allows_only_post() -> None:
    transport = x_transport()
    for verb in ("DELETE", "delete", "PUT", "PATCH", "GET"):
        with pytest.raises(PublishError):
            send(transport, verb, "https://api.x.com/2/tweets/1", b"", {})
    assert transport.calls == []
