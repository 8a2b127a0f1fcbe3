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
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.config import Settings, settings
from chalicelib.counters.service import read_series
from chalicelib.detect import Alarm, DetectorParams, DetectorState, observe
from chalicelib.incidents import service as incidents
from chalicelib.playbooks.loader import playbook_for
from chalicelib.store.models import COUNTER_ATTRIBUTES, LANGUAGES, DetectorStateItem, bind, counter_attribute

BUCKET_SECONDS = 60
BOOTSTRAP_HOURS = 72
STALE_SECONDS = 6 * 3600
FUTURE_SKEW_SECONDS = 120
"""A minute later than now + this is a sender's clock (or time zone) error, not news: counted, never fed
to the detector. Fed, it would move the detector's open minute into the future, after which every real
minute looks late and is ignored: one mislabelled timestamp would blind the brand's detector."""
_ATTEMPTS = 25
_NEG = tuple(counter_attribute("negative", lang) for lang in LANGUAGES)


@dataclass(frozen=True)
class BrandAlarm:
    brand: str
    alarm: Alarm


def negative_and_total(cells: Counter[str]) -> tuple[int, int]:
    negative = sum(cells[name] for name in _NEG)
    total = sum(cells[name] for name in COUNTER_ATTRIBUTES)
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


def warm_start(
    brand: str, history: Iterable[tuple[int, float, float]], params: DetectorParams, cfg: Settings | None = None
) -> bool:
    """Teach a brand's detector its normal from imported per-minute history (bucket start, negative,
    total), e.g. a social-listening export, so it can alarm on day one. Only a brand with no
    detector state yet is warmed; returns False (and changes nothing) otherwise."""
    bind(cfg or settings())
    state: DetectorState | None = None
    for start, negative, total in sorted(history):
        state, _ = observe(
            state, params, bucket_start=int(start), bucket_seconds=BUCKET_SECONDS, negative=negative, total=total
        )
    if state is None:
        return False
    try:
        DetectorStateItem(f"detector#{brand}", state=state.to_bytes()).save()  # version: must not exist yet
    except PutError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def feed(
    brand: str,
    minute: int,
    params: DetectorParams,
    cfg: Settings | None = None,
    *,
    newest: int | None = None,
    on_alarm: Callable[[BrandAlarm], None] | None = None,
) -> Alarm | None:
    """Observe the brand-minute's current counts; returns the alarm if this observation raised one.

    With `newest` (the newest minute with data), a `minute` older than the detector's open minute
    is replaced by the open minute, whose count may have grown since it was last observed.

    `on_alarm` (open the incident) runs BEFORE the state that records the alarm is saved. Saved
    first, a crash in between would lose the crisis: the redelivered batch is all duplicates and
    feeds nothing, and the saved state is in cooldown, so no later batch alarms again. This way a
    crash re-fires the alarm instead, which merges into the incident already open (invariant 3); a
    lost optimistic-lock race can call it twice for one spike, which merges the same way.
    """
    newest = minute if newest is None else newest
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
        judged = minute
        if state is not None and minute < state.cur_start <= newest:
            judged = state.cur_start  # the open minute, whose count may have grown since it was observed
        negative, total = negative_and_total(_minute_cells(brand, judged, cfg))
        new_state, alarm = observe(
            state, params, bucket_start=judged, bucket_seconds=BUCKET_SECONDS, negative=negative, total=total
        )
        item.state = new_state.to_bytes()
        if alarm is not None and on_alarm is not None:
            on_alarm(BrandAlarm(brand, alarm))
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
    on_alarm: Callable[[BrandAlarm], None] | None = None,
) -> list[BrandAlarm]:
    """Feed each brand's detector the minute before the newest minute this batch touched.

    Mentions reach us out of order: platforms stamp them seconds before delivery and SQS does not
    keep order, so a batch straddling a minute boundary is the rule, not the exception. Feeding
    the newest minute would close the one before it while its stragglers are still arriving; a
    one-minute lag lets each minute fill before the detector judges it (and it can still fire
    early, before that minute is complete). Minutes older than `STALE_SECONDS` are counted but
    are not news.
    """
    cfg = cfg or settings()
    clock = time.time() if now is None else now
    newest: dict[str, int] = {}
    for brand, minute in touched:
        if minute > clock + FUTURE_SKEW_SECONDS:
            continue  # see FUTURE_SKEW_SECONDS
        newest[brand] = max(newest.get(brand, minute), minute)
    alarms: list[BrandAlarm] = []
    for brand, minute in sorted(newest.items()):
        judged = minute - BUCKET_SECONDS
        if judged < clock - STALE_SECONDS:
            continue
        alarm = feed(brand, judged, params_for(brand), cfg, newest=minute, on_alarm=on_alarm)
        if alarm is not None:
            alarms.append(BrandAlarm(brand, alarm))
    return alarms


def params_for(brand: str, playbooks: Iterable[Any]) -> DetectorParams:
    """The detector settings of the most severe automatic playbook covering the brand, else defaults.

    The playbook's `min_volume` goes into the detector itself: an alarm dropped afterwards for low
    volume would still start the detector's cooldown and swallow the real spike a minute later.
    """
    for playbook in playbook_for(brand, playbooks):
        params = playbook.triggers.detector_params()
        if params is not None:
            return params
    return DetectorParams()


def raise_incidents(alarms: Iterable[BrandAlarm], playbooks: Iterable[Any], cfg: Settings | None = None) -> list[Any]:
    """Open (or grow) the incident of the brand's automatic playbook for each alarm; returns `Opened`s.

    One alarm, one incident: playbook validation allows one automatic playbook per brand
    (`loader.automatic_overlaps`); should a set of playbooks that skipped it ever get here, the most
    severe one (whose detector settings raised the alarm, `params_for`) is the one opened."""
    playbooks = tuple(playbooks)
    opened = []
    for brand_alarm in alarms:
        alarm = brand_alarm.alarm
        automatic = [p for p in playbook_for(brand_alarm.brand, playbooks) if not p.triggers.manual]
        for playbook in automatic[:1]:
            targets = playbook.response_targets
            opened.append(
                incidents.open_or_update(
                    brand=brand_alarm.brand,
                    playbook=playbook.id,
                    severity=playbook.severity,
                    trigger=incidents.Trigger(
                        actor="detector",
                        channel="ingest",
                        summary=alarm.explain(),
                        observed=alarm.observed,
                        expected=alarm.expected,
                        ratio=alarm.ratio,
                    ),
                    ack_seconds=int(targets.acknowledge.total_seconds()),
                    response_seconds=int(targets.first_public_response.total_seconds()),
                    cfg=cfg,
                )
            )
    return opened
