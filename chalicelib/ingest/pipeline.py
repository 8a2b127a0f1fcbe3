"""The ingest handler's work: SQS batch → classified, deduplicated, counted exactly once.

Why a claim + ledger rather than a transaction with every mention in it
-----------------------------------------------------------------------
DynamoDB's `ADD` is not idempotent and a Lambda can die between any two writes; SQS then
redelivers, possibly in a different batch. Putting every mention in the counting
transaction would make it atomic but doubles each mention's write cost (transactions
cost 2 WCU per item). Instead, each invocation draws a fresh random token T and:

1. **claims** each mention with a conditional put of its item carrying `claim = T`
   (1 WCU, which storing the mention costs anyway). If the item already exists, the
   earlier claimant C's ledger entry decides: C committed with this mention → duplicate,
   skip; C has no ledger entry → write C's entry as `aborted` (conditional, so it races
   fairly with C's own commit), then take the claim over; C aborted, or committed without
   this mention → take the claim over (conditional on `claim = C`).
2. **commits** one transaction: an `ADD` per (brand, minute) counter key plus the ledger
   entry `batch#T = committed` listing the mentions it counted, conditional on the entry
   not existing. A batch whose entry was marked aborted can therefore never count.

A crash anywhere leaves either no commit (claims are taken over on redelivery) or a
complete commit (the ledger marks those mentions counted). Cost per batch: one write per
new mention plus 2 × (counter keys + 1); for ten mentions of one brand in one minute,
1.4 WCU per mention; in the deployed batches of up to 100 (chalicelib/ingest/queue.py),
1.05 on bench/ingest.py's stream.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError
from pynamodb.exceptions import PutError, UpdateError

from chalicelib import sentiment
from chalicelib.config import Settings, settings
from chalicelib.counters.service import MAX_TRANSACT_ITEMS, aggregate, commit, counter_keys
from chalicelib.ingest.models import Mention
from chalicelib.store.models import LedgerItem, MentionItem, bind

logger = Logger(service="klaxon", child=True)

_DIGEST_BYTES = 8
_MAX_TAKEOVER_ROUNDS = 5


class BadRecord(ValueError):
    """The message body is not a Mention; it fails alone and reaches the DLQ after N receives."""


class ClaimContended(RuntimeError):
    """The claim kept moving between batches; let SQS redeliver the record later."""


def digest(key: str) -> bytes:
    """Compact id of a mention in a ledger entry (collision odds ~1e-19 per pair)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=_DIGEST_BYTES).digest()


def _is_conditional_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


@dataclass
class Chunk:
    """Mentions committed together under one token (one transaction)."""

    token: str
    keys: set[tuple[str, int]] = field(default_factory=set)
    counted: list[Mention] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one invocation did, for logs, metrics and the spike detector."""

    counted: list[Mention]
    duplicates: int
    failed: int
    totals: dict[tuple[str, int], Any]
    already_counted: list[Mention] = field(default_factory=list)
    """Duplicates (classified): triage re-checks them, since a crash after the counting commit would
    otherwise leave a counted mention untriaged (triage writes are idempotent)."""
    touched: set[tuple[str, int]] = field(default_factory=set)
    """(brand, minute) of every mention handled, duplicates included: a redelivered batch whose first
    invocation died after counting must still feed the detector (its alarm may never have been acted on)."""
    message_ids: dict[str, list[str]] = field(default_factory=dict)
    """Mention key -> the SQS message ids that carried it (counted or duplicate): the records to hand
    back to SQS when later work on that mention (triage) has to be retried."""


def with_failures(response: dict[str, Any], message_ids: list[str]) -> dict[str, Any]:
    """`response` with these records also reported failed (`batchItemFailures`), each once."""
    failures = list(response.get("batchItemFailures") or [])
    listed = {f["itemIdentifier"] for f in failures}
    for message_id in message_ids:
        if message_id not in listed:
            failures.append({"itemIdentifier": message_id})
            listed.add(message_id)
    return {**response, "batchItemFailures": failures}


def _new_token() -> str:
    return secrets.token_hex(16)


def classify_all(mentions: list[Mention], crisis_terms: Callable[[str], tuple[str, ...]]) -> list[Mention]:
    """Language and sentiment for every mention: one vectorised call per set of crisis terms.

    A playbook's crisis terms ("boycott", "חרם") force a mention of its brands into the
    negative series, whatever the model thinks of the wording.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, mention in enumerate(mentions):
        terms = tuple(dict.fromkeys(t for brand in mention.brands for t in crisis_terms(brand)))
        groups.setdefault(terms, []).append(i)
    labels: list[str] = [""] * len(mentions)
    for terms, indexes in groups.items():
        for i, label in zip(
            indexes, sentiment.classify([mentions[i].text for i in indexes], crisis_terms=terms), strict=True
        ):
            labels[i] = label
    return [
        m.model_copy(update={"language": sentiment.detect_language(m.text), "sentiment": label})
        for m, label in zip(mentions, labels, strict=True)
    ]


def mention_pk(mention: Mention) -> str:
    """Stored key of a mention; the `m#` prefix keeps platform data out of other item kinds' keys."""
    return f"m#{mention.key}"


def _ledger(token: str) -> LedgerItem | None:
    try:
        return LedgerItem.get(f"batch#{token}", consistent_read=True)
    except LedgerItem.DoesNotExist:
        return None


