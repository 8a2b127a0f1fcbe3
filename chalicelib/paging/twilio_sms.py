"""The Twilio adapter: send through the official `twilio` client, map its statuses and errors, verify webhooks.

Configuration (environment, read once per container by `default_sender()`):
  KLAXON_TWILIO_ACCOUNT_SID, KLAXON_TWILIO_AUTH_TOKEN  account credentials
  KLAXON_TWILIO_FROM             an E.164 number, or a Messaging Service SID ("MG…")
  KLAXON_TWILIO_BASE_URL         only for the local fake (klaxon/fake_twilio.py); unset = real Twilio
  KLAXON_TWILIO_TIMEOUT_SECONDS  per-request timeout, default 10

Redirecting the client: twilio 9.13 builds every Messages URL from the `api` domain's public
`base_url` attribute (`Domain.absolute_url`, also used for `next_page_uri`), so the adapter sets
`client.api.base_url` and nothing else changes: same client, same request code, same error
parsing as production. Edge/region are cleared for the fake, because `get_hostname` would
otherwise rewrite "127.0.0.1:port" as if it were "api.<edge>.<region>.twilio.com".

The client does not retry a send (a POST to Messages is not idempotent; Twilio has no
idempotency key for it): every failure comes back as `SmsSendError` for the caller to decide.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from chalicelib.paging.sms import DeliveryState, SendErrorKind, SentMessage, SmsSendError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_TIMEOUT_SECONDS = 10.0

# Twilio message statuses (MessageInstance.Status in twilio 9.13) → ours. Unknown ones are PENDING.
STATUS_TABLE: dict[str, DeliveryState] = {
    "accepted": DeliveryState.PENDING,
    "scheduled": DeliveryState.PENDING,
    "queued": DeliveryState.PENDING,
    "sending": DeliveryState.PENDING,
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.DELIVERED,
    "partially_delivered": DeliveryState.SENT,
    "undelivered": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,
    "receiving": DeliveryState.RECEIVED,
    "received": DeliveryState.RECEIVED,
}

# Twilio error codes → what to do. API errors (2xxxx, 14xxx) come back from Messages.create;
# delivery errors (3xxxx) arrive later as ErrorCode in a failed/undelivered status callback.
ERROR_TABLE: dict[int, SendErrorKind] = {
    # the recipient's number: page the next person
    21211: SendErrorKind.RECIPIENT,  # invalid 'To' phone number
    21214: SendErrorKind.RECIPIENT,  # 'To' number cannot be reached
    21217: SendErrorKind.RECIPIENT,  # phone number does not appear to be valid
    21407: SendErrorKind.RECIPIENT,  # number type not supported for SMS
    21408: SendErrorKind.RECIPIENT,  # permission to send to this region not enabled
    21610: SendErrorKind.RECIPIENT,  # recipient replied STOP (unsubscribed)
    21612: SendErrorKind.RECIPIENT,  # cannot route to this number
    21614: SendErrorKind.RECIPIENT,  # 'To' is not a mobile number
    30003: SendErrorKind.RETRYABLE,  # unreachable destination handset (switched off, no signal)
    30004: SendErrorKind.RECIPIENT,  # message blocked (by the recipient or carrier)
    30005: SendErrorKind.RECIPIENT,  # unknown destination handset
    30006: SendErrorKind.RECIPIENT,  # landline or unreachable carrier
    # ours: credentials, sender, request
    20003: SendErrorKind.PERMANENT,  # authentication failed
    20404: SendErrorKind.PERMANENT,  # resource (account) not found
    21212: SendErrorKind.PERMANENT,  # invalid 'From' number
    21266: SendErrorKind.PERMANENT,  # 'To' and 'From' are the same number
    21602: SendErrorKind.PERMANENT,  # message body required
    21603: SendErrorKind.PERMANENT,  # 'From' required
    21604: SendErrorKind.PERMANENT,  # 'To' required
    21606: SendErrorKind.PERMANENT,  # 'From' is not an SMS-capable number of this account
    21609: SendErrorKind.PERMANENT,  # invalid StatusCallback URL
    21617: SendErrorKind.PERMANENT,  # body over 1600 characters
    21659: SendErrorKind.PERMANENT,  # 'From' is not a Twilio number
    21701: SendErrorKind.PERMANENT,  # Messaging Service does not exist
    30002: SendErrorKind.PERMANENT,  # account suspended
    30007: SendErrorKind.PERMANENT,  # filtered by the carrier (content or sender registration)
    30032: SendErrorKind.PERMANENT,  # toll-free number not verified
    30034: SendErrorKind.PERMANENT,  # US A2P 10DLC sender not registered
    # Twilio or the carrier is busy: later
    14107: SendErrorKind.RETRYABLE,  # SMS send rate limit exceeded
    20429: SendErrorKind.RETRYABLE,  # too many requests
    20500: SendErrorKind.RETRYABLE,  # internal server error
    20503: SendErrorKind.RETRYABLE,  # service unavailable
    30001: SendErrorKind.RETRYABLE,  # queue overflow
    30008: SendErrorKind.RETRYABLE,  # unknown error
    30009: SendErrorKind.RETRYABLE,  # missing segment
}


def delivery_state(twilio_status: str) -> DeliveryState:
    """Our state for a Twilio message status (table lookup; unknown statuses count as pending)."""
    state = STATUS_TABLE.get((twilio_status or "").lower())
    if state is None:
        log.warning("twilio_unknown_status status=%s", twilio_status)
        return DeliveryState.PENDING
    return state


def error_kind(code: int | None, http_status: int | None = None) -> SendErrorKind:
    """What a Twilio error means for the caller: the code decides, then the HTTP status."""
    if code is not None and code in ERROR_TABLE:
        return ERROR_TABLE[code]
    if http_status is not None and (http_status == 429 or http_status >= 500):
        return SendErrorKind.RETRYABLE
    if code is not None and 30000 <= code < 40000:
        return SendErrorKind.RETRYABLE  # an unlisted delivery error: another attempt may get through
    return SendErrorKind.PERMANENT


@dataclass(frozen=True)
class TwilioConfig:
    """Where and as whom to send. `from_` is a number or a Messaging Service SID ("MG…")."""

    account_sid: str
    auth_token: str
    from_: str
    base_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TwilioConfig:
        env = os.environ if env is None else env
        missing = [
            name
            for name in ("KLAXON_TWILIO_ACCOUNT_SID", "KLAXON_TWILIO_AUTH_TOKEN", "KLAXON_TWILIO_FROM")
            if not env.get(name)
        ]
        if missing:
            raise TwilioNotConfigured("missing " + ", ".join(missing))
        raw_timeout = env.get("KLAXON_TWILIO_TIMEOUT_SECONDS") or str(DEFAULT_TIMEOUT_SECONDS)
        try:
            timeout = float(raw_timeout)
        except ValueError as exc:
            raise TwilioNotConfigured(f"KLAXON_TWILIO_TIMEOUT_SECONDS must be a number, got {raw_timeout!r}") from exc
        return cls(
            account_sid=env["KLAXON_TWILIO_ACCOUNT_SID"],
            auth_token=env["KLAXON_TWILIO_AUTH_TOKEN"],
            from_=env["KLAXON_TWILIO_FROM"],
            base_url=env.get("KLAXON_TWILIO_BASE_URL") or None,
            timeout=timeout,
        )

    @property
    def uses_messaging_service(self) -> bool:
        return self.from_.startswith("MG")


class TwilioNotConfigured(RuntimeError):
    """A KLAXON_TWILIO_* variable is missing or malformed."""


# Retry-After of the last response, per thread: TwilioRestException does not carry headers,
# so a `requests` response hook (a documented TwilioHttpClient parameter) keeps it.
_last_response = threading.local()


def _remember_retry_after(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    raw = response.headers.get("Retry-After")
    try:
        _last_response.retry_after = float(raw) if raw is not None else None
    except ValueError:
        _last_response.retry_after = None


def make_client(config: TwilioConfig) -> Client:
    """A real `twilio.rest.Client`; with `config.base_url`, its Messages API points there instead."""
    http_client = TwilioHttpClient(timeout=config.timeout, request_hooks={"response": [_remember_retry_after]})
    client = Client(config.account_sid, config.auth_token, http_client=http_client)
    if config.base_url:
        client.edge = None  # TWILIO_EDGE/TWILIO_REGION would rewrite the fake's host name
        client.region = None
        client.api.base_url = config.base_url.rstrip("/")
    return client


class TwilioSender:
    """`SmsSender` over Twilio's Messages API. The client is built on first use and then reused."""

    def __init__(self, config: TwilioConfig, client: Client | None = None) -> None:
        self.config = config
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self.config)
        return self._client

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentMessage:
        """Hand one SMS to Twilio; raises `SmsSendError` (never retries: a resend can page twice)."""
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if self.config.uses_messaging_service:
            kwargs["messaging_service_sid"] = self.config.from_
        else:
            kwargs["from_"] = self.config.from_
        if status_callback:
            kwargs["status_callback"] = status_callback
        _last_response.retry_after = None
        try:
            message = self.client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = _api_error(exc)
            log.warning("sms_rejected to=%s code=%s http_status=%s kind=%s", mask(to), error.code,
                        error.http_status, error.kind)
            raise error from exc
        except requests.RequestException as exc:
            error = _transport_error(exc)
            log.warning("sms_transport_error to=%s error=%s maybe_sent=%s", mask(to), type(exc).__name__,
                        error.maybe_sent)
            raise error from exc
        except TwilioException as exc:  # e.g. an unparseable answer
            raise SmsSendError(SendErrorKind.RETRYABLE, str(exc), maybe_sent=True) from exc
        status = str(message.status or "queued")
        segments = int(message.num_segments) if message.num_segments else None
        log.info("sms_sent sid=%s to=%s status=%s segments=%s", message.sid, mask(to), status, segments)
        return SentMessage(sid=str(message.sid), status=delivery_state(status), vendor_status=status,
                           segments=segments)


