"""Webhook routes end to end over a real moto server: signed deliveries in, SQS messages out.

Every refusal must be a 4xx with a JSON `{"error": reason}` body and must change nothing:
no SQS message, no DynamoDB item. Requests are signed with klaxon.signing and the local
default secrets, exactly as the demo and the platforms sign them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.config import settings
from chalicelib.ingest.models import Mention
from chalicelib.store.models import raw_clients
from klaxon.signing import meta_headers, standard_headers, x_headers
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration

API_KEY = "local-api-key"
X_PATH, META_PATH, GENERIC_PATH = "/webhooks/x", "/webhooks/meta", "/webhooks/generic"
DEEP = b"[" * 100_000 + b"]" * 100_000


def fixture_bytes(name: str) -> bytes:
    """The exact bytes a platform would send."""
    return (FIXTURES / name).read_bytes()


def path_for(name: str) -> str:
    if name.startswith("x_"):
        return X_PATH
    if name.startswith("meta_"):
        return META_PATH
    return GENERIC_PATH


def signed(path: str, body: bytes, **kwargs: Any) -> dict[str, str]:
    """Headers a genuine sender would attach to `body` for `path`."""
    cfg = settings()
    if path == X_PATH:
        return x_headers(cfg.x_consumer_secret, body)
    if path == META_PATH:
        return meta_headers(cfg.meta_app_secret, body)
    return standard_headers(cfg.webhook_secret, body, **kwargs)


def post(env: Any, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return env.client.http.post(path, body=body, headers=signed(path, body) if headers is None else headers)


def queued(env: Any) -> list[Mention]:
    """Every message on the queue, read back (they become invisible for the visibility timeout)."""
    out: list[Mention] = []
    while True:
        got = env.sqs.receive_message(QueueUrl=env.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        out.extend(Mention.model_validate_json(m["Body"]) for m in messages)


def queue_depth(env: Any) -> int:
    attrs = env.sqs.get_queue_attributes(
        QueueUrl=env.queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def table_items(table: str) -> list[dict[str, Any]]:
    client = raw_clients()[0]
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_nothing_changed(env: Any) -> None:
    """No message on the queue, no item in either table."""
    assert queue_depth(env) == 0
    assert queued(env) == []
    cfg = settings()
    assert table_items(cfg.mentions_table) == []
    assert table_items(cfg.counters_table) == []


def assert_rejected(response: Any, status: int, reason: str | Callable[[str], bool]) -> None:
    assert response.status_code == status, response.body
    assert response.headers.get("Content-Type", response.headers.get("content-type")) == "application/json"
    body = json.loads(response.body)
    assert set(body) == {"error"}
    if callable(reason):
        assert reason(body["error"]), body["error"]
    else:
        assert body["error"] == reason


def accepted(enqueued: int, ignored: int = 0, unmatched: int = 0, duplicate: bool = False) -> dict[str, Any]:
    return {"accepted": True, "enqueued": enqueued, "ignored": ignored, "unmatched": unmatched, "duplicate": duplicate}


# ---------------------------------------------------------------- valid deliveries

# fixture → (platform ids enqueued in order, ignored, unmatched)
DELIVERIES: dict[str, tuple[list[str], int, int]] = {
    "x_tweet_mention.json": (["2124793605650123776"], 0, 0),
    "x_tweet_reply.json": (["2124795526641823744"], 0, 0),
    "x_tweet_extended.json": (["2124798408128987137"], 0, 0),
    "x_tweet_hebrew.json": (["2124805869795426306"], 0, 0),
    "x_tweet_own.json": ([], 1, 0),
    "x_favorite_events.json": ([], 1, 0),
    "x_follow_events.json": ([], 1, 0),
    "meta_page_feed_comment.json": (["122110573849201234_1593847261839204"], 1, 0),
    "meta_page_mention.json": (["100089123456789_122098765432101234"], 0, 0),
    "meta_page_reaction.json": ([], 1, 0),
    "meta_instagram_comments.json": (["17998877665544332", "17998877665544419"], 0, 0),
    "meta_instagram_mentions.json": (["17895695668004550"], 0, 0),
    "generic_mention_created.json": (["7441223809516834054"], 0, 0),
    "generic_mention_batch.json": (["t1_m8x2kq1", "rotter-918273"], 0, 1),
}


@pytest.mark.parametrize(("name", "expected"), sorted(DELIVERIES.items()))
def test_valid_delivery_is_accepted_and_enqueued(env: Any, name: str, expected: tuple[list[str], int, int]) -> None:
    ids, ignored, unmatched = expected
    path = path_for(name)
    headers = signed(path, fixture_bytes(name))
    response = post(env, path, fixture_bytes(name), headers)
    assert response.status_code == 200, response.body
    assert json.loads(response.body) == accepted(len(ids), ignored, unmatched)

    messages = queued(env)
    assert [m.platform_id for m in messages] == ids
    platform = {X_PATH: {"x"}, META_PATH: {"facebook", "instagram"}}.get(path)
    for m in messages:
        assert platform is None or m.platform in platform
        assert m.brands in (("acme-telecom",), ("golden-foods",))
        assert m.created_at.utcoffset() is not None and m.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert m.language is None and m.sentiment is None  # classified by ingest, not the webhook

    # The webhook writes no mention; a Standard Webhooks delivery only remembers its webhook-id.
    cfg = settings()
    remembered = [item["pk"]["S"] for item in table_items(cfg.mentions_table)]
    assert remembered == ([f"wh#generic#{headers['webhook-id']}"] if path == GENERIC_PATH else [])
    assert table_items(cfg.counters_table) == []


def test_x_delivery_message_carries_the_mapped_mention(env: Any) -> None:
    response = post(env, X_PATH, fixture_bytes("x_tweet_hebrew.json"))
    assert response.status_code == 200
    [m] = queued(env)
    assert m.model_dump(mode="json") == {
        "platform": "x",
        "platform_id": "2124805869795426306",
        "text": "@AcmeTelecom כבר שלוש שעות אין אינטרנט בכל השכונה ואף אחד במוקד של אקמי לא עונה. ממש בושה.",
        "author": {"id": "982734561", "handle": "michal_ben", "name": "מיכל בן דוד", "followers": 312},
        "created_at": "2026-11-23T10:02:51Z",
        "url": "https://x.com/michal_ben/status/2124805869795426306",
        "reply_to": None,
        "brands": ["acme-telecom"],
        "language": None,
        "sentiment": None,
    }


def test_more_than_ten_mentions_are_all_enqueued(env: Any) -> None:
    """SQS batches hold ten; a 23-mention delivery must arrive whole."""
    payload = json.loads(fixture_bytes("generic_mention_batch.json"))
    template = payload["data"]["mentions"][0]
    payload["data"]["mentions"] = [{**template, "id": f"t1_m8x{i:04d}"} for i in range(23)]
    body = json.dumps(payload).encode()
    response = post(env, GENERIC_PATH, body)
    assert response.status_code == 200
    assert json.loads(response.body) == accepted(23)
    assert sorted(m.platform_id for m in queued(env)) == [f"t1_m8x{i:04d}" for i in range(23)]


# ---------------------------------------------------------------- handshakes


@pytest.mark.parametrize("token", ["MzY4NjcyNjE5NDc2MzQ5NjA3", "a+b/c=d", "טוקן"])
def test_x_crc_challenge(env: Any, token: str) -> None:
    response = env.client.http.get(f"{X_PATH}?{urlencode({'crc_token': token})}")
    assert response.status_code == 200
    digest = hmac.new(b"local-x-consumer-secret", token.encode(), hashlib.sha256).digest()
    assert json.loads(response.body) == {"response_token": "sha256=" + base64.b64encode(digest).decode()}


@pytest.mark.parametrize("query", ["", "?crc_token=", "?crc_token=" + "a" * 513], ids=["missing", "empty", "too-long"])
def test_x_crc_without_usable_token(env: Any, query: str) -> None:
    assert_rejected(env.client.http.get(X_PATH + query), 400, "crc_token is missing or too long")


def _meta_query(**params: str) -> str:
    base = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "local-meta-verify-token"}
    base.update({k.replace("_", ".", 1): v for k, v in params.items()})
    return f"{META_PATH}?{urlencode(base)}"


def test_meta_handshake_echoes_challenge(env: Any) -> None:
    response = env.client.http.get(_meta_query())
    assert response.status_code == 200
    assert response.body == b"1158201444"
    assert response.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        (_meta_query(hub_verify_token="guess"), 403, "hub.verify_token does not match"),
        (_meta_query(hub_verify_token=""), 403, "hub.verify_token does not match"),
        (_meta_query(hub_mode="unsubscribe"), 400, "hub.mode must be subscribe"),
        (f"{META_PATH}?hub.challenge=1&hub.verify_token=local-meta-verify-token", 400, "hub.mode must be subscribe"),
        (_meta_query(hub_challenge=""), 400, "hub.challenge is missing or too long"),
        (_meta_query(hub_challenge="9" * 257), 400, "hub.challenge is missing or too long"),
    ],
    ids=["wrong-token", "empty-token", "wrong-mode", "no-mode", "no-challenge", "long-challenge"],
)
def test_meta_handshake_refused(env: Any, query: str, status: int, reason: str) -> None:
    assert_rejected(env.client.http.get(query), status, reason)


# ---------------------------------------------------------------- refusals change nothing


def _other_secret(path: str, body: bytes) -> dict[str, str]:
    if path == X_PATH:
        return x_headers("not-the-consumer-secret", body)
    if path == META_PATH:
        return meta_headers("not-the-app-secret", body)
    return standard_headers("whsec_" + base64.b64encode(b"an-attacker-chose-this-key").decode(), body)


def _tampered(path: str, body: bytes) -> dict[str, str]:
    """Headers signed over an altered copy of the body: the body was changed in transit."""
    return signed(path, body.replace(b"Acme", b"Acne", 1) if b"Acme" in body else body + b" ")


def _json_error(text: str) -> bool:
    return text.startswith("body is not valid JSON: ")


def _unknown_brand() -> bytes:
    payload = json.loads(fixture_bytes("generic_mention_created.json"))
    payload["data"]["brands"] = ["acme"]
    return json.dumps(payload).encode()


def _generic_type(kind: str) -> bytes:
    payload = json.loads(fixture_bytes("generic_mention_created.json"))
    payload["type"] = kind
    return json.dumps(payload).encode()


def _x_unknown_event() -> bytes:
    return json.dumps({"for_user_id": "3316376208", "spaces_events": [{"id": "1YqKDqWqdPLxV"}]}).encode()


def _meta_unknown_field() -> bytes:
    payload = json.loads(fixture_bytes("meta_page_feed_comment.json"))
    payload["entry"][0]["changes"].append(
        {"field": "leadgen", "value": {"leadgen_id": "444444444444", "page_id": "104857600000001"}}
    )
    return json.dumps(payload).encode()


def _x_one_bad_tweet() -> bytes:
    payload = json.loads(fixture_bytes("x_tweet_mention.json"))
    bad = json.loads(fixture_bytes("x_tweet_hebrew.json"))["tweet_create_events"][0]
    bad["id_str"] = "2124805869795426306/photo/1"
    payload["tweet_create_events"].append(bad)
    return json.dumps(payload).encode()


SIGNED = None  # sign the body as sent
STALE = object()
FUTURE = object()
REJECTIONS: list[Any] = [
    # forged or missing signatures
    pytest.param(
        X_PATH,
        fixture_bytes("x_tweet_mention.json"),
        _other_secret,
        401,
        "x-twitter-webhooks-signature does not match the body",
        id="x-forged",
    ),
    pytest.param(
        X_PATH,
        fixture_bytes("x_tweet_mention.json"),
        _tampered,
        401,
        "x-twitter-webhooks-signature does not match the body",
        id="x-tampered",
    ),
    pytest.param(
        X_PATH,
        fixture_bytes("x_tweet_mention.json"),
        lambda p, b: {"content-type": "application/json"},
        401,
        "missing x-twitter-webhooks-signature header",
        id="x-unsigned",
    ),
    pytest.param(
        X_PATH,
        fixture_bytes("x_tweet_mention.json"),
        lambda p, b: {
            **signed(META_PATH, b),
            "x-twitter-webhooks-signature": signed(META_PATH, b)["x-hub-signature-256"],
        },
        401,
        "x-twitter-webhooks-signature does not match the body",
        id="x-meta-style-signature",
    ),
    pytest.param(
        META_PATH,
        fixture_bytes("meta_page_feed_comment.json"),
        _other_secret,
        401,
        "X-Hub-Signature-256 does not match the body",
        id="meta-forged",
    ),
    pytest.param(
        META_PATH,
        fixture_bytes("meta_page_feed_comment.json"),
        _tampered,
        401,
        "X-Hub-Signature-256 does not match the body",
        id="meta-tampered",
    ),
    pytest.param(
        META_PATH,
        fixture_bytes("meta_page_feed_comment.json"),
        lambda p, b: {"content-type": "application/json", "x-hub-signature": "sha1=" + "0" * 40},
        401,
        "missing X-Hub-Signature-256 header",
        id="meta-sha1-only",
    ),
    pytest.param(
        GENERIC_PATH,
        fixture_bytes("generic_mention_created.json"),
        _other_secret,
        401,
        "webhook-signature does not match the body",
        id="generic-forged",
    ),
    pytest.param(
        GENERIC_PATH,
        fixture_bytes("generic_mention_created.json"),
        _tampered,
        401,
        "webhook-signature does not match the body",
        id="generic-tampered",
    ),
    pytest.param(
        GENERIC_PATH,
        fixture_bytes("generic_mention_created.json"),
        STALE,
        401,
        "webhook-timestamp is outside the replay window",
        id="generic-stale",
    ),
    pytest.param(
        GENERIC_PATH,
        fixture_bytes("generic_mention_created.json"),
        FUTURE,
        401,
        "webhook-timestamp is outside the replay window",
        id="generic-future",
    ),
    pytest.param(
        GENERIC_PATH,
        fixture_bytes("generic_mention_created.json"),
        lambda p, b: {**signed(p, b), "webhook-signature": "v1"},
        401,
        "webhook-signature does not match the body",
        id="generic-v1-without-comma",
    ),
    pytest.param(
        GENERIC_PATH,
        fixture_bytes("generic_mention_created.json"),
        lambda p, b: {"content-type": "application/json"},
        401,
        "missing webhook-id, webhook-timestamp or webhook-signature header",
        id="generic-unsigned",
    ),
    # malformed bodies, correctly signed
    pytest.param(
        X_PATH,
        b'{"for_user_id": "3316376208", "tweet_create_events": [',
        SIGNED,
        400,
        _json_error,
        id="x-malformed-json",
    ),
    pytest.param(
        X_PATH, b'{"for_user_id": "3316376208", "text": "\xff\xfe"}', SIGNED, 400, _json_error, id="x-invalid-utf8"
    ),
    pytest.param(META_PATH, b"{'object': 'page'}", SIGNED, 400, _json_error, id="meta-malformed-json"),
    pytest.param(GENERIC_PATH, b"", SIGNED, 400, _json_error, id="generic-empty-body"),
    pytest.param(X_PATH, DEEP, SIGNED, 400, "body is nested too deeply", id="x-nested-100000"),
    pytest.param(META_PATH, DEEP, SIGNED, 400, "body is nested too deeply", id="meta-nested-100000"),
    pytest.param(GENERIC_PATH, DEEP, SIGNED, 400, "body is nested too deeply", id="generic-nested-100000"),
    # well-formed JSON Klaxon does not understand
    pytest.param(X_PATH, _x_unknown_event(), SIGNED, 422, "unknown X event type 'spaces_events'", id="x-unknown-event"),
    pytest.param(
        X_PATH,
        _x_one_bad_tweet(),
        SIGNED,
        422,
        lambda e: e.startswith("platform_id: String should match pattern"),
        id="x-one-bad-tweet-of-two",
    ),
    pytest.param(X_PATH, b"[]", SIGNED, 422, "body must be a JSON object", id="x-array"),
    pytest.param(
        META_PATH,
        _meta_unknown_field(),
        SIGNED,
        422,
        "unknown Meta page field 'leadgen'",
        id="meta-unknown-field-after-good-change",
    ),
    pytest.param(
        META_PATH,
        b'{"object": "whatsapp_business_account", "entry": []}',
        SIGNED,
        422,
        "object: Input should be 'page' or 'instagram'",
        id="meta-unknown-object",
    ),
    pytest.param(
        GENERIC_PATH,
        _generic_type("mention.deleted"),
        SIGNED,
        422,
        "type: Input should be 'mention.created' or 'mention.batch'",
        id="generic-unknown-type",
    ),
    pytest.param(GENERIC_PATH, _unknown_brand(), SIGNED, 422, "unknown brand 'acme'", id="generic-unknown-brand"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "reason"), REJECTIONS)
def test_refused_delivery_changes_nothing(
    env: Any, path: str, body: bytes, headers: Any, status: int, reason: str | Callable[[str], bool]
) -> None:
    if headers is SIGNED:
        sent = signed(path, body)
    elif headers is STALE:
        sent = signed(path, body, timestamp=time.time() - settings().webhook_tolerance_seconds - 5)
    elif headers is FUTURE:
        sent = signed(path, body, timestamp=time.time() + settings().webhook_tolerance_seconds + 5)
    else:
        sent = headers(path, body)
    assert_rejected(post(env, path, body, sent), status, reason)
    assert_nothing_changed(env)


@pytest.mark.parametrize("path", [X_PATH, META_PATH, GENERIC_PATH])
def test_body_over_limit_refused_before_anything_else(env: Any, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """The limit applies to the raw bytes; exactly at the limit is fine, one byte over is a 413."""
    name = {
        X_PATH: "x_tweet_mention.json",
        META_PATH: "meta_page_mention.json",
        GENERIC_PATH: "generic_mention_created.json",
    }[path]
    body = fixture_bytes(name)
    size = len(body)

    monkeypatch.setenv("KLAXON_MAX_BODY_BYTES", str(size - 1))
    settings.cache_clear()
    assert_rejected(post(env, path, body), 413, f"body is {size} bytes; the limit is {size - 1}")
    assert_nothing_changed(env)
    # also before the signature check: an unsigned oversized body is a 413, not a 401
    assert_rejected(
        post(env, path, body, {"content-type": "application/json"}),
        413,
        f"body is {size} bytes; the limit is {size - 1}",
    )
    assert_nothing_changed(env)

    monkeypatch.setenv("KLAXON_MAX_BODY_BYTES", str(size))
    settings.cache_clear()
    response = post(env, path, body)
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["enqueued"] == 1
    assert len(queued(env)) == 1


def test_default_body_limit_is_256_kib(env: Any) -> None:
    payload = json.loads(fixture_bytes("x_tweet_mention.json"))
    payload["tweet_create_events"][0]["source"] = "x" * (256 * 1024)
    body = json.dumps(payload).encode()
    assert_rejected(post(env, X_PATH, body), 413, f"body is {len(body)} bytes; the limit is 262144")
    assert_nothing_changed(env)


# ---------------------------------------------------------------- regressions: bugs found by these tests, now fixed


def test_generic_absurd_timestamp_is_401(env: Any) -> None:
    body = fixture_bytes("generic_mention_created.json")
    headers = {**signed(GENERIC_PATH, body), "webhook-timestamp": "1" + "0" * 400}
    assert_rejected(post(env, GENERIC_PATH, body, headers), 401, "webhook-timestamp is outside the replay window")
    assert_nothing_changed(env)


def test_x_author_name_too_long_is_clipped_not_lost(env: Any) -> None:
    """A platform's odd display name must not cost the mention: it is clipped to 256 characters."""
    payload = json.loads(fixture_bytes("x_tweet_mention.json"))
    payload["tweet_create_events"][0]["user"]["name"] = "D" * 257
    body = json.dumps(payload).encode()
    response = post(env, X_PATH, body)
    assert response.status_code == 200, response.body
    [m] = queued(env)
    assert m.author.name == "D" * 256


