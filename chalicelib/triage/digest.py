"""The daily digest per brand: volume and negative share from the counters, and from the triage queue
how many posts needed a reply, how many were answered within target and the median response time.

The day is the brand's local day (`timezone` in config/triage.yaml). The sweeper sends yesterday's
digest once the brand's local clock passes `digest_hour`, as the outbound event `digest.daily`:
a conditional put of `digest#<brand>`/`<date>` decides which sweep sends it, so it goes out once
per brand and day however many sweeps run. That put carries an outbox mark (`open_shard =
"digest-announce"`), removed once the event is queued or parked; the sweeper relays digests still
marked after a minute (`announce_pending`), so a sweep dying between the two loses nothing.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pynamodb.exceptions import PutError

from chalicelib.config import Settings, settings
from chalicelib.observability import logger
from chalicelib.store.models import DigestItem, bind
from chalicelib.triage import config as triage_config
from chalicelib.triage import queue

ANNOUNCE = "digest-announce"  # open_shard of a claimed digest whose event has not reached SQS yet
STEP = 900  # counters are summed in 15-minute steps: every real zone offset is a multiple of 15 minutes


def day_bounds(day: str, zone: str) -> tuple[int, int]:
    """[start, end) of the local day `day` (YYYY-MM-DD) in `zone`, as epoch seconds (23-25 hours long)."""
    try:
        parsed = date.fromisoformat(day)
    except ValueError as exc:
        raise ValueError(f"date {day!r} is not a calendar date (YYYY-MM-DD)") from exc
    if not 2000 <= parsed.year <= 2099:  # as the counters: no social platform data outside these years
        raise ValueError(f"date {day!r} is outside 2000-2099")
    tz = ZoneInfo(zone)
    start = datetime(parsed.year, parsed.month, parsed.day, tzinfo=tz)
    end = datetime.combine(parsed + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def compute(brand: str, day: str, *, now: float | None = None, cfg: Settings | None = None) -> dict[str, Any]:
    """The digest of `brand` for its local day `day`. Raises ValueError for a bad or future date."""
    from chalicelib.counters.service import read_series

    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    own = triage_config.brand_settings(brand)
    start, end = day_bounds(day, own.timezone)
    if start > clock:
        raise ValueError(f"{day} has not started yet in {own.timezone}")
    volume = negative = 0
    for point in read_series(brand, start=start, end=end, step=STEP, cfg=cfg):
        counts = point.as_dict()
        volume += int(counts["total"])  # type: ignore[call-overload]
        negative += int(counts["negative"])  # type: ignore[call-overload]
    entries = [e for e in queue.list_entries(brand, status="all", now=clock) if start <= float(e.first_at) < end]
    answered = [e for e in entries if e.handled_at is not None]
    within = [e for e in answered if float(e.handled_at) <= float(e.due)]
    minutes = [(float(e.handled_at) - float(e.first_at)) / 60 for e in answered]
    return {
        "brand": brand,
        "date": day,
        "timezone": own.timezone,
        "complete": end <= clock,
        "volume": volume,
        "negative": negative,
        "negative_share": _share(negative, volume),
        "needs_reply": len(entries),
        "needs_reply_posts": sum(int(e.count) for e in entries),
        "answered": len(answered),
        "answered_within_target": len(within),
        "answered_within_target_share": _share(len(within), len(entries)),
        "breached": sum(1 for e in entries if e.breached_at is not None or (e.handled_at or clock) > float(e.due)),
        "still_open": sum(1 for e in entries if e.status == queue.OPEN),
        "median_response_minutes": round(statistics.median(minutes), 1) if minutes else None,
    }


def brands() -> list[str]:
    from chalicelib.ingest.brands import load_brands

    return [b.id for b in load_brands(settings().brands_file).brands]


def send_due(now: float | None = None, cfg: Settings | None = None) -> list[tuple[str, str]]:
    """Send yesterday's digest for every brand whose local clock has passed its digest hour, once per
    brand and day (conditional put); returns the (brand, date) pairs this call sent."""

    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    sent = []
    for brand in brands():
        own = triage_config.brand_settings(brand)
        local = datetime.fromtimestamp(clock, tz=ZoneInfo(own.timezone))
        if local.hour < own.digest_hour:
            continue
        day = (local.date() - timedelta(days=1)).isoformat()
        claim = DigestItem(
            f"digest#{brand}", day, sent_at=clock, expires=int(clock) + 400 * 86400,
            open_shard=ANNOUNCE, announce_at=clock,
        )
        try:
            claim.save(condition=DigestItem.pk.does_not_exist())
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            continue  # already sent by this or another sweep
        _emit(claim, clock, cfg)
        sent.append((brand, day))
    return sent


def _emit(claim: DigestItem, now: float, cfg: Settings) -> int:
    from chalicelib.outbound import service as outbound

    brand, day = claim.pk.removeprefix("digest#"), claim.sk
    report = compute(brand, day, now=now, cfg=cfg)
    return outbound.emit_event(
        "digest.daily", brand=brand, key=f"digest.daily|{brand}|{day}", occurred_at=float(claim.sent_at),
        data={"digest": report}, cfg=cfg, settled=lambda: outbound.clear_mark(claim, ANNOUNCE),
    )


def announce_pending(now: float | None = None, *, grace_seconds: float = 60, cfg: Settings | None = None) -> int:
    """The outbox relay (sweeper): emit `digest.daily` for digests claimed more than `grace_seconds` ago
    whose event never reached SQS (the sweep died, or SQS and DynamoDB both refused); messages queued.
    The report is computed again (the same day's figures, later answers included)."""
    cfg = bind(cfg or settings())
    clock = time.time() if now is None else now
    sent = 0
    for claim in DigestItem.announce_index.query(ANNOUNCE, DigestItem.announce_at <= clock - grace_seconds, limit=50):
        logger.warning("digest relayed", extra={"digest": claim.pk, "day": claim.sk})
        sent += _emit(claim, clock, cfg)
    return sent
