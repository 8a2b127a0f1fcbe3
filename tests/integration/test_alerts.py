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


def quiet_history(rng: random.Random) -> int:
    """Eight hours of quiet history (about 3 negative and 9 other mentions a minute), stored as counts;
    returns the hour it ends at, where the live minutes start."""
    now = 1_780_000_000 // 3600 * 3600
    for i, minute in enumerate(range(now - 8 * 3600, now, 60)):
        write_minute(minute, rng.randint(1, 5), rng.randint(6, 12), token=f"h{i}")
    return now


def test_bootstrap_then_one_alarm_for_a_crisis(env: Any) -> None:
    rng = random.Random(3)
    now = quiet_history(rng)
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


@pytest.mark.parametrize("skew_seconds", [3 * 3600, 180], ids=["three-hours-ahead", "three-minutes-ahead"])
def test_mentions_stamped_in_the_future_do_not_blind_the_detector(env: Any, skew_seconds: int) -> None:
    """A sender whose clock (or time zone) runs ahead stamps mentions in the future. They are counted,
    but never fed to the detector: fed, they moved its open minute ahead, and every real minute after
    that looked late and was ignored, so the crisis below raised no alarm at all."""
    rng = random.Random(3)
    now = quiet_history(rng)
    params = DetectorParams()
    fired = []
    for i, minute in enumerate(range(now, now + 40 * 60, 60)):
        negative = rng.randint(1, 5) if i < 10 else 80 + rng.randint(0, 10)
        write_minute(minute, negative, rng.randint(6, 12), token=f"l{i}")
        touched = {(BRAND, minute)}
        if i >= 5:  # from minute 5 on, a skewed source posts one neutral mention a minute
            future = (minute + skew_seconds) // 60 * 60
            write_minute(future, 0, 1, token=f"future{i}")
            touched.add((BRAND, future))
        fired += [i for _ in alerts.feed_batch(touched, lambda _: params, now=minute + 30)]
    assert len(fired) == 1 and 10 <= fired[0] <= 13, fired
    state = DetectorState.from_bytes(DetectorStateItem.get(f"detector#{BRAND}", consistent_read=True).state)
    assert state is not None and state.cur_start <= now + 40 * 60
