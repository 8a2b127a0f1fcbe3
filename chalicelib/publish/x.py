"""X (Twitter) adapter: a post, a reply, or a numbered thread of replies, via POST /2/tweets."""

from __future__ import annotations

import os

from chalicelib.publish.base import (
    PlatformError,
    PublishedRef,
    Target,
    Transport,
    UrllibTransport,
    excerpt,
    post_json,
    require_hash,
)
from chalicelib.statements import xtext


class XPublisher:
    """Posts with an OAuth 2.0 user-context access token (scope tweet.write) of the brand's account."""

    platform = "x"

    def __init__(self, token: str, transport: Transport | None = None, base_url: str = "https://api.x.com") -> None:
        self._token = token
        self._transport = transport or UrllibTransport()
        self._base = base_url.rstrip("/")

    @classmethod
    def from_env(cls, transport: Transport | None = None) -> XPublisher:
        token = os.environ.get("KLAXON_X_USER_TOKEN")
        if not token:
            raise PlatformError("KLAXON_X_USER_TOKEN is not set")
        return cls(token, transport, os.environ.get("KLAXON_X_API_URL") or "https://api.x.com")

    def publish(self, text: str, version_hash: str, target: Target) -> PublishedRef:
        """The approved text as a thread (or its one-post short form), answering `reply_to` if given."""
        require_hash(text, version_hash, target.signer_id)
        if target.mode not in ("thread", "short"):
            raise PlatformError(f"unknown X mode {target.mode!r}")
        posts = [xtext.x_short(text, target.signer_name)] if target.mode == "short" else xtext.x_thread(text)
        ids: list[str] = []
        previous = target.reply_to
        for post in posts:
            if not xtext.fits_x(post):
                raise PlatformError("a post is longer than X allows; nothing more was sent")
            payload: dict[str, object] = {"text": post}
            if previous:
                payload["reply"] = {"in_reply_to_tweet_id": previous}
            response = post_json(
                self._transport, f"{self._base}/2/tweets", payload, {"Authorization": f"Bearer {self._token}"}
            )
            if response.status not in (200, 201):
                sent = f" after {len(ids)} of {len(posts)} posts ({', '.join(ids)})" if ids else ""
                raise PlatformError(f"X refused the post{sent}", response.status, excerpt(response))
            try:
                post_id = str(response.json()["data"]["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise PlatformError("X answered without a post id", response.status, excerpt(response)) from exc
            ids.append(post_id)
            previous = post_id
        return PublishedRef(ids[0], f"https://x.com/i/web/status/{ids[0]}", tuple(ids))
