"""Meta adapter: a reply to a Facebook or Instagram comment (or a Page post) through the Graph API.

Only the two create-edges are used: `POST /{comment-id}/comments` (Facebook), `POST
/{ig-comment-id}/replies` (Instagram), and `POST /{page-id}/feed` for a new Page post.
"""

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

GRAPH_VERSION = "v21.0"


class MetaPublisher:
    """Replies as the Page (Page access token with pages_manage_engagement / instagram_manage_comments)."""

    platform = "meta"

    def __init__(
        self,
        page_token: str,
        transport: Transport | None = None,
        *,
        page_id: str | None = None,
        base_url: str = "https://graph.facebook.com",
        version: str = GRAPH_VERSION,
    ) -> None:
        self._token = page_token
        self._transport = transport or UrllibTransport()
        self._page_id = page_id
        self._base = f"{base_url.rstrip('/')}/{version}"

    @classmethod
    def from_env(cls, transport: Transport | None = None) -> MetaPublisher:
        token = os.environ.get("KLAXON_META_PAGE_TOKEN")
        if not token:
            raise PlatformError("KLAXON_META_PAGE_TOKEN is not set")
        return cls(token, transport, page_id=os.environ.get("KLAXON_META_PAGE_ID") or None)

    def _edge(self, target: Target) -> str:
        surface = target.surface or "facebook"
        if target.reply_to:
            if surface == "instagram":
                return f"{self._base}/{target.reply_to}/replies"
            if surface == "facebook":
                return f"{self._base}/{target.reply_to}/comments"
            raise PlatformError(f"unknown Meta surface {surface!r}")
        if surface == "facebook" and self._page_id:
            return f"{self._base}/{self._page_id}/feed"
        raise PlatformError("a Meta publication needs a comment to answer (reply_to) or a Page id")

    def publish(self, text: str, version_hash: str, target: Target, progress: Progress | None = None) -> PublishedRef:
        """The approved text as one comment reply (several in order if over 8,000 characters).

        With `progress`, the parts an earlier attempt posted are not sent again, and each new part's
        id is recorded before the next is sent."""
        require_hash(text, version_hash, target.signer_id)
        url = self._edge(target)
        parts = xtext.meta_parts(text)
        progress = progress or Progress()
        ids = list(progress.posted)
        if len(ids) > len(parts):
            raise PlatformError(f"{len(ids)} replies are recorded for a text of {len(parts)}; nothing was sent")
        for index in range(len(ids), len(parts)):
            part = f"part {index + 1} of {len(parts)}"
            try:
                response = post_json(
                    self._transport, url, {"message": parts[index]}, {"Authorization": f"Bearer {self._token}"}
                )
            except PlatformError as exc:
                raise type(exc)(f"{exc} ({part})", exc.response_status, exc.detail) from exc
            if response.status != 200:
                raise refusal(f"Meta refused the reply ({part})", response)
            try:
                post_id = str(response.json()["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise OutcomeUnknown(
                    f"Meta answered {response.status} to {part} without an id", response.status, excerpt(response)
                ) from exc
            ids.append(post_id)
            progress.note(index, post_id)
        return PublishedRef(ids[0], f"https://www.facebook.com/{ids[0]}", tuple(ids))