def test_x_lone_surrogate_text_is_accepted(env: Any) -> None:
    body = fixture_bytes("x_tweet_mention.json").replace(b"Third day in a row.", b"Third day in a row \\ud83d")
    response = post(env, X_PATH, body)
    assert response.status_code == 200, response.body
    [m] = queued(env)
    assert m.text.endswith("Third day in a row \ufffd") or m.text.endswith("Third day in a row ?")


def test_generic_mention_cannot_take_a_reserved_key(env: Any) -> None:
    payload = json.loads(fixture_bytes("generic_mention_created.json"))
    payload["data"].update(platform="detector", id="acme-telecom")
    body = json.dumps(payload).encode()
    response = post(env, GENERIC_PATH, body)
    if response.status_code != 200:  # refusing the reserved name is a fine fix too
        assert_rejected(response, response.status_code, lambda e: bool(e))
        assert_nothing_changed(env)
        return
    env.drain()
    items = {i["pk"]["S"]: i for i in table_items(settings().mentions_table)}
    assert "m#detector#acme-telecom" in items  # the mention lives under its own prefix
    detector_item = items.get("detector#acme-telecom")
    if detector_item is not None:  # the brand's real detector state, never the mention's fields
        assert "state" in detector_item and "text" not in detector_item


# ---------------------------------------------------------------- Standard Webhooks replay


