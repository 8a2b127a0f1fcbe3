"""Playbook and roster schemas (pydantic, extra="forbid" everywhere so a typo is an error, not a silent default).

Cross-references (brand ids, people, schedules, escalation policies) are checked only when the
caller passes `context={"refs": Refs(...)}` to `model_validate`; the loader always does. Without
refs the models check shape alone, which is what the JSON Schema export needs.

Validators that find several problems at once raise one `klaxon` error whose ctx carries
`problems`: (sub-location, message, character offset or None) triples. The loader expands them
into one issue each, at the exact line, so a file's errors all show up in one run.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from chalicelib.detect import DetectorParams

# --- small types ------------------------------------------------------------------------------

_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
_LANG = r"^[a-z]{2,3}$"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
PATTERN_HELP: dict[str, str] = {
    _ID: "use lowercase letters, digits and hyphens, e.g. 'dana-levi'",
    _LANG: "use a lowercase language code such as 'he' or 'en'",
    _HHMM: "use a 24-hour time HH:MM, e.g. 09:00",
}
"""Plain-words replacements for pydantic's 'String should match pattern ...' messages."""
BrandId = Annotated[str, StringConstraints(pattern=_ID)]
"""Same shape as chalicelib.ingest.models.BrandId (not imported: ingest will import us)."""
PersonId = Annotated[str, StringConstraints(pattern=_ID)]
Name = Annotated[str, StringConstraints(pattern=_ID)]
"""Schedule, escalation policy and playbook names: lowercase words joined by hyphens."""
Lang = Annotated[str, StringConstraints(pattern=_LANG)]
"""ISO 639 language code as `chalicelib.sentiment.detect_language` returns it (he, en, ar, ru)."""
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

Severity = Literal["sev1", "sev2", "sev3", "sev4"]
"""sev1 is the worst: see docs/playbooks.md for what each level means."""

SEVERITY_RANK: dict[str, int] = {"sev1": 1, "sev2": 2, "sev3": 3, "sev4": 4}

REQUIRED_LANGUAGES = ("he", "en")
"""Every playbook has a statement in at least these languages."""

PLACEHOLDERS: dict[str, str] = {
    "brand": "the brand's name, from config/brands.yaml",
    "product": "the product, service or area affected, filled in when the statement is drafted",
    "what_we_know": "the facts confirmed so far, filled in when drafted",
    "what_we_are_doing": "the actions under way, filled in when drafted",
    "next_update": "when the next update will come, e.g. 'by 18:00 today'",
    "signer_name": "the signer's name in the statement's language, from the roster",
    "signer_role": "the signer's role in the statement's language, from the roster",
}
"""The closed set of template placeholders; anything else in braces is an error."""

REQUIRED_PLACEHOLDERS = ("signer_name", "next_update")
"""A statement always says who is speaking and when they will speak again."""


Problem = tuple[tuple[Any, ...], str, int | None]
"""(sub-location, message, character offset in a scalar or None): one issue a validator found."""


def _validate_with(handler: Callable[[Any], Any], value: object, problems: list[Problem]) -> object:
    """Run the inner validation and report its errors together with `problems` found by the caller."""
    extra = [InitErrorDetails(type=_fail(problems[0][1], problems), loc=(), input=value)] if problems else []
    try:
        result = handler(value)
    except ValidationError as exc:
        inner = [
            InitErrorDetails(
                type=PydanticCustomError("klaxon", "{msg}", e["ctx"]) if e["type"] == "klaxon" else e["type"],
                loc=e["loc"],
                input=e["input"],
                **({"ctx": e["ctx"]} if "ctx" in e and e["type"] != "klaxon" else {}),  # type: ignore[typeddict-item]
            )
            for e in exc.errors()
        ]
        raise ValidationError.from_exception_data(exc.title, inner + extra) from None
    if extra:
        raise ValidationError.from_exception_data("klaxon", extra)
    return result


def _fail(message: str, problems: list[Problem] | None = None) -> PydanticCustomError:
    """An error whose message is literal text (braces included) and may carry several problems."""
    ctx: dict[str, Any] = {"msg": message}
    if problems:
        ctx["problems"] = problems
    return PydanticCustomError("klaxon", "{msg}", ctx)


