"""Webhook signature checks: every way a request can be wrong is a `SignatureError`, nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config import Settings
from chalicelib.ingest.signatures import (
    SignatureError,
    verify_meta,
    verify_standard,
    verify_x,
    x_crc_response,
)
from klaxon.signing import meta_headers, standard_headers, x_headers

CFG = Settings()
X_SECRET = CFG.x_consumer_secret
META_SECRET = CFG.meta_app_secret
WH_SECRET = CFG.webhook_secret
TOLERANCE = CFG.webhook_tolerance_seconds
BODY = '{"for_user_id":"3316376208","tweet_create_events":[{"text":"שלום @AcmeTelecom"}]}'.encode()
NOW = 1_795_425_247.0  # 2026-11-23T09:14:07Z


def _x_sig(secret: str, body: bytes) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _meta_sig(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _standard_sig(secret: str, msg_id: str, stamp: int, body: bytes) -> str:
    """Standard Webhooks v1 signature, computed from the spec rather than the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{stamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _std_headers(body: bytes = BODY, *, stamp: int = int(NOW), msg_id: str = "msg_2p9Xk1QeS0RbH7uJ") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": _standard_sig(WH_SECRET, msg_id, stamp, body),
    }


# ---------------------------------------------------------------- X


def test_x_crc_response_is_base64_hmac_of_the_token() -> None:
    """The CRC answer is checked against an HMAC computed here, not by the code under test."""
    token = "MzY4NjcyNjE5NDc2MzQ5NjA3"
    expected = hmac.new(b"local-x-consumer-secret", token.encode(), hashlib.sha256).digest()
    assert x_crc_response(X_SECRET, token) == "sha256=" + base64.b64encode(expected).decode()


def test_x_crc_known_vector() -> None:
    """A fixed vector: a change of algorithm, encoding or prefix shows up as a different string."""
    digest = hmac.new(b"secret", b"token", hashlib.sha256).digest()
    assert x_crc_response("secret", "token") == "sha256=" + base64.b64encode(digest).decode()
    assert x_crc_response("secret", "token") != x_crc_response("secret", "token2")
    assert x_crc_response("secret", "token") != x_crc_response("secret2", "token")


def test_x_valid_signature_accepted() -> None:
    assert verify_x(X_SECRET, BODY, _x_sig(X_SECRET, BODY)) is None
    assert verify_x(X_SECRET, BODY, x_headers(X_SECRET, BODY)["x-twitter-webhooks-signature"]) is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing x-twitter-webhooks-signature header"),
        ("", "missing x-twitter-webhooks-signature header"),
        ("sha1=" + _x_sig(X_SECRET, BODY)[7:], "x-twitter-webhooks-signature must be sha256=<base64>"),
        ("SHA256" + _x_sig(X_SECRET, BODY)[6:], "x-twitter-webhooks-signature must be sha256=<base64>"),
        (_x_sig(X_SECRET, BODY)[7:], "x-twitter-webhooks-signature must be sha256=<base64>"),
        ("sha256=", "x-twitter-webhooks-signature must be sha256=<base64>"),
        ("sha256", "x-twitter-webhooks-signature must be sha256=<base64>"),
        (_x_sig("someone-else", BODY), "x-twitter-webhooks-signature does not match the body"),
        (_x_sig(X_SECRET, BODY + b" "), "x-twitter-webhooks-signature does not match the body"),
        ("sha256=" + _meta_sig(X_SECRET, BODY)[7:], "x-twitter-webhooks-signature does not match the body"),
        ("sha256=not base64 at all!", "x-twitter-webhooks-signature does not match the body"),
        ("sha256=שלום", "x-twitter-webhooks-signature does not match the body"),
        ("sha256=\ud800", "x-twitter-webhooks-signature does not match the body"),
    ],
    ids=[
        "none",
        "empty",
        "sha1",
        "upper-scheme",
        "no-scheme",
        "empty-value",
        "no-equals",
        "wrong-secret",
        "other-body",
        "hex-not-base64",
        "garbage",
        "non-ascii",
        "lone-surrogate",
    ],
)
def test_x_bad_signature_is_signature_error(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_x(X_SECRET, BODY, header)
    assert str(info.value) == reason


def test_x_invalid_utf8_body_is_checked_not_decoded() -> None:
    """X signs bytes: an invalid UTF-8 body with a right signature verifies, a wrong one is refused."""
    body = b'{"text": "\xff\xfe"}'
    assert verify_x(X_SECRET, body, _x_sig(X_SECRET, body)) is None
    with pytest.raises(SignatureError):
        verify_x(X_SECRET, body, _x_sig(X_SECRET, b'{"text": ""}'))


# ---------------------------------------------------------------- Meta


def test_meta_valid_signature_accepted() -> None:
    assert verify_meta(META_SECRET, BODY, _meta_sig(META_SECRET, BODY)) is None
    assert verify_meta(META_SECRET, BODY, meta_headers(META_SECRET, BODY)["x-hub-signature-256"]) is None


def test_meta_uppercase_hex_accepted() -> None:
    """Hex is case-insensitive; the scheme is not."""
    sig = _meta_sig(META_SECRET, BODY)
    assert verify_meta(META_SECRET, BODY, "sha256=" + sig[7:].upper()) is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing X-Hub-Signature-256 header"),
        ("", "missing X-Hub-Signature-256 header"),
        (
            "sha1=" + hmac.new(META_SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256 must be sha256=<hex>",
        ),
        (_meta_sig(META_SECRET, BODY)[7:], "X-Hub-Signature-256 must be sha256=<hex>"),
        ("sha256=", "X-Hub-Signature-256 must be sha256=<hex>"),
        ("sha256", "X-Hub-Signature-256 must be sha256=<hex>"),
        (_meta_sig("someone-else", BODY), "X-Hub-Signature-256 does not match the body"),
        (_meta_sig(META_SECRET, BODY[:-1]), "X-Hub-Signature-256 does not match the body"),
        (_x_sig(META_SECRET, BODY), "X-Hub-Signature-256 does not match the body"),
        ("sha256=" + _meta_sig(META_SECRET, BODY)[7:-1], "X-Hub-Signature-256 does not match the body"),
        ("sha256=ÿ" + _meta_sig(META_SECRET, BODY)[8:], "X-Hub-Signature-256 does not match the body"),
    ],
    ids=[
        "none",
        "empty",
        "sha1",
        "no-scheme",
        "empty-value",
        "no-equals",
        "wrong-secret",
        "other-body",
        "base64-not-hex",
        "truncated",
        "non-ascii",
    ],
)
def test_meta_bad_signature_is_signature_error(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_meta(META_SECRET, BODY, header)
    assert str(info.value) == reason


# ---------------------------------------------------------------- Standard Webhooks


def test_standard_valid_signature_returns_webhook_id() -> None:
    assert (
        verify_standard(WH_SECRET, BODY, _std_headers(), tolerance_seconds=TOLERANCE, now=NOW) == "msg_2p9Xk1QeS0RbH7uJ"
    )


def test_standard_helper_headers_verify() -> None:
    """klaxon.signing (used by the demo and bench) produces headers the receiver accepts."""
    headers = standard_headers(WH_SECRET, BODY, webhook_id="msg_abc", timestamp=NOW)
    assert verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW) == "msg_abc"
    assert headers["webhook-signature"] == _standard_sig(WH_SECRET, "msg_abc", int(NOW), BODY)


