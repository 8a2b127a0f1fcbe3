"""SMS pages without a vendor: segment arithmetic, fitting a page into N segments, the sender interface.

Nothing here imports a vendor SDK (see `twilio_sms.py` for the Twilio adapter), so the
escalation code and its unit tests depend only on this module.

Segment rules (3GPP TS 23.038 / 23.040, as Twilio bills them):
- GSM-7 when every character is in the GSM basic set or its extension table; an extension
  character (``^{}\\[~]|€`` and form feed) costs two septets (escape + character).
  160 septets fit one SMS; a multipart SMS carries 153 septets a part (the rest is the UDH).
- Otherwise UCS-2: 70 UTF-16 code units in one SMS, 67 a part. A character outside the BMP
  (most emoji) is a surrogate pair and costs two units. Any Hebrew letter forces UCS-2.
- Neither an escape sequence nor a surrogate pair is split across two parts, so a part can
  carry one unit less than its capacity; counting packs parts greedily the same way.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]

# Typographic characters that would silently force UCS-2 (halving capacity) in an otherwise
# GSM text; replaced only when that makes the whole text GSM-7 (like Twilio's Smart Encoding).
_GSM_LOOKALIKES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
        "\u2022": "-",
        "\u00b7": "-",
    }
)


@dataclass(frozen=True)
class SegmentInfo:
    """How a text travels as SMS: `units` are septets (GSM-7) or UTF-16 code units (UCS-2)."""

    encoding: Encoding
    segments: int
    units: int


def is_gsm(text: str) -> bool:
    """True when every character has a GSM-7 encoding (basic set or extension table)."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def _costs(text: str) -> tuple[Encoding, list[int]]:
    if is_gsm(text):
        return "GSM-7", [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return "UCS-2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def segments(text: str) -> SegmentInfo:
    """Encoding, number of SMS parts and units of `text`; an empty text needs no SMS (0 parts)."""
    encoding, costs = _costs(text)
    units = sum(costs)
    single, part = (GSM_SINGLE, GSM_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    if units == 0:
        return SegmentInfo(encoding, 0, 0)
    if units <= single:
        return SegmentInfo(encoding, 1, units)
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:  # an escape pair or surrogate pair never straddles two parts
            count, used = count + 1, 0
        used += cost
    return SegmentInfo(encoding, count, units)


def gsm_friendly(text: str) -> str:
    """`text` with typographic quotes, dashes and spaces made GSM-7, if that makes it all GSM-7.

    A curly apostrophe in an English page would otherwise switch it to UCS-2 (70 a segment).
    Texts that need UCS-2 anyway (Hebrew, emoji) are returned unchanged.
    """
    if is_gsm(text):
        return text
    replaced = text.translate(_GSM_LOOKALIKES)
    return replaced if is_gsm(replaced) else text


def fit(text: str, max_segments: int = 2, *, trim: str | None = None, smart: bool = True) -> str:
    """Shorten a page to at most `max_segments` SMS by shortening only its designated part.

    The designated part is `trim` (its first occurrence in `text`, e.g. the summary), or when
    `trim` is None everything before the last line: the last line (e.g. "Reply ACK 4821") and
    everything outside the designated part are never cut. The part is cut at a word boundary
    when one is near and marked with "..." (or "…" when the page is UCS-2 anyway); it may
    vanish entirely. With `smart`, typographic punctuation is first made GSM-7 (`gsm_friendly`).
    Raises ValueError if no part is designated or the protected text alone is too long.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if trim is not None:
        start = text.find(trim)
        if start < 0:
            raise ValueError("the part to trim does not occur in the text")
        head, part, tail = text[:start], trim, text[start + len(trim) :]
    elif "\n" in text:
        cut = text.rindex("\n")
        head, part, tail = "", text[:cut], text[cut:]
    else:
        raise ValueError("single-line text: pass trim= to say which part may be shortened")
    if smart and not is_gsm(text) and is_gsm(replaced := text.translate(_GSM_LOOKALIKES)):
        head, part, tail = (s.translate(_GSM_LOOKALIKES) for s in (head, part, tail))
        text = replaced
    if segments(text).segments <= max_segments:
        return text

    def candidate(n: int) -> str:
        return (head + _shorten(part, n, head + tail) + tail).strip()

    lo, hi = 0, len(part) - 1  # largest n in [lo, hi] whose candidate fits; n = 0 drops the part
    if segments(candidate(0)).segments > max_segments:
        need = segments(candidate(0)).segments
        raise ValueError(f"the protected text alone needs {need} segments (max {max_segments})")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if segments(candidate(mid)).segments <= max_segments:
            lo = mid
        else:
            hi = mid - 1
    while segments(candidate(lo)).segments > max_segments:  # guard: fitting is monotone but not provably so
        lo -= 1
    return candidate(lo)


_WORD_WINDOW = 12
_TRAILING = " \t\n,;:-–—/|(·"


def _shorten(part: str, n: int, rest: str) -> str:
    """The first `n` characters of `part` (or fewer, to end on a word), with an ellipsis."""
    if n >= len(part):
        return part
    if n <= 0:
        return ""
    cut = part[:n]
    space = cut.rfind(" ")
    if space > 0 and n - space <= _WORD_WINDOW:
        cut = cut[:space]
    while cut and (unicodedata.combining(cut[-1]) or cut[-1] == "\u200d"):  # keep marks with their letter
        cut = cut[:-1]
    cut = cut.rstrip(_TRAILING)
    if not cut:
        return ""
    ellipsis = "..." if is_gsm(cut + rest) else "…"
    return cut + ellipsis


class DeliveryState(StrEnum):
    """Where a page is, whatever the vendor calls it."""

    PENDING = "pending"  # accepted by the vendor, not yet handed to a carrier
    SENT = "sent"  # handed to the carrier; no handset receipt yet
    DELIVERED = "delivered"  # the handset confirmed receipt
    FAILED = "failed"  # will not arrive (see the error kind for whether trying again can help)
    RECEIVED = "received"  # an inbound message (a reply)

    @property
    def final(self) -> bool:
        return self in (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.RECEIVED)


class SendErrorKind(StrEnum):
    """What the caller should do about a failed send."""

    RETRYABLE = "retryable"  # vendor busy or down, rate limited, timeout: try again later with backoff
    RECIPIENT = "recipient"  # this number cannot take SMS (invalid, landline, opted out): page someone else
    PERMANENT = "permanent"  # our request or configuration is wrong (credentials, sender, body): alert ops


@dataclass(frozen=True)
class SentMessage:
    """The vendor accepted the message; delivery is reported later through the status callback."""

    sid: str
    status: DeliveryState
    vendor_status: str = ""
    segments: int | None = None


class SmsSendError(Exception):
    """A send that did not go through, classified for the caller.

    `maybe_sent` is True when the vendor may have accepted the message before the failure
    (a read timeout, a 5xx from a gateway): retrying can page the person twice.
    """

    def __init__(
        self,
        kind: SendErrorKind,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent

    @property
    def retryable(self) -> bool:
        return self.kind is SendErrorKind.RETRYABLE

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0]} (code={self.code} http_status={self.http_status})"


class SmsSender(Protocol):
    """Sends one SMS. Implementations raise `SmsSendError` and never retry on their own."""

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentMessage: ...