# --- durations --------------------------------------------------------------------------------

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
MAX_DURATION = timedelta(days=30)
"""Nothing in a crisis waits longer; also keeps absurd values from overflowing timedelta."""
_DURATION_HELP = 'a duration like "90s", "15m", "1h" or "1h30m" (units d, h, m, s, largest first)'


def parse_duration(text: str) -> timedelta:
    """'1h30m' -> timedelta(hours=1, minutes=30). Units are required: a bare 15 could mean anything."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not text.strip():
        raise ValueError(f"{text!r} is not {_DURATION_HELP}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    if total > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    """timedelta(minutes=90) -> '1h30m'; the inverse of parse_duration."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool):
            raise _fail(f'{value} has no unit: write "{value}m", "{value}h" or "{value}s"')
        raise _fail(f"expected {_DURATION_HELP}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


Duration = Annotated[
    timedelta,
    PlainValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["15m", "1h", "1h30m"]}),
]


# --- cross-reference context ------------------------------------------------------------------


@dataclass(frozen=True)
class Refs:
    """What names exist, for reference checks. None means unknown: that check is skipped."""

    brands: frozenset[str] | None = None
    people: Mapping[str, frozenset[str] | None] | None = None
    """person id -> languages they read (None when the roster entry is itself broken)."""
    schedules: frozenset[str] | None = None
    policies: frozenset[str] | None = None
    file_stem: str | None = None
    """A playbook's id must equal its file name without .yaml."""


def _refs(info: ValidationInfo) -> Refs:
    context = info.context if isinstance(info.context, dict) else {}
    refs = context.get("refs")
    return refs if isinstance(refs, Refs) else Refs()


def _suggest(name: str, known: Iterable[str], list_all: bool = False) -> str:
    """'; did you mean 'x'?' when a known name is close to the typo; else the known names if asked."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (known: {', '.join(names) or 'none'})" if list_all else ""


def _not_a_person(person: str, people: Iterable[str]) -> str:
    return f"{person!r} is not a person in the roster{_suggest(person, people)}"


def _check_person(person: str, info: ValidationInfo) -> str:
    people = _refs(info).people
    if people is not None and person not in people:
        raise _fail(_not_a_person(person, people))
    return person


def _check_target(target: str, info: ValidationInfo) -> str:
    kind, _, name = target.partition(":")
    if kind not in ("person", "schedule") or not re.match(_ID, name):
        raise _fail(f'{target!r}: a target is "person:<id>" or "schedule:<name>"')
    refs = _refs(info)
    if kind == "person" and refs.people is not None and name not in refs.people:
        raise _fail(f"{target!r}: {_not_a_person(name, refs.people)}")
    if kind == "schedule" and refs.schedules is not None and name not in refs.schedules:
        raise _fail(f"{target!r}: no schedule named {name!r} in the roster{_suggest(name, refs.schedules)}")
    return target


def _duplicates(values: list[Any], key: str) -> list[Problem]:
    """One problem per repeated value, located at the repeat."""
    seen: dict[Any, int] = {}
    problems: list[Problem] = []
    for index, value in enumerate(values):
        if value in seen:
            where = (index, key) if key else (index,)
            problems.append((where, f"{value!r} is listed twice (first at [{seen[value]}])", None))
        else:
            seen[value] = index
    return problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- roster -----------------------------------------------------------------------------------

PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$"


class LocalName(_Model):
    """How a person's name and role are written in another language (e.g. Hebrew script)."""

    name: Text | None = None
    role: Text | None = None