def test_standard_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in _std_headers().items()}
    assert verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW) == "msg_2p9Xk1QeS0RbH7uJ"


def test_standard_one_valid_signature_among_several_is_enough() -> None:
    """The spec allows several space-separated signatures (secret rotation)."""
    headers = _std_headers()
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v1,{base64.b64encode(b'x' * 32).decode()} v1a,abc {good}"
    assert verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW) == "msg_2p9Xk1QeS0RbH7uJ"


@pytest.mark.parametrize("offset", [-TOLERANCE, TOLERANCE, 0])
def test_standard_timestamp_at_the_window_edge_accepted(offset: int) -> None:
    headers = _std_headers(stamp=int(NOW) + offset)
    assert verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW) == "msg_2p9Xk1QeS0RbH7uJ"


@pytest.mark.parametrize(
    "offset", [-(TOLERANCE + 1), TOLERANCE + 1, -86_400, 86_400 * 365], ids=["stale", "future", "day-old", "next-year"]
)
def test_standard_timestamp_outside_window_rejected(offset: int) -> None:
    """A correctly signed but stale or future-dated delivery is a replay risk: refused."""
    headers = _std_headers(stamp=int(NOW) + offset)
    with pytest.raises(SignatureError) as info:
        verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW)
    assert str(info.value) == "webhook-timestamp is outside the replay window"


def test_standard_window_uses_the_real_clock_by_default() -> None:
    fresh = _std_headers(stamp=int(time.time()))
    assert verify_standard(WH_SECRET, BODY, fresh, tolerance_seconds=TOLERANCE) == "msg_2p9Xk1QeS0RbH7uJ"
    with pytest.raises(SignatureError):
        verify_standard(WH_SECRET, BODY, _std_headers(stamp=int(time.time()) - 301), tolerance_seconds=TOLERANCE)


MISSING = "missing webhook-id, webhook-timestamp or webhook-signature header"


def _without(name: str) -> dict[str, str]:
    headers = _std_headers()
    del headers[name]
    return headers


