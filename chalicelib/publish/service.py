"""Publish an approved statement through one channel, once, and record where it went.

The gate (invariant 5) is `statements.require_publishable`: the signer and the quorum approved the
current version's hash. The publication is then claimed with one transaction that also checks no
newer version exists, so an edit that lands after the check still stops the old text. The adapter
re-hashes what it is given.

A publication can have several parts (an X thread, long Meta replies). Each part's platform id is
stored on the publication item (a conditional update) as soon as the platform accepts it, before
the next part is sent. Then:
- a refusal (a 4xx, 429 or 503: nothing went out) leaves it `failed`; a retry sends only the parts
  after the recorded ones (an X thread continues as a reply to the last recorded post);
- an unknown outcome (a read timeout or a connection dropped after sending, a 500/502/504, a success
  without an id, or a part accepted but not recorded) leaves it `in_doubt` with the part it was on:
  it is never sent again until a person checks the platform and resolves it (`resolve_in_doubt`:
  the part is up, with its id, or it is not). A publication left `publishing` by a process that
  died is in doubt the same way;
- when every part is up, `published`, the platform ids and the `statement_published` timeline entry
  are written in one transaction, and the incident moves to published. A retry of a published
  publication sends nothing and repeats only the idempotent bookkeeping (the lifecycle move), so a
  process that died after the platform accepted leaves nothing half done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from chalicelib.incidents import service as incidents
from chalicelib.publish import x as x_adapter
from chalicelib.publish.base import OutcomeUnknown, Progress, PublishedRef, Publisher, PublishError, Target
from chalicelib.publish.meta import MetaPublisher
from chalicelib.publish.outbox import OutboxPublisher
from chalicelib.publish.webhook import WebhookPublisher
from chalicelib.publish.x import XPublisher
from chalicelib.statements import service as statements
from chalicelib.statements import xtext
from chalicelib.statements.hashing import short
from chalicelib.store.models import PublicationItem, StatementItem, TimelineItem, bind

log = logging.getLogger(__name__)

PUBLISHING, PUBLISHED, FAILED, IN_DOUBT = "publishing", "published", "failed", "in_doubt"
PLATFORMS = ("outbox", "x", "meta", "webhook")
STALE_PUBLISHING_SECONDS = 120.0
"""A publication still `publishing` this long after its last recorded step belongs to a process that
died (the API function times out after 30 s; each part is one request of at most 10 s)."""
POSTED, NOT_POSTED = "posted", "not_posted"


class IncidentClosed(PublishError):
    status = 409


class PublishInDoubt(PublishError):
    """This publication may have a part on the platform that Klaxon could not confirm: a request
    whose answer was lost, or an attempt that started and never reported back. Nothing is sent
    until a person checks the platform and resolves it (`resolve_in_doubt`). `details` says which
    part, what is recorded, and why."""

    status = 409

    def __init__(self, message: str, details: dict[str, object], status: int = 409) -> None:
        super().__init__(message)
        self.details = details
        self.status = status


class NothingInDoubt(PublishError):
    """A resolution for a publication that is not in doubt, or for another part than the one in doubt."""

    status = 409


class PublicationNotFound(PublishError):
    status = 404


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
    state: str = PUBLISHED
    part_count: int | None = None
    doubt_part: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
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
            "state": self.state,
            "part_count": self.part_count,
        }
        if self.state != PUBLISHED:
            out["error"] = self.error
            out["in_doubt_part"] = self.doubt_part
        return out


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


def planned_parts(platform: str, text: str, target: Target) -> int:
    """How many posts or replies the publication of `text` to `target` is (derived from the text)."""
    if platform == "x":
        return len(x_adapter.thread_posts(text, target))
    if platform == "meta":
        return len(xtext.meta_parts(text))
    return 1


_URLS = {"x": "https://x.com/i/web/status/{}", "meta": "https://www.facebook.com/{}"}


def _url(platform: str, first_id: str) -> str | None:
    """The URL the adapter would have given for a publication whose first part is `first_id`."""
    return _URLS[platform].format(first_id) if platform in _URLS else None


def _from_item(item: PublicationItem, already: bool) -> Publication:
    state = item.state
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
        state=IN_DOUBT if _in_doubt(item) else state,
        part_count=int(item.part_count) if item.part_count is not None else None,
        doubt_part=_doubt_part(item) if _in_doubt(item) else None,
        error=item.error,
    )


def _posted(item: PublicationItem) -> list[str]:
    return [str(i) for i in item.part_ids or ()]


def _stale(item: PublicationItem, now: float | None = None) -> bool:
    return item.state == PUBLISHING and (time.time() if now is None else now) - float(item.updated_at) > (
        STALE_PUBLISHING_SECONDS
    )


def _in_doubt(item: PublicationItem, now: float | None = None) -> bool:
    return item.state == IN_DOUBT or _stale(item, now)


def _doubt_part(item: PublicationItem) -> int:
    return int(item.doubt_part) if item.doubt_part is not None else len(_posted(item)) + 1


def _doubt_details(item: PublicationItem) -> dict[str, object]:
    return {
        "state": IN_DOUBT if _in_doubt(item) else item.state,
        "platform": item.platform,
        "target": item.target,
        "version_hash": item.hash,
        "part": _doubt_part(item),
        "part_count": int(item.part_count) if item.part_count is not None else None,
        "posted_part_ids": _posted(item),
        "since": float(item.updated_at),
        "reason": item.error or "the attempt started and never reported back",
    }


def _doubt_message(item: PublicationItem) -> str:
    total = f" of {int(item.part_count)}" if item.part_count is not None else ""
    posted = _posted(item)
    up = f"; parts already up: {', '.join(posted)}" if posted else ""
    why = item.error or "the attempt started and never reported back"
    return (
        f"publication of {short(item.hash)} to {item.platform} is in doubt: part {_doubt_part(item)}{total} "
        f"may or may not be on the platform ({why}){up}. Nothing more is sent: check the platform, then "
        "resolve it (POST /incidents/{id}/resolve-publication with the part and whether it is up)"
    )


def _claim(item: PublicationItem, next_version_sk: str) -> PublicationItem:
    """Claim the publication and return the stored item: `publishing` and held by this call (new, or
    taken back from `failed`, with the parts already up in `part_ids`), or `published` (done before),
    or `publishing` with every part recorded (a process died before writing `published`: finish it).
    Raises PublishInDoubt when a part may be up unrecorded, or another attempt is in progress."""
    conn = PublicationItem._get_connection().connection  # type: ignore[attr-defined]
    try:
        with TransactWrite(connection=conn) as tx:
            tx.save(item, condition=PublicationItem.sk.does_not_exist())
            tx.condition_check(StatementItem, item.pk, next_version_sk, condition=StatementItem.sk.does_not_exist())
        return item
    except TransactWriteError as exc:
        _raise_if_draft_changed(exc, item)
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if len(reasons) < 2 or reasons[1] != "ConditionalCheckFailed":
            raise
    existing = PublicationItem.get(item.pk, item.sk, consistent_read=True)
    if existing.state == PUBLISHED:
        return existing
    total = int(existing.part_count) if existing.part_count is not None else int(item.part_count or 1)
    if existing.state == PUBLISHING and len(_posted(existing)) >= total:
        return existing  # every part is up and recorded; only `published` is missing
    if existing.state == IN_DOUBT or _stale(existing):
        raise PublishInDoubt(_doubt_message(existing), _doubt_details(existing))
    if existing.state == PUBLISHING:
        raise PublishInDoubt(
            f"publication of {short(item.hash)} to {item.platform} is in progress (started "
            f"{time.time() - float(existing.created_at):.0f} s ago); check again in a minute",
            _doubt_details(existing),
        )
    try:  # failed before (refused, nothing unrecorded is up): take it again, after the recorded parts
        with TransactWrite(connection=conn) as tx:
            tx.condition_check(StatementItem, item.pk, next_version_sk, condition=StatementItem.sk.does_not_exist())
            tx.update(
                existing,
                actions=[PublicationItem.state.set(PUBLISHING), PublicationItem.updated_at.set(time.time())],
                condition=(PublicationItem.state == FAILED) & (PublicationItem.updated_at == existing.updated_at),
            )
    except TransactWriteError as exc:
        _raise_if_draft_changed(exc, item)
        raise PublishInDoubt(
            "another attempt took this publication at the same moment", _doubt_details(existing)
        ) from exc
    return PublicationItem.get(item.pk, item.sk, consistent_read=True)


def _raise_if_draft_changed(exc: TransactWriteError, item: PublicationItem) -> None:
    # PynamoDB sends condition checks before puts and updates: [0] is "no newer version".
    reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
    if reasons and reasons[0] == "ConditionalCheckFailed":
        current = statements.current_draft(item.incident_id, item.lang)
        raise statements.DraftChanged("the draft was edited; the new version needs its own approvals", current) from exc


def _progress(stored: PublicationItem) -> Progress:
    """Record each part on the publication item as the platform accepts it (conditional: this call
    still holds the claim and no other part was recorded in between)."""
    posted = _posted(stored)

    def record(index: int, post_id: str) -> None:
        if index != len(posted):
            raise RuntimeError(f"part {index + 1} reported out of order ({len(posted)} recorded)")
        actions: list[Any] = [
            PublicationItem.part_ids.set(cast(Any, [*posted, post_id])),
            PublicationItem.updated_at.set(time.time()),
        ]
        if index == 0:
            actions.append(PublicationItem.platform_id.set(post_id))
        stored.update(
            actions=actions,
            condition=(PublicationItem.state == PUBLISHING) & (size(PublicationItem.part_ids) == index),
        )
        posted.append(post_id)

    return Progress(tuple(posted), record)


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
    version. Publishing the same version to the same target again returns the first result and
    sends nothing; after a refusal it sends only the parts not yet up.
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
        part_ids=[],
        part_count=planned_parts(publisher.platform, draft.text, target),
        actor=actor,
        created_at=now,
        updated_at=now,
    )
    stored = _claim(item, f"stmt#{lang}#v{draft.version + 1:04d}")
    if stored.state == PUBLISHED:
        _after_published(stored, incident.brand, actor, channel, reply_to, surface)
        return _from_item(_reload(stored), already=True)
    total = int(stored.part_count) if stored.part_count is not None else int(item.part_count)
    posted = _posted(stored)
    try:
        if len(posted) >= total:  # every part is up and recorded: nothing to send
            ref = PublishedRef(posted[0], _url(stored.platform, posted[0]), tuple(posted))
        else:
            ref = publisher.publish(draft.text, draft.hash, target, _progress(stored))
    except Exception as exc:
        _record_failure(_reload(stored), exc, actor, channel, total)
        raise
    finished = _finish(stored, ref, actor, channel, from_states=(PUBLISHING,))
    _after_published(finished, incident.brand, actor, channel, reply_to, surface)
    return _from_item(_reload(finished), already=False)


def _reload(item: PublicationItem) -> PublicationItem:
    return PublicationItem.get(item.pk, item.sk, consistent_read=True)


def _record_failure(stored: PublicationItem, exc: Exception, actor: str, channel: str, total: int) -> None:
    """A refusal leaves the publication `failed` (a retry continues after the recorded parts); anything
    else leaves it `in_doubt` and raises PublishInDoubt (502) from `exc`."""
    posted = _posted(stored)
    part = len(posted) + 1
    where = f"{stored.lang} v{int(stored.version)} {short(stored.hash)} to {stored.platform}"
    refused = isinstance(exc, PublishError) and not isinstance(exc, OutcomeUnknown)
    new_state = FAILED if refused else IN_DOUBT
    actions: list[Any] = [
        PublicationItem.state.set(new_state),
        PublicationItem.error.set(str(exc)[:500] or type(exc).__name__),
        PublicationItem.updated_at.set(time.time()),
    ]
    actions.append(PublicationItem.doubt_part.remove() if refused else PublicationItem.doubt_part.set(part))
    try:
        stored.update(actions=actions, condition=PublicationItem.state == PUBLISHING)
    except UpdateError:  # left `publishing`: a retry finds it stale, which is in doubt as well
        log.exception("publication_state_not_recorded pk=%s sk=%s state=%s", stored.pk, stored.sk, new_state)
    up = f"{len(posted)} of {total} parts up ({', '.join(posted)})" if posted else f"none of {total} parts up"
    if refused:
        detail = f"{where}: {str(exc)[:200]}; {up}; a retry sends part {part} on"
        incidents.record(
            stored.incident_id, actor=actor, action="statement_publish_failed", channel=channel, detail=detail
        )
        return
    detail = f"{where}: part {part} of {total} may be up ({str(exc)[:200]}); {up}; check the platform, then resolve"
    incidents.record(
        stored.incident_id, actor=actor, action="statement_publish_in_doubt", channel=channel, detail=detail
    )
    doubted = _reload(stored)
    raise PublishInDoubt(_doubt_message(doubted), _doubt_details(doubted), status=502) from exc


def _detail_prefix(item: PublicationItem) -> str:
    return f"{item.lang} v{int(item.version)} {short(item.hash)} to {item.platform} {item.target}: "


def _published_detail(item: PublicationItem, ids: list[str], suffix: str = "") -> str:
    return f"{_detail_prefix(item)}{ids[0] if ids else '?'}{suffix}"


def _finish(
    stored: PublicationItem,
    ref: PublishedRef,
    actor: str,
    channel: str,
    *,
    from_states: tuple[str, ...],
    condition: Any = None,
    suffix: str = "",
) -> PublicationItem:
    """Write `published`, the ids and the `statement_published` timeline entry in one transaction
    (conditional on the state), then announce the entry. Someone else finishing first is fine."""
    ids = list(ref.part_ids or (ref.platform_id,))
    entry = incidents.timeline_entry(
        stored.incident_id,
        actor=actor,
        action="statement_published",
        channel=channel,
        detail=_published_detail(stored, ids, suffix),
        at=time.time(),
    )
    actions: list[Any] = [
        PublicationItem.state.set(PUBLISHED),
        PublicationItem.platform_id.set(ids[0]),
        PublicationItem.part_ids.set(cast(Any, ids)),
        PublicationItem.timeline_sk.set(entry.sk),
        PublicationItem.doubt_part.remove(),
        PublicationItem.updated_at.set(entry.at),
    ]
    if ref.url:
        actions.append(PublicationItem.url.set(ref.url))
    guard = PublicationItem.state.is_in(*from_states)
    conn = PublicationItem._get_connection().connection  # type: ignore[attr-defined]
    try:
        with TransactWrite(connection=conn) as tx:
            tx.update(stored, actions=actions, condition=guard if condition is None else guard & condition)
            tx.save(entry, condition=TimelineItem.sk.does_not_exist())
    except TransactWriteError:
        current = _reload(stored)
        if current.state != PUBLISHED:
            raise
        return current  # finished concurrently by a retry: its entry stands
    incidents.announce(stored.incident_id, entry)
    return _reload(stored)


def _after_published(
    item: PublicationItem, brand: str, actor: str, channel: str, reply_to: str | None, surface: str | None
) -> None:
    """The bookkeeping after `published`, safe to repeat: the timeline entry for a publication stored
    before entries were written with it, the incident's move to published, the triage entry."""
    if item.timeline_sk is None:
        _legacy_timeline_entry(item, actor, channel)
    _move_to_published(item.incident_id, actor, channel)
    if reply_to:
        _answered_in_triage(brand, item.platform, surface, reply_to, actor)