def _api_error(exc: TwilioRestException | TwilioServiceException) -> SmsSendError:
    http_status = int(exc.status) if exc.status is not None else None
    code = int(exc.code) if isinstance(exc.code, int) or str(exc.code).isdigit() else None
    kind = error_kind(code, http_status)
    retry_after = getattr(_last_response, "retry_after", None) if http_status in (429, 503) else None
    # A 500/502/504 may come from a hop after Twilio accepted the message; 429/503 and 4xx did not send.
    maybe_sent = http_status in (500, 502, 504)
    text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or str(exc)
    return SmsSendError(kind, str(text), code=code, http_status=http_status, retry_after=retry_after,
                        maybe_sent=maybe_sent)


def _transport_error(exc: requests.RequestException) -> SmsSendError:
    """Timeouts and connection errors are retryable; only a failed connect proves nothing was sent."""
    not_sent = isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc.args)
    )
    return SmsSendError(SendErrorKind.RETRYABLE, f"{type(exc).__name__}: {exc}", maybe_sent=not not_sent)


def mask(number: str) -> str:
    """A phone number for logs: country prefix and last two digits only."""
    return number[:3] + "…" + number[-2:] if len(number) > 6 else "…"


@lru_cache(maxsize=1)
def default_sender() -> TwilioSender:
    """The sender for this container, from KLAXON_TWILIO_*; tests call `default_sender.cache_clear()`."""
    return TwilioSender(TwilioConfig.from_env())


