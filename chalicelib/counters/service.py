"""Per-brand, per-minute mention counts: atomic batched writes and summed reads.

Write side: one batch's mentions are summed per (brand, minute) in memory, then every
counter key gets one `ADD` inside a single DynamoDB transaction together with the batch's
ledger item (see `chalicelib.ingest.pipeline` for why that makes counting exactly-once).

Each brand's counters are spread over `counter_shards` partition keys (`<brand>#<shard>`) so
a viral brand's writes are spread across partitions instead of hitting one partition's
1,000 writes/s ceiling; readers query every shard and add them up (also the shards above a lowered
`counter_shards`, up to `counter_read_shards`).
"""

from __future__ import annotations

import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings, settings
from chalicelib.ingest.models import Mention
from chalicelib.store.models import (
    COUNTER_ATTRIBUTES,
    LANGUAGES,
    SENTIMENTS,
    CounterItem,
    LedgerItem,
    bind,
    counter_attribute,
)

MAX_TRANSACT_ITEMS = 100
MAX_SERIES_POINTS = 10_000
EARLIEST = 946_684_800  # 2000-01-01: no social platform data is older
LATEST = 4_102_444_800  # 2100-01-01


def minute_of(ts: datetime) -> int:
    """Epoch seconds of the start of the minute containing `ts`."""
    return int(ts.timestamp()) // 60 * 60


def counter_keys(mention: Mention) -> list[tuple[str, int]]:
    """The (brand, minute) counter keys one mention adds to."""
    minute = minute_of(mention.created_at)
    return [(brand, minute) for brand in mention.brands]


def cell(mention: Mention) -> str:
    """The counter attribute a classified mention adds one to."""
    language = mention.language if mention.language in LANGUAGES else "other"
    sentiment = mention.sentiment if mention.sentiment in SENTIMENTS else "neutral"
    return counter_attribute(sentiment, language)


def aggregate(mentions: Iterable[Mention]) -> dict[tuple[str, int], Counter[str]]:
    """Sum a batch per (brand, minute): each key then costs one write however many mentions it has."""
    totals: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for mention in mentions:
        name = cell(mention)
        for key in counter_keys(mention):
            totals[key][name] += 1
    return dict(totals)


def shard_for(token: str, shards: int) -> int:
    return zlib.crc32(token.encode()) % shards


def commit(
    *,
    token: str,
    totals: dict[tuple[str, int], Counter[str]],
    ledger_ids: bytes,
    cfg: Settings | None = None,
) -> None:
    """Apply the batch's counter deltas and write its ledger entry in one transaction.

    The ledger put is conditional on the entry not existing: if another batch has marked
    this token aborted (it took over our mentions), the whole transaction, counts included,
    is cancelled. `ClientRequestToken` makes a retried call after a lost response a no-op.
    """
    cfg = bind(cfg or settings())
    if len(totals) + 1 > MAX_TRANSACT_ITEMS:
        raise ValueError(f"batch touches {len(totals)} counter keys; split it before commit")
    now = int(time.time())
    shard = shard_for(token, cfg.counter_shards)
    counter_expiry = now + cfg.counter_retention_days * 86400
    ledger_expiry = now + cfg.mention_retention_days * 86400 + 86400
    try:
        with TransactWrite(connection=_connection(), client_request_token=token[:36]) as tx:
            for (brand, minute), deltas in sorted(totals.items()):
                actions = [getattr(CounterItem, name).add(n) for name, n in sorted(deltas.items())]
                actions.append(CounterItem.expires.set(counter_expiry))
                tx.update(CounterItem(f"{brand}#{shard}", minute), actions=actions)
            tx.save(
                LedgerItem(f"batch#{token}", status="committed", ids=ledger_ids, expires=ledger_expiry),
                condition=LedgerItem.pk.does_not_exist(),
            )
    except TransactWriteError as failure:
        # A retried call whose first attempt committed (response lost) finds its own ledger entry;
        # DynamoDB's request token usually hides this, but not after its 10-minute window (nor on
        # moto). Our own committed entry with these ids means the counts landed: success.
        try:
            mine = LedgerItem.get(f"batch#{token}", consistent_read=True)
        except LedgerItem.DoesNotExist:
            raise failure from None
        if mine.status != "committed" or mine.ids != ledger_ids:
            raise failure from None


def _connection():  # type: ignore[no-untyped-def]
    return CounterItem._get_connection().connection  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Point:
    """One step of a brand's series."""

    start: int
    cells: Counter[str]

    def as_dict(self) -> dict[str, object]:
        by_sentiment = {s: sum(self.cells[counter_attribute(s, lang)] for lang in LANGUAGES) for s in SENTIMENTS}
        by_language = {lang: sum(self.cells[counter_attribute(s, lang)] for s in SENTIMENTS) for lang in LANGUAGES}
        return {
            "start": datetime.fromtimestamp(self.start, tz=UTC).isoformat().replace("+00:00", "Z"),
            "total": sum(by_sentiment.values()),
            **by_sentiment,
            "languages": by_language,
        }


def read_series(
    brand: str, *, start: int, end: int, step: int = 60, cfg: Settings | None = None, now: float | None = None
) -> list[Point]:
    """Counts for `brand` in [start, end), summed over shards, one zero-filled point per `step` seconds.

    Items past their TTL are skipped: DynamoDB deletes them lazily and moto never does.
    """
    cfg = bind(cfg or settings())
    if step < 60 or step % 60:
        raise ValueError("step must be a whole number of minutes")
    first = start // step * step
    if end <= first:
        raise ValueError("to must be after from")
    if (end - first) // step > MAX_SERIES_POINTS:
        raise ValueError(f"at most {MAX_SERIES_POINTS} points per request; use a larger step")
    if not (EARLIEST <= start <= LATEST and EARLIEST <= end <= LATEST):
        raise ValueError("from and to must lie between 2000-01-01 and 2100-01-01")
    clock = time.time() if now is None else now
    buckets: dict[int, Counter[str]] = {t: Counter() for t in range(first, end, step)}
    for shard in range(max(cfg.counter_shards, cfg.counter_read_shards)):
        for item in CounterItem.query(
            f"{brand}#{shard}", CounterItem.minute.between(first, end - 1), consistent_read=True
        ):
            if item.expires is not None and item.expires <= clock:
                continue
            bucket = buckets[int(item.minute) // step * step]
            for name in COUNTER_ATTRIBUTES:
                value = getattr(item, name)
                if value:
                    bucket[name] += int(value)
    return [Point(t, cells) for t, cells in buckets.items()]


def minute_totals(brand: str, minute: int, cfg: Settings | None = None) -> Counter[str]:
    """All cells of one brand-minute so far (what the spike detector is fed)."""
    points = read_series(brand, start=minute, end=minute + 60, cfg=cfg)
    return points[0].cells if points else Counter()
