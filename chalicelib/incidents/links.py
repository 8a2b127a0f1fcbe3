"""Signed, expiring, per-person links to the incident page (GET /i/{code}?t=<token>).

A 4-digit incident code is guessable, so the code alone shows nothing. Two token forms, both made
with the approval links' HMAC secret (KLAXON_LINK_SECRET, chalicelib.statements.links):

- the SMS form, 12 characters: base64url(expiry hour as 3 bytes ‖ the first 6 bytes of
  HMAC-SHA256(secret, 0x03 ‖ expiry hour ‖ "code|person_id")). The person is not written in the
  token: the page tries each person in the roster (tens of HMACs, microseconds). This is what lets
  the link fit in a page: a Hebrew page is UCS-2, two segments of 67 characters for everything,
  and the long form alone is ~75. 48 bits of MAC take ~10^14 guesses on average, far beyond what
  anyone can send at an API in the day a link lives.
- the long form, `payload.signature` (format byte 0x02, expires, ASCII "code|person_id", full
  32-byte MAC), for places without a length limit.

The same 12-character form with kind byte 0x05 (`APPROVALS`) makes the link texted to a signer or
approver when statements are drafted (GET /a/{code}?t=: whatever awaits that person's approval on
that incident, chalicelib/statements/notify.py). Format/kind bytes keep every kind apart (approval
links 0x01, incident page 0x02/0x03, triage page 0x04, approval requests 0x05): no token of one kind
is accepted as another.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Iterable

from chalicelib.statements.links import (
    MAX_TOKEN_CHARS,
    LinkExpired,
    LinkTampered,
    _b64,
    _sign,
    _unb64,
    link_secret,
)

DEFAULT_TTL = 24 * 3600
_LONG_FORMAT = 2
INCIDENT_PAGE = 3  # kind of a short token: the incident page
APPROVALS = 5  # kind of a short token: what awaits one person's approval on the incident
_HEAD = struct.Struct(">BI")
_SHORT_MAC_BYTES = 6
_HOUR_BYTES = 3  # hours since 1970: good until the year 3883
SHORT_TOKEN_CHARS = 12  # base64url of 3 + 6 bytes
_DIGITS = frozenset("0123456789")


def _check(code: str, person_id: str) -> None:
    if not (code and len(code) <= 8 and set(code) <= _DIGITS):
        raise ValueError("code must be 1-8 digits")
    if not person_id or "|" in person_id or not person_id.isascii() or len(person_id) > 64:
        raise ValueError("person_id must be 1-64 ASCII characters without '|'")


def _short_mac(code: str, person_id: str, expires: bytes, key: bytes, kind: int) -> bytes:
    message = bytes([kind]) + expires + f"{code}|{person_id}".encode("ascii")
    return _sign(message, key)[:_SHORT_MAC_BYTES]


def sms_token(
    code: str, person_id: str, expires: int | float, *, kind: int = INCIDENT_PAGE, secret: bytes | None = None
) -> str:
    """The 12-character token for a link texted to `person_id` (the incident page, or with
    `kind=APPROVALS` what awaits their approval), valid until `expires` rounded up to the hour."""
    _check(code, person_id)
    stamp = (-(-int(expires) // 3600)).to_bytes(_HOUR_BYTES, "big")
    return _b64(stamp + _short_mac(code, person_id, stamp, secret or link_secret(), kind))


def subject_link(fmt: int, subject: str, person_id: str, expires: int | float, *, secret: bytes | None = None) -> str:
    """Long form `payload.signature`: format byte, expiry, ASCII "subject|person_id", full HMAC.
    Used for the incident page (format 2, the code) and the triage page (format 4, the brand)."""
    for value, name in ((subject, "subject"), (person_id, "person_id")):
        if not value or "|" in value or not value.isascii() or len(value) > 64:
            raise ValueError(f"{name} must be 1-64 ASCII characters without '|'")
    payload = _HEAD.pack(fmt, int(expires)) + f"{subject}|{person_id}".encode("ascii")
    return f"{_b64(payload)}.{_b64(_sign(payload, secret or link_secret()))}"


def verify_subject_link(token: str, fmt: int, subject: str, now: float, key: bytes, *, other: str) -> str:
    """The person of an authentic, unexpired long-form token of format `fmt` for `subject`; else
    LinkError (`other` names what a token for another subject is for, e.g. "incident")."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkTampered(LinkTampered.reason)
    encoded_payload, encoded_signature = token.split(".")
    payload, signature = _unb64(encoded_payload), _unb64(encoded_signature)
    if not hmac.compare_digest(signature, _sign(payload, key)):
        raise LinkTampered(LinkTampered.reason)
    try:
        got_fmt, expires_at = _HEAD.unpack_from(payload)
        token_subject, person_id = payload[_HEAD.size :].decode("ascii").split("|")
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise LinkTampered(LinkTampered.reason) from exc
    if got_fmt != fmt:
        raise LinkTampered(LinkTampered.reason)
    if now >= expires_at:
        raise LinkExpired(LinkExpired.reason)
    if not hmac.compare_digest(token_subject.encode(), subject.encode("utf-8", "replace")):
        raise LinkTampered(f"this link is for another {other}")
    return person_id


def incident_link(code: str, person_id: str, expires: int | float, *, secret: bytes | None = None) -> str:
    """The long-form token letting one person see the incident with SMS code `code` until `expires`."""
    _check(code, person_id)
    return subject_link(_LONG_FORMAT, code, person_id, expires, secret=secret)


def verify_incident_link(
    token: str | None,
    code: str,
    now: float,
    *,
    people: Iterable[str] | None = None,
    kind: int = INCIDENT_PAGE,
    secret: bytes | None = None,
) -> str:
    """The person the token was issued to, if it is authentic, unexpired, for `code` and of `kind`;
    else LinkError. The long form exists for the incident page only.

    `people` are the roster's person ids, needed for the SMS form (the deployed roster by default).
    """
    key = secret or link_secret()  # first: a deployment without a link secret says so, for any token
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise LinkTampered(LinkTampered.reason)
    if "." not in token:
        return _verify_short(token, code, now, key, people, kind)
    if kind != INCIDENT_PAGE:
        raise LinkTampered(LinkTampered.reason)
    return verify_subject_link(token, _LONG_FORMAT, code, now, key, other="incident")


def _verify_short(token: str, code: str, now: float, key: bytes, people: Iterable[str] | None, kind: int) -> str:
    if len(token) != SHORT_TOKEN_CHARS or not (code.isascii() and code.isdigit() and len(code) <= 8):
        raise LinkTampered(LinkTampered.reason)
    raw = _unb64(token)
    if len(raw) != _HOUR_BYTES + _SHORT_MAC_BYTES:
        raise LinkTampered(LinkTampered.reason)
    stamp, mac = raw[:_HOUR_BYTES], raw[_HOUR_BYTES:]
    if people is None:
        from chalicelib.paging.service import deployed_roster

        people = [person.id for person in deployed_roster().people]
    found = None
    for person_id in people:  # every candidate is checked, so the time taken says nothing about who
        if hmac.compare_digest(mac, _short_mac(code, person_id, stamp, key, kind)) and found is None:
            found = person_id
    if found is None:  # forged, for another incident, or for someone no longer in the roster
        raise LinkTampered(LinkTampered.reason)
    if now >= int.from_bytes(stamp, "big") * 3600:
        raise LinkExpired(LinkExpired.reason)
    return found
