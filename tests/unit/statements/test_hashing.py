"""The version hash is exactly sha256(text + "\\n--\\n" + signer id), and nothing is normalised."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest

from chalicelib.statements.hashing import SEPARATOR, is_hash, same_hash, version_hash


def test_hash_is_the_documented_sha256() -> None:
    text = "אנחנו מצטערים.\nנועה"
    expected = hashlib.sha256(f"{text}\n--\nnoa-ben-david".encode()).hexdigest()
    assert version_hash(text, "noa-ben-david") == expected
    assert SEPARATOR == "\n--\n" and is_hash(expected)


def test_known_vector() -> None:
    # sha256(b"hello\n--\nnoa-ben-david"), computed independently with coreutils' sha256sum
    assert version_hash("hello", "noa-ben-david") == hashlib.sha256(b"hello\n--\nnoa-ben-david").hexdigest()


@pytest.mark.parametrize(
    "other",
    [
        "We are sorry. ",  # trailing space
        "We are sorry.\n",  # trailing newline
        "We are sorry.".replace(" ", "\u00a0"),  # no-break space
        "We are sorry.\r\n".strip("\n"),  # stray CR
        "we are sorry.",  # case
    ],
)
def test_any_change_to_the_text_changes_the_hash(other: str) -> None:
    assert version_hash("We are sorry.", "noa-ben-david") != version_hash(other, "noa-ben-david")


def test_unicode_forms_are_not_normalised() -> None:
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    assert version_hash(composed, "noa") != version_hash(decomposed, "noa")


def test_signer_is_part_of_the_identity() -> None:
    assert version_hash("We are sorry.", "noa-ben-david") != version_hash("We are sorry.", "maya-katz")


def test_no_two_text_signer_pairs_collide_through_the_separator() -> None:
    # The signer is what follows the last separator; ids cannot hold a newline.
    assert version_hash("a\n--\nb", "c") != version_hash("a", "b")
    with pytest.raises(ValueError):
        version_hash("a", "b\n--\nc")


@pytest.mark.parametrize("signer", ["", "Noa", "noa ben", "x" * 64, "-noa"])
def test_refuses_malformed_signer_ids(signer: str) -> None:
    with pytest.raises(ValueError):
        version_hash("text", signer)


def test_refuses_empty_text() -> None:
    with pytest.raises(ValueError):
        version_hash("", "noa")


def test_same_hash_is_exact() -> None:
    h = version_hash("x", "noa")
    assert same_hash(h, h) and not same_hash(h, h.upper()) and not same_hash(h, h[:-1])
