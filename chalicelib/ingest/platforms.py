"""Platform payloads (X Account Activity, Meta Graph webhooks, Standard Webhooks) → `Mention`s.

Only the fields Klaxon uses are modelled; everything else in a platform payload is ignored,
since platforms add fields without notice. Event types a platform documents but that are
not mentions (likes, follows, edits) are acknowledged and skipped; anything unknown is a
`PayloadError` so a misrouted or malformed sender hears about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.ingest.brands import BrandMatcher
from chalicelib.ingest.models import Author, Mention


class PayloadError(ValueError):
    """The body is signed correctly but is not something Klaxon understands (HTTP 400/422)."""


@dataclass
class Parsed:
    """Mentions found in one webhook delivery, and how many events were skipped."""

    mentions: list[Mention] = field(default_factory=list)
    ignored: int = 0
    unmatched: int = 0


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{loc}: {err['msg']}"


# ---------------------------------------------------------------- X (Account Activity API)

X_IGNORED_EVENTS = frozenset(
    {
        "favorite_events",
        "follow_events",
        "unfollow_events",
        "block_events",
        "unblock_events",
        "mute_events",
        "unmute_events",
        "user_event",
        "direct_message_events",
        "direct_message_indicate_typing_events",
        "direct_message_mark_read_events",
        "tweet_delete_events",
    }
)
X_ENVELOPE_KEYS = frozenset({"for_user_id", "user_has_blocked", "source", "users", "apps"})


class _XUser(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    id_str: str
    screen_name: str | None = None
    name: str | None = None
    followers_count: int | None = Field(default=None, ge=0)


class _XUserMention(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    screen_name: str


class _XEntities(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    user_mentions: list[_XUserMention] = Field(default_factory=list)


class _XExtended(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    full_text: str


class _XRetweeted(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    user: _XUser


class _XTweet(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    id_str: str
    created_at: str
    text: str = ""
    user: _XUser
    extended_tweet: _XExtended | None = None
    in_reply_to_status_id_str: str | None = None
    in_reply_to_screen_name: str | None = None
    entities: _XEntities = Field(default_factory=_XEntities)
    retweeted_status: _XRetweeted | None = None


class _XActivity(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)
    for_user_id: str
    tweet_create_events: list[_XTweet] = Field(default_factory=list)


def _x_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)
    except ValueError as exc:
        raise PayloadError(f"tweet created_at {value!r} is not in X's format") from exc


def _event_count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 1


def parse_x(payload: Any, matcher: BrandMatcher) -> Parsed:
    """Mentions from an X Account Activity delivery (`tweet_create_events`)."""
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object")
    unknown = set(payload) - X_IGNORED_EVENTS - X_ENVELOPE_KEYS - {"tweet_create_events"}
    if unknown:
        raise PayloadError(f"unknown X event type {sorted(unknown)[0]!r}")
    try:
        activity = _XActivity.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from exc
    out = Parsed(ignored=sum(_event_count(payload[k]) for k in payload if k in X_IGNORED_EVENTS))
    if "tweet_create_events" not in payload and not out.ignored:
        raise PayloadError("no event in the X delivery")
    for tweet in activity.tweet_create_events:
        retweeted = tweet.retweeted_status.user.id_str if tweet.retweeted_status else None
        if activity.for_user_id in (tweet.user.id_str, retweeted):
            # The brand's own post, or a retweet of it (e.g. its apology being shared), is not a
            # mention of the brand and must not swell its volume.
            out.ignored += 1
            continue
        text = tweet.extended_tweet.full_text if tweet.extended_tweet else tweet.text
        accounts = [m.screen_name for m in tweet.entities.user_mentions]
        if tweet.in_reply_to_screen_name:
            accounts.append(tweet.in_reply_to_screen_name)
        brands = matcher.match(platform="x", text=text, accounts=accounts)
        if not brands:
            out.unmatched += 1
            continue
        handle = tweet.user.screen_name
        out.mentions.append(
            _mention(
                platform="x",
                platform_id=tweet.id_str,
                text=text,
                author=Author(
                    id=tweet.user.id_str,
                    handle=handle,
                    name=tweet.user.name,
                    followers=tweet.user.followers_count,
                ),
                created_at=_x_time(tweet.created_at),
                url=f"https://x.com/{handle or 'i'}/status/{tweet.id_str}",
                reply_to=tweet.in_reply_to_status_id_str,
                brands=brands,
            )
        )
    return out


# ---------------------------------------------------------------- Meta (Facebook Pages, Instagram)

_FB_MENTION_ITEMS = ("comment", "post", "status", "photo", "video")
META_MENTION_FIELDS = {"page": {"feed", "mention"}, "instagram": {"comments", "mentions", "live_comments"}}
META_IGNORED_FIELDS = {
    "page": {"ratings", "messages", "messaging_postbacks", "message_reads", "message_deliveries", "videos"},
    "instagram": {"messages", "messaging_postbacks", "story_insights", "message_reactions"},
}


class _MetaFrom(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    id: str | None = None
    name: str | None = None
    username: str | None = None


class _MetaChange(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    field: str
    value: dict[str, Any]


class _MetaEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    id: str
    time: int | float | None = None
    changes: list[_MetaChange] = Field(default_factory=list)
    messaging: list[dict[str, Any]] = Field(default_factory=list)


class _MetaDelivery(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)
    object: Literal["page", "instagram"]
    entry: list[_MetaEntry]


def _meta_time(value: Any, fallback: Any) -> datetime:
    raw = value if value is not None else fallback
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw < 1e11:
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("+0000", "+00:00")).astimezone(UTC)
        except ValueError:
            pass
    if fallback is not None and raw is not fallback:
        return _meta_time(None, fallback)
    raise PayloadError("Meta change has no usable created_time or entry time")


def parse_meta(payload: Any, matcher: BrandMatcher) -> Parsed:
    """Mentions from a Meta Graph webhook: Page feed comments/posts/mentions, Instagram comments."""
    try:
        delivery = _MetaDelivery.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from exc
    try:
        return _meta_mentions(delivery, matcher)
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from exc


def _meta_mentions(delivery: _MetaDelivery, matcher: BrandMatcher) -> Parsed:
    out = Parsed()
    platform = "facebook" if delivery.object == "page" else "instagram"
    for entry in delivery.entry:
        out.ignored += len(entry.messaging)
        for change in entry.changes:
            if change.field in META_IGNORED_FIELDS[delivery.object]:
                out.ignored += 1
                continue
            if change.field not in META_MENTION_FIELDS[delivery.object]:
                raise PayloadError(f"unknown Meta {delivery.object} field {change.field!r}")
            mention = _meta_change(platform, entry, change, matcher)
            if mention is None:
                out.ignored += 1
            elif not mention.brands:
                out.unmatched += 1
            else:
                out.mentions.append(mention)
    return out


def _meta_change(platform: str, entry: _MetaEntry, change: _MetaChange, matcher: BrandMatcher) -> Mention | None:
    value = change.value
    if platform == "facebook":
        if value.get("verb", "add") != "add" or value.get("item") not in _FB_MENTION_ITEMS:
            return None  # reactions, likes, edits and removals are not new mentions
        platform_id = value.get("comment_id") or value.get("post_id")
        text = value.get("message") or ""
        reply_to = value.get("parent_id") if value.get("comment_id") else None
        # Page `mention` changes name the author as sender_id/sender_name instead of `from`.
        sender = value.get("from") or {"id": value.get("sender_id"), "name": value.get("sender_name")}
        author = _MetaFrom.model_validate(sender)
        url = f"https://www.facebook.com/{platform_id}"
    else:
        platform_id = value.get("id") or value.get("comment_id") or value.get("media_id")
        text = value.get("text") or ""
        media = value.get("media")  # an object with the commented post's id; anything else is no reply target
        reply_to = value.get("parent_id") or (media.get("id") if isinstance(media, dict) else None)
        author = _MetaFrom.model_validate(value.get("from") or {})
        url = None
    if not isinstance(platform_id, str) or not isinstance(text, str):
        raise PayloadError(f"Meta {change.field} change lacks a string id or text")
    if author.id is not None and author.id == entry.id:
        return None  # the page's or Instagram account's own post or reply
    brands = matcher.match(platform=platform, text=text, accounts=[entry.id])
    return _mention(
        platform=platform,
        platform_id=platform_id,
        text=text,
        author=Author(id=author.id, handle=author.username, name=author.name),
        created_at=_meta_time(value.get("created_time"), entry.time),
        url=url,
        reply_to=reply_to if isinstance(reply_to, str) else None,
        brands=brands,
    )


# ---------------------------------------------------------------- generic (Standard Webhooks)


class GenericMention(BaseModel):
    """The documented body of a `mention.created` event from any other source."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    platform: str
    id: str
    text: str = ""
    author: Author = Field(default_factory=Author)
    created_at: datetime
    url: str | None = None
    reply_to: str | None = None
    brands: list[str] | None = None


