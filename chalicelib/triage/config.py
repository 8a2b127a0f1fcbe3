"""config/triage.yaml (or KLAXON_TRIAGE_FILE), validated like playbooks: every problem is reported as
`file:line: key.path: message`, all of a file's problems at once."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from chalicelib.config import PROJECT_ROOT, settings
from chalicelib.playbooks.loader import ROOT_KEY, ValidationIssue, _issues_from, _read, check_brands
from chalicelib.triage.models import BrandSettings, TriageFile, effective

ENV_VAR = "KLAXON_TRIAGE_FILE"
DEFAULT_FILE = PROJECT_ROOT / "config" / "triage.yaml"


class TriageConfigError(ValueError):
    """The triage file is invalid; `issues` lists every problem."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues) or "invalid triage file")


def triage_file() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_FILE)


def check_triage(
    path: Path, brand_ids: frozenset[str] | None = None, display: str | None = None
) -> tuple[TriageFile | None, list[ValidationIssue]]:
    """Validate a triage file; with `brand_ids`, every brand it names must exist. Never raises for content."""
    file = display or str(path)
    source, issues = _read(path, file)
    if issues or source.data is None:
        return None, issues
    try:
        parsed = TriageFile.model_validate(source.data)
    except ValidationError as exc:
        found = _issues_from(exc, source, file, TriageFile)
        return None, sorted(found) or [ValidationIssue(file, 1, ROOT_KEY, str(exc))]
    if brand_ids is not None:
        for brand in parsed.brands:
            if brand not in brand_ids:
                line, _ = source.line_of(("brands", brand))
                known = ", ".join(sorted(brand_ids)) or "none"
                issues.append(ValidationIssue(file, line, f"brands.{brand}", f"unknown brand (brands file: {known})"))
    return (None if issues else parsed), issues


def load_triage(path: Path | None = None, brand_ids: frozenset[str] | None = None) -> TriageFile:
    """The triage file, validated; no file at the default path means defaults only."""
    path = path or triage_file()
    if path == DEFAULT_FILE and not path.exists():
        return TriageFile()
    parsed, issues = check_triage(path, brand_ids)
    if issues or parsed is None:
        raise TriageConfigError(issues)
    return parsed


@lru_cache(maxsize=4)
def _deployed(path: Path, mtime: float) -> TriageFile:
    brand_ids, issues = check_brands(settings().brands_file)
    if issues:
        raise TriageConfigError(issues)
    return load_triage(path, brand_ids)


def deployed() -> TriageFile:
    """The deployed triage file, validated against the brands file; cached per file version."""
    path = triage_file()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        mtime = -1.0
    return _deployed(path, mtime)


def brand_settings(brand: str, file: TriageFile | None = None) -> BrandSettings:
    return effective(file or deployed(), brand)
