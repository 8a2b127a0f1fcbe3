"""The detector fed from stored counters: bootstrap from history, optimistic locking, one alarm per crisis."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest

from chalicelib.alerts import service as alerts
from chalicelib.counters.service import commit
from chalicelib.detect import DetectorParams, DetectorState
from chalicelib.store.models import DetectorStateItem

pytestmark = pytest.mark.integration

BRAND = "acme-telecom"


def write_minute(minute: int, negative: int, other: int, token: str) -> None:
    cells: Counter[str] = Counter()
    if negative:
        cells["neg_he"] = negative
    if other:
        cells["neu_en"] = other
    if cells:
        commit(token=token, totals={(BRAND, minute): cells}, ledger_ids=b"")


def test_bootstrap_then_one_alarm_for_a_crisis(env: Any) -> None:
    rng = random.Random(3)
    now = 1_780_000_000 // 3600 * 3600
    history_start = now - 8 * 3600
    # Eight hours of quiet history (about 3 negative and 9 other mentions a minute), stored as counts.
    for i, minute in enumerate(range(history_start, now, 60)):
        write_minute(minute, rng.randint(1, 5), rng.randint(6, 12), token=f"h{i}")
    params = DetectorParams()
    fired = []
    # Live: ten calm minutes, then negatives jump about thirtyfold and stay high (the detector's own
    # sensitivity is tested in tests/unit/detect; this test is about state, bootstrap and wiring).
    for i, minute in enumerate(range(now, now + 40 * 60, 60)):
        negative = rng.randint(1, 5) if i < 10 else 80 + rng.randint(0, 10)
        write_minute(minute, negative, rng.randint(6, 12), token=f"l{i}")
        alarm = alerts.feed(BRAND, minute, params)
        if alarm is not None:
            fired.append((i, alarm))
    assert len(fired) == 1, fired
    index, alarm = fired[0]
    assert 10 <= index <= 13  # within three minutes of the crisis start
    assert alarm.observed > alarm.expected * 2
    item = DetectorStateItem.get(f"detector#{BRAND}", consistent_read=True)
    assert len(item.state) <= 2048
    assert DetectorState.from_bytes(item.state) is not None


def test_concurrent_feeds_do_not_lose_updates(env: Any) -> None:
    now = 1_780_000_000 // 60 * 60
    write_minute(now, 3, 5, token="c0")
    params = DetectorParams()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                alerts.feed(BRAND, now, params)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    item = DetectorStateItem.get(f"detector#{BRAND}", consistent_read=True)
    assert item.version == 12  # every one of the 12 feeds landed, none overwritten