class Person(_Model):
    """Someone who can be paged, sign a statement or approve one."""

    id: PersonId
    name: Text
    role: Text
    phone: str = Field(
        description='E.164, quoted in YAML: "+972501234567"', json_schema_extra={"pattern": PHONE_PATTERN}
    )
    timezone: str = Field(description="IANA time zone, e.g. Asia/Jerusalem")
    languages: list[Lang] = Field(min_length=1, description="languages this person reads and signs in")
    local: dict[Lang, LocalName] = Field(default_factory=dict, description="name/role per language")

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise _fail(f'phone must be a quoted string in E.164 form, e.g. "+{value}"')
        if not isinstance(value, str) or not re.match(PHONE_PATTERN, value):
            raise _fail(f"{value!r} is not an E.164 phone number (+, country code, number, no spaces)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        problems = _duplicates(value, "")
        if problems:
            raise _fail(problems[0][1], problems)
        return value

    def name_in(self, lang: str) -> str:
        """The name to sign with in `lang`: the local spelling if the roster has one."""
        local = self.local.get(lang)
        return local.name if local and local.name else self.name

    def role_in(self, lang: str) -> str:
        """The role to sign with in `lang`."""
        local = self.local.get(lang)
        return local.role if local and local.role else self.role


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise _fail(f"{value!r} is not an IANA time zone (e.g. Asia/Jerusalem, Europe/London)") from None
    return value


class Override(_Model):
    """Someone covers the schedule from start to end (naive times are in the schedule's zone)."""

    person: PersonId
    start: datetime
    end: datetime
    reason: Text | None = None

    @field_validator("person")
    @classmethod
    def _person(cls, value: str, info: ValidationInfo) -> str:
        return _check_person(value, info)

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and (start.tzinfo is None) == (value.tzinfo is None) and value <= start:
            raise _fail("end must be after start")
        return value


class Schedule(_Model):
    """An on-call rotation. The first member's first shift starts on `start` at `handoff`."""

    name: Name
    timezone: str = Field(description="IANA time zone the hand-off time is in")
    rotation: Literal["daily", "weekly"]
    handoff: str = Field(pattern=_HHMM, description="local hand-off time, HH:MM")
    start: date = Field(description="first day of the rotation; for weekly, also the hand-off weekday")
    members: list[PersonId] = Field(min_length=1, description="in rotation order")
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str], info: ValidationInfo) -> list[str]:
        people = _refs(info).people
        if people is not None:
            problems: list[Problem] = [
                ((i,), _not_a_person(m, people), None) for i, m in enumerate(value) if m not in people
            ]
            if problems:
                raise _fail(problems[0][1], problems)
        return value

    @field_validator("overrides")
    @classmethod
    def _no_overlap(cls, value: list[Override], info: ValidationInfo) -> list[Override]:
        zone = info.data.get("timezone")
        if not zone:
            return value
        tz = zoneinfo.ZoneInfo(zone)

        def aware(moment: datetime) -> datetime:
            return moment if moment.tzinfo else moment.replace(tzinfo=tz)

        spans = sorted((aware(o.start), aware(o.end), i) for i, o in enumerate(value))
        problems: list[Problem] = []
        for (_, end_a, a), (start_b, _, b) in zip(spans, spans[1:], strict=False):
            if start_b < end_a:
                problems.append(((b, "start"), f"overlaps override [{a}]; one person covers at a time", None))
        if problems:
            raise _fail(problems[0][1], problems)
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


Target = Annotated[str, Field(description='"person:<id>" or "schedule:<name>"', pattern=r"^(person|schedule):.+$")]


class EscalationStep(_Model):
    """Page every target at once; move on if nobody acknowledges within ack_timeout."""

    targets: list[Target] = Field(min_length=1)
    ack_timeout: Duration

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, list):
            return value
        problems: list[Problem] = []
        for index, target in enumerate(value):
            if isinstance(target, str):
                try:
                    _check_target(target, info)
                except PydanticCustomError as exc:
                    problems.append(((index,), str(exc), None))
        problems += _duplicates(value, "")
        if problems:
            raise _fail(problems[0][1], problems)
        return value


class EscalationPolicy(_Model):
    """Ordered steps, the whole chain repeated `repeat` more times, then the fallback is paged."""

    name: Name
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=10, description="times the whole chain runs again after the last step")
    fallback: Target = Field(description="paged when every step and repeat went unacknowledged")

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, value: str, info: ValidationInfo) -> str:
        return _check_target(value, info)


class Roster(_Model):
    """config/roster.yaml: people, on-call schedules and escalation policies."""

    people: list[Person] = Field(min_length=1)
    schedules: list[Schedule] = Field(default_factory=list)
    escalation_policies: list[EscalationPolicy] = Field(default_factory=list)

    @field_validator("people", "schedules", "escalation_policies", mode="before")
    @classmethod
    def _unique(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, list):
            key = "id" if info.field_name == "people" else "name"
            names = [item.get(key) if isinstance(item, dict) else None for item in value]
            problems = [p for p in _duplicates(names, key) if names[p[0][0]] is not None]
            if problems:
                raise _fail(problems[0][1], problems)
        return value

    def person(self, person_id: str) -> Person:
        return next(p for p in self.people if p.id == person_id)

    def refs(self) -> Refs:
        """The names this roster defines, for validating playbooks against it."""
        return Refs(
            people={p.id: frozenset(p.languages) for p in self.people},
            schedules=frozenset(s.name for s in self.schedules),
            policies=frozenset(p.name for p in self.escalation_policies),
        )


