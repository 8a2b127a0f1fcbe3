"""Signed, expiring, per-person approval links (sent by SMS).

token = base64url(payload) + "." + base64url(HMAC-SHA256(KLAXON_LINK_SECRET, payload)), both without
padding. The payload is binary to keep the SMS short (a Hebrew SMS is UCS-2, 70 characters a segment):
format byte 0x01, expires_at as 4 bytes big-endian epoch seconds, the 32 raw bytes of the version
hash, then ASCII `incident_id|lang|person_id`. About 150 characters in all.

The link is a capability: whoever holds it acts as that person on that exact version until it
expires, so it names one person and one hash and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.config import secret
from chalicelib.statements.hashing import same_hash

LOCAL_LINK_SECRET = "local-link-secret-never-use-in-production"
MAX_TOKEN_CHARS = 1024
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def link_secret() -> bytes:
    """KLAXON_LINK_SECRET (from SSM in AWS); a fixed local value otherwise, like the other secrets.

    Deployed without it, no link can be signed or honoured: a link signed with an empty or public
    key would let anyone approve text.
    """
    value = secret("KLAXON_LINK_SECRET", LOCAL_LINK_SECRET)
    if not value:
        raise LinksNotConfigured()
    return value.encode("utf-8")


class LinkClaims(BaseModel):
    """What a verified link lets its holder do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    lang: str = Field(pattern=r"^[a-z]{2,3}$")
    version_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    person_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    expires_at: int = Field(ge=0, lt=2**32)


class LinkError(Exception):
    """The link cannot be used; `status` is the HTTP status to answer with."""

    status = 403
    reason = "this link is not valid"


class LinksNotConfigured(LinkError):
    status = 503
    reason = "approval links are not configured on this deployment (KLAXON_LINK_SECRET)"


class LinkTampered(LinkError):
    reason = "this link is not valid (it was changed or is incomplete)"


class LinkExpired(LinkError):
    status = 410
    reason = "this link has expired; ask for a new one"


class LinkWrongPerson(LinkError):
    reason = "this link was sent to someone else"


class LinkOutdated(LinkError):
    """The draft changed since the link was sent: show the new version, approve nothing."""

    status = 409
    reason = "this draft changed since the link was sent; here is the new one"

    def __init__(self, claims: LinkClaims) -> None:
        super().__init__(self.reason)
        self.claims = claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.match(text):
        raise LinkTampered(LinkTampered.reason)
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise LinkTampered(LinkTampered.reason) from exc
    if _b64(data) != text:  # non-canonical (unused low bits set): one token, one spelling
        raise LinkTampered(LinkTampered.reason)
    return data


def _sign(payload: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


_FORMAT = 1
_HEAD = struct.Struct(">BI32s")


def _pack(claims: LinkClaims) -> bytes:
    names = f"{claims.incident_id}|{claims.lang}|{claims.person_id}".encode("ascii")
    return _HEAD.pack(_FORMAT, claims.expires_at, bytes.fromhex(claims.version_hash)) + names


def _unpack(payload: bytes) -> LinkClaims:
    """Parse a payload whose signature is already proven; a malformed one is refused all the same."""
    try:
        fmt, expires_at, digest = _HEAD.unpack_from(payload)
        incident_id, lang, person_id = payload[_HEAD.size :].decode("ascii").split("|")
        if fmt != _FORMAT:
            raise ValueError("unknown link format")
        return LinkClaims(
            incident_id=incident_id, lang=lang, version_hash=digest.hex(), person_id=person_id, expires_at=expires_at
        )
    except (struct.error, UnicodeDecodeError, ValueError, ValidationError) as exc:
        raise LinkTampered(LinkTampered.reason) from exc


def make_link(
    incident_id: str,
    lang: str,
    version_hash: str,
    person_id: str,
    expires_at: int | float,
    *,
    secret: bytes | None = None,
) -> str:
    """A token for one person to review one exact version of one statement until `expires_at` (epoch s)."""
    claims = LinkClaims(  # validates every field
        incident_id=incident_id, lang=lang, version_hash=version_hash, person_id=person_id, expires_at=int(expires_at)
    )
    payload = _pack(claims)
    return f"{_b64(payload)}.{_b64(_sign(payload, secret or link_secret()))}"


def verify_link(
    token: str,
    now: float,
    *,
    person_id: str | None = None,
    current_hash: str | None = None,
    secret: bytes | None = None,
) -> LinkClaims:
    """The claims of an authentic, unexpired link; raises a LinkError subclass otherwise.

    The signature is checked (in constant time) before anything in the payload is trusted. With
    `person_id`, the link must be that person's; with `current_hash`, it must be for that version,
    else LinkOutdated (which carries the claims so the caller can offer the new version).
    """
    key = secret or link_secret()  # first: a deployment without a link secret says so, for any token
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkTampered(LinkTampered.reason)
    encoded_payload, encoded_signature = token.split(".")
    payload = _unb64(encoded_payload)
    signature = _unb64(encoded_signature)
    if not hmac.compare_digest(signature, _sign(payload, key)):
        raise LinkTampered(LinkTampered.reason)
    claims = _unpack(payload)
    if now >= claims.expires_at:
        raise LinkExpired(LinkExpired.reason)
    if person_id is not None and not hmac.compare_digest(claims.person_id.encode(), person_id.encode()):
        raise LinkWrongPerson(LinkWrongPerson.reason)
    if current_hash is not None and not same_hash(claims.version_hash, current_hash):
        raise LinkOutdated(claims)
    return claims


def approval_url(token: str, base_url: str | None = None) -> str:
    """The URL to send by SMS: KLAXON_PUBLIC_URL + /approve/<token> (a relative path without a base)."""
    base = (base_url or os.environ.get("KLAXON_PUBLIC_URL") or "").rstrip("/")
    return f"{base}/approve/{token}"
