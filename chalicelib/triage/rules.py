"""Triage of one mention: pure functions, no I/O. The ingest flow builds `BrandRules` once per container
and calls `triage` for each (mention, brand).

Urgency (0-100) adds up what makes a reply more pressing, each part bounded so no single signal
dominates except a playbook's crisis term:

    30 x crisis        a playbook crisis term is in the text (the brand's own definition of "this is bad")
  + 25 x strength      sentiment strength: 0 unless negative; 0.5 for a plain negative post, up to 1 with
                       intensity markers (!!, CAPITALS, elongation, "worst"/"בושה"-type words)
  + 15 x reach         log10(followers + 1) / 6, capped at 1: a million followers is the maximum
  + 10 x thread        a reply in a growing thread: log2(1 + earlier replies) / 4, capped at 1 (15 earlier
                       replies is the maximum)
  + 10 x question      a question waits for an answer even when it is polite
  + topic weight       the largest `weight` of the matched topics (safety 25, outage 15, ...)
  capped at 100, rounded.

A mention needs a human reply when it is negative, or a question, or mentions a crisis term.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.ingest.models import Mention
from chalicelib.sentiment.crisis import english_forms, term_matcher
from chalicelib.sentiment.text import fold
from chalicelib.triage.models import BrandSettings, Topic, Triage

W_CRISIS, W_STRENGTH, W_REACH, W_THREAD, W_QUESTION = 30, 25, 15, 10, 10
REACH_FULL_FOLLOWERS_LOG10 = 6.0
THREAD_FULL_LOG2 = 4.0
GROUP_BONUS_PER_DOUBLING, GROUP_BONUS_MAX = 4, 10

_QUESTION_START = re.compile(
    r"^\W*(?:how|why|when|what|where|who|which|can|could|is|are|does|do|did|will|would|should|anyone|any update"
    r"|[ו]?(?:מה|למה|מדוע|איך|כיצד|מתי|איפה|היכנ|האמ|כמה|מי|אפשר|יש מישהו|אינ אפשרות))(?!\w)"
)
_INTENSIFIER_TERMS = (
        "worst", "terrible", "horrible", "awful", "disgusting", "disgrace", "scam", "scammers", "furious",
        "outrageous", "unacceptable", "never again", "hate", "pathetic", "shame on",
        "גרוע", "הכי גרוע", "בושה", "מחפיר", "זוועה", "נוראי", "נוראית", "שערורייה", "נמאס", "רמאים", "גנבים",
        "חצפה", "מבישה", "מביש", "לא יאומן",
)
_EXCLAIM = re.compile(r"!{2,}")
_SHOUT = re.compile(r"\b[A-Z]{3,}\b")
_ELONGATED = re.compile(r"(\w)\1{2,}")


_TOKEN = re.compile(r"[^\W_]+")
_PREFIX_LETTERS = frozenset("ובלמשהכ")


def text_keys(folded: str) -> frozenset[str]:
    """The folded text's words, each also without up to four attached one-letter Hebrew prefixes."""
    tokens = _TOKEN.findall(folded)
    keys = set(tokens)
    for token in tokens:
        if token[0] in _PREFIX_LETTERS:  # a Hebrew (or Hebrew-prefixed Latin) word: strip 1-4 prefixes
            for k in range(1, min(4, len(token) - 1) + 1):
                if token[k - 1] not in _PREFIX_LETTERS:
                    break
                keys.add(token[k:])
    return frozenset(keys)


def term_keys(terms: Iterable[str]) -> frozenset[str] | None:
    """Words one of which must be among `text_keys` for the crisis-term matcher of `terms` to match, or
    None if some term has no word character to key on. Every word of a term must be in a matching text,
    so each term is keyed on its longest word: with all its inflections when that is the term's last
    word and plain English (the matcher inflects the last word), as written otherwise (the first word's
    Hebrew prefixes are stripped from the text's words by `text_keys`). A prefilter only: a hit still
    runs the matcher, which alone decides, so the matching rules stay those of chalicelib.sentiment.crisis."""
    keys: set[str] = set()
    for term in terms:
        words = fold(term).split()
        if not words:
            continue
        candidates = []
        for i, word in enumerate(words):
            runs = _TOKEN.findall(word)
            if runs:
                candidates.append((max(len(r) for r in runs), i, word, max(runs, key=len)))
        if not candidates:
            return None
        _, i, word, run = max(candidates)
        if i == len(words) - 1 and word.isascii() and word.isalpha():
            keys.update(english_forms(word))
        keys.add(run)
    return frozenset(keys)


@dataclass(frozen=True)
class Terms:
    """A crisis-term matcher with its word-key prefilter."""

    keys: frozenset[str] | None
    matcher: re.Pattern[str] | None

    @classmethod
    def of(cls, terms: Iterable[str]) -> Terms:
        terms = tuple(terms)
        return cls(term_keys(terms), term_matcher(terms))

    def search(self, folded: str, keys: frozenset[str]) -> bool:
        if self.matcher is None:
            return False
        if self.keys is not None and self.keys.isdisjoint(keys):
            return False
        return self.matcher.search(folded) is not None


_INTENSIFIERS = Terms.of(_INTENSIFIER_TERMS)

