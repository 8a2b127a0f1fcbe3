"""Who is on call: hand-offs at local wall-clock time across DST changes, week boundaries, overrides.

Expected instants are worked out by hand from the zones' rules for 2026:
- Asia/Jerusalem: +02:00, +03:00 from Fri 2026-03-27 02:00 until Sun 2026-10-25 02:00.
- America/New_York: -05:00, -04:00 from Sun 2026-03-08 02:00 until Sun 2026-11-01 02:00.
- Europe/London: +00:00, +01:00 from Sun 2026-03-29 01:00 until Sun 2026-10-25 02:00.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.paging.oncall import (
    UnknownTarget,
    current_shift,
    handoff_at,
    on_call,
    resolve_targets,
    rotation_shift,
)
from chalicelib.playbooks.loader import load_roster
from chalicelib.playbooks.models import EscalationStep, Roster, Schedule

SECOND = timedelta(seconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def schedule(**overrides: Any) -> Schedule:
    fields: dict[str, Any] = {
        "name": "comms",
        "timezone": "Asia/Jerusalem",
        "rotation": "daily",
        "handoff": "09:00",
        "start": "2026-01-04",
        "members": ["a", "b"],
    }
    fields.update(overrides)
    return Schedule.model_validate(fields)


# --- daily hand-offs across DST -----------------------------------------------------------------


def test_jerusalem_spring_forward_shift_is_23_hours() -> None:
    s = schedule()
    # 2026-03-26 is day 81 from 2026-01-04 (odd: b); 09:00 +02:00 = 07:00Z; next 09:00 +03:00 = 06:00Z
    shift = rotation_shift(s, utc(2026, 3, 26, 12))
    assert (shift.person, shift.start, shift.end) == ("b", utc(2026, 3, 26, 7), utc(2026, 3, 27, 6))
    assert shift.end - shift.start == timedelta(hours=23)
    assert on_call(s, utc(2026, 3, 27, 6) - SECOND) == "b"
    assert on_call(s, utc(2026, 3, 27, 6)) == "a"
    # the night of the change itself (02:00 -> 03:00 local) is no hand-off
    assert on_call(s, utc(2026, 3, 27, 0, 30)) == "b"


def test_jerusalem_fall_back_shift_is_25_hours() -> None:
    s = schedule()
    shift = rotation_shift(s, utc(2026, 10, 25, 0, 30))  # 02:30 IST, after the change at 23:00Z
    assert shift.start == utc(2026, 10, 24, 6)  # Saturday 09:00 +03:00
    assert shift.end == utc(2026, 10, 25, 7)  # Sunday 09:00 +02:00
    assert shift.end - shift.start == timedelta(hours=25)
    before, after = on_call(s, utc(2026, 10, 25, 7) - SECOND), on_call(s, utc(2026, 10, 25, 7))
    assert before != after
    # both passes through the repeated hour 01:00-02:00 local belong to the same shift
    assert on_call(s, utc(2026, 10, 24, 22, 30)) == on_call(s, utc(2026, 10, 24, 23, 30)) == before


def test_new_york_2026_03_08_hand_off_at_nine_local() -> None:
    s = schedule(timezone="America/New_York", start="2026-03-01", members=["x", "y", "z"])
    assert handoff_at(s, date(2026, 3, 7)) == utc(2026, 3, 7, 14)  # 09:00 EST
    assert handoff_at(s, date(2026, 3, 8)) == utc(2026, 3, 8, 13)  # 09:00 EDT
    # 2026-03-07 is day 6 (x), 2026-03-08 day 7 (y)
    assert on_call(s, utc(2026, 3, 8, 13) - SECOND) == "x"
    assert on_call(s, utc(2026, 3, 8, 13)) == "y"
    assert rotation_shift(s, utc(2026, 3, 8, 3)).end - rotation_shift(s, utc(2026, 3, 8, 3)).start == timedelta(
        hours=23
    )


def test_new_york_hand_off_inside_the_skipped_hour_happens_when_clocks_reach_it() -> None:
    s = schedule(timezone="America/New_York", start="2026-03-01", handoff="02:30", members=["x", "y"])
    # 02:30 does not exist on 2026-03-08: the hand-off is at 03:30 EDT = 07:30Z, one hour after 01:30 EST
    assert handoff_at(s, date(2026, 3, 8)) == utc(2026, 3, 8, 7, 30)
    assert on_call(s, utc(2026, 3, 8, 7, 30) - SECOND) == "x"  # day 6
    assert on_call(s, utc(2026, 3, 8, 7, 30)) == "y"  # day 7


def test_new_york_2026_11_01_fall_back() -> None:
    s = schedule(timezone="America/New_York", start="2026-10-25", members=["x", "y"])
    assert handoff_at(s, date(2026, 10, 31)) == utc(2026, 10, 31, 13)  # 09:00 EDT
    assert handoff_at(s, date(2026, 11, 1)) == utc(2026, 11, 1, 14)  # 09:00 EST
    shift = rotation_shift(s, utc(2026, 11, 1, 6))  # 01:00 EST, the second 01:00
    assert (shift.start, shift.end) == (utc(2026, 10, 31, 13), utc(2026, 11, 1, 14))
    assert shift.person == "x"  # day 6
    assert on_call(s, utc(2026, 11, 1, 14)) == "y"


def test_new_york_hand_off_inside_the_repeated_hour_happens_the_first_time() -> None:
    s = schedule(timezone="America/New_York", start="2026-10-25", handoff="01:30", members=["x", "y"])
    assert handoff_at(s, date(2026, 11, 1)) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, not 01:30 EST (06:30Z)
    assert on_call(s, utc(2026, 11, 1, 5, 30) - SECOND) == "x"  # day 6
    assert on_call(s, utc(2026, 11, 1, 5, 30)) == "y"  # day 7
    # the second 01:30 (EST) is no new hand-off
    assert rotation_shift(s, utc(2026, 11, 1, 6, 30)).start == utc(2026, 11, 1, 5, 30)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 28), utc(2026, 3, 28, 8)),  # GMT
        (date(2026, 3, 29), utc(2026, 3, 29, 7)),  # BST from 01:00 that morning
        (date(2026, 10, 24), utc(2026, 10, 24, 7)),
        (date(2026, 10, 25), utc(2026, 10, 25, 8)),  # GMT again from 02:00 BST
    ],
)
def test_london_hand_off_follows_the_wall_clock(day: date, expected: datetime) -> None:
    s = schedule(timezone="Europe/London", handoff="08:00", start="2026-01-05")
    assert handoff_at(s, day) == expected


# --- weekly rotations and week boundaries -------------------------------------------------------


def test_weekly_jerusalem_rotation_across_the_march_change() -> None:
    s = schedule(rotation="weekly", members=["a", "b", "c"])  # Sundays from 2026-01-04
    # week 11 starts Sun 2026-03-22 09:00 +02:00 and ends Sun 2026-03-29 09:00 +03:00: 167 hours
    shift = rotation_shift(s, utc(2026, 3, 27, 12))
    assert (shift.person, shift.start, shift.end) == ("c", utc(2026, 3, 22, 7), utc(2026, 3, 29, 6))
    assert shift.end - shift.start == timedelta(hours=167)
    assert on_call(s, utc(2026, 3, 29, 6) - SECOND) == "c"
    assert on_call(s, utc(2026, 3, 29, 6)) == "a"


def test_weekly_rotation_wraps_around_and_hands_off_on_the_start_weekday_only() -> None:
    s = schedule(rotation="weekly", members=["a", "b", "c"])
    sundays = [utc(2026, 1, 4, 7) + timedelta(weeks=w) for w in range(7)]
    assert [on_call(s, t) for t in sundays] == ["a", "b", "c", "a", "b", "c", "a"]
    assert [on_call(s, t - SECOND) for t in sundays[1:]] == ["a", "b", "c", "a", "b", "c"]
    # Saturday evening and Sunday 08:59 local still belong to the old week
    assert on_call(s, datetime(2026, 1, 17, 23, 0, tzinfo=ZoneInfo("Asia/Jerusalem"))) == "b"
    assert on_call(s, datetime(2026, 1, 18, 8, 59, tzinfo=ZoneInfo("Asia/Jerusalem"))) == "b"
    assert on_call(s, datetime(2026, 1, 18, 9, 0, tzinfo=ZoneInfo("Asia/Jerusalem"))) == "c"


def test_before_the_start_the_rotation_runs_backwards() -> None:
    s = schedule(members=["a", "b", "c"])
    assert on_call(s, utc(2026, 1, 4, 7) - SECOND) == "c"
    assert on_call(s, utc(2026, 1, 2, 12)) == "b"


def test_the_time_zone_of_the_question_does_not_matter() -> None:
    s = schedule()
    moment = utc(2026, 7, 1, 5, 59)  # 08:59 IDT
    for zone in ("UTC", "America/New_York", "Asia/Tokyo", "Asia/Jerusalem"):
        assert on_call(s, moment.astimezone(ZoneInfo(zone))) == on_call(s, moment)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        on_call(schedule(), datetime(2026, 3, 1, 9))


# --- overrides --------------------------------------------------------------------------------


def test_override_across_a_hand_off_wins_for_its_whole_span() -> None:
    s = schedule(
        members=["a", "b"],
        overrides=[{"person": "o", "start": "2026-02-10T20:00", "end": "2026-02-11T12:00"}],  # local times
    )
    # 2026-02-10 is day 37 (b), 2026-02-11 day 38 (a); hand-off at 07:00Z on the 11th falls inside
    assert on_call(s, utc(2026, 2, 10, 18) - SECOND) == "b"
    assert on_call(s, utc(2026, 2, 10, 18)) == "o"
    assert on_call(s, utc(2026, 2, 11, 7)) == "o"
    assert on_call(s, utc(2026, 2, 11, 10) - SECOND) == "o"
    assert on_call(s, utc(2026, 2, 11, 10)) == "a"  # the end is exclusive; the rotation resumes mid-shift
    shift = current_shift(s, utc(2026, 2, 11, 8))
    assert shift.override is not None and (shift.start, shift.end) == (utc(2026, 2, 10, 18), utc(2026, 2, 11, 10))


def test_override_with_an_explicit_offset_and_across_dst() -> None:
    s = schedule(
        overrides=[{"person": "o", "start": "2026-03-26T09:00+02:00", "end": "2026-03-28T09:00"}],
    )
    assert on_call(s, utc(2026, 3, 26, 7)) == "o"
    assert on_call(s, utc(2026, 3, 28, 6) - SECOND) == "o"  # 09:00 local on the 28th is +03:00
    assert on_call(s, utc(2026, 3, 28, 6)) != "o"


def test_shipped_roster_override_for_hanukkah_week() -> None:
    roster = load_roster()
    acme = next(s for s in roster.schedules if s.name == "acme-comms")
    jerusalem = ZoneInfo("Asia/Jerusalem")
    assert on_call(acme, datetime(2026, 12, 6, 8, 59, tzinfo=jerusalem)) == rotation_shift(
        acme, datetime(2026, 12, 6, 8, 59, tzinfo=jerusalem)
    ).person
    assert on_call(acme, datetime(2026, 12, 6, 9, 0, tzinfo=jerusalem)) == "noa-ben-david"
    assert on_call(acme, datetime(2026, 12, 13, 8, 59, tzinfo=jerusalem)) == "noa-ben-david"


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    zone=st.sampled_from(["Asia/Jerusalem", "America/New_York", "Europe/London"]),
    handoff=st.sampled_from(["00:00", "01:30", "02:30", "09:00", "23:59"]),
    rotation=st.sampled_from(["daily", "weekly"]),
)
def test_every_instant_lies_in_exactly_one_shift_starting_at_the_local_hand_off(
    moment: datetime, zone: str, handoff: str, rotation: str
) -> None:
    s = schedule(timezone=zone, handoff=handoff, rotation=rotation, members=["a", "b", "c"])
    shift = rotation_shift(s, moment)
    assert shift.start <= moment < shift.end
    hours = 24 if rotation == "daily" else 168
    assert abs((shift.end - shift.start) - timedelta(hours=hours)) <= timedelta(hours=1)
    assert rotation_shift(s, shift.end).person != shift.person
    assert rotation_shift(s, shift.end - SECOND) == shift
    local = shift.start.astimezone(ZoneInfo(zone))
    wanted = tuple(int(p) for p in handoff.split(":"))
    # the local hand-off time, or an hour later when it fell into a spring-forward gap
    assert (local.hour, local.minute) in (wanted, ((wanted[0] + 1) % 24, wanted[1]))


# --- targets ----------------------------------------------------------------------------------


def _roster() -> Roster:
    shipped = load_roster()
    people = [p.model_dump() for p in shipped.people if p.id in ("maya-katz", "omar-haddad", "noa-ben-david")]
    return Roster.model_validate(
        {
            "people": people,
            "schedules": [
                {"name": "comms", "timezone": "Asia/Jerusalem", "rotation": "daily", "handoff": "09:00",
                 "start": "2026-01-04", "members": ["maya-katz", "omar-haddad"]}
            ],
        }
    )


def test_resolve_targets_in_order_each_person_once() -> None:
    roster = _roster()
    at = utc(2026, 1, 4, 12)  # day 0: maya
    step = EscalationStep.model_validate(
        {"targets": ["schedule:comms", "person:noa-ben-david", "person:maya-katz"], "ack_timeout": "5m"}
    )
    people = resolve_targets(step, roster, at)
    assert [p.id for p in people] == ["maya-katz", "noa-ben-david"]
    assert [p.phone for p in people] == ["+972545550102", "+972545550101"]
    assert [p.id for p in resolve_targets(step, roster, at + timedelta(days=1))] == [
        "omar-haddad", "noa-ben-david", "maya-katz"
    ]


@pytest.mark.parametrize("target", ["person:nobody", "schedule:nothing", "group:comms"])
def test_unknown_targets_raise(target: str) -> None:
    with pytest.raises(UnknownTarget):
        resolve_targets([target], _roster(), utc(2026, 1, 4, 12))