# --- playbooks --------------------------------------------------------------------------------

_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def template_problems(template: str) -> list[tuple[int, str]]:
    """(offset, message) for each unknown placeholder, conversion or stray brace; empty when valid."""
    problems: list[tuple[int, str]] = []
    found: set[str] = set()
    for match in _BRACES.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            problems.append((match.start(), f"unmatched {token!r}; write {token * 2} for a literal brace"))
            continue
        name = match.group(1)
        head = re.match(r"^(\w+)[!:.\[]", name)
        if name in PLACEHOLDERS:
            found.add(name)
        elif head and head.group(1) in PLACEHOLDERS:
            problems.append((match.start(), f"{token}: write the bare placeholder; no conversions, formats or fields"))
        else:
            allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            problems.append((match.start(), f"unknown placeholder {token} (allowed: {allowed})"))
    for name in REQUIRED_PLACEHOLDERS:
        if name not in found:
            problems.append((-1, f"the template must contain {{{name}}}"))
    return problems


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill a validated template; every placeholder it uses must have a value."""
    missing = sorted({m.group(1) for m in _BRACES.finditer(template) if m.group(1)} - set(values))
    if missing:
        raise KeyError(f"no value for placeholders: {', '.join(missing)}")
    return template.format_map(values)


class Statement(_Model):
    """A holding statement in one language: its template, who signs it and who must approve it.

    Publishing needs the signer's own approval plus `quorum` of the approvers, all on the sha256
    of the exact rendered text (design invariant 5).
    """

    signer: PersonId = Field(description="person id from the roster; name and role come from there")
    approvers: list[PersonId] = Field(min_length=1, description="person ids; the signer is not one of them")
    quorum: int = Field(ge=1, description="how many approvers must approve, besides the signer")
    template: str = Field(min_length=1, max_length=5000, description="text with {placeholders}")

    @field_validator("signer")
    @classmethod
    def _signer(cls, value: str, info: ValidationInfo) -> str:
        return _check_person(value, info)

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: list[str], info: ValidationInfo) -> list[str]:
        people = _refs(info).people
        problems: list[Problem] = []
        for index, person in enumerate(value):
            if people is not None and person not in people:
                problems.append(((index,), _not_a_person(person, people), None))
            elif person == info.data.get("signer"):
                problems.append(((index,), f"{person!r} signs this statement; the signer always approves, "
                                 "so list other people as approvers", None))
        problems += _duplicates(value, "")
        if problems:
            raise _fail(problems[0][1], problems)
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _quorum(cls, value: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Quorum against the raw approver list, so it is reported even when an approver is unknown."""
        approvers, quorum = (value.get("approvers"), value.get("quorum")) if isinstance(value, dict) else (None, None)
        problems: list[Problem] = []
        if isinstance(approvers, list) and isinstance(quorum, int) and quorum > len(approvers):
            message = f"quorum {quorum} is more than the {len(approvers)} approver(s) listed"
            problems.append((("quorum",), message, None))
        return cast(Self, _validate_with(handler, value, problems))

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        found = template_problems(value)
        if found:
            raise _fail(found[0][1], [((), message, offset if offset >= 0 else None) for offset, message in found])
        return value