_FINALS = str.maketrans({"ם": "מ", "ן": "נ", "ץ": "צ", "ף": "פ", "ך": "כ"})
"""Patterns are searched in folded text, so their Hebrew final letters are folded the same way (a final
letter is never regex syntax); case is ignored with re.IGNORECASE rather than by lower-casing the pattern,
which would turn \\W into \\w."""


@dataclass(frozen=True)
class CompiledTopic:
    id: str
    weight: int
    keywords: Terms
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, folded: str, keys: frozenset[str] | None = None) -> bool:
        if self.keywords.search(folded, text_keys(folded) if keys is None else keys):
            return True
        return any(p.search(folded) for p in self.patterns)


@dataclass(frozen=True)
class BrandRules:
    """Everything triage needs for one brand, compiled: topics in configured order, and each covering
    playbook's crisis-term matcher, most severe playbook first."""

    brand: str
    topics: tuple[CompiledTopic, ...]
    playbooks: tuple[tuple[str, Terms], ...]


def compile_topic(topic: Topic) -> CompiledTopic:
    return CompiledTopic(
        id=topic.id,
        weight=topic.weight,
        keywords=Terms.of(topic.keywords),
        patterns=tuple(re.compile(p.translate(_FINALS), re.IGNORECASE) for p in topic.patterns),
    )


def build_rules(brand: str, settings: BrandSettings, playbooks: Iterable[tuple[str, Iterable[str]]]) -> BrandRules:
    """`playbooks`: (id, crisis terms) of the playbooks covering `brand`, most severe first."""
    compiled = []
    for playbook_id, terms in playbooks:
        matcher = Terms.of(terms)
        if matcher.matcher is not None:
            compiled.append((playbook_id, matcher))
    return BrandRules(brand=brand, topics=tuple(compile_topic(t) for t in settings.topics), playbooks=tuple(compiled))


def is_question(text: str, folded: str | None = None) -> bool:
    """A question mark (Latin, Arabic or full-width), or a sentence opening with a question word."""
    if "?" in text or "؟" in text or "？" in text:
        return True
    folded = fold(text) if folded is None else folded
    return any(_QUESTION_START.search(part) for part in re.split(r"[.!\n]+", folded) if part.strip())


def strength(text: str, sentiment: str, folded: str | None = None, keys: frozenset[str] | None = None) -> float:
    """0 unless negative; 0.5 plus 0.125 per kind of intensity marker present (up to four kinds):
    "!!" or three "!", two or more words in capitals, a letter repeated three times, an intensifier word."""
    if sentiment != "negative":
        return 0.0
    folded = fold(text) if folded is None else folded
    kinds = (
        text.count("!") >= 3 or _EXCLAIM.search(text) is not None,
        len(_SHOUT.findall(text)) >= 2,
        _ELONGATED.search(folded) is not None,
        _INTENSIFIERS.search(folded, text_keys(folded) if keys is None else keys),
    )
    return 0.5 + 0.125 * sum(kinds)


def reach(followers: int | None) -> float:
    if not followers or followers <= 0:
        return 0.0
    return min(1.0, math.log10(followers + 1) / REACH_FULL_FOLLOWERS_LOG10)


def thread_growth(is_reply: bool, earlier_replies: int) -> float:
    if not is_reply:
        return 0.0
    return min(1.0, math.log2(1 + max(0, earlier_replies)) / THREAD_FULL_LOG2)


def urgency(*, crisis: bool, strength: float, reach: float, thread: float, question: bool, topic_weight: int) -> int:
    total = (
        W_CRISIS * crisis
        + W_STRENGTH * strength
        + W_REACH * reach
        + W_THREAD * thread
        + W_QUESTION * question
        + topic_weight
    )
    return int(min(100, round(total)))


def group_urgency(peak: int, count: int) -> int:
    """A queue entry's urgency: its most urgent post, plus a little for each doubling of posts in it."""
    bonus = min(GROUP_BONUS_MAX, round(GROUP_BONUS_PER_DOUBLING * math.log2(max(1, count))))
    return int(min(100, peak + bonus))


def needs_reply(*, sentiment: str, question: bool, crisis: bool) -> bool:
    return sentiment == "negative" or question or crisis


def triage(mention: Mention, rules: BrandRules, *, thread_replies: int = 0) -> Triage:
    """Triage `mention` for `rules.brand`. `thread_replies`: replies to the same post seen before this one."""
    text = mention.text
    folded = fold(text)
    keys = text_keys(folded)
    topics = tuple(t for t in rules.topics if t.matches(folded, keys))
    playbook = next((pid for pid, terms in rules.playbooks if terms.search(folded, keys)), None)
    crisis = playbook is not None
    sentiment = "negative" if crisis else (mention.sentiment or "neutral")
    question = is_question(text, folded)
    s = strength(text, sentiment, folded, keys)
    r = reach(mention.author.followers)
    th = thread_growth(mention.reply_to is not None, thread_replies)
    score = urgency(
        crisis=crisis,
        strength=s,
        reach=r,
        thread=th,
        question=question,
        topic_weight=max((t.weight for t in topics), default=0),
    )
    return Triage(
        brand=rules.brand,
        language=mention.language or "other",
        sentiment=sentiment,
        topics=tuple(t.id for t in topics),
        question=question,
        crisis=crisis,
        playbook=playbook,
        strength=s,
        reach=r,
        thread=th,
        urgency=score,
        needs_reply=needs_reply(sentiment=sentiment, question=question, crisis=crisis),
    )
