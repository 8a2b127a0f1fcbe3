"""The per-brand triage queue in DynamoDB: exactly-once grouping writes, the ordered queue, handled,
and response-time breaches.

Exactly once under SQS redelivery
---------------------------------
A batch's mentions that need a reply (up to 16 per group) are written by one transaction holding,
per mention, its member record `mem#<mention key>` (conditional on not existing) and, once per item
however many of the mentions touch it: each entry's creation (conditional on not existing) or update
(conditional on the `version` read and `status = open`), the author's and the text's pointer when
missing or pointing at a closed entry (conditional on what was read), and for replies `ADD n` to the
thread's reply count. Either all of it lands or none does, so a redelivered batch, a replayed webhook
or two Lambdas racing on one mention add it to a group once: the loser's transaction fails, it reads
again and finds the member (a duplicate). A group that keeps losing (a copy campaign's hot entry) is
retried whole with a growing jittered pause, so the hot entry takes one write per batch rather than
one per post, then split into single posts. The ingest flow runs triage for the batch's counted
mentions and for those it found already counted, so a crash between the counting commit and the
triage write is repaired by the redelivery.

Grouping
--------
A post joins the open entry its author's pointer names (the same person's repeated posts: one reply
answers them), else the open entry its text fingerprint's pointer names (identical copies from many
accounts: one answer fits all), else it opens a new entry. An entry marked handled stops collecting; the
author's next post opens a new one.

Clocks and breaches
-------------------
An entry's clock starts at its first post's `created_at` (the customer's clock, as Sprout Social and
Zendesk measure first reply time) and runs for the brand's target on the first post's platform. Open
entries with a running clock are in the `open-incidents` index under "triage" by due time; the
sweeper reads those due and claims each breach with a conditional update (`status = open` and no
`breached_at`), so each entry breaches once however many sweeps run; only the winner emits
`triage.breach`.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass
from typing import Any, cast

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings, settings
from chalicelib.ingest.models import Mention
from chalicelib.observability import logger
from chalicelib.sentiment.text import normalise
from chalicelib.store.models import (
    TriageDueIndex,
    TriageEntryItem,
    TriageMemberItem,
    TriagePointerItem,
    TriageThreadItem,
    bind,
)
from chalicelib.triage import rules as triage_rules
from chalicelib.triage.models import Triage

OPEN, HANDLED = "open", "handled"
SHARD = "triage"
BREACH_ANNOUNCE = "triage-announce"
"""`open_shard` of a breached entry whose `triage.breach` event has not reached SQS yet: written in the
same conditional update that records the breach (an outbox), removed once the event is queued or
parked; the sweeper relays entries still marked (`announce_breaches`), so a crash between the two
writes cannot lose the event."""
STATUSES = (OPEN, HANDLED, "all")
KEEP_KEYS = 10
TEXT_CHARS = 500
_ROUNDS = 8
_MIN_FINGERPRINT_CHARS = 16
_WORDS = re.compile(r"\w+")


class EntryNotFound(LookupError):
    pass


class QueueContended(RuntimeError):
    """The entry kept changing under us; the batch is retried by SQS."""


@dataclass(frozen=True)
class Enqueued:
    outcome: str  # new | joined | duplicate | contended (not written: the caller retries it later)
    entry_id: str
    triage: Triage | None = None


def entry_pk(brand: str) -> str:
    return f"triage#{brand}"


def entry_id_for(brand: str, mention: Mention, generation: int = 0) -> str:
    """The id of the entry `mention` opens. generation: the retention period it is opened in (clock //
    retention, see `_generation`). The post's member record lives one retention period, so the same post
    can only open an entry again in a later period, under a new id: its old entry may still be alive
    (a copy that joined it renewed its expiry), and reusing that id would fail on every delivery."""
    key = f"{brand}|{mention.key}" + (f"|{generation}" if generation else "")
    return "tq_" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


def _generation(clock: float, expires: int) -> int:
    """The retention period `clock` falls in (expires = clock + retention)."""
    return int(clock) // max(1, expires - int(clock))


def fingerprint(text: str) -> str | None:
    """Identical-copy key: the normalised words (URLs, handles, digits, case and marks ignored). Short
    texts ("why??") get none: many people write them independently and each deserves an answer."""
    words = " ".join(w for w in _WORDS.findall(normalise(text)) if w not in ("_url_", "user"))
    if len(words) < _MIN_FINGERPRINT_CHARS:
        return None
    return hashlib.blake2b(words.encode(), digest_size=8).hexdigest()


def author_ident(mention: Mention) -> str | None:
    ident = mention.author.id or mention.author.handle
    return f"{mention.platform}#{ident}" if ident else None


def _pointer_keys(mention: Mention) -> list[str]:
    keys = []
    author = author_ident(mention)
    if author:
        keys.append(f"ptr#a#{author}")
    fp = fingerprint(mention.text)
    if fp:
        keys.append(f"ptr#t#{fp}")
    return keys


def _live(item: Any, now: float) -> Any:
    """Items past their TTL are absent (moto never deletes them; DynamoDB does so lazily)."""
    return item if item is not None and (item.expires is None or item.expires > now) else None


def _get(model: Any, pk: str, sk: str) -> Any:
    try:
        return model.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


def _conn() -> Any:
    return TriageEntryItem._get_connection().connection  # type: ignore[attr-defined]


def _retention(cfg: Settings) -> int:
    return cfg.mention_retention_days * 86400


def prefetch(brand: str, mentions: list[Mention], cfg: Settings | None = None) -> dict[str, Any]:
    """Everything a group's plan reads for these mentions, in four BatchGetItem calls instead of up to
    six reads per mention: sort key -> item (None when absent). `_plan` applies the group's own changes
    on top, so a key two mentions share is seen by the second as the first left it."""
    bind(cfg or settings())
    pk = entry_pk(brand)
    cache: dict[str, Any] = {}

    def load(model: Any, sort_keys: list[str]) -> None:
        wanted = list(dict.fromkeys(sort_keys))
        cache.update(dict.fromkeys(wanted))
        if wanted:
            for item in model.batch_get([(pk, sk) for sk in wanted], consistent_read=True):
                cache[item.sk] = item

    load(TriageMemberItem, [f"mem#{m.key}" for m in mentions])
    load(TriagePointerItem, [sk for m in mentions for sk in _pointer_keys(m)])
    load(TriageThreadItem, [f"thr#{m.platform}#{m.reply_to}" for m in mentions if m.reply_to])
    entry_ids = {p.entry_id for sk, p in cache.items() if sk.startswith("ptr#") and p is not None}
    load(TriageEntryItem, [f"e#{eid}" for eid in sorted(entry_ids)])
    return cache


def enqueue(
    mention: Mention,
    rules: triage_rules.BrandRules,
    *,
    target_minutes: int,
    now: float | None = None,
    cfg: Settings | None = None,
) -> Enqueued:
    """Add `mention` (which needs a reply) to `rules.brand`'s queue exactly once; see the module docstring
    and `enqueue_many`, which this is for a single post."""
    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    done = _enqueue_group([mention], rules, lambda _: target_minutes, clock, cfg)[0]
    if done.outcome == CONTENDED:
        raise QueueContended(f"triage entry for {mention.key} kept changing")
    return done


CONTENDED = "contended"
_MENTIONS_PER_TRANSACTION = 16
"""At most five writes per mention (member, entry, two pointers, thread): 80 of DynamoDB's 100."""
_BATCH_ROUNDS = 5