def test_replayed_webhook_id_is_acknowledged_and_skipped(env: Any) -> None:
    body = fixture_bytes("generic_mention_created.json")
    headers = signed(GENERIC_PATH, body, webhook_id="msg_2pQ8tTzR3mYw6vNc")
    first = post(env, GENERIC_PATH, body, headers)
    assert first.status_code == 200
    assert json.loads(first.body) == accepted(1)

    again = post(env, GENERIC_PATH, body, headers)
    assert again.status_code == 200
    assert json.loads(again.body) == accepted(0, duplicate=True)

    # the same id re-signed over a different body is still the same delivery
    other = json.loads(body)
    other["data"]["id"] = "7441223809516839999"
    other_body = json.dumps(other).encode()
    third = post(env, GENERIC_PATH, other_body, signed(GENERIC_PATH, other_body, webhook_id="msg_2pQ8tTzR3mYw6vNc"))
    assert json.loads(third.body) == accepted(0, duplicate=True)

    assert [m.platform_id for m in queued(env)] == ["7441223809516834054"]
    assert [i["pk"]["S"] for i in table_items(settings().mentions_table)] == ["wh#generic#msg_2pQ8tTzR3mYw6vNc"]


def test_refused_delivery_does_not_burn_its_webhook_id(env: Any) -> None:
    """A sender who fixes a refused body and retries with the same id is accepted."""
    bad = _unknown_brand()
    assert_rejected(
        post(env, GENERIC_PATH, bad, signed(GENERIC_PATH, bad, webhook_id="msg_fixme")), 422, "unknown brand 'acme'"
    )
    good = fixture_bytes("generic_mention_created.json")
    response = post(env, GENERIC_PATH, good, signed(GENERIC_PATH, good, webhook_id="msg_fixme"))
    assert json.loads(response.body) == accepted(1)


