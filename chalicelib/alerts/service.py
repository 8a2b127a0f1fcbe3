"""From counted mentions to incidents: feed each brand's spike detector, open incidents on alarms.

Runs in the ingest handler after a batch's counts are committed. The detector is fed the
brand-minute's cumulative counts read back from DynamoDB, not the batch's own deltas, so a
redelivered or concurrent batch feeds the same figure again instead of adding to it.

Detector state (under 2 KB) lives in one item per brand with a version number: two batches
updating it at once cannot lose each other's update; the loser re-reads and re-applies.
When a brand has no state yet (new deployment, new brand) it is rebuilt from the stored
per-minute counters of the last `BOOTSTRAP_HOURS`, so a restart is never a cold start.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.config import Settings, settings
from chalicelib.counters.service import read_series
from chalicelib.detect import Alarm, DetectorParams, DetectorState, observe
from chalicelib.store.models import SENTIMENTS, DetectorStateItem, bind, counter_attribute

BUCKET_SECONDS = 60
BOOTSTRAP_HOURS = 72
STALE_SECONDS = 6 * 3600
_ATTEMPTS = 25
_NEG = tuple(counter_attribute("negative", lang) for lang in ("he", "en", "ar", "ru", "other"))


@dataclass(frozen=True)
class BrandAlarm:
    brand: str
    alarm: Alarm


def negative_and_total(cells: Counter[str]) -> tuple[int, int]:
    negative = sum(cells[name] for name in _NEG)
    total = sum(v for k, v in cells.items() if k.split("_")[0] in {s[:3] for s in SENTIMENTS})
    return negative, total


def _minute_cells(brand: str, minute: int, cfg: Settings) -> Counter[str]:
    points = read_series(brand, start=minute, end=minute + 60, step=60, cfg=cfg)
    return points[0].cells if points else Counter()


def bootstrap(brand: str, params: DetectorParams, until: int, cfg: Settings) -> DetectorState | None:
    """Rebuild a brand's detector state from its stored counters (alarms during replay are dropped)."""
    start = until - BOOTSTRAP_HOURS * 3600
    state: DetectorState | None = None
    for point in read_series(brand, start=start, end=until, step=60, cfg=cfg):
        negative, total = negative_and_total(point.cells)
        if state is None and total == 0:
            continue  # history starts at the brand's first mention
        state, _ = observe(
            state, params, bucket_start=point.start, bucket_seconds=BUCKET_SECONDS, negative=negative, total=total
        )
    return state


def feed(brand: str, minute: int, params: DetectorParams, cfg: Settings | None = None) -> Alarm | None:
    """Observe the brand-minute's current counts; returns the alarm if this observation raised one."""
    cfg = bind(cfg or settings())
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.005 * attempt))  # jittered backoff between lost races
        try:
            item = DetectorStateItem.get(f"detector#{brand}", consistent_read=True)
            state: DetectorState | None = DetectorState.from_bytes(item.state)
        except DoesNotExist:
            item = DetectorStateItem(f"detector#{brand}")
            state = bootstrap(brand, params, minute, cfg)
        negative, total = negative_and_total(_minute_cells(brand, minute, cfg))
        new_state, alarm = observe(
            state, params, bucket_start=minute, bucket_seconds=BUCKET_SECONDS, negative=negative, total=total
        )
        item.state = new_state.to_bytes()
        try:
            item.save()  # conditional on the version read (or on absence): optimistic locking
            return alarm
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
    raise RuntimeError(f"detector state for {brand} kept changing under us")


def feed_batch(
    touched: Iterable[tuple[str, int]],
    params_for: Callable[[str], DetectorParams],
    cfg: Settings | None = None,
    now: float | None = None,
) -> list[BrandAlarm]:
    """Feed every (brand, minute) a batch touched, oldest first, so each minute is closed with its
    latest count; minutes more than `STALE_SECONDS` old are counted but are not news, and skipped."""
    cfg = cfg or settings()
    clock = time.time() if now is None else now
    alarms: list[BrandAlarm] = []
    for brand, minute in sorted(set(touched)):
        if minute < clock - STALE_SECONDS:
            continue
        alarm = feed(brand, minute, params_for(brand), cfg)
        if alarm is not None:
            alarms.append(BrandAlarm(brand, alarm))
    return alarms