@dataclass
class _Plan:
    """One transaction's writes for several mentions of one brand, merged per item: each entry, pointer
    and thread is written once however many of the mentions touch it."""

    outcomes: list[Enqueued]
    members: dict[str, str]  # member sort key -> entry id
    new_entries: dict[str, TriageEntryItem]  # entry id -> the entry as created (and joined) in this plan
    joined: dict[str, tuple[TriageEntryItem, TriageEntryItem, dict[str, Any]]]
    """entry id -> (the entry as read: its version is the write's condition, a working copy with the
    plan's joins applied, the attributes those joins changed)"""
    pointers: dict[str, tuple[str, str | None]]  # sort key -> (entry id, entry id it named when read)
    threads: dict[str, tuple[Any, int]]  # sort key -> (thread as read or None, replies added)


def _plan(
    mentions: list[Mention],
    rules: triage_rules.BrandRules,
    target_minutes: Any,
    cache: dict[str, Any],
    clock: float,
    expires: int,
    refresh_before: float,
) -> _Plan:
    """Apply the mentions in order to an in-memory view of what `prefetch` read, as `enqueue` would one
    by one; nothing is written here."""
    brand, pk = rules.brand, entry_pk(rules.brand)
    plan = _Plan([], {}, {}, {}, {}, {})

    def entry_view(entry_id: str) -> Any:
        if entry_id in plan.new_entries:
            return plan.new_entries[entry_id]
        if entry_id in plan.joined:
            return plan.joined[entry_id][1]
        return _live(cache.get(f"e#{entry_id}"), clock)

    def pointer_view(sk: str) -> str | None:
        if sk in plan.pointers:
            return plan.pointers[sk][0]
        pointer = cache.get(sk)
        return None if pointer is None else str(pointer.entry_id)

    for mention in mentions:
        member_sk = f"mem#{mention.key}"
        if member_sk in plan.members:
            plan.outcomes.append(Enqueued("duplicate", plan.members[member_sk]))
            continue
        member = _live(cache.get(member_sk), clock)
        if member is not None:
            plan.outcomes.append(Enqueued("duplicate", member.entry_id))
            continue
        thread_sk = f"thr#{mention.platform}#{mention.reply_to}" if mention.reply_to else None
        thread_read, thread_added = (
            plan.threads.get(thread_sk, (_live(cache.get(thread_sk), clock), 0)) if thread_sk else (None, 0)
        )
        replies = (int(thread_read.replies) if thread_read is not None else 0) + thread_added
        result = triage_rules.triage(mention, rules, thread_replies=replies)
        named = {sk: pointer_view(sk) for sk in _pointer_keys(mention)}
        open_ids = {
            eid for eid in named.values() if eid is not None and getattr(entry_view(eid), "status", None) == OPEN
        }
        entry_id = next((eid for eid in named.values() if eid in open_ids), None)
        if entry_id is None:
            entry_id = entry_id_for(brand, mention, _generation(clock, expires))
            plan.new_entries[entry_id] = _new_entry(
                pk, entry_id, mention, result, target_minutes(mention.platform), clock, expires
            )
            outcome = "new"
        else:
            if entry_id not in plan.new_entries and entry_id not in plan.joined:
                read_entry = entry_view(entry_id)
                plan.joined[entry_id] = (read_entry, _copy(read_entry), {})
            working = entry_view(entry_id)
            step = _join_changes(working, mention, result, clock, expires)
            for name, value in step.items():
                setattr(working, name, value)
            if entry_id in plan.joined:
                plan.joined[entry_id][2].update(step)
            outcome = "joined"
        for sk, was in named.items():
            if was is not None and was != entry_id and was in open_ids:
                continue  # another open group's (copies keep their own group)
            read = cache.get(sk)
            if was == entry_id and (sk in plan.pointers or (read is not None and read.expires > refresh_before)):
                continue  # already ours
            plan.pointers[sk] = (entry_id, plan.pointers[sk][1] if sk in plan.pointers else was)
        if thread_sk:
            plan.threads[thread_sk] = (thread_read, thread_added + 1)
        plan.members[member_sk] = entry_id
        plan.outcomes.append(Enqueued(outcome, entry_id, result))
    return plan


