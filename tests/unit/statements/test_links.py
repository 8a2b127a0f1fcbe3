"""Approval links: signed, expiring, one person, one version; every forgery refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chalicelib.statements import links
from chalicelib.statements.hashing import version_hash
from chalicelib.statements.links import (
    LinkExpired,
    LinkOutdated,
    LinkTampered,
    LinkWrongPerson,
    make_link,
    verify_link,
)

H1 = version_hash("version one", "noa-ben-david")
H2 = version_hash("version two", "noa-ben-david")
NOW = 1_700_000_000
EXP = NOW + 3600


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLAXON_LINK_SECRET", "test-secret")


def token(person: str = "maya-katz", h: str = H1, exp: int = EXP, lang: str = "he") -> str:
    return make_link("inc_1700000000_abcd1234", lang, h, person, exp)


def test_round_trip() -> None:
    claims = verify_link(token(), NOW, person_id="maya-katz", current_hash=H1)
    assert (claims.incident_id, claims.lang, claims.version_hash, claims.person_id, claims.expires_at) == (
        "inc_1700000000_abcd1234",
        "he",
        H1,
        "maya-katz",
        EXP,
    )


def test_format_is_base64url_payload_dot_hmac_of_payload() -> None:
    encoded, sig = token().split(".")
    payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    expected = hmac.new(b"test-secret", payload, hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected
    assert "=" not in token() and "+" not in token() and "/" not in token()


def test_short_enough_for_an_sms() -> None:
    assert len(token(person="rachel-goldberg")) < 160


def test_expired() -> None:
    verify_link(token(), EXP - 1)
    with pytest.raises(LinkExpired):
        verify_link(token(), EXP)
    assert LinkExpired.status == 410


def test_other_person() -> None:
    with pytest.raises(LinkWrongPerson):
        verify_link(token(), NOW, person_id="omar-haddad")


def test_other_version_says_the_draft_changed() -> None:
    with pytest.raises(LinkOutdated) as caught:
        verify_link(token(), NOW, current_hash=H2)
    assert caught.value.claims.version_hash == H1 and "changed" in caught.value.reason
    assert caught.value.status == 409


def test_other_secret() -> None:
    with pytest.raises(LinkTampered):
        verify_link(token(), NOW, secret=b"another-secret")


def _flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    char = text[index]
    return text[:index] + alphabet[(alphabet.index(char) + 1) % 64] + text[index + 1 :]


def test_every_single_character_change_is_refused() -> None:
    original = token()
    for index, char in enumerate(original):
        if char == ".":
            continue
        with pytest.raises(LinkTampered):
            verify_link(_flip(original, index), NOW)


def test_swapping_payloads_between_links_is_refused() -> None:
    mine, theirs = token("maya-katz"), token("omar-haddad")
    forged = theirs.split(".")[0] + "." + mine.split(".")[1]
    with pytest.raises(LinkTampered):
        verify_link(forged, NOW)


def test_extending_expiry_without_the_secret_is_refused() -> None:
    payload_b64, sig = token().split(".")
    payload = bytearray(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    payload[1:5] = (EXP + 10**6).to_bytes(4, "big")
    forged = base64.urlsafe_b64encode(bytes(payload)).rstrip(b"=").decode() + "." + sig
    with pytest.raises(LinkTampered):
        verify_link(forged, NOW)


@pytest.mark.parametrize(
    "bad",
    ["", ".", "abc", "a.b.c", "!!!.???", "a" * 2000, token() + "=", token().replace(".", ".."), "é.é"],
)
def test_malformed_tokens(bad: str) -> None:
    with pytest.raises(LinkTampered):
        verify_link(bad, NOW)


def test_validly_signed_garbage_is_still_refused() -> None:
    payload = b"\x01\x00\x00\x00\x00" + b"\x00" * 32 + b"no-pipes-here"
    sig = hmac.new(b"test-secret", payload, hashlib.sha256).digest()
    forged = links._b64(payload) + "." + links._b64(sig)
    with pytest.raises(LinkTampered):
        verify_link(forged, NOW)


def test_make_link_validates_what_it_signs() -> None:
    with pytest.raises(ValueError):
        make_link("inc|1", "he", H1, "maya-katz", EXP)  # a separator inside a field
    with pytest.raises(ValueError):
        make_link("inc_1", "he", "not-a-hash", "maya-katz", EXP)


def test_comparisons_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(links.hmac, "compare_digest", spy)
    verify_link(token(), NOW, person_id="maya-katz")
    assert len(calls) >= 2  # the signature and the person


def test_approval_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLAXON_PUBLIC_URL", "https://klaxon.example/")
    assert links.approval_url("tok") == "https://klaxon.example/approve/tok"