def _legacy_timeline_entry(item: PublicationItem, actor: str, channel: str) -> None:
    """A publication stored `published` before its entry was written in the same transaction: point
    it at its entry, or write the entry if the process died before it (once: conditional)."""
    prefix = _detail_prefix(item)
    found = next(
        (
            e
            for e in incidents.timeline(item.incident_id)
            if e.action == "statement_published" and (e.detail or "").startswith(prefix)
        ),
        None,
    )
    if found is not None:
        try:
            item.update(
                actions=[PublicationItem.timeline_sk.set(found.sk)],
                condition=PublicationItem.timeline_sk.does_not_exist(),
            )
        except UpdateError:
            pass  # another retry did it
        return
    entry = incidents.timeline_entry(
        item.incident_id,
        actor=actor,
        action="statement_published",
        channel=channel,
        detail=_published_detail(item, _posted(item)),
        at=time.time(),
    )
    conn = PublicationItem._get_connection().connection  # type: ignore[attr-defined]
    try:
        with TransactWrite(connection=conn) as tx:
            tx.update(
                item,
                actions=[PublicationItem.timeline_sk.set(entry.sk)],
                condition=PublicationItem.timeline_sk.does_not_exist(),
            )
            tx.save(entry, condition=TimelineItem.sk.does_not_exist())
    except TransactWriteError:
        return  # another retry wrote it
    incidents.announce(item.incident_id, entry)