def _copy(entry: TriageEntryItem) -> TriageEntryItem:
    return TriageEntryItem(
        entry.pk, entry.sk, **{k: v for k, v in entry.attribute_values.items() if k not in ("pk", "sk")}
    )


def _write(plan: _Plan, pk: str, clock: float, expires: int) -> None:
    """The plan as one transaction: every condition `enqueue` would check, once per item."""
    with TransactWrite(connection=_conn()) as tx:
        for member_sk, entry_id in plan.members.items():
            tx.save(
                TriageMemberItem(pk, member_sk, entry_id=entry_id, expires=expires),
                condition=TriageMemberItem.pk.does_not_exist() | (TriageMemberItem.expires < int(clock)),
            )
        for entry in plan.new_entries.values():
            tx.save(entry, condition=TriageEntryItem.pk.does_not_exist() | (TriageEntryItem.expires < int(clock)))
        for entry, _working, changes in plan.joined.values():
            tx.update(
                entry,
                actions=_set_actions({**changes, "version": int(entry.version) + 1}),
                condition=(TriageEntryItem.version == entry.version) & (TriageEntryItem.status == OPEN),
            )
        for sk, (entry_id, was) in plan.pointers.items():
            tx.save(
                TriagePointerItem(pk, sk, entry_id=entry_id, expires=expires),
                condition=TriagePointerItem.pk.does_not_exist() if was is None else TriagePointerItem.entry_id == was,
            )
        for sk, (read, added) in plan.threads.items():
            if read is None:
                tx.save(
                    TriageThreadItem(pk, sk, replies=added, expires=expires),
                    condition=TriageThreadItem.pk.does_not_exist() | (TriageThreadItem.expires < int(clock)),
                )
            else:
                tx.update(
                    TriageThreadItem(pk, sk),
                    actions=[TriageThreadItem.replies.add(added), TriageThreadItem.expires.set(expires)],
                    condition=TriageThreadItem.expires >= int(clock),
                )


