"""Subscribers from YAML (config/subscribers.yaml, or KLAXON_SUBSCRIBERS_FILE), validated with pydantic;
every problem names its file and line, like playbooks (chalicelib/playbooks/loader.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from chalicelib.config import PROJECT_ROOT, Settings, settings
from chalicelib.outbound.models import Subscriber, SubscribersFile

DEFAULT_FILE = PROJECT_ROOT / "config" / "subscribers.yaml"


class SubscriberConfigError(ValueError):
    """The subscribers file is invalid; `issues` lists every problem as `file:line: key: message`."""

    def __init__(self, issues: list[object]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues) or "invalid subscribers file")


def check_subscribers(path: Path, *, allow_local: bool) -> tuple[tuple[Subscriber, ...], list[object]]:
    """Validate a subscribers file; returns (subscribers, issues). Never raises for bad content."""
    from chalicelib.playbooks.loader import ROOT_KEY, ValidationIssue, _issues_from, _read

    file = str(path)
    source, issues = _read(path, file)
    if issues:
        return (), list(issues)
    data = source.data
    if data is None:
        return (), []
    try:
        parsed = SubscribersFile.model_validate(data, context={"allow_local": allow_local})
    except ValidationError as exc:
        found = _issues_from(exc, source, file, SubscribersFile)
        return (), list(found) or [ValidationIssue(file, 1, ROOT_KEY, str(exc))]
    return tuple(parsed.subscribers), []


@lru_cache(maxsize=8)
def _load(path: Path, allow_local: bool, mtime: float) -> tuple[Subscriber, ...]:
    subscribers, issues = check_subscribers(path, allow_local=allow_local)
    if issues:
        raise SubscriberConfigError(issues)
    return subscribers


def subscribers(cfg: Settings | None = None) -> tuple[Subscriber, ...]:
    """The configured subscribers (cached per file version). No file at the default path means none;
    a file named by KLAXON_SUBSCRIBERS_FILE that is missing or invalid raises SubscriberConfigError."""
    cfg = cfg or settings()
    path = cfg.subscribers_file
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        if path == DEFAULT_FILE:
            return ()
        mtime = -1.0  # _read reports "file not found" with the file's name
    return _load(path, cfg.allow_local_subscribers, mtime)