class ResponseTargets(_Model):
    """How fast on-call must acknowledge the page and the brand must first speak in public."""

    acknowledge: Duration
    first_public_response: Duration
    update_every: Duration | None = Field(None, description="cadence of public updates while the incident is open")

    @field_validator("first_public_response")
    @classmethod
    def _after_ack(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        ack = info.data.get("acknowledge")
        if ack is not None and value < ack:
            raise _fail(f"first_public_response ({format_duration(value)}) comes before acknowledge "
                        f"({format_duration(ack)})")
        return value


class Triggers(_Model):
    """What opens an incident with this playbook.

    `manual: true` means only a person opens it (the detector never does); any playbook can be
    opened by hand. Automatic playbooks run the detector with `detector` (defaults when absent) and
    `min_volume`. `crisis_terms` of every playbook covering a brand force matching mentions into
    that brand's negative series.
    """

    manual: bool = False
    detector: DetectorParams | None = None
    min_volume: int | None = Field(None, ge=1, description="negative mentions in the alarm window, at least")
    crisis_terms: dict[Lang, list[Term]] = Field(default_factory=dict, description="per language")

    @field_validator("min_volume")
    @classmethod
    def _one_min_volume(cls, value: int | None, info: ValidationInfo) -> int | None:
        detector = info.data.get("detector")
        if value is not None and detector is not None and "min_volume" in detector.model_fields_set:
            raise _fail("min_volume is set here and in detector; set it once, here")
        if value is not None and info.data.get("manual"):
            raise _fail("a manual playbook is never opened by the detector, so min_volume has no effect")
        return value

    @field_validator("detector")
    @classmethod
    def _not_manual(cls, value: DetectorParams | None, info: ValidationInfo) -> DetectorParams | None:
        if value is not None and info.data.get("manual"):
            raise _fail("a manual playbook is never opened by the detector; remove detector or set manual: false")
        return value

    def detector_params(self) -> DetectorParams | None:
        """The detector settings for this playbook (None for a manual one), min_volume applied."""
        if self.manual:
            return None
        params = self.detector or DetectorParams.model_validate({})
        if self.min_volume is not None:
            params = params.model_copy(update={"min_volume": float(self.min_volume)})
        return params

    def all_terms(self) -> tuple[str, ...]:
        """Every crisis term, all languages together, in file order."""
        return tuple(term for terms in self.crisis_terms.values() for term in terms)


class Playbook(_Model):
    """One crisis playbook, one file: playbooks/<id>.yaml."""

    id: Name = Field(description="equals the file name without .yaml")
    name: Text
    description: str | None = Field(None, max_length=2000)
    brands: list[BrandId] = Field(min_length=1, description="brand ids from config/brands.yaml")
    severity: Severity
    triggers: Triggers
    schedule: Name = Field(description="on-call schedule in the roster that is paged first")
    escalation_policy: Name = Field(description="escalation policy in the roster")
    response_targets: ResponseTargets
    statements: dict[Lang, Statement] = Field(description="per language; he and en at least")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str, info: ValidationInfo) -> str:
        stem = _refs(info).file_stem
        if stem is not None and value != stem:
            raise _fail(f"id {value!r} must equal the file name ({stem}.yaml)")
        return value

    @field_validator("brands")
    @classmethod
    def _brands(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = _refs(info).brands
        problems: list[Problem] = []
        if known is not None:
            problems = [((i,), f"unknown brand {b!r}{_suggest(b, known, list_all=True)}", None)
                        for i, b in enumerate(value) if b not in known]
        problems += _duplicates(value, "")
        if problems:
            raise _fail(problems[0][1], problems)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str, info: ValidationInfo) -> str:
        known = _refs(info).schedules
        if known is not None and value not in known:
            raise _fail(f"no schedule named {value!r} in the roster{_suggest(value, known, list_all=True)}")
        return value

    @field_validator("escalation_policy")
    @classmethod
    def _policy(cls, value: str, info: ValidationInfo) -> str:
        known = _refs(info).policies
        if known is not None and value not in known:
            raise _fail(f"no escalation policy named {value!r} in the roster{_suggest(value, known, list_all=True)}")
        return value

    @field_validator("statements", mode="wrap")
    @classmethod
    def _statements(cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> object:
        """Required languages and signers' languages, checked on the raw input so that they are
        reported together with any error inside a statement."""
        if not isinstance(value, dict):
            return handler(value)
        problems: list[Problem] = []
        for lang in REQUIRED_LANGUAGES:
            if lang not in value:
                needed = " and ".join(REQUIRED_LANGUAGES)
                problems.append(((), f"missing the {lang!r} statement (every playbook has {needed})", None))
        people = _refs(info).people
        for lang, statement in value.items():
            signer = statement.get("signer") if isinstance(statement, dict) else None
            if not isinstance(signer, str) or not isinstance(lang, str) or not re.match(_LANG, lang):
                continue
            languages = people.get(signer) if people is not None else None
            if languages is not None and lang not in languages:
                problems.append(((lang, "signer"), f"{signer!r} signs the {lang!r} statement but the roster "
                                 f"does not list {lang!r} among their languages", None))
        return _validate_with(handler, value, problems)

    def covers(self, brand: str) -> bool:
        return brand in self.brands