def enqueue_many(
    mentions: list[Mention],
    rules: triage_rules.BrandRules,
    *,
    target_minutes: Any,
    now: float | None = None,
    cfg: Settings | None = None,
) -> list[Enqueued]:
    """`enqueue` for several mentions of `rules.brand` (in order), one transaction per 16 of them instead
    of one per mention: the same conditions, checked once per item, so the outcome is what `enqueue` one
    by one would give. If another writer changed any of those items meanwhile, the transaction fails
    whole and the group is read and written again (see `_enqueue_group`). One outcome per mention, in
    order; a post that kept losing to other writers comes back `contended`, unwritten, for the caller
    to retry (the ingest handler hands its record back to SQS).
    `target_minutes(platform)`: the brand's response target."""
    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    out: list[Enqueued] = []
    for start in range(0, len(mentions), _MENTIONS_PER_TRANSACTION):
        out += _enqueue_group(mentions[start : start + _MENTIONS_PER_TRANSACTION], rules, target_minutes, clock, cfg)
    return out


def _enqueue_group(
    group: list[Mention], rules: triage_rules.BrandRules, target_minutes: Any, clock: float, cfg: Settings
) -> list[Enqueued]:
    """Plan and write `group` as one transaction; when another writer changed an item meanwhile (a
    busy copy campaign: every batch joins the same entry), read again and retry the whole group after
    a growing jittered pause, so the hot entry takes one write per batch rather than one per post.
    A group still losing after `_BATCH_ROUNDS` is split into single posts (fewer items to collide on);
    a single post still losing after `_ROUNDS` comes back `contended`, the others are written."""
    expires = int(clock) + _retention(cfg)
    refresh_before = clock + _retention(cfg) / 2
    rounds = _ROUNDS if len(group) == 1 else _BATCH_ROUNDS
    for attempt in range(rounds):
        plan = _plan(group, rules, target_minutes, prefetch(rules.brand, group, cfg), clock, expires, refresh_before)
        if not plan.members:
            return plan.outcomes
        try:
            _write(plan, entry_pk(rules.brand), clock, expires)
            return plan.outcomes
        except TransactWriteError as exc:
            reasons = {r.code for r in (exc.cancellation_reasons or []) if r is not None}
            if not reasons & {"ConditionalCheckFailed", "TransactionConflict"}:
                raise
        time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 5)))
    if len(group) == 1:
        return [Enqueued(CONTENDED, entry_id_for(rules.brand, group[0], _generation(clock, expires)))]
    return [done for m in group for done in _enqueue_group([m], rules, target_minutes, clock, cfg)]


def _clip(text: str) -> str | None:
    return text[:TEXT_CHARS] if text else None


def _new_entry(
    pk: str, entry_id: str, mention: Mention, result: Triage, target_minutes: int, now: float, expires: int
) -> TriageEntryItem:
    first_at = min(mention.created_at.timestamp(), now)
    return TriageEntryItem(
        pk,
        f"e#{entry_id}",
        entry_id=entry_id,
        brand=result.brand,
        platform=mention.platform,
        author=mention.author.handle or mention.author.id,
        status=OPEN,
        count=1,
        first_at=first_at,
        last_at=first_at,
        target_minutes=target_minutes,
        due=first_at + target_minutes * 60,
        peak=result.urgency,
        urgency=triage_rules.group_urgency(result.urgency, 1),
        topics=list(result.topics),
        language=result.language,
        sentiment=result.sentiment,
        question=int(result.question),
        crisis=int(result.crisis),
        playbook=result.playbook,
        followers=mention.author.followers,
        text=_clip(mention.text),
        url=mention.url,
        mention_key=mention.key,
        mention_keys=[mention.key],
        open_shard=SHARD,
        version=1,
        expires=expires,
    )