# ---------------------------------------------------------------- staff read API


def counts(env: Any, brand: str, key: str | None = API_KEY, **params: Any) -> Any:
    headers = {} if key is None else {"x-api-key": key}
    query = f"?{urlencode(params)}" if params else ""
    return env.client.http.get(f"/brands/{brand}/counts{query}", headers=headers)


WINDOW = {"from": "2026-11-23T09:00:00Z", "to": "2026-11-23T11:00:00Z"}


@pytest.mark.parametrize("key", [None, "", "wrong-key", "local-api-key ", "LOCAL-API-KEY", "מפתח"])
def test_counts_need_the_api_key(env: Any, key: str | None) -> None:
    assert_rejected(counts(env, "acme-telecom", key, **WINDOW), 401, "missing or wrong x-api-key header")


def test_counts_key_checked_before_parameters(env: Any) -> None:
    assert_rejected(
        counts(env, "acme-telecom", "wrong-key", **{"from": "garbage"}), 401, "missing or wrong x-api-key header"
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"to": "2026-11-23T11:00:00Z"}, "from is required (ISO 8601 or epoch seconds)"),
        ({"from": "2026-11-23T09:00:00Z"}, "to is required (ISO 8601 or epoch seconds)"),
        ({**WINDOW, "from": "yesterday"}, "from must be ISO 8601 or epoch seconds"),
        ({**WINDOW, "to": "23/11/2026"}, "to must be ISO 8601 or epoch seconds"),
        ({**WINDOW, "from": "2026-11-23T09:00:00"}, "from must include a time zone (e.g. Z)"),
        ({**WINDOW, "step": "30"}, "step must be a whole number of minutes"),
        ({**WINDOW, "step": "90"}, "step must be a whole number of minutes"),
        ({**WINDOW, "step": "0"}, "step must be a whole number of minutes"),
        ({**WINDOW, "step": "-60"}, "step must be a whole number of minutes"),
        ({**WINDOW, "step": "abc"}, lambda e: "abc" in e),
        ({"from": "2026-11-23T11:00:00Z", "to": "2026-11-23T09:00:00Z"}, "to must be after from"),
        ({"from": "2026-11-23T09:00:00Z", "to": "2026-11-23T09:00:00Z"}, "to must be after from"),
        ({"from": "0", "to": "1795428171"}, "at most 10000 points per request; use a larger step"),
    ],
    ids=[
        "no-from",
        "no-to",
        "from-word",
        "to-european",
        "naive-from",
        "step-30",
        "step-90",
        "step-0",
        "step-negative",
        "step-word",
        "reversed",
        "empty-range",
        "too-many-points",
    ],
)
def test_counts_bad_parameters(env: Any, params: dict[str, str], reason: Any) -> None:
    assert_rejected(counts(env, "acme-telecom", **params), 400, reason)


