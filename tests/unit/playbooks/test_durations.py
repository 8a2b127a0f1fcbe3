"""Durations are written with units ("15m", "1h30m") and parse to timedelta."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.playbooks import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 45m ", timedelta(minutes=45)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "15", "m", "1.5h", "-5m", "30m1h", "1 h", "1H", "15min", "0s", "0h0m", "31d", "99999999999999d"]
)
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["90s", "15m", "1h", "1h30m", "2d", "1d2h3m4s"])
def test_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == (text if text != "90s" else "1m30s")