def resolve_in_doubt(
    incident_id: str,
    *,
    version_hash: str,
    platform: str,
    actor: str,
    part: int,
    outcome: str,
    post_id: str | None = None,
    reply_to: str | None = None,
    surface: str | None = None,
    mode: str = "thread",
    channel: str = "api",
    note: str | None = None,
    lang: str | None = None,
) -> Publication:
    """A person checked the platform for the part in doubt and says whether it is up.

    `posted` (with the platform's `post_id`): the id is recorded; if it was the last part the
    publication is `published` (timeline entry, incident moved), else `failed`, so the next publish
    continues after it. `not_posted`: the publication becomes `failed`, so the next publish sends
    that part again. Nothing is sent here. Raises PublicationNotFound, NothingInDoubt.
    """
    bind()
    if outcome not in (POSTED, NOT_POSTED):
        raise NothingInDoubt(f"outcome must be {POSTED!r} or {NOT_POSTED!r}")
    if outcome == POSTED and not post_id:
        raise NothingInDoubt("say which post is up: post_id is the platform's id of that part")
    key = Target(signer_id="", reply_to=reply_to, surface=surface, mode=mode).key()
    item = get_publication(incident_id, version_hash, platform, key)
    if item is None or (lang is not None and item.lang != lang):
        raise PublicationNotFound(f"no publication of {short(version_hash)} to {platform} {key}")
    if not _in_doubt(item):
        state = "in progress" if item.state == PUBLISHING else item.state
        raise NothingInDoubt(f"publication of {short(version_hash)} to {platform} is {state}, not in doubt")
    doubt = _doubt_part(item)
    if part != doubt:
        raise NothingInDoubt(f"part {doubt} is the one in doubt, not part {part}")
    posted = _posted(item)
    total = int(item.part_count) if item.part_count is not None else doubt
    # The item must still be exactly what the person looked at.
    unchanged = (PublicationItem.updated_at == item.updated_at) & (size(PublicationItem.part_ids) == len(posted))
    how = f" ({note.strip()[:200]})" if note and note.strip() else ""
    where = f"{item.lang} v{int(item.version)} {short(item.hash)} to {item.platform}"
    if outcome == POSTED and len(posted) + 1 >= total:
        ids = [*posted, str(post_id)]
        url = _url(platform, ids[0])
        suffix = f" (part {doubt} confirmed on the platform by {actor})"
        try:
            done = _finish(
                item,
                PublishedRef(ids[0], url, tuple(ids)),
                actor,
                channel,
                from_states=(IN_DOUBT, PUBLISHING),
                condition=unchanged,
                suffix=suffix,
            )
        except TransactWriteError as exc:
            raise NothingInDoubt("the publication changed while it was being resolved; reload it") from exc
        incidents.record(
            incident_id,
            actor=actor,
            action="statement_publish_resolved",
            channel=channel,
            detail=f"{where}: part {doubt} of {total} is up as {post_id}{how}; published",
        )
        _after_published(done, incidents.get(incident_id).brand, actor, channel, reply_to, surface)
        return _from_item(_reload(done), already=False)
    actions: list[Any] = [
        PublicationItem.state.set(FAILED),
        PublicationItem.doubt_part.remove(),
        PublicationItem.updated_at.set(time.time()),
    ]
    if outcome == POSTED:
        ids = [*posted, str(post_id)]
        actions.append(PublicationItem.part_ids.set(cast(Any, ids)))
        if not posted:
            actions.append(PublicationItem.platform_id.set(str(post_id)))
        said = f"part {doubt} of {total} is up as {post_id}{how}; a retry sends part {doubt + 1} on"
    else:
        said = f"part {doubt} of {total} is not up{how}; a retry sends it"
    actions.append(PublicationItem.error.set(f"resolved by {actor}: {said}"[:500]))
    try:
        item.update(actions=actions, condition=PublicationItem.state.is_in(IN_DOUBT, PUBLISHING) & unchanged)
    except UpdateError as exc:
        raise NothingInDoubt("the publication changed while it was being resolved; reload it") from exc
    incidents.record(
        incident_id, actor=actor, action="statement_publish_resolved", channel=channel, detail=f"{where}: {said}"
    )
    return _from_item(_reload(item), already=False)


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


def publications(incident_id: str, *, every_state: bool = False) -> list[Publication]:
    """Everything published for an incident (with `every_state`, also what failed or is in doubt)."""
    bind()
    items = PublicationItem.query(
        f"incident#{incident_id}", PublicationItem.sk.startswith("pub#"), consistent_read=True
    )
    return [_from_item(i, already=False) for i in items if every_state or i.state == PUBLISHED]


def get_publication(incident_id: str, version_hash: str, platform: str, target_key: str) -> PublicationItem | None:
    bind()
    try:
        return PublicationItem.get(
            f"incident#{incident_id}", f"pub#{version_hash}#{platform}#{target_key}", consistent_read=True
        )
    except DoesNotExist:
        return None