class _GenericEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: Literal["mention.created", "mention.batch"]
    timestamp: datetime | None = None
    data: dict[str, Any]


class _GenericBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    mentions: list[GenericMention] = Field(max_length=500)


def parse_generic(payload: Any, matcher: BrandMatcher) -> Parsed:
    """`{"type": "mention.created", "data": {...}}` or `{"type": "mention.batch", "data": {"mentions": [...]}}`."""
    try:
        event = _GenericEvent.model_validate(payload)
        items = (
            [GenericMention.model_validate(event.data)]
            if event.type == "mention.created"
            else _GenericBatch.model_validate(event.data).mentions
        )
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from exc
    out = Parsed()
    known = {b.id for b in matcher.brands}
    for item in items:
        if item.brands is not None:
            unknown = [b for b in item.brands if b not in known]
            if unknown:
                raise PayloadError(f"unknown brand {unknown[0]!r}")
            brands = tuple(item.brands)
        else:
            brands = matcher.match(platform=item.platform, text=item.text)
        if not brands:
            out.unmatched += 1
            continue
        out.mentions.append(
            _mention(
                platform=item.platform,
                platform_id=item.id,
                text=item.text,
                author=item.author,
                created_at=item.created_at,
                url=item.url,
                reply_to=item.reply_to,
                brands=brands,
            )
        )
    return out


def _mention(**fields: Any) -> Mention:
    try:
        return Mention(**fields)
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from exc
