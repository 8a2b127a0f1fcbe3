"""Who is on call: rotations with a local hand-off time, DST-correct, overrides first.

A schedule's shift n starts on the local date `start + n * period` at `handoff` wall-clock
time in the schedule's zone, and lasts until the next shift starts; so a shift that spans a
DST change is 23 or 25 hours (daily) or 167/169 hours (weekly), and the hand-off stays at
09:00 local all year. A hand-off time that does not exist on a spring-forward day (02:30 in
New York on 2026-03-08) happens when the clocks reach it, i.e. at 03:30 local; one that
occurs twice on a fall-back day happens the first time.

All comparisons are made in UTC: Python compares two datetimes that share a tzinfo by wall
clock, ignoring `fold`, which gets the repeated hour wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from chalicelib.playbooks.models import EscalationStep, Override, Person, Roster, Schedule

_PERIOD_DAYS = {"daily": 1, "weekly": 7}


@dataclass(frozen=True)
class Shift:
    """Who covers a schedule from `start` to `end` (UTC); `override` when an override decided it."""

    person: str
    start: datetime
    end: datetime
    override: Override | None = None


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("on-call questions need an aware datetime (a naive one has no zone to mean)")
    return at.astimezone(UTC)


def _local_instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """`hhmm` on `day` in `zone`, as UTC: a skipped time moves forward by the gap, a repeated one is the first."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    # fold=0: a skipped wall time resolves with the pre-gap offset, which lands after the gap
    # (02:30 EST = 03:30 EDT); a repeated wall time resolves to its first occurrence.
    return datetime.combine(day, time(hours, minutes), tzinfo=zone).astimezone(UTC)


def handoff_at(schedule: Schedule, day: date) -> datetime:
    """The UTC instant of the hand-off on local date `day` (whether or not a shift starts that day)."""
    return _local_instant(day, schedule.handoff, schedule.zone)


def _override_span(override: Override, zone: ZoneInfo) -> tuple[datetime, datetime]:
    def aware(moment: datetime) -> datetime:
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)

    return aware(override.start), aware(override.end)


def rotation_shift(schedule: Schedule, at: datetime) -> Shift:
    """The rotation's shift at `at`, ignoring overrides. Before `start` the rotation runs backwards."""
    now = _utc(at)
    period = _PERIOD_DAYS[schedule.rotation]
    local_day = now.astimezone(schedule.zone).date()
    n = (local_day - schedule.start).days // period
    begins = handoff_at(schedule, schedule.start + timedelta(days=n * period))
    if now < begins:  # before today's (or this week's) hand-off: still the previous shift
        n -= 1
        begins = handoff_at(schedule, schedule.start + timedelta(days=n * period))
    ends = handoff_at(schedule, schedule.start + timedelta(days=(n + 1) * period))
    return Shift(person=schedule.members[n % len(schedule.members)], start=begins, end=ends)


def current_shift(schedule: Schedule, at: datetime) -> Shift:
    """The shift at `at`: an override covering `at` wins (its own span), else the rotation's shift."""
    now = _utc(at)
    for override in schedule.overrides:
        start, end = _override_span(override, schedule.zone)
        if start <= now < end:
            return Shift(person=override.person, start=start, end=end, override=override)
    return rotation_shift(schedule, now)


def on_call(schedule: Schedule, at: datetime) -> str:
    """The person id on call for `schedule` at the aware instant `at`."""
    return current_shift(schedule, at).person


class UnknownTarget(LookupError):
    """A target names a person or schedule the roster does not have (validated rosters never do)."""


def resolve_target(target: str, roster: Roster, at: datetime) -> Person:
    """One escalation target (`person:<id>` or `schedule:<name>`) as the roster's Person at `at`."""
    kind, _, name = target.partition(":")
    people = {p.id: p for p in roster.people}
    if kind == "person":
        person_id = name
    elif kind == "schedule":
        schedule = next((s for s in roster.schedules if s.name == name), None)
        if schedule is None:
            raise UnknownTarget(f"no schedule {name!r}")
        person_id = on_call(schedule, at)
    else:
        raise UnknownTarget(f"unknown target kind in {target!r}")
    if person_id not in people:
        raise UnknownTarget(f"no person {person_id!r}")
    return people[person_id]


def resolve_targets(step: EscalationStep | list[str], roster: Roster, at: datetime) -> list[Person]:
    """The people a step pages at `at`, in target order, each once (two schedules may name the same person).

    Only roster people are ever returned: this is the one place a phone number to page comes from.
    """
    targets = step.targets if isinstance(step, EscalationStep) else step
    seen: dict[str, Person] = {}
    for target in targets:
        person = resolve_target(target, roster, at)
        seen.setdefault(person.id, person)
    return list(seen.values())