def _join_changes(entry: TriageEntryItem, mention: Mention, result: Triage, now: float, expires: int) -> dict[str, Any]:
    """What joining `mention` changes in `entry` (attribute name -> new value); the version is the caller's."""
    created = min(mention.created_at.timestamp(), now)
    count = int(entry.count) + 1
    peak = max(int(entry.peak), result.urgency)
    changes: dict[str, Any] = {
        "count": count,
        "peak": peak,
        "urgency": triage_rules.group_urgency(peak, count),
        "topics": list(dict.fromkeys([*(entry.topics or []), *result.topics])),
        "expires": max(expires, int(entry.expires)),
    }
    if created >= float(entry.last_at):  # the latest post is what a reply answers
        changes.update(last_at=created, mention_key=mention.key)
        if mention.text:
            changes["text"] = mention.text[:TEXT_CHARS]
        if mention.url:
            changes["url"] = mention.url
    if created < float(entry.first_at):  # an older post arrived late: the clock started earlier
        changes["first_at"] = created
        if entry.breached_at is None:
            changes["due"] = created + int(entry.target_minutes) * 60
    if len(entry.mention_keys or []) < KEEP_KEYS:
        changes["mention_keys"] = [*(entry.mention_keys or []), mention.key]
    if result.sentiment == "negative" and entry.sentiment != "negative":
        changes["sentiment"] = "negative"
    if result.question and not entry.question:
        changes["question"] = 1
    if result.crisis and not entry.crisis:
        changes["crisis"] = 1
    if result.playbook and not entry.playbook:
        changes["playbook"] = result.playbook
    if mention.author.followers is not None and mention.author.followers > int(entry.followers or 0):
        changes["followers"] = mention.author.followers
    return changes


def _set_actions(changes: dict[str, Any]) -> list[Any]:
    return [getattr(TriageEntryItem, name).set(cast(Any, value)) for name, value in changes.items()]


# --- reading -------------------------------------------------------------------------------------


def order_key(entry: Any) -> tuple[float, float, str]:
    """Queue order: most urgent first, then oldest first (longest waiting), then id (stable)."""
    return (-float(entry.urgency), float(entry.first_at), str(entry.entry_id))


def list_entries(
    brand: str,
    *,
    status: str = OPEN,
    topic: str | None = None,
    language: str | None = None,
    now: float | None = None,
    cfg: Settings | None = None,
) -> list[TriageEntryItem]:
    """The brand's queue in order (see `order_key`), filtered."""
    bind(cfg or settings())
    clock = time.time() if now is None else now
    found = []
    for item in TriageEntryItem.query(entry_pk(brand), TriageEntryItem.sk.startswith("e#"), consistent_read=True):
        if _live(item, clock) is None:
            continue
        if status != "all" and item.status != status:
            continue
        if topic and topic not in (item.topics or []):
            continue
        if language and item.language != language:
            continue
        found.append(item)
    return sorted(found, key=order_key)


def get_entry(brand: str, entry_id: str, *, now: float | None = None) -> TriageEntryItem:
    bind()
    clock = time.time() if now is None else now
    item = _live(_get(TriageEntryItem, entry_pk(brand), f"e#{entry_id}"), clock)
    if item is None:
        raise EntryNotFound(entry_id)
    return item


def as_dict(entry: TriageEntryItem, now: float | None = None) -> dict[str, Any]:
    clock = time.time() if now is None else now
    answered_at = entry.handled_at
    waited = (answered_at if answered_at is not None else clock) - float(entry.first_at)
    return {
        "entry_id": entry.entry_id,
        "brand": entry.brand,
        "status": entry.status,
        "urgency": int(entry.urgency),
        "count": int(entry.count),
        "platform": entry.platform,
        "author": entry.author,
        "followers": None if entry.followers is None else int(entry.followers),
        "topics": list(entry.topics or []),
        "language": entry.language,
        "sentiment": entry.sentiment,
        "question": bool(entry.question),
        "crisis": bool(entry.crisis),
        "playbook": entry.playbook,
        "text": entry.text,
        "url": entry.url,
        "mention_key": entry.mention_key,
        "first_at": float(entry.first_at),
        "last_at": float(entry.last_at),
        "target_minutes": int(entry.target_minutes),
        "due": float(entry.due),
        "seconds_left": None if answered_at is not None else round(float(entry.due) - clock),
        "waited_seconds": round(waited),
        "breached": entry.breached_at is not None or (answered_at or clock) > float(entry.due),
        "breached_at": entry.breached_at,
        "handled_at": entry.handled_at,
        "handled_by": entry.handled_by,
        "handled_via": entry.handled_via,
    }


# --- handled -------------------------------------------------------------------------------------


