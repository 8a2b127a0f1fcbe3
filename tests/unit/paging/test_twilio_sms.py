"""The Twilio adapter without a network: tables, configuration, redirect, webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest.api.v2010.account.message import MessageInstance

from chalicelib.paging import twilio_sms
from chalicelib.paging.sms import DeliveryState, SendErrorKind
from chalicelib.paging.twilio_sms import (
    STATUS_TABLE,
    TwilioConfig,
    TwilioNotConfigured,
    delivery_state,
    error_kind,
    make_client,
    parse_inbound,
    parse_status_callback,
    verify_twilio_form,
    verify_twilio_request,
)

TOKEN = "12345"
URL = "https://klaxon.example/api/paging/sms/status?brand=acme"


def reference_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented algorithm, written out independently of the twilio package."""
    data = url + "".join(key + params[key] for key in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_every_twilio_message_status_is_mapped() -> None:
    twilio_statuses = {v for k, v in vars(MessageInstance.Status).items() if not k.startswith("_")}
    assert "partially_delivered" in twilio_statuses and twilio_statuses <= set(STATUS_TABLE)
    assert delivery_state("queued") is DeliveryState.PENDING
    assert delivery_state("sent") is DeliveryState.SENT
    assert delivery_state("delivered") is DeliveryState.DELIVERED
    assert delivery_state("undelivered") is DeliveryState.FAILED
    assert delivery_state("failed") is DeliveryState.FAILED
    assert delivery_state("received") is DeliveryState.RECEIVED
    assert delivery_state("something-new") is DeliveryState.PENDING


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (21211, 400, SendErrorKind.RECIPIENT),
        (21614, 400, SendErrorKind.RECIPIENT),
        (21610, 400, SendErrorKind.RECIPIENT),
        (30006, None, SendErrorKind.RECIPIENT),
        (30003, None, SendErrorKind.RETRYABLE),
        (20003, 401, SendErrorKind.PERMANENT),
        (21602, 400, SendErrorKind.PERMANENT),
        (20429, 429, SendErrorKind.RETRYABLE),
        (20500, 500, SendErrorKind.RETRYABLE),
        (None, 503, SendErrorKind.RETRYABLE),
        (99999, 502, SendErrorKind.RETRYABLE),
        (21999, 400, SendErrorKind.PERMANENT),
        (30999, None, SendErrorKind.RETRYABLE),
    ],
)
def test_error_kinds(code: int | None, status: int | None, kind: SendErrorKind) -> None:
    assert error_kind(code, status) is kind


def test_api_error_classification_from_the_client_exception() -> None:
    exc = TwilioRestException(400, "/Messages.json", "Unable to create record: Invalid 'To' Phone Number", 21211,
                              "POST")
    error = twilio_sms._api_error(exc)
    assert (error.kind, error.code, error.http_status, error.maybe_sent) == (SendErrorKind.RECIPIENT, 21211, 400, False)
    assert twilio_sms._api_error(TwilioRestException(500, "/x", "boom", 20500, "POST")).maybe_sent


def test_config_from_env() -> None:
    env = {
        "KLAXON_TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "KLAXON_TWILIO_AUTH_TOKEN": "t",
        "KLAXON_TWILIO_FROM": "MG" + "2" * 32,
        "KLAXON_TWILIO_TIMEOUT_SECONDS": "4.5",
    }
    cfg = TwilioConfig.from_env(env)
    assert cfg.base_url is None and cfg.timeout == 4.5 and cfg.uses_messaging_service
    with pytest.raises(TwilioNotConfigured, match="KLAXON_TWILIO_AUTH_TOKEN"):
        TwilioConfig.from_env({k: v for k, v in env.items() if k != "KLAXON_TWILIO_AUTH_TOKEN"})
    with pytest.raises(TwilioNotConfigured, match="number"):
        TwilioConfig.from_env({**env, "KLAXON_TWILIO_TIMEOUT_SECONDS": "soon"})