def _with(**changes: str) -> dict[str, str]:
    headers = _std_headers()
    headers.update({k.replace("_", "-"): v for k, v in changes.items()})
    return headers


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (BODY, _without("webhook-id"), MISSING),
        (BODY, _without("webhook-timestamp"), MISSING),
        (BODY, _without("webhook-signature"), MISSING),
        (BODY, _with(webhook_signature=""), MISSING),
        (BODY, {}, MISSING),
        (BODY, _with(webhook_id="m" * 257), "webhook-id is too long"),
        (BODY, _with(webhook_timestamp="2026-11-23T09:14:07Z"), "webhook-timestamp must be integer seconds"),
        (BODY, _with(webhook_timestamp="1795425247.5"), "webhook-timestamp must be integer seconds"),
        (BODY, _with(webhook_timestamp="nan"), "webhook-timestamp must be integer seconds"),
        (BODY, _with(webhook_timestamp="9" * 5000), "webhook-timestamp must be integer seconds"),
        (BODY + b" ", _std_headers(), "webhook-signature does not match the body"),
        (BODY, _with(webhook_id="msg_other"), "webhook-signature does not match the body"),
        (BODY, _with(webhook_signature="v1"), "webhook-signature does not match the body"),
        (BODY, _with(webhook_signature="v1,"), "webhook-signature does not match the body"),
        (
            BODY,
            _with(webhook_signature=_std_headers()["webhook-signature"][3:]),
            "webhook-signature does not match the body",
        ),
        (
            BODY,
            _with(webhook_signature="v2," + _std_headers()["webhook-signature"][3:]),
            "webhook-signature does not match the body",
        ),
        (
            BODY,
            _with(webhook_signature="v1a," + _std_headers()["webhook-signature"][3:]),
            "webhook-signature does not match the body",
        ),
        (
            BODY,
            _with(
                webhook_signature=_standard_sig(
                    "whsec_" + base64.b64encode(b"k" * 24).decode(), "msg_2p9Xk1QeS0RbH7uJ", int(NOW), BODY
                )
            ),
            "webhook-signature does not match the body",
        ),
        (BODY, _with(webhook_signature="v1,שלום"), "webhook-signature does not match the body"),
        (b'{"type": "mention.created", "data": "\xff\xfe"}', _std_headers(), "body is not valid UTF-8"),
        (b"\xc3\x28", _std_headers(), "body is not valid UTF-8"),
    ],
    ids=[
        "no-id",
        "no-timestamp",
        "no-signature",
        "empty-signature",
        "no-headers",
        "long-id",
        "iso-timestamp",
        "float-timestamp",
        "nan-timestamp",
        "5000-digit-timestamp",
        "other-body",
        "other-id",
        "v1-without-comma",
        "v1-empty",
        "no-version",
        "wrong-version-v2",
        "asymmetric-v1a",
        "other-secret",
        "non-ascii-signature",
        "invalid-utf8-body",
        "invalid-utf8-only",
    ],
)
def test_standard_bad_request_is_signature_error(body: bytes, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_standard(WH_SECRET, body, headers, tolerance_seconds=TOLERANCE, now=NOW)
    assert str(info.value) == reason


def test_standard_huge_timestamp_is_signature_error() -> None:
    headers = _with(webhook_timestamp="1" + "0" * 400)
    with pytest.raises(SignatureError):
        verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW)


def test_standard_unencodable_webhook_id_is_signature_error() -> None:
    headers = _with(webhook_id="msg_\ud800")
    with pytest.raises(SignatureError):
        verify_standard(WH_SECRET, BODY, headers, tolerance_seconds=TOLERANCE, now=NOW)


def test_standard_misconfigured_secret_is_not_blamed_on_the_sender() -> None:
    """A broken server secret is a RuntimeError (500), never a 401 that hides the misconfiguration."""
    with pytest.raises(RuntimeError, match="KLAXON_WEBHOOK_SECRET"):
        verify_standard("whsec_!!!not-base64!!!", BODY, _std_headers(), tolerance_seconds=TOLERANCE, now=NOW)


# ---------------------------------------------------------------- fuzz: nothing but SignatureError

_header_text = st.text(max_size=120)
_fuzz = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(
    body=st.binary(max_size=200), header=st.one_of(st.none(), _header_text, _header_text.map(lambda s: "sha256=" + s))
)
def test_x_fuzz_only_signature_error(body: bytes, header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_x(X_SECRET, body, header)


@_fuzz
@given(
    body=st.binary(max_size=200), header=st.one_of(st.none(), _header_text, _header_text.map(lambda s: "sha256=" + s))
)
def test_meta_fuzz_only_signature_error(body: bytes, header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_meta(META_SECRET, body, header)


@_fuzz
@given(
    body=st.binary(max_size=200),
    msg_id=_header_text,
    stamp=st.one_of(_header_text, st.integers(min_value=-(10**15), max_value=10**15).map(str)),
    signature=st.one_of(_header_text, _header_text.map(lambda s: "v1," + s)),
)
def test_standard_fuzz_only_signature_error(body: bytes, msg_id: str, stamp: str, signature: str) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    with pytest.raises(SignatureError):
        verify_standard(WH_SECRET, body, headers, tolerance_seconds=TOLERANCE, now=NOW)