def _settle(token: str, cfg: Settings) -> LedgerItem:
    """The final outcome of batch `token`: its committed entry, or an `aborted` one we write now."""
    existing = _ledger(token)
    if existing is not None:
        return existing
    expires = int(time.time()) + cfg.mention_retention_days * 86400 + 86400
    tombstone = LedgerItem(f"batch#{token}", status="aborted", expires=expires)
    try:
        tombstone.save(condition=LedgerItem.pk.does_not_exist())
        return tombstone
    except PutError as exc:
        if not _is_conditional_failure(exc):
            raise
    settled = _ledger(token)  # the batch committed (or was aborted by someone else) just now
    if settled is None:
        raise ClaimContended(f"ledger entry for {token} vanished")
    return settled


def claim(mention: Mention, token: str, cfg: Settings) -> bool:
    """Make batch `token` responsible for counting `mention`; False if it is already counted."""
    now = int(time.time())
    item = MentionItem(
        mention_pk(mention),
        platform=mention.platform,
        platform_id=mention.platform_id,
        brands=list(mention.brands),
        text=mention.text or None,
        language=mention.language or "other",
        sentiment=mention.sentiment or "neutral",
        author=mention.author.handle or mention.author.id,
        created_at=int(mention.created_at.timestamp()),
        url=mention.url,
        reply_to=mention.reply_to,
        claim=token,
        expires=now + cfg.mention_retention_days * 86400,
    )
    try:
        # An item past its TTL is gone as far as Klaxon is concerned, even if not yet deleted.
        item.save(condition=MentionItem.pk.does_not_exist() | (MentionItem.expires < now))
        return True
    except PutError as exc:
        if not _is_conditional_failure(exc):
            raise
    for _ in range(_MAX_TAKEOVER_ROUNDS):
        current = MentionItem.get(mention_pk(mention), consistent_read=True)
        holder = current.claim
        if holder == token:
            return True
        outcome = _settle(holder, cfg)
        if outcome.status == "committed" and digest(mention.key) in _split(outcome.ids):
            return False
        try:
            current.update(actions=[MentionItem.claim.set(token)], condition=MentionItem.claim == holder)
            return True
        except UpdateError as exc:
            if not _is_conditional_failure(exc):
                raise
    raise ClaimContended(f"claim on {mention.key} kept changing hands")


def _split(ids: bytes | None) -> set[bytes]:
    data = ids or b""
    return {data[i : i + _DIGEST_BYTES] for i in range(0, len(data), _DIGEST_BYTES)}


def _no_terms(brand: str) -> tuple[str, ...]:
    return ()


def process_batch(
    event: dict[str, Any],
    cfg: Settings | None = None,
    crisis_terms: Callable[[str], tuple[str, ...]] = _no_terms,
) -> tuple[dict[str, Any], BatchResult]:
    """Handle one SQS event; returns the partial-batch-failure response and what was counted.

    Records that cannot be parsed or claimed fail alone (`batchItemFailures`); if the
    counting transaction fails, the exception propagates and SQS redelivers the batch.
    """
    cfg = bind(cfg or settings())
    records = event.get("Records") or []
    parsed: dict[str, Mention] = {}
    errors: dict[str, str] = {}
    for record in records:
        message_id = record.get("messageId", "")
        try:
            parsed[message_id] = Mention.model_validate_json(record.get("body") or "")
        except ValidationError as exc:
            errors[message_id] = f"not a Mention: {exc.errors()[0]['msg']}"
    classified = dict(zip(parsed, classify_all(list(parsed.values()), crisis_terms), strict=True))

    chunks: list[Chunk] = [Chunk(_new_token())]
    seen: set[str] = set()  # a mention twice in one batch is claimed once, by one chunk
    duplicates = 0
    already: list[Mention] = []
    touched: set[tuple[str, int]] = set()
    message_ids: dict[str, list[str]] = {}

    def chunk_for(mention: Mention) -> Chunk:
        current = chunks[-1]
        new_keys = set(counter_keys(mention)) - current.keys
        if len(current.keys) + len(new_keys) + 1 > MAX_TRANSACT_ITEMS:
            current = Chunk(_new_token())
            chunks.append(current)
        return current

    def handle(record: SQSRecord) -> None:
        nonlocal duplicates
        if record.message_id in errors:
            raise BadRecord(errors[record.message_id])
        mention = classified[record.message_id]
        target = chunk_for(mention)
        message_ids.setdefault(mention.key, []).append(record.message_id)
        if mention.key in seen or not claim(mention, target.token, cfg):
            duplicates += 1
            already.append(mention)
            touched.update(counter_keys(mention))
            return
        seen.add(mention.key)
        target.keys.update(counter_keys(mention))
        target.counted.append(mention)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=records, handler=handle):
        processor.process()
    # Every failed record, whatever failed it: SQS moves a record to the DLQ after its last receive
    # without saying why, so this line (same message id as the DLQ message) is where the reason lives.
    for failed, (kind, value, _) in zip(processor.fail_messages, processor.exceptions, strict=True):
        record = cast(SQSRecord, failed)
        logger.warning(
            "record rejected",
            extra={
                "message_id": record.message_id,
                "receive_count": record.attributes.approximate_receive_count,
                "reason": f"{kind.__name__ if kind else 'Exception'}: {value}"[:500],
            },
        )

    counted: list[Mention] = []
    totals: dict[tuple[str, int], Any] = {}
    for chunk in chunks:
        if not chunk.counted:
            continue
        chunk_totals = aggregate(chunk.counted)
        ids = b"".join(digest(m.key) for m in chunk.counted)
        commit(token=chunk.token, totals=chunk_totals, ledger_ids=ids, cfg=cfg)
        counted.extend(chunk.counted)
        for key, cells in chunk_totals.items():
            totals.setdefault(key, type(cells)()).update(cells)
    response = processor.response()
    result = BatchResult(
        counted=counted,
        duplicates=duplicates,
        failed=len(response["batchItemFailures"]),
        totals=totals,
        already_counted=already,
        touched=touched | set(totals),
        message_ids=message_ids,
    )
    return response, result
