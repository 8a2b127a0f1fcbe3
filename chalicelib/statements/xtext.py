"""How X counts a post's length (twitter-text v3 weighted length), and how to fit text into posts.

twitter-text v3 (`parseTweet` with the v3 configuration): the text is NFC-normalised and walked by
code point. Each URL counts 23 whatever its length; each emoji sequence (skin tone, ZWJ family,
flag, keycap) counts 2 as a whole; any other code point counts 1 inside the weight-100 ranges
(U+0000-U+10FF, which covers Latin, Hebrew, Arabic and Cyrillic; U+2000-U+200D; U+2010-U+201F;
U+2032-U+2037) and 2 outside them (CJK, most symbols). The limit is 280.

Simplifications, on the safe side for Klaxon's own statements: URLs are recognised with a scheme
or on common top-level domains (twitter-text uses the full IANA list), and the emoji pattern covers
the pictographic blocks rather than the exact Unicode emoji list; a text-style symbol below U+10FF
(©, ®) counts as an emoji only when followed by VS16.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_WEIGHTED_LENGTH = 280
SCALE = 100
DEFAULT_WEIGHT = 200
TRANSFORMED_URL_LENGTH = 23
RANGES: tuple[tuple[int, int, int], ...] = (
    (0x0000, 0x10FF, 100),
    (0x2000, 0x200D, 100),
    (0x2010, 0x201F, 100),
    (0x2032, 0x2037, 100),
)

_TLDS = "com|org|net|io|co|il|uk|me|info|biz|ly|gov|edu|app|dev|ai|tv|eu|de|fr|ru|us|ca|au"
_URL = re.compile(
    r"(?<![\w@.\-/])(?:https?://[^\s<>\"]+"
    rf"|(?:www\.)?(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS})\b(?:/[^\s<>\"]*)?)",
    re.IGNORECASE,
)
_URL_TRAILING = ".,:;!?'\")]}"

_PICTOGRAPHIC = (
    "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\u2190-\u21ff\u25a0-\u25ff"
    "\u2934\u2935\u3030\u303d\u3297\u3299\u203c\u2049\u2122\u2139"
)
_ELEMENT = rf"(?:[{_PICTOGRAPHIC}]\ufe0f?|[\u00a9\u00ae]\ufe0f)[\U0001f3fb-\U0001f3ff]?"
_EMOJI = re.compile(
    "|".join(
        (
            r"[0-9#*]\ufe0f?\u20e3",  # keycap
            r"[\U0001f1e6-\U0001f1ff]{2}",  # flag: a pair of regional indicators
            r"\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f",  # subdivision flag (tag sequence)
            rf"{_ELEMENT}(?:\u200d{_ELEMENT})*",  # one pictograph, modifiers, ZWJ sequences
        )
    )
)


def _char_weight(code_point: int) -> int:
    for start, end, weight in RANGES:
        if start <= code_point <= end:
            return weight
    return DEFAULT_WEIGHT


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each URL X would shorten to t.co, trailing punctuation excluded."""
    spans = []
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in _URL_TRAILING:
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def weighted_length(text: str) -> int:
    """The length X shows for `text` (twitter-text v3 `weightedLength`)."""
    normal = unicodedata.normalize("NFC", text)
    urls = dict(url_spans(normal))
    emojis = {m.start(): m.end() for m in _EMOJI.finditer(normal)}
    total = 0
    offset = 0
    while offset < len(normal):
        if offset in urls:
            total += TRANSFORMED_URL_LENGTH * SCALE
            offset = urls[offset]
            continue
        if offset in emojis:
            total += DEFAULT_WEIGHT
            offset = emojis[offset]
            continue
        total += _char_weight(ord(normal[offset]))
        offset += 1
    return total // SCALE


def fits_x(text: str, limit: int = MAX_WEIGHTED_LENGTH) -> bool:
    return weighted_length(text) <= limit


# --- fitting text into posts ------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?。！？:;])\s+")
NUMBER_RESERVE = "\n99/99"


def split_parts(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Split `text` into the fewest parts that each fit once numbered ("\\n2/3" appended).

    Only whitespace between words is removed: paragraphs are kept whole where they fit, then
    sentences, then words, so the parts read in order say exactly what the text says.
    """
    if fits(text):
        return [text]
    pieces = _pieces(text.strip(), lambda s: fits(s + NUMBER_RESERVE))
    parts: list[str] = []
    current = ""
    for glue, piece in pieces:
        candidate = current + glue + piece if current else piece
        if current and not fits(candidate + NUMBER_RESERVE):
            parts.append(current)
            current = piece
        else:
            current = candidate
    if current:
        parts.append(current)
    return [f"{part}\n{i}/{len(parts)}" for i, part in enumerate(parts, 1)]


def _pieces(text: str, fits: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(glue, piece) pairs, finest needed: paragraphs, sentences inside too-long paragraphs, words
    inside too-long sentences; a single word too long for a post is cut by characters."""
    out: list[tuple[str, str]] = []
    for p_index, paragraph in enumerate(re.split(r"\n\s*\n", text)):
        glue = "\n\n" if p_index else ""
        if fits(paragraph):
            out.append((glue, paragraph))
            continue
        for s_index, sentence in enumerate(_SENTENCE_END.split(paragraph)):
            s_glue = glue if s_index == 0 else " "
            if fits(sentence):
                out.append((s_glue, sentence))
                continue
            for w_index, word in enumerate(sentence.split()):
                w_glue = s_glue if w_index == 0 else " "
                while not fits(word):
                    cut = _longest_prefix(word, fits)
                    out.append((w_glue, word[:cut]))
                    word, w_glue = word[cut:], ""
                out.append((w_glue, word))
    return out


def _longest_prefix(word: str, fits: Callable[[str], bool]) -> int:
    cut = 1
    while cut < len(word) and fits(word[: cut + 1]):
        cut += 1
    return cut


def x_thread(text: str) -> list[str]:
    """The text as one post, or as a numbered thread of posts that each fit X's 280."""
    return split_parts(text, fits_x)


def x_short(text: str, signer_name: str, limit: int = MAX_WEIGHTED_LENGTH) -> str:
    """One post: the opening sentences that fit, then "…" and the signer's name.

    A holding statement's first sentences carry what people must know now; the full text goes out
    as a thread or on other channels. The text itself when it already fits.
    """
    if fits_x(text, limit):
        return text
    tail = f"…\n— {signer_name}"
    first_paragraph = re.split(r"\n\s*\n", text.strip())[0]
    kept = ""
    for sentence in _SENTENCE_END.split(first_paragraph):
        candidate = f"{kept} {sentence}" if kept else sentence
        if not fits_x(candidate + tail, limit):
            break
        kept = candidate
    if not kept:
        words = first_paragraph.split()
        for word in words:
            candidate = f"{kept} {word}" if kept else word
            if not fits_x(candidate + tail, limit):
                break
            kept = candidate
    return kept + tail


META_COMMENT_LIMIT = 8000


def meta_parts(text: str) -> list[str]:
    """Comment replies for Facebook/Instagram: one when the text is within 8,000 characters."""
    return split_parts(text, lambda s: len(s) <= META_COMMENT_LIMIT)