# --- webhooks: inbound SMS and delivery status callbacks -------------------------------------------


class _MultiParams(dict[str, list[str]]):
    """Repeated form keys as lists; RequestValidator signs every value (via `getall`)."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def _as_params(params: Mapping[str, str] | Mapping[str, list[str]] | Iterable[tuple[str, str]]) -> _MultiParams:
    pairs = params.items() if isinstance(params, Mapping) else params
    out = _MultiParams()
    for key, value in pairs:
        values = list(value) if isinstance(value, list | tuple) else [value]
        out.setdefault(key, []).extend(str(v) for v in values)
    return out


def verify_twilio_request(
    url: str,
    params: Mapping[str, str] | Mapping[str, list[str]] | Iterable[tuple[str, str]],
    signature: str | None,
    auth_token: str,
) -> bool:
    """True if `signature` (the X-Twilio-Signature header) signs this request with `auth_token`.

    `url` is the full URL Twilio called, scheme, host, path and query string exactly as
    configured in Twilio (behind API Gateway: the public https URL with its stage, not the
    Lambda's view). `params` are the POSTed form fields; blank values must be kept
    (`parse_qs(..., keep_blank_values=True)`), since Twilio signs them too: prefer
    `verify_twilio_form` with the raw body.
    """
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, _as_params(params), signature))


def verify_twilio_form(url: str, body: str | bytes, signature: str | None, auth_token: str) -> bool:
    """`verify_twilio_request` for a raw form-encoded body (keeps blank and repeated fields)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return verify_twilio_request(url, parse_qsl(text, keep_blank_values=True), signature, auth_token)


def _first(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key, "")
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value)


@dataclass(frozen=True)
class StatusUpdate:
    """One delivery status callback, in our terms."""

    sid: str
    state: DeliveryState
    vendor_status: str
    to: str
    error_code: int | None = None
    error_kind: SendErrorKind | None = None


def parse_status_callback(params: Mapping[str, Any]) -> StatusUpdate:
    """Read a (verified) status callback form: MessageSid, MessageStatus, ErrorCode…"""
    vendor_status = _first(params, "MessageStatus") or _first(params, "SmsStatus")
    raw_code = _first(params, "ErrorCode")
    code = int(raw_code) if raw_code.isdigit() else None
    state = delivery_state(vendor_status)
    kind = error_kind(code) if state is DeliveryState.FAILED else None
    return StatusUpdate(
        sid=_first(params, "MessageSid") or _first(params, "SmsSid"),
        state=state,
        vendor_status=vendor_status,
        to=_first(params, "To"),
        error_code=code,
        error_kind=kind,
    )


@dataclass(frozen=True)
class InboundSms:
    """A (verified) inbound SMS: a reply such as "ACK 4821"."""

    sid: str
    from_: str
    to: str
    body: str


def parse_inbound(params: Mapping[str, Any]) -> InboundSms:
    return InboundSms(
        sid=_first(params, "MessageSid") or _first(params, "SmsSid"),
        from_=_first(params, "From"),
        to=_first(params, "To"),
        body=_first(params, "Body"),
    )