def test_client_is_real_twilio_by_default_and_redirected_only_by_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    real = make_client(TwilioConfig("AC" + "1" * 32, "t", "+15005550006"))
    assert real.api.base_url == "https://api.twilio.com"
    monkeypatch.setenv("TWILIO_EDGE", "dublin")  # would rewrite the fake's host if left on
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    local = make_client(TwilioConfig("AC" + "1" * 32, "t", "+15005550006", base_url="http://127.0.0.1:4010/"))
    url = local.api.absolute_url("2010-04-01/Accounts/AC1/Messages.json")
    assert url == "http://127.0.0.1:4010/2010-04-01/Accounts/AC1/Messages.json"
    assert local.get_hostname(url) == url
    assert local.http_client.timeout == twilio_sms.DEFAULT_TIMEOUT_SECONDS


def test_default_sender_is_built_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLAXON_TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("KLAXON_TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("KLAXON_TWILIO_FROM", "+15005550006")
    twilio_sms.default_sender.cache_clear()
    try:
        sender = twilio_sms.default_sender()
        assert sender is twilio_sms.default_sender()
        assert sender._client is None  # no client until the first send
        assert sender.client is sender.client
    finally:
        twilio_sms.default_sender.cache_clear()


def test_verify_matches_twilio_documented_algorithm() -> None:
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "To": "+972501234567", "ErrorCode": ""}
    signature = reference_signature(TOKEN, URL, params)
    assert verify_twilio_request(URL, params, signature, TOKEN)
    assert verify_twilio_form(URL, urlencode(params), signature, TOKEN)
    assert verify_twilio_form(URL, urlencode(params).encode(), signature, TOKEN)


def test_verify_rejects_tampering_and_missing_pieces() -> None:
    params = {"From": "+972501234567", "Body": "ACK 4821"}
    signature = reference_signature(TOKEN, URL, params)
    assert not verify_twilio_request(URL, {**params, "Body": "RESOLVE 4821"}, signature, TOKEN)
    assert not verify_twilio_request(URL.replace("acme", "other"), params, signature, TOKEN)
    assert not verify_twilio_request(URL, params, signature, "another-token")
    assert not verify_twilio_request(URL, params, None, TOKEN)
    assert not verify_twilio_request(URL, params, "", TOKEN)
    assert not verify_twilio_request(URL, params, signature, "")


def test_verify_keeps_blank_and_repeated_fields() -> None:
    body = "Body=ACK+1&FromCity=&MediaUrl=b&MediaUrl=a"
    signed = URL + "Body" + "ACK 1" + "FromCity" + "" + "MediaUrl" + "a" + "MediaUrl" + "b"
    signature = base64.b64encode(hmac.new(TOKEN.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    assert verify_twilio_form(URL, body, signature, TOKEN)
    assert verify_twilio_request(URL, {"Body": ["ACK 1"], "FromCity": [""], "MediaUrl": ["b", "a"]}, signature, TOKEN)


def test_verify_accepts_the_url_with_or_without_default_port() -> None:
    params = {"Body": "ACK 1"}
    signature = reference_signature(TOKEN, "https://klaxon.example:443/sms", params)
    assert verify_twilio_request("https://klaxon.example/sms", params, signature, TOKEN)


def test_parse_status_callback_and_inbound() -> None:
    update = parse_status_callback(
        {"MessageSid": "SM1", "MessageStatus": "undelivered", "SmsStatus": "undelivered", "To": "+1555",
         "ErrorCode": "30006"}
    )
    assert (update.sid, update.state, update.error_code, update.error_kind) == (
        "SM1", DeliveryState.FAILED, 30006, SendErrorKind.RECIPIENT)
    ok = parse_status_callback({"MessageSid": ["SM2"], "MessageStatus": ["delivered"]})
    assert ok.state is DeliveryState.DELIVERED and ok.error_code is None and ok.error_kind is None
    inbound = parse_inbound({"MessageSid": "SM3", "From": "+972501234567", "To": "+15005550006", "Body": "ack 4821"})
    assert (inbound.from_, inbound.body) == ("+972501234567", "ack 4821")


def test_mask_hides_the_number() -> None:
    assert twilio_sms.mask("+972501234567") == "+97…67"