def test_counts_far_future_range_is_400(env: Any) -> None:
    response = counts(env, "acme-telecom", **{"from": "1000000000000", "to": "1000000000060"})
    assert response.status_code == 400, response.body


def test_counts_empty_brand_is_zero_filled(env: Any) -> None:
    response = counts(env, "acme-telecom", **{"from": "2026-11-23T09:00:00Z", "to": "2026-11-23T09:03:00Z"})
    assert response.status_code == 200
    zero = {
        "total": 0,
        "negative": 0,
        "neutral": 0,
        "positive": 0,
        "languages": {"he": 0, "en": 0, "ar": 0, "ru": 0, "other": 0},
    }
    assert json.loads(response.body) == {
        "brand": "acme-telecom",
        "step": 60,
        "points": [{"start": f"2026-11-23T09:0{i}:00Z", **zero} for i in range(3)],
    }


# ---------------------------------------------------------------- the whole cycle


CYCLE = [
    "x_tweet_mention.json",
    "x_tweet_mention.json",  # X retries a delivery it thinks failed: counted once
    "x_tweet_reply.json",
    "x_tweet_extended.json",
    "x_tweet_hebrew.json",
    "x_tweet_own.json",
    "x_favorite_events.json",
    "meta_page_feed_comment.json",
    "meta_page_mention.json",
    "meta_page_reaction.json",
    "meta_instagram_comments.json",
    "meta_instagram_mentions.json",
    "generic_mention_created.json",
    "generic_mention_batch.json",
]


