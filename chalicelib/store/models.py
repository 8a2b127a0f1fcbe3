"""PynamoDB models: the one place that knows table names, keys and attribute names.

Two tables:
- `<prefix>-mentions` (hash key `pk`): raw mentions (`m#<platform>#<id>`), the per-batch
  ingest ledger (`batch#<token>`), seen webhook ids (`wh#<source>#<id>`) and per-brand
  detector state (`detector#<brand>`). Items of
  different kinds share the table because each is looked up by its exact key only.
- `<prefix>-counters` (hash `pk` = `<brand>#<shard>`, range `minute` = epoch seconds of the
  minute): per-minute counts, one numeric attribute per (sentiment, language).

- `<prefix>-incidents` (hash `pk`, range `sk`): incidents (`incident#<id>`/`meta`), their
  append-only timelines (`incident#<id>`/`t#<ms>#<nonce>`), the one-open-incident lock per
  (brand, playbook) (`open#<brand>#<playbook>`/`lock`) and SMS code pointers (`code#<code>`/`code`);
  a sparse index `open-incidents` lists what is open.

Mention, ledger and counter items carry `expires` (epoch seconds, the table's TTL attribute). DynamoDB deletes
expired items lazily (up to days late) and moto never does, so readers treat an item whose
`expires` has passed as absent.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import Settings, settings

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
LANGUAGES: tuple[str, ...] = ("he", "en", "ar", "ru", "other")
_SENTIMENT_SHORT = {"negative": "neg", "neutral": "neu", "positive": "pos"}


def counter_attribute(sentiment: str, language: str) -> str:
    """Name of the counter attribute for one (sentiment, language) cell, e.g. `neg_he`."""
    return f"{_SENTIMENT_SHORT[sentiment]}_{language}"


COUNTER_ATTRIBUTES: tuple[str, ...] = tuple(counter_attribute(s, lang) for s in SENTIMENTS for lang in LANGUAGES)


class _Base(Model):
    class Meta:
        table_name = "klaxon-unbound"
        region = "us-east-1"
        host: str | None = None


class MentionItem(_Base):
    """One accepted mention; `claim` names the ingest batch responsible for counting it."""

    class Meta(_Base.Meta):
        table_name = "klaxon-mentions"

    pk = UnicodeAttribute(hash_key=True)
    platform = UnicodeAttribute()
    platform_id = UnicodeAttribute()
    brands = ListAttribute(of=UnicodeAttribute)
    text = UnicodeAttribute(null=True)
    language = UnicodeAttribute()
    sentiment = UnicodeAttribute()
    author = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    url = UnicodeAttribute(null=True)
    reply_to = UnicodeAttribute(null=True)
    claim = UnicodeAttribute()
    expires = NumberAttribute()


class LedgerItem(_Base):
    """Outcome of one ingest batch: `committed` (its counts landed) or `aborted` (they never will)."""

    class Meta(_Base.Meta):
        table_name = "klaxon-mentions"

    pk = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    ids = BinaryAttribute(null=True, legacy_encoding=False)
    expires = NumberAttribute()


class SeenWebhookItem(_Base):
    """A generic webhook id already accepted (Standard Webhooks deduplication)."""

    class Meta(_Base.Meta):
        table_name = "klaxon-mentions"

    pk = UnicodeAttribute(hash_key=True)
    expires = NumberAttribute()


class _CounterBase(_Base):
    class Meta(_Base.Meta):
        table_name = "klaxon-counters"

    pk = UnicodeAttribute(hash_key=True)
    minute = NumberAttribute(range_key=True)
    expires = NumberAttribute(null=True)


# One declared numeric attribute per (sentiment, language) cell, so each can take an atomic
# `ADD`; built with type() because PynamoDB collects attributes when the class is created.
CounterItem: type[_CounterBase] = type(
    "CounterItem",
    (_CounterBase,),
    {
        "__doc__": "Per-minute counts for one brand and write shard.",
        "__module__": __name__,
        **{name: NumberAttribute(null=True) for name in COUNTER_ATTRIBUTES},
    },
)


class DetectorStateItem(_Base):
    """Per-brand spike-detector state; `version` gives optimistic locking between batches."""

    class Meta(_Base.Meta):
        table_name = "klaxon-mentions"

    pk = UnicodeAttribute(hash_key=True)
    state = BinaryAttribute(legacy_encoding=False)
    version = VersionAttribute()
    expires = NumberAttribute(null=True)


class _IncidentBase(_Base):
    class Meta(_Base.Meta):
        table_name = "klaxon-incidents"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class _OpenIndex(GlobalSecondaryIndex[Any]):
    """The sparse `open-incidents` index: only items with `open_shard` set appear in it."""

    class Meta:
        index_name = "open-incidents"
        projection = AllProjection()
        read_capacity_units = 1
        write_capacity_units = 1

    open_shard = UnicodeAttribute(hash_key=True)
    opened_at = NumberAttribute(range_key=True)


class OpenIncidentIndex(_OpenIndex):
    """Open incidents (hash key "open")."""


class IncidentItem(_IncidentBase):
    """One incident (pk `incident#<id>`, sk `meta`); `version` makes concurrent updates safe."""

    id = UnicodeAttribute()
    code = UnicodeAttribute()
    brand = UnicodeAttribute()
    playbook = UnicodeAttribute()
    severity = UnicodeAttribute()
    status = UnicodeAttribute()
    opened_at = NumberAttribute()
    updated_at = NumberAttribute()
    opened_by = UnicodeAttribute()
    summary = UnicodeAttribute()
    observed = NumberAttribute(default=0)
    expected = NumberAttribute(default=0)
    peak_ratio = NumberAttribute(default=0)
    alarms = NumberAttribute(default=0)
    ack_due = NumberAttribute(null=True)
    response_due = NumberAttribute(null=True)
    acknowledged_at = NumberAttribute(null=True)
    acknowledged_by = UnicodeAttribute(null=True)
    first_response_at = NumberAttribute(null=True)
    resolved_at = NumberAttribute(null=True)
    breaches = ListAttribute(of=UnicodeAttribute, default=list)
    open_shard = UnicodeAttribute(null=True)
    open_index = OpenIncidentIndex()
    version = VersionAttribute()


class UnannouncedIndex(_OpenIndex):
    """The `open-incidents` index read as timeline entries whose outbound event is not yet queued
    (hash key "announce", range key the entry's time): the outbox the sweeper relays from."""


class TimelineItem(_IncidentBase):
    """One append-only timeline entry (pk `incident#<id>`, sk `t#<ms>#<nonce>`). An entry that is an
    outbound event is written with `open_shard = "announce"` (in the same write as the fact), removed
    once its event is queued: chalicelib/outbound/service.py."""

    at = NumberAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    channel = UnicodeAttribute()
    detail = UnicodeAttribute(null=True)
    open_shard = UnicodeAttribute(null=True)
    opened_at = NumberAttribute(null=True)
    unannounced_index = UnannouncedIndex()


class IncidentPointerItem(_IncidentBase):
    """`open#<brand>#<playbook>` (the one open incident) or `code#<code>` (SMS code lookup)."""

    incident_id = UnicodeAttribute()


# --- paging (issue 7): escalation state and page records ---------------------------------------
# Both live in `<prefix>-incidents` under the incident's partition key, next to its timeline:
#   `incident#<id>` / `esc#state`                       the escalation's position (one per incident)
#   `incident#<id>` / `page#r<round>s<step>#<person>`    one page of one person at one step (`page#fb#...`
#                                                       for the fallback): the idempotency record
# Active escalations carry `open_shard = "escalating"`, so the existing sparse `open-incidents`
# index lists them under their own hash key (an overloaded index: no table change, and open
# incidents, which carry "open", never mix with them).


class OpenEscalationIndex(_OpenIndex):
    """The `open-incidents` index read as escalation items (hash key "escalating")."""


class EscalationItem(_IncidentBase):
    """Where an incident's escalation stands; every move is conditional on `version`."""

    incident_id = UnicodeAttribute()
    playbook = UnicodeAttribute()
    policy = UnicodeAttribute()
    lead = UnicodeAttribute(null=True)  # the playbook's schedule, paged with step 0 of every round
    phase = UnicodeAttribute()  # "steps" | "fallback" | "done"
    round = NumberAttribute(default=0)
    step = NumberAttribute(default=0)
    targets = ListAttribute(of=UnicodeAttribute, default=list)  # person ids resolved when the step began
    step_started_at = NumberAttribute()
    due = NumberAttribute()  # the step's ack timeout runs out
    started_at = NumberAttribute()
    updated_at = NumberAttribute()
    reason = UnicodeAttribute(null=True)  # why it stopped
    open_shard = UnicodeAttribute(null=True)
    opened_at = NumberAttribute()
    open_index = OpenEscalationIndex()
    version = VersionAttribute()


class PageItem(_IncidentBase):
    """One page: created (conditionally) before the SMS is sent, so a person is paged once per step.

    `state` is the send: sending / sent / send_failed / unknown / rejected / gave_up; `delivery`
    is the vendor's last reported status, moved forward only (`delivery_rank`).
    """

    incident_id = UnicodeAttribute()
    position = UnicodeAttribute()
    person = UnicodeAttribute()
    phone = UnicodeAttribute()
    lang = UnicodeAttribute()
    state = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    next_attempt_at = NumberAttribute(null=True)
    sid = UnicodeAttribute(null=True)
    segments = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    error_code = NumberAttribute(null=True)
    delivery = UnicodeAttribute(null=True)
    delivery_rank = NumberAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()


PAGING_MODELS: tuple[type[Model], ...] = (EscalationItem, PageItem)
# --- end of paging ----------------------------------------------------------------------------------


# --- statements and publishing (issue 8): drafts, approvals, publications -------------------------
# All live in `<prefix>-incidents` under the incident's partition key, next to its timeline:
#   `incident#<id>` / `stmt#<lang>#v<nnnn>`                one draft version (zero-padded: sorts in order)
#   `incident#<id>` / `appr#<hash>#v<nnnn>#<person>`       one person's approval of that exact text
#   `incident#<id>` / `note#<hash>#<ms>#<person>`          a change request (the edit itself is a new version)
#   `incident#<id>` / `pub#<hash>#<platform>#<target>`     one publication: claimed before sending (sent once)
#   `incident#<id>` / `outbox#<ms>#<nonce>`                the local outbox publisher's messages
# `<hash>` is `chalicelib.statements.hashing.version_hash` of the text and signer. Approvals also
# carry the version number in their key, so an edit that restores an earlier text starts from zero.


class StatementItem(_IncidentBase):
    """One version of a holding statement in one language; never changed once written."""

    incident_id = UnicodeAttribute()
    lang = UnicodeAttribute()
    version = NumberAttribute()
    text = UnicodeAttribute()
    signer_id = UnicodeAttribute()
    signer_name = UnicodeAttribute()
    signer_role = UnicodeAttribute()
    hash = UnicodeAttribute()
    brand = UnicodeAttribute()
    playbook = UnicodeAttribute()
    approvers = ListAttribute(of=UnicodeAttribute)
    quorum = NumberAttribute()
    created_at = NumberAttribute()
    created_by = UnicodeAttribute()
    reason = UnicodeAttribute()  # drafted | redrafted | edited
    previous_hash = UnicodeAttribute(null=True)


class ApprovalItem(_IncidentBase):
    """One person's approval of one version's exact text (the key holds its hash)."""

    incident_id = UnicodeAttribute()
    lang = UnicodeAttribute()
    version = NumberAttribute()
    hash = UnicodeAttribute()
    person = UnicodeAttribute()
    capacity = UnicodeAttribute()  # signer | approver
    channel = UnicodeAttribute()
    at = NumberAttribute()


class StatementNoteItem(_IncidentBase):
    """A request for changes on one version, with the requester's note."""

    incident_id = UnicodeAttribute()
    lang = UnicodeAttribute()
    version = NumberAttribute()
    hash = UnicodeAttribute()
    person = UnicodeAttribute()
    note = UnicodeAttribute()
    channel = UnicodeAttribute()
    at = NumberAttribute()


class PublicationItem(_IncidentBase):
    """One publication of an approved text to one platform target; `state` publishing -> published,
    or -> failed (refused: a retry continues after the recorded parts) or -> in_doubt (a part may be
    up: nothing is sent until a person checks the platform and resolves it)."""

    incident_id = UnicodeAttribute()
    lang = UnicodeAttribute()
    version = NumberAttribute()
    hash = UnicodeAttribute()
    platform = UnicodeAttribute()
    target = UnicodeAttribute()
    state = UnicodeAttribute()  # publishing | published | failed | in_doubt
    platform_id = UnicodeAttribute(null=True)
    url = UnicodeAttribute(null=True)
    part_ids = ListAttribute(of=UnicodeAttribute, default=list)  # recorded as each part is accepted
    part_count = NumberAttribute(null=True)  # how many parts (posts, replies) the publication has
    doubt_part = NumberAttribute(null=True)  # in_doubt: the 1-based part that may or may not be up
    timeline_sk = UnicodeAttribute(null=True)  # the statement_published entry, written with `published`
    error = UnicodeAttribute(null=True)
    actor = UnicodeAttribute()
    created_at = NumberAttribute()
    updated_at = NumberAttribute()


class OutboxItem(_IncidentBase):
    """A message the local outbox publisher "sent": what a real channel would have posted."""

    incident_id = UnicodeAttribute()
    lang = UnicodeAttribute()
    hash = UnicodeAttribute()
    target = UnicodeAttribute()
    text = UnicodeAttribute()
    at = NumberAttribute()


class ApprovalRetryIndex(_OpenIndex):
    """The `open-incidents` index read as approval-request claims the sweeper must look at again
    (hash key "aprq-retry", range key when): a released send to retry, or a claim still `sending`."""


class ApprovalRequestItem(_IncidentBase):
    """`incident#<id>` / `aprq#<round>#<person>`: this person's approval-request SMS for this drafting
    round, claimed (conditional put) before the SMS so no one is texted twice; then `state` records
    the send like a page's: sending / sent / send_failed (released: retried) / unknown / rejected /
    gave_up / dropped (chalicelib/statements/notify.py). Items written before `state` existed are sent.
    While the sweeper has something to do with it, `open_shard = "aprq-retry"` and `due` (the index's
    range key) says from when."""

    person_id = UnicodeAttribute()
    at = NumberAttribute()
    state = UnicodeAttribute(null=True)
    attempts = NumberAttribute(null=True)
    langs = ListAttribute(of=UnicodeAttribute, null=True)
    editor = UnicodeAttribute(null=True)  # set for a request after an edit ("X edited the statement")
    updated_at = NumberAttribute(null=True)
    sid = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    error_code = NumberAttribute(null=True)
    open_shard = UnicodeAttribute(null=True)
    due = NumberAttribute(null=True, attr_name="opened_at")
    retry_index = ApprovalRetryIndex()


class ParkedEventItem(_IncidentBase):
    """Outbound messages SQS refused when they were emitted (pk `outbound#parked`, sk
    `<ms>#<event id>`): the sweeper sends them again and deletes the item (chalicelib/outbound)."""

    bodies = ListAttribute(of=UnicodeAttribute)
    expires = NumberAttribute()


STATEMENT_MODELS: tuple[type[Model], ...] = (
    StatementItem,
    ApprovalItem,
    StatementNoteItem,
    PublicationItem,
    OutboxItem,
    ParkedEventItem,
    ApprovalRequestItem,
)
# --- end of statements and publishing -------------------------------------------------------------


# --- triage (issue 11): the per-brand queue of mentions that need a human reply ------------------
# All live in `<prefix>-incidents` under one partition per brand, `triage#<brand>`:
#   `e#<entry_id>`                     one queue entry: a group of posts answered together
#   `mem#<platform>#<platform_id>`     a mention already in the queue (the exactly-once record)
#   `ptr#a#<platform>#<author>`        the author's current entry (repeated posts join it)
#   `ptr#t#<fingerprint>`              the current entry of an identical text (copies join it)
#   `thr#<platform>#<reply_to>`        replies seen in a thread (urgency)
# and `digest#<brand>` / `<YYYY-MM-DD>`: the daily digest sent for that local day (sent once).
# Open entries whose clock is still running carry `open_shard = "triage"` and their due time in
# `opened_at`, so the existing sparse `open-incidents` index lists them by due time for the sweeper
# (overloaded like escalations: no table change). Everything carries `expires` (TTL).


class TriageDueIndex(_OpenIndex):
    """The `open-incidents` index read as triage entries (hash key "triage", range = due time)."""


class TriageEntryItem(_IncidentBase):
    """One queue entry; updates are conditional on `version` (joins) or `status` (handled, breach)."""

    entry_id = UnicodeAttribute()
    brand = UnicodeAttribute()
    platform = UnicodeAttribute()
    author = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # open | handled
    count = NumberAttribute(default=1)
    first_at = NumberAttribute()  # created_at of the first post: the response clock starts here
    last_at = NumberAttribute()
    target_minutes = NumberAttribute()
    due = NumberAttribute(attr_name="opened_at")  # first_at + target (the index's range key)
    peak = NumberAttribute()  # the most urgent post's urgency
    urgency = NumberAttribute()  # rules.group_urgency(peak, count)
    topics = ListAttribute(of=UnicodeAttribute, default=list)
    language = UnicodeAttribute()
    sentiment = UnicodeAttribute()
    question = NumberAttribute(default=0)
    crisis = NumberAttribute(default=0)
    playbook = UnicodeAttribute(null=True)
    followers = NumberAttribute(null=True)
    text = UnicodeAttribute(null=True)  # the latest post's text (clipped)
    url = UnicodeAttribute(null=True)
    mention_key = UnicodeAttribute()  # the latest post (platform#id): what a reply answers
    mention_keys = ListAttribute(of=UnicodeAttribute, default=list)  # the first few posts
    handled_at = NumberAttribute(null=True)
    handled_by = UnicodeAttribute(null=True)
    handled_via = UnicodeAttribute(null=True)  # api | page | publish
    breached_at = NumberAttribute(null=True)
    open_shard = UnicodeAttribute(null=True)
    due_index = TriageDueIndex()
    version = NumberAttribute(default=1)
    expires = NumberAttribute()


class TriageMemberItem(_IncidentBase):
    """A mention counted into entry `entry_id`; written in the same transaction as the count."""

    entry_id = UnicodeAttribute()
    expires = NumberAttribute()


class TriagePointerItem(_IncidentBase):
    """Which entry an author's (or an identical text's) next post joins while that entry is open."""

    entry_id = UnicodeAttribute()
    expires = NumberAttribute()


class TriageThreadItem(_IncidentBase):
    """Replies to one post seen by triage (in the same transaction as each reply's queue write)."""

    replies = NumberAttribute(default=0)
    expires = NumberAttribute()


class DigestAnnounceIndex(_OpenIndex):
    """The `open-incidents` index read as digests whose event is not queued yet (hash key "digest-announce")."""


class DigestItem(_IncidentBase):
    """A daily digest claimed (and then sent) for one brand and local day. Claimed with
    `open_shard = "digest-announce"` (an outbox mark), removed once its event is queued or parked."""

    sent_at = NumberAttribute()
    expires = NumberAttribute()
    open_shard = UnicodeAttribute(null=True)
    announce_at = NumberAttribute(null=True, attr_name="opened_at")
    announce_index = DigestAnnounceIndex()


TRIAGE_MODELS: tuple[type[Model], ...] = (
    TriageEntryItem,
    TriageMemberItem,
    TriagePointerItem,
    TriageThreadItem,
    DigestItem,
)
# --- end of triage ----------------------------------------------------------------------------------


MENTION_MODELS: tuple[type[Model], ...] = (MentionItem, LedgerItem, SeenWebhookItem, DetectorStateItem)
COUNTER_MODELS: tuple[type[Model], ...] = (CounterItem,)
INCIDENT_MODELS: tuple[type[Model], ...] = (
    (IncidentItem, TimelineItem, IncidentPointerItem) + PAGING_MODELS + STATEMENT_MODELS + TRIAGE_MODELS
)
ALL_MODELS: tuple[type[Model], ...] = MENTION_MODELS + COUNTER_MODELS + INCIDENT_MODELS

_bound: Settings | None = None


def bind(cfg: Settings | None = None) -> Settings:
    """Point every model at the configured tables and endpoint (idempotent, cheap).

    Called lazily by the services so importing this module never touches the network
    and tests can re-point the models after changing the environment.
    """
    global _bound
    cfg = cfg or settings()
    if _bound is cfg:
        return cfg
    for model in ALL_MODELS:
        if model in MENTION_MODELS:
            model.Meta.table_name = cfg.mentions_table
        elif model in COUNTER_MODELS:
            model.Meta.table_name = cfg.counters_table
        else:
            model.Meta.table_name = cfg.incidents_table
        model.Meta.host = cfg.endpoint_url
        model.Meta.region = cfg.region
        model._connection = None  # type: ignore[attr-defined]
    # PynamoDB gives every model its own botocore client; they would all be alike (same endpoint,
    # region, settings), and each costs ~40 ms and ~2 MB to build, so all the models share the first.
    connections = [model._get_connection().connection for model in ALL_MODELS]  # type: ignore[attr-defined]
    client = connections[0].client
    for connection in connections[1:]:
        connection._client = client
    _bound = cfg
    return cfg


def raw_clients() -> list[Any]:
    """The distinct botocore clients PynamoDB uses (one, shared by the models: see `bind`), for event hooks
    such as fault injection and capacity accounting."""
    bind()
    clients: dict[int, Any] = {}
    for model in ALL_MODELS:
        client = model._get_connection().connection.client  # type: ignore[attr-defined]
        clients[id(client)] = client
    return list(clients.values())


def on_dynamodb(event: str, handler: Any, *, remove: bool = False) -> None:
    """Register (or remove) a botocore event handler, e.g. `after-call.dynamodb`, on every client."""
    for client in raw_clients():
        if remove:
            client.meta.events.unregister(event, handler)
        else:
            client.meta.events.register(event, handler)
