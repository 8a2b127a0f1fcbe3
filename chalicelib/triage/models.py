"""The triage configuration schema (pydantic, extra="forbid": a typo is an error naming file and line)
and the result of triaging one mention."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TopicId = Annotated[str, StringConstraints(pattern=_ID)]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Platform = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Minutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]
MAX_PATTERN_CHARS = 300
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*][^()]*\)[+*{]")
"""`(a+)+`-style nesting: catastrophic backtracking on a long post. Refused at load."""


def check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Jerusalem)") from None
    return value


def unique_topics(topics: list[Topic]) -> list[Topic]:
    ids = [t.id for t in topics]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"topic id {dupes[0]!r} is used twice")
    return topics


class Topic(BaseModel):
    """One topic rule. A mention has the topic when any keyword or pattern matches its folded text.

    Keywords match like playbook crisis terms (chalicelib.sentiment.crisis): whole words, case-insensitive,
    Hebrew one-letter prefixes (ו ה ב ל מ ש כ) and final letters, simple English inflections. Patterns are
    Python regular expressions searched in the folded text (lower case, Hebrew final letters in their
    medial form, marks removed), for what keywords cannot say.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TopicId
    keywords: list[Term] = Field(default_factory=list)
    patterns: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS)]] = Field(
        default_factory=list
    )
    weight: int = Field(default=0, ge=0, le=30)
    """Urgency points a mention of this topic gets (safety matters more than billing)."""
    labels: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(default_factory=dict)
    """Display names per language code for the queue page ({he: בטיחות}); the id otherwise."""

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns[{i}] {pattern!r} is not a valid regular expression: {exc}") from None
            if _NESTED_QUANTIFIER.search(pattern):
                raise ValueError(f"patterns[{i}] {pattern!r} nests a repeat inside a repeat (slow on long posts)")
        return patterns

    @model_validator(mode="after")
    def _something(self) -> Topic:
        if not self.keywords and not self.patterns:
            raise ValueError(f"topic {self.id!r} needs keywords or patterns")
        return self


class ResponseTargets(BaseModel):
    """Response-time target in minutes: `default`, and per platform (x, facebook, instagram, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Minutes = 60
    platforms: dict[Platform, Minutes] = Field(default_factory=dict)

    def minutes_for(self, platform: str) -> int:
        return self.platforms.get(platform, self.default)


class BrandTriage(BaseModel):
    """Triage settings of one brand (all optional: the `defaults` fill in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locale: Literal["he", "en"] | None = None
    """Language of the queue page (Hebrew pages are right to left)."""
    timezone: str | None = None
    """IANA zone for the daily digest's day (Asia/Jerusalem)."""
    response_minutes: ResponseTargets | None = None
    topics: list[Topic] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("topics")
    @classmethod
    def _unique(cls, topics: list[Topic]) -> list[Topic]:
        return unique_topics(topics)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    locale: Literal["he", "en"] = "en"
    timezone: str = "UTC"
    response_minutes: ResponseTargets = Field(default_factory=ResponseTargets)
    digest_hour: int = Field(default=7, ge=0, le=23)
    """Local hour after which yesterday's digest is sent (by the sweeper, once per brand and day)."""
    topics: list[Topic] = Field(default_factory=list)
    """Topics every brand has, after its own."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("topics")
    @classmethod
    def _unique(cls, topics: list[Topic]) -> list[Topic]:
        return unique_topics(topics)


class TriageFile(BaseModel):
    """config/triage.yaml (or KLAXON_TRIAGE_FILE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Defaults = Field(default_factory=Defaults)
    brands: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")], BrandTriage] = Field(
        default_factory=dict
    )


@dataclass(frozen=True)
class BrandSettings:
    """One brand's effective settings (its own over the defaults)."""

    brand: str
    locale: str
    timezone: str
    targets: ResponseTargets
    topics: tuple[Topic, ...]
    digest_hour: int


def effective(file: TriageFile, brand: str) -> BrandSettings:
    own = file.brands.get(brand) or BrandTriage()
    d = file.defaults
    ids = {t.id for t in own.topics}
    return BrandSettings(
        brand=brand,
        locale=own.locale or d.locale,
        timezone=own.timezone or d.timezone,
        targets=own.response_minutes or d.response_minutes,
        topics=tuple(own.topics) + tuple(t for t in d.topics if t.id not in ids),
        digest_hour=d.digest_hour,
    )


@dataclass(frozen=True)
class Triage:
    """What triage decided about one mention (pure data; `rules.triage` makes it)."""

    brand: str
    language: str
    sentiment: str
    topics: tuple[str, ...]
    question: bool
    crisis: bool
    playbook: str | None
    strength: float
    """Sentiment strength in [0, 1]: 0 unless negative; intensity markers raise it."""
    reach: float
    """Author reach in [0, 1] from the follower count (log scale, 1 at a million)."""
    thread: float
    """How much the thread this reply is in has grown, in [0, 1]."""
    urgency: int
    """0-100, see rules.urgency."""
    needs_reply: bool
