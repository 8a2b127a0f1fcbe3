"""Load and validate playbooks and the roster; every problem names its file, line and key path.

Pydantic reports errors by `loc` (a key path); `yamlsource` remembers the line of every key path,
so each error is placed on the line of the deepest key that exists (for a missing key, its
parent). All errors of a file are reported, not just the first.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.config import PROJECT_ROOT, settings
from chalicelib.playbooks.models import PATTERN_HELP, SEVERITY_RANK, Playbook, Refs, Roster
from chalicelib.playbooks.yamlsource import Path_, Source, parse

M = TypeVar("M", bound=BaseModel)

ROOT_KEY = "(file)"
"""The key shown for problems that concern a whole file (syntax errors, empty file)."""


@dataclass(frozen=True, order=True)
class ValidationIssue:
    """One problem, printed as `file:line: key.path: message` (the form editors and CI link to)."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class PlaybookError(ValueError):
    """Playbooks or roster are invalid; `issues` lists every problem found."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues) or "invalid playbooks")


# --- default locations --------------------------------------------------------------------------


def default_playbooks_dir() -> Path:
    """KLAXON_PLAYBOOKS_DIR, else playbooks/ in the project."""
    return Path(os.environ.get("KLAXON_PLAYBOOKS_DIR") or PROJECT_ROOT / "playbooks")


def default_roster_file() -> Path:
    """KLAXON_ROSTER_FILE, else config/roster.yaml in the project."""
    return Path(os.environ.get("KLAXON_ROSTER_FILE") or PROJECT_ROOT / "config" / "roster.yaml")


def default_brands_file() -> Path:
    """The brands file ingest uses (KLAXON_BRANDS_FILE, else config/brands.yaml)."""
    return settings().brands_file


# --- key paths and messages -------------------------------------------------------------------


def key_path(path: Iterable[str | int]) -> str:
    """('statements', 'he', 'approvers', 1) -> 'statements.he.approvers[1]'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or ROOT_KEY


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path`, for listing its allowed keys."""
    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        current = _unwrap(current)
        origin, args = typing.get_origin(current), typing.get_args(current)
        if origin is list and isinstance(part, int) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
        current = _unwrap(current)
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X; Annotated[X, ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _clean_loc(loc: tuple[Any, ...], source: Source) -> tuple[Any, ...]:
    """Drop pydantic's internal loc parts (e.g. 'function-after[...]', '[key]') that are not keys in the file."""
    kept: list[Any] = []
    for part in loc:
        candidate = (*kept, part)
        if isinstance(part, str) and part.endswith("]") and "[" in part and tuple(candidate) not in source.lines:
            continue
        kept.append(part)
    return tuple(kept)


def _message(error: Mapping[str, Any], model: type[BaseModel], loc: tuple[Any, ...], source: Source) -> str:
    """Pydantic's message, reworded where a plain one helps more."""
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        key = str(loc[-1]) if loc else ""
        if parent is None:
            return f"unknown key {key!r}"
        allowed = list(parent.model_fields)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        parent_where = source.lines.get(loc[:-1])
        if error.get("input") is None and parent_where is not None and parent_where.style == "{}":
            hint = "a comma inside {...} starts a new key: quote the value before it, or use block style; "
        return f"unknown key {key!r} ({hint}allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"missing required key {str(loc[-1])!r}" if loc else "missing required key"
    if kind == "string_pattern_mismatch" and (error.get("ctx") or {}).get("pattern") in PATTERN_HELP:
        return f"{error['input']!r}: {PATTERN_HELP[error['ctx']['pattern']]}"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message


def _issues_from(exc: ValidationError, source: Source, file: str, model: type[BaseModel]) -> list[ValidationIssue]:
    issues = []
    for error in exc.errors():
        loc = _clean_loc(tuple(error["loc"]), source)
        problems = (error.get("ctx") or {}).get("problems") if error["type"] == "klaxon" else None
        if not problems:
            problems = [((), _message(error, model, loc, source), None)]
        for subloc, message, offset in problems:
            full = loc + tuple(subloc)
            line, _ = source.line_of(full)
            if offset is not None:
                line = _line_in_scalar(source, full, offset, line)
            issues.append(ValidationIssue(file, line, key_path(full), message))
    return issues


def _line_in_scalar(source: Source, path: Path_, offset: int, fallback: int) -> int:
    """Line of a character inside a scalar: exact for literal blocks (|) and one-line values."""
    where = source.lines.get(path)
    value = _get(source.data, path)
    if where is None or not isinstance(value, str):
        return fallback
    if where.style == "|":
        return where.value_line + 1 + value.count("\n", 0, offset)
    if "\n" not in value.rstrip("\n"):
        return where.value_line
    return fallback


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# --- files ------------------------------------------------------------------------------------


def _read(path: Path, file: str) -> tuple[Source, list[ValidationIssue]]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except FileNotFoundError:
        return Source(), [ValidationIssue(file, 1, ROOT_KEY, "file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return Source(), [ValidationIssue(file, 1, ROOT_KEY, f"cannot read the file: {exc}")]
    source = parse(text)
    issues = [ValidationIssue(file, line, key_path(p), msg) for p, line, msg in source.problems]
    if source.data is not None and not isinstance(source.data, dict):
        issues.append(ValidationIssue(file, 1, ROOT_KEY, "the file must be a mapping of keys to values"))
    return source, issues


def _validate(model: type[M], source: Source, file: str, refs: Refs) -> tuple[M | None, list[ValidationIssue]]:
    if not isinstance(source.data, dict):
        return None, []
    try:
        return model.model_validate(source.data, context={"refs": refs}), []
    except ValidationError as exc:
        return None, _issues_from(exc, source, file, model)


def _raw_roster_refs(data: Any) -> Refs:
    """Names a roster defines, read from the raw data, so references still resolve when other
    parts of the roster are broken (one roster typo must not flag every playbook)."""
    if not isinstance(data, dict):
        return Refs()

    def items(key: str) -> list[dict[str, Any]]:
        value = data.get(key)
        return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []

    people: dict[str, frozenset[str] | None] = {}
    for person in items("people"):
        if isinstance(person.get("id"), str):
            languages = person.get("languages")
            if isinstance(languages, list) and all(isinstance(lang, str) for lang in languages):
                people[person["id"]] = frozenset(languages)
            else:
                people[person["id"]] = None
    return Refs(
        people=people,
        schedules=frozenset(s["name"] for s in items("schedules") if isinstance(s.get("name"), str)),
        policies=frozenset(p["name"] for p in items("escalation_policies") if isinstance(p.get("name"), str)),
    )


def check_roster(path: Path, display: str | None = None) -> tuple[Roster | None, Refs, list[ValidationIssue]]:
    """Validate the roster; returns it (None if invalid), the names it defines, and its issues."""
    file = display or str(path)
    source, issues = _read(path, file)
    if source.data is None:
        return None, Refs(), issues
    refs = _raw_roster_refs(source.data)
    roster, more = _validate(Roster, source, file, refs)
    return (roster if not issues else None), refs, issues + more


def load_roster(path: Path | None = None) -> Roster:
    """The roster, validated; raises PlaybookError listing every problem."""
    roster, _, issues = check_roster(path or default_roster_file())
    if issues or roster is None:
        raise PlaybookError(issues)
    return roster


def check_brands(path: Path, display: str | None = None) -> tuple[frozenset[str] | None, list[ValidationIssue]]:
    """Brand ids defined in the brands file. Only the ids are read here: ingest owns that file's
    full validation, and importing ingest would make the two packages depend on each other."""
    file = display or str(path)
    source, issues = _read(path, file)
    if source.data is None or issues:
        return None, issues
    brands = source.data.get("brands")
    if not isinstance(brands, list):
        line, _ = source.line_of(("brands",))
        return None, [ValidationIssue(file, line, "brands", "expected a list of brands")]
    ids = frozenset(b["id"] for b in brands if isinstance(b, dict) and isinstance(b.get("id"), str))
    return ids, []


def check_playbook(path: Path, refs: Refs, display: str | None = None) -> tuple[Playbook | None, list[ValidationIssue]]:
    """Validate one playbook file against the names in `refs`."""
    file = display or str(path)
    source, issues = _read(path, file)
    refs = Refs(refs.brands, refs.people, refs.schedules, refs.policies, file_stem=path.stem)
    playbook, more = _validate(Playbook, source, file, refs)
    return (playbook if not issues else None), issues + more


def _playbook_files(directory: Path, display: str) -> tuple[list[Path], list[ValidationIssue]]:
    if not directory.is_dir():
        return [], [ValidationIssue(display, 1, ROOT_KEY, "not a directory")]
    issues = [
        ValidationIssue(_join(display, p.name), 1, ROOT_KEY, "playbooks end in .yaml; this file is not read")
        for p in sorted(directory.glob("*.yml"))
    ]
    return sorted(directory.glob("*.yaml")), issues


def _join(display: str, name: str) -> str:
    return str(Path(display) / name)


def load_playbooks(directory: Path, roster: Roster, brands: Iterable[str]) -> list[Playbook]:
    """Every playbook in `directory`, validated against the roster and brand ids; sorted by id.

    Raises PlaybookError listing every problem in every file.
    """
    directory = Path(directory)
    base = roster.refs()
    refs = Refs(frozenset(brands), base.people, base.schedules, base.policies)
    files, issues = _playbook_files(directory, str(directory))
    playbooks = []
    checked = []
    for path in files:
        playbook, found = check_playbook(path, refs)
        issues += found
        if playbook is not None:
            playbooks.append(playbook)
            checked.append((path, str(path), playbook))
    issues += automatic_overlaps(checked)
    if issues:
        raise PlaybookError(sorted(issues))
    return sorted(playbooks, key=lambda p: p.id)


@dataclass(frozen=True)
class Report:
    """What `validate_all` looked at and what it found."""

    playbooks: int
    issues: list[ValidationIssue]

    @property
    def files_with_issues(self) -> int:
        return len({i.file for i in self.issues})


def validate_all(
    directory: Path | None = None,
    roster_path: Path | None = None,
    brands_path: Path | None = None,
    *,
    display: bool = False,
) -> Report:
    """Validate roster, brand ids and every playbook; never raises for bad content.

    With display=True, paths under the working directory are shown relative to it.
    """
    directory = Path(directory or default_playbooks_dir())
    roster_path = Path(roster_path or default_roster_file())
    brands_path = Path(brands_path or default_brands_file())
    show = display_path if display else str
    _, roster_refs, issues = check_roster(roster_path, show(roster_path))
    brand_ids, brand_issues = check_brands(brands_path, show(brands_path))
    issues += brand_issues
    refs = Refs(brand_ids, roster_refs.people, roster_refs.schedules, roster_refs.policies)
    files, found = _playbook_files(directory, show(directory))
    issues += found
    checked = []
    for path in files:
        playbook, found = check_playbook(path, refs, show(path))
        issues += found
        if playbook is not None:
            checked.append((path, show(path), playbook))
    issues += automatic_overlaps(checked)
    return Report(len(files), sorted(issues))


def automatic_overlaps(checked: list[tuple[Path, str, Playbook]]) -> list[ValidationIssue]:
    """A brand may have at most one automatic playbook: the detector raises one alarm per spike and
    design invariant 2 is one incident per crisis, so a second automatic playbook would open (and page
    for) a second incident on the same spike. The most severe playbook (then by id) keeps the brand;
    each other one is reported at its `brands` key."""
    issues = []
    owner: dict[str, tuple[str, str]] = {}  # brand -> (playbook id, file)
    for path, file, playbook in sorted(checked, key=lambda c: (SEVERITY_RANK[c[2].severity], c[2].id)):
        if playbook.triggers.manual:
            continue
        clashes = sorted({(brand, *owner[brand]) for brand in playbook.brands if brand in owner})
        for brand in playbook.brands:
            owner.setdefault(brand, (playbook.id, file))
        if clashes:
            brand, other, other_file = clashes[0]
            source, _ = _read(path, file)
            line, _ = source.line_of(("brands",))
            issues.append(
                ValidationIssue(
                    file, line, "brands",
                    f"brand {brand!r} already has the automatic playbook {other!r} ({other_file}): one spike "
                    "opens one incident, so a brand has at most one automatic playbook; set "
                    "`triggers: {manual: true}` here or take the brand out",
                )
            )
    return issues


def validate_dir(
    directory: Path | None = None, roster_path: Path | None = None, brands_path: Path | None = None
) -> list[ValidationIssue]:
    """Every problem in the playbooks directory, the roster and the brand ids; empty when all is valid."""
    return validate_all(directory, roster_path, brands_path).issues


def display_path(path: Path) -> str:
    """The path relative to the working directory when it lies below it (shorter, clickable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --- helpers for other services ---------------------------------------------------------------


def playbook_for(brand: str, playbooks: Iterable[Playbook]) -> list[Playbook]:
    """The playbooks covering `brand`, most severe first (then by id)."""
    return sorted((p for p in playbooks if p.covers(brand)), key=lambda p: (SEVERITY_RANK[p.severity], p.id))


@lru_cache(maxsize=1)
def default_playbooks() -> tuple[Playbook, ...]:
    """The deployed playbooks, loaded once per container; raises PlaybookError if any is invalid."""
    brand_ids, issues = check_brands(default_brands_file())
    if issues or brand_ids is None:
        raise PlaybookError(issues)
    return tuple(load_playbooks(default_playbooks_dir(), load_roster(), brand_ids))


def crisis_terms_for(brand: str, playbooks: Iterable[Playbook] | None = None) -> tuple[str, ...]:
    """Crisis terms of every playbook covering `brand`, all languages, without repeats.

    Feed them to `chalicelib.sentiment.classify(texts, crisis_terms=...)`. Without `playbooks`,
    the deployed ones are used (loaded once per container).
    """
    chosen = default_playbooks() if playbooks is None else playbooks
    terms: dict[str, None] = {}
    for playbook in playbook_for(brand, chosen):
        for term in playbook.triggers.all_terms():
            terms.setdefault(term, None)
    return tuple(terms)
