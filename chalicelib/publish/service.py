"""Publish an approved statement through one channel, once, and record where it went.

The gate (invariant 5) is `statements.require_publishable`: the signer and the quorum approved the
current version's hash. The publication is then claimed with one transaction that also checks no
newer version exists, so an edit that lands after the check still stops the old text. The adapter
re-hashes what it is given. The platform's id is stored, the step lands on the timeline, and the
incident moves to published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.incidents import service as incidents
from chalicelib.publish.base import PublishedRef, Publisher, PublishError, Target
from chalicelib.publish.meta import MetaPublisher
from chalicelib.publish.outbox import OutboxPublisher
from chalicelib.publish.webhook import WebhookPublisher
from chalicelib.publish.x import XPublisher
from chalicelib.statements import service as statements
from chalicelib.statements.hashing import short
from chalicelib.store.models import PublicationItem, StatementItem, bind

log = logging.getLogger(__name__)

PUBLISHING, PUBLISHED, FAILED = "publishing", "published", "failed"
PLATFORMS = ("outbox", "x", "meta", "webhook")


class IncidentClosed(PublishError):
    status = 409


class PublishInDoubt(PublishError):
    """A previous attempt at this exact publication started and never reported back: check the
    platform before trying again (a blind retry could post twice)."""

    status = 409


@dataclass(frozen=True)
class Publication:
    incident_id: str
    lang: str
    version: int
    version_hash: str
    platform: str
    target: str
    platform_id: str
    url: str | None
    part_ids: tuple[str, ...]
    already: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "incident_id": self.incident_id,
            "lang": self.lang,
            "version": self.version,
            "version_hash": self.version_hash,
            "platform": self.platform,
            "target": self.target,
            "platform_id": self.platform_id,
            "url": self.url,
            "part_ids": list(self.part_ids),
            "already_published": self.already,
        }


def publisher_for(platform: str) -> Publisher:
    """The configured adapter for a platform name (credentials from the environment)."""
    factories: dict[str, Callable[[], Publisher]] = {
        "outbox": OutboxPublisher.from_env,
        "x": XPublisher.from_env,
        "meta": MetaPublisher.from_env,
        "webhook": WebhookPublisher.from_env,
    }
    if platform not in factories:
        raise PublishError(f"unknown platform {platform!r} (known: {', '.join(PLATFORMS)})")
    return factories[platform]()


def _from_item(item: PublicationItem, already: bool) -> Publication:
    return Publication(
        incident_id=item.incident_id,
        lang=item.lang,
        version=int(item.version),
        version_hash=item.hash,
        platform=item.platform,
        target=item.target,
        platform_id=item.platform_id or "",
        url=item.url,
        part_ids=tuple(str(i) for i in item.part_ids or ()),
        already=already,
    )


def _claim(item: PublicationItem, next_version_sk: str) -> PublicationItem | None:
    """Claim the publication; None when it was already published (the stored one is returned instead)."""
    conn = PublicationItem._get_connection().connection  # type: ignore[attr-defined]
    try:
        with TransactWrite(connection=conn) as tx:
            tx.save(item, condition=PublicationItem.sk.does_not_exist())
            tx.condition_check(StatementItem, item.pk, next_version_sk, condition=StatementItem.sk.does_not_exist())
        return item
    except TransactWriteError as exc:
        # PynamoDB sends condition checks before puts: [0] is "no newer version", [1] the claim.
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            current = statements.current_draft(item.incident_id, item.lang)
            raise statements.DraftChanged(
                "the draft was edited; the new version needs its own approvals", current
            ) from exc
        if len(reasons) < 2 or reasons[1] != "ConditionalCheckFailed":
            raise
    existing = PublicationItem.get(item.pk, item.sk, consistent_read=True)
    if existing.state == PUBLISHED:
        return None
    if existing.state == PUBLISHING:
        raise PublishInDoubt(
            f"publication of {short(item.hash)} to {item.platform} started at {existing.created_at:.0f} "
            "and never finished; check the platform before retrying"
        )
    try:  # failed before: take it again
        existing.update(
            actions=[PublicationItem.state.set(PUBLISHING), PublicationItem.updated_at.set(time.time())],
            condition=PublicationItem.state == FAILED,
        )
    except UpdateError as exc:
        raise PublishInDoubt("another attempt took this publication at the same moment") from exc
    return existing


def publish_statement(
    incident_id: str,
    lang: str,
    *,
    publisher: Publisher,
    actor: str,
    version_hash: str | None = None,
    reply_to: str | None = None,
    surface: str | None = None,
    mode: str = "thread",
    channel: str = "api",
) -> Publication:
    """Publish the current, fully approved `lang` statement through `publisher`.

    `version_hash`, when given (the route should pass what the user saw), must be the current
    version. Publishing the same version to the same target twice returns the first result.
    Raises statements.NotApproved / DraftChanged, IncidentClosed, PublishInDoubt, PublishError.
    """
    bind()
    incident = incidents.get(incident_id)
    if incident.status == incidents.RESOLVED:
        raise IncidentClosed(f"incident {incident_id} is resolved; nothing more is published")
    state = statements.require_publishable(incident_id, lang, version_hash)
    draft = state.draft
    target = Target(
        signer_id=draft.signer_id,
        signer_name=draft.signer_name,
        incident_id=incident_id,
        lang=lang,
        reply_to=reply_to,
        surface=surface,
        mode=mode,
    )
    now = time.time()
    item = PublicationItem(
        f"incident#{incident_id}",
        f"pub#{draft.hash}#{publisher.platform}#{target.key()}",
        incident_id=incident_id,
        lang=lang,
        version=draft.version,
        hash=draft.hash,
        platform=publisher.platform,
        target=target.key(),
        state=PUBLISHING,
        actor=actor,
        created_at=now,
        updated_at=now,
    )
    claimed = _claim(item, f"stmt#{lang}#v{draft.version + 1:04d}")
    if claimed is None:
        return _from_item(PublicationItem.get(item.pk, item.sk, consistent_read=True), already=True)
    try:
        ref: PublishedRef = publisher.publish(draft.text, draft.hash, target)
    except Exception as exc:
        claimed.update(
            actions=[
                PublicationItem.state.set(FAILED),
                PublicationItem.error.set(str(exc)[:500]),
                PublicationItem.updated_at.set(time.time()),
            ]
        )
        incidents.record(
            incident_id,
            actor=actor,
            action="statement_publish_failed",
            channel=channel,
            detail=f"{lang} v{draft.version} {short(draft.hash)} to {publisher.platform}: {str(exc)[:200]}",
        )
        raise
    done: list[Any] = [
        PublicationItem.state.set(PUBLISHED),
        PublicationItem.platform_id.set(ref.platform_id),
        PublicationItem.part_ids.set(cast(Any, list(ref.part_ids or (ref.platform_id,)))),
        PublicationItem.updated_at.set(time.time()),
    ]
    if ref.url:
        done.append(PublicationItem.url.set(ref.url))
    claimed.update(actions=done)
    incidents.record(
        incident_id,
        actor=actor,
        action="statement_published",
        channel=channel,
        detail=f"{lang} v{draft.version} {short(draft.hash)} to {publisher.platform} {target.key()}: {ref.platform_id}",
    )
    _move_to_published(incident_id, actor, channel)
    if reply_to:
        _answered_in_triage(incident.brand, publisher.platform, surface, reply_to, actor)
    return _from_item(PublicationItem.get(item.pk, item.sk, consistent_read=True), already=False)


def _answered_in_triage(brand: str, platform: str, surface: str | None, reply_to: str, actor: str) -> None:
    """The reply answers the triage queue entry holding post `reply_to` (issue 11): mark it handled.
    Never fails the publication, which has already happened."""
    names = {"x": ("x",), "meta": (surface or "facebook", "instagram")}.get(platform, ("x", "facebook", "instagram"))
    try:
        from chalicelib.triage.queue import handled_by_reply

        for name in dict.fromkeys(names):
            if handled_by_reply(brand, f"{name}#{reply_to}", actor=actor):
                return
    except Exception:  # noqa: BLE001 - bookkeeping after a publication must not turn it into an error
        log.exception("triage_mark_answered_failed brand=%s reply_to=%s", brand, reply_to)


def _move_to_published(incident_id: str, actor: str, channel: str) -> None:
    """Walk the lifecycle forward to published; an incident already there (a second language) stays."""
    chain = (incidents.ACKNOWLEDGED, incidents.STATEMENT_APPROVED, incidents.PUBLISHED)
    for _ in range(len(chain)):
        status = incidents.get(incident_id).status
        if status in (incidents.PUBLISHED, incidents.RESOLVED):
            return
        following = chain[chain.index(status) + 1] if status in chain else chain[0]
        try:
            incidents.transition(incident_id, following, actor=actor, channel=channel, detail="statement published")
        except incidents.InvalidTransition as exc:
            log.info("publish_transition_skipped incident=%s reason=%s", incident_id, exc)


def publications(incident_id: str) -> list[Publication]:
    """Everything published (or attempted) for an incident."""
    bind()
    items = PublicationItem.query(
        f"incident#{incident_id}", PublicationItem.sk.startswith("pub#"), consistent_read=True
    )
    return [_from_item(i, already=False) for i in items if i.state == PUBLISHED]


def get_publication(incident_id: str, version_hash: str, platform: str, target_key: str) -> PublicationItem | None:
    bind()
    try:
        return PublicationItem.get(
            f"incident#{incident_id}", f"pub#{version_hash}#{platform}#{target_key}", consistent_read=True
        )
    except DoesNotExist:
        return None
