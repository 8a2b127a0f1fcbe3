"""The one normalised shape every platform's mention is turned into."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_TEXT_CHARS = 25_000  # X long posts are the longest source (25,000 characters)

PlatformName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
PlatformId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
BrandId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


def clean_text(value: object, limit: int) -> object:
    """Replace lone surrogates (half an emoji) and clip to `limit` characters.

    Platform data is authoritative: an odd display name must never cost us the mention.
    """
    if not isinstance(value, str):
        return value
    return value.encode("utf-8", "replace").decode("utf-8")[:limit]


class Author(BaseModel):
    """Who wrote the mention; `followers` feeds triage urgency later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(default=None, max_length=128)
    handle: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=256)
    followers: int | None = Field(default=None, ge=0)

    @field_validator("id", "handle", mode="before")
    @classmethod
    def _short(cls, value: object) -> object:
        return clean_text(value, 128)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        return clean_text(value, 256)


class Mention(BaseModel):
    """A post or comment about a brand, from any platform, after normalisation.

    `language` and `sentiment` are filled in by the ingest handler, not the webhook,
    so the webhook stays fast.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: PlatformName
    platform_id: PlatformId
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    author: Author = Field(default_factory=Author)
    created_at: datetime
    url: str | None = Field(default=None, max_length=2048)
    reply_to: str | None = Field(default=None, max_length=128)
    brands: tuple[BrandId, ...] = ()
    language: str | None = None
    sentiment: str | None = None

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a time zone")
        return value.astimezone(UTC)

    @field_validator("text", mode="before")
    @classmethod
    def _valid_unicode(cls, value: object) -> object:
        # Lone surrogates cannot be stored as UTF-8 in DynamoDB; replace rather than reject.
        if isinstance(value, str):
            return value.encode("utf-8", "replace").decode("utf-8")
        return value

    @property
    def key(self) -> str:
        """Deduplication key: the same post seen twice is the same mention."""
        return f"{self.platform}#{self.platform_id}"
