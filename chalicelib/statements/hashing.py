"""The identity of a draft version: what approvals bind to and what publishers re-check (invariant 5)."""

from __future__ import annotations

import hashlib
import hmac
import re

SEPARATOR = "\n--\n"
_SIGNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def version_hash(text: str, signer_id: str) -> str:
    """Lower-case hex sha256 of the UTF-8 bytes of `text + "\\n--\\n" + signer_id`.

    The text is hashed exactly as stored, with no normalisation (no trimming, no Unicode NFC, no
    line-ending changes), so an approval covers byte-for-byte what a publisher sends. The signer is
    part of the identity: the same words signed by someone else are a different statement. Signer
    ids cannot contain a newline, so the signer is always what follows the last separator and no
    two (text, signer) pairs share an input.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("a statement needs some text")
    if not isinstance(signer_id, str) or not _SIGNER_ID.match(signer_id):
        raise ValueError(f"{signer_id!r} is not a person id")
    return hashlib.sha256((text + SEPARATOR + signer_id).encode("utf-8")).hexdigest()


def is_hash(value: object) -> bool:
    """True for a well-formed version hash (64 lower-case hex digits)."""
    return isinstance(value, str) and bool(_HASH.match(value))


def same_hash(a: str, b: str) -> bool:
    """Constant-time equality of two hashes (one of them usually comes from a request)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def short(value: str) -> str:
    """First 12 hex digits, for timelines and pages (the full hash is always what is compared)."""
    return value[:12]
