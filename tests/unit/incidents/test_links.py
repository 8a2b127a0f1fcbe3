"""Incident page links: the 12-character SMS token and the long form, per person, per incident, expiring."""

from __future__ import annotations

import pytest

from chalicelib.incidents.links import SHORT_TOKEN_CHARS, incident_link, sms_token, verify_incident_link
from chalicelib.statements.links import LinkExpired, LinkTampered, make_link

SECRET = b"test-link-secret"
PEOPLE = ["sarah-whitfield", "maya-katz", "omar-haddad"]
NOW = 1_790_000_000.0


def verify(token: str, code: str = "4821", now: float = NOW, people: list[str] = PEOPLE) -> str:
    return verify_incident_link(token, code, now, people=people, secret=SECRET)


def test_sms_token_is_short_url_safe_and_names_its_person() -> None:
    for person in PEOPLE:
        token = sms_token("4821", person, NOW + 3600, secret=SECRET)
        assert len(token) == SHORT_TOKEN_CHARS == 12
        assert token.replace("-", "").replace("_", "").isalnum()
        assert verify(token) == person


def test_sms_token_expires_at_the_end_of_the_hour_after_its_expiry() -> None:
    expires = 1_790_003_000
    end = 1_790_006_400  # the next whole hour (497,224 h since 1970)
    assert end % 3600 == 0 and expires < end < expires + 3600
    token = sms_token("4821", "maya-katz", expires, secret=SECRET)
    assert verify(token, now=end - 1) == "maya-katz"
    with pytest.raises(LinkExpired):
        verify(token, now=end)


@pytest.mark.parametrize("position", range(SHORT_TOKEN_CHARS))
def test_any_changed_character_is_refused(position: int) -> None:
    token = sms_token("4821", "maya-katz", NOW + 3600, secret=SECRET)
    changed = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    with pytest.raises(LinkTampered):
        verify(changed)


@pytest.mark.parametrize(
    "case",
    ["other incident", "other secret", "person left the roster", "truncated", "padded", "not base64", "empty"],
)
def test_what_is_refused(case: str) -> None:
    token = sms_token("4821", "maya-katz", NOW + 3600, secret=SECRET)
    with pytest.raises(LinkTampered):
        if case == "other incident":
            verify(token, code="4822")
        elif case == "other secret":
            verify(sms_token("4821", "maya-katz", NOW + 3600, secret=b"another"))
        elif case == "person left the roster":
            verify(token, people=["sarah-whitfield", "omar-haddad"])
        elif case == "truncated":
            verify(token[:-1])
        elif case == "padded":
            verify(token + "A")
        elif case == "not base64":
            verify("!" * SHORT_TOKEN_CHARS)
        else:
            verify("")


def test_the_long_form_still_works_and_kinds_are_not_interchangeable() -> None:
    long_token = incident_link("4821", "omar-haddad", NOW + 60, secret=SECRET)
    assert verify(long_token) == "omar-haddad"
    with pytest.raises(LinkExpired):
        verify(long_token, now=NOW + 60)
    approval = make_link("inc_1", "he", "0" * 64, "maya-katz", NOW + 60, secret=SECRET)
    with pytest.raises(LinkTampered):  # an approval link is not an incident link
        verify(approval)


@pytest.mark.parametrize(("code", "person"), [("48a1", "maya-katz"), ("4821", "a|b"), ("4821", "מיה"), ("", "x")])
def test_tokens_are_made_only_for_real_codes_and_person_ids(code: str, person: str) -> None:
    with pytest.raises(ValueError):
        sms_token(code, person, NOW, secret=SECRET)