def mark_handled(
    brand: str, entry_id: str, *, actor: str, via: str, now: float | None = None, cfg: Settings | None = None
) -> tuple[TriageEntryItem, bool]:
    """Mark an entry answered; returns (entry, changed). Marking a handled entry again changes nothing."""
    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    entry = get_entry(brand, entry_id, now=clock)
    for _attempt in range(3):
        if entry.status == HANDLED:
            return entry, False
        actions = [
            TriageEntryItem.status.set(HANDLED),
            TriageEntryItem.handled_at.set(clock),
            TriageEntryItem.handled_by.set(actor[:64]),
            TriageEntryItem.handled_via.set(via),
            TriageEntryItem.version.add(1),  # atomic: never rolled back by a stale read
            TriageEntryItem.expires.set(int(clock) + _retention(cfg)),
        ]
        condition = TriageEntryItem.status == OPEN
        if entry.open_shard != BREACH_ANNOUNCE:  # a breach event still to be sent keeps its outbox mark
            actions.append(TriageEntryItem.open_shard.remove())
            condition &= TriageEntryItem.open_shard.does_not_exist() | (TriageEntryItem.open_shard == SHARD)
        try:
            entry.update(actions=actions, condition=condition)
            break
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            entry = get_entry(brand, entry_id, now=clock)  # handled meanwhile, or a sweep just breached it
    else:
        raise QueueContended(f"triage entry {entry_id} kept changing")
    logger.info("triage entry handled", extra={"brand": brand, "entry_id": entry_id, "via": via})
    return entry, True


def handled_by_reply(brand: str, mention_key: str, *, actor: str, now: float | None = None) -> str | None:
    """Klaxon published a reply to `mention_key`: mark the entry holding it handled; its id, if any."""
    bind()
    clock = time.time() if now is None else now
    member = _live(_get(TriageMemberItem, entry_pk(brand), f"mem#{mention_key}"), clock)
    if member is None:
        return None
    try:
        mark_handled(brand, member.entry_id, actor=actor, via="publish", now=clock)
    except EntryNotFound:
        return None
    return str(member.entry_id)


# --- breaches ------------------------------------------------------------------------------------


def check_breaches(now: float | None = None, cfg: Settings | None = None) -> list[TriageEntryItem]:
    """Claim every open entry past its clock once (conditional update); emit `triage.breach` for each
    one this call claimed. Safe to run concurrently: each breach is claimed by exactly one caller."""
    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    claimed = []
    for entry in TriageEntryItem.due_index.query(SHARD, TriageDueIndex.opened_at <= clock):
        if _live(entry, clock) is None or entry.status != OPEN or entry.breached_at is not None:
            continue
        try:
            entry.update(
                actions=[
                    TriageEntryItem.breached_at.set(clock),
                    TriageEntryItem.open_shard.set(BREACH_ANNOUNCE),  # off the clock, onto the outbox
                    TriageEntryItem.version.add(1),  # atomic: never rolled back by a stale read
                ],
                condition=(TriageEntryItem.status == OPEN)
                & TriageEntryItem.breached_at.does_not_exist()
                & (TriageEntryItem.open_shard == SHARD),
            )
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            continue  # handled, or another sweep claimed it
        claimed.append(entry)
        _emit_breach(entry, clock, cfg)
    return claimed


def _emit_breach(entry: TriageEntryItem, now: float, cfg: Settings) -> int:
    from chalicelib.outbound import service as outbound

    data = {"entry": as_dict(entry, now), "link": None}
    return outbound.emit_event(
        "triage.breach",
        brand=entry.brand,
        key=f"triage.breach|{entry.brand}|{entry.entry_id}",
        occurred_at=float(entry.breached_at or now),
        data=data,
        cfg=cfg,
        settled=lambda: outbound.clear_mark(entry, BREACH_ANNOUNCE),
    )


def announce_breaches(
    now: float | None = None, *, grace_seconds: float = 60, cfg: Settings | None = None, limit: int = 100
) -> int:
    """The outbox relay (sweeper): emit `triage.breach` for entries breached more than `grace_seconds`
    ago whose event never reached SQS (the sweep died, or SQS and DynamoDB both refused); messages
    queued. Same event id as the original, so a relay racing the original is dropped by receivers."""
    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    sent = 0
    for entry in TriageEntryItem.due_index.query(BREACH_ANNOUNCE, limit=limit):
        if float(entry.breached_at or 0) > clock - grace_seconds:
            continue  # its sweep may still be sending it
        logger.warning("triage breach relayed", extra={"brand": entry.brand, "entry_id": entry.entry_id})
        sent += _emit_breach(entry, clock, cfg)
    return sent
