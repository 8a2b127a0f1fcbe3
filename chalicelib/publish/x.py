"""X (Twitter) adapter: a post, a reply, or a numbered thread of replies, via POST /2/tweets."""

from __future__ import annotations

import os

from chalicelib.publish.base import (
    OutcomeUnknown,
    PlatformError,
    Progress,
    PublishedRef,
    Target,
    Transport,
    UrllibTransport,
    excerpt,
    post_json,
    refusal,
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

    def publish(self, text: str, version_hash: str, target: Target, progress: Progress | None = None) -> PublishedRef:
        """The approved text as a thread (or its one-post short form), answering `reply_to` if given.

        With `progress`, the parts an earlier attempt posted are not sent again: the thread continues
        as a reply to the last of them, and each new part's id is recorded before the next is sent."""
        require_hash(text, version_hash, target.signer_id)
        posts = thread_posts(text, target)
        if not all(xtext.fits_x(post) for post in posts):
            raise PlatformError("a post is longer than X allows; nothing was sent")
        progress = progress or Progress()
        ids = list(progress.posted)
        if len(ids) > len(posts):
            raise PlatformError(f"{len(ids)} posts are recorded for a thread of {len(posts)}; nothing was sent")
        previous = ids[-1] if ids else target.reply_to
        for index in range(len(ids), len(posts)):
            payload: dict[str, object] = {"text": posts[index]}
            if previous:
                payload["reply"] = {"in_reply_to_tweet_id": previous}
            part = f"part {index + 1} of {len(posts)}"
            sent = f" after {len(ids)} of {len(posts)} posts ({', '.join(ids)})" if ids else ""
            try:
                response = post_json(
                    self._transport, f"{self._base}/2/tweets", payload, {"Authorization": f"Bearer {self._token}"}
                )
            except PlatformError as exc:
                raise type(exc)(f"{exc} ({part}{sent})", exc.response_status, exc.detail) from exc
            if response.status not in (200, 201):
                raise refusal(f"X refused the post{sent}", response)
            try:
                post_id = str(response.json()["data"]["id"])
            except (ValueError, KeyError, TypeError) as exc:
                message = f"X answered {response.status} to {part} without a post id{sent}"
                raise OutcomeUnknown(message, response.status, excerpt(response)) from exc
            ids.append(post_id)
            progress.note(index, post_id)
            previous = post_id
        return PublishedRef(ids[0], f"https://x.com/i/web/status/{ids[0]}", tuple(ids))


def thread_posts(text: str, target: Target) -> list[str]:
    """The posts a publication to `target` consists of, in order (deterministic for a text and target)."""
    if target.mode not in ("thread", "short"):
        raise PlatformError(f"unknown X mode {target.mode!r}")
    return [xtext.x_short(text, target.signer_name)] if target.mode == "short" else xtext.x_thread(text)