def _point(response: Any, start: str) -> dict[str, Any]:
    points = {p["start"]: p for p in json.loads(response.body)["points"]}
    return points[start]


def test_full_cycle_counts_every_mention_once(env: Any) -> None:
    for name in CYCLE:
        response = post(env, path_for(name), fixture_bytes(name))
        assert response.status_code == 200, (name, response.body)
    assert queue_depth(env) == 13  # 12 mentions, one of them delivered twice

    stats = env.drain()
    assert (stats.received, stats.deleted, stats.failed, stats.errors) == (13, 13, 0, 0)
    assert queue_depth(env) == 0
    dlq = env.sqs.get_queue_attributes(QueueUrl=env.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"

    stored = sorted(
        (i["platform"]["S"], i["platform_id"]["S"])
        for i in table_items(settings().mentions_table)
        if "platform_id" in i
    )
    assert stored == sorted(
        [("x", i) for i in ("2124793605650123776", "2124795526641823744", "2124798408128987137", "2124805869795426306")]
        + [("facebook", "122110573849201234_1593847261839204"), ("facebook", "100089123456789_122098765432101234")]
        + [("instagram", i) for i in ("17998877665544332", "17998877665544419", "17895695668004550")]
        + [("tiktok", "7441223809516834054"), ("reddit", "t1_m8x2kq1"), ("forum", "rotter-918273")]
    )

    hourly = counts(env, "acme-telecom", step=3600, **WINDOW)
    assert hourly.status_code == 200
    body = json.loads(hourly.body)
    assert (body["brand"], body["step"], [p["start"] for p in body["points"]]) == (
        "acme-telecom",
        3600,
        ["2026-11-23T09:00:00Z", "2026-11-23T10:00:00Z"],
    )
    nine, ten = body["points"]
    # 09:xx: X mention, reply, extended; FB comment (he), FB page mention; IG comment + Hebrew reply;
    # IG mention (no text); TikTok; Reddit. 10:xx: the Hebrew tweet.
    assert nine["total"] == 10
    assert nine["languages"] == {"he": 2, "en": 7, "ar": 0, "ru": 0, "other": 1}
    assert nine["negative"] + nine["neutral"] + nine["positive"] == 10
    assert ten["total"] == 1 and ten["languages"]["he"] == 1

    minutes = counts(env, "acme-telecom", **{"from": "2026-11-23T09:14:00Z", "to": "2026-11-23T09:16:00Z"})
    first, second = json.loads(minutes.body)["points"]
    assert (first["start"], first["total"], first["languages"]["en"], first["languages"]["he"]) == (
        "2026-11-23T09:14:00Z",
        2,
        1,
        1,
    )
    assert (second["start"], second["total"]) == ("2026-11-23T09:15:00Z", 0)

    golden = counts(env, "golden-foods", step=3600, **WINDOW)
    g_nine, g_ten = json.loads(golden.body)["points"]
    assert (g_nine["total"], g_nine["languages"]["he"], g_ten["total"]) == (1, 1, 0)

    # Redelivering every delivery after counting changes no count.
    for name in ("x_tweet_mention.json", "meta_instagram_comments.json"):
        assert post(env, path_for(name), fixture_bytes(name)).status_code == 200
    env.drain()
    assert json.loads(counts(env, "acme-telecom", step=3600, **WINDOW).body)["points"] == body["points"]
