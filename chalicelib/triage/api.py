"""JSON in, JSON out for the staff triage routes (no HTTP framework here): the queue, handled, digest.
Each function returns (status, body); bad input is a 4xx with {"error": reason}."""

from __future__ import annotations

import re
import time
from typing import Any

from chalicelib.store.models import LANGUAGES
from chalicelib.triage import queue

_TOPIC = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ENTRY = re.compile(r"tq_[0-9a-f]{20}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def known_brand(brand: str) -> bool:
    from chalicelib.config import settings
    from chalicelib.ingest.brands import load_brands

    return any(b.id == brand for b in load_brands(settings().brands_file).brands)


def known_person(person: str) -> bool:
    """`person` is someone in the deployed roster (validated once per container)."""
    from chalicelib.paging.service import deployed_roster

    return any(p.id == person for p in deployed_roster().people)


def parse_filters(params: dict[str, str]) -> dict[str, Any]:
    """topic, language and status from the query string; ValueError says which one is wrong."""
    unknown = sorted(set(params) - {"topic", "language", "status", "t"})
    if unknown:
        raise ValueError(f"unknown query parameter {unknown[0][:30]!r} (use topic, language, status)")
    topic = params.get("topic") or None
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise ValueError("topic must be a topic id such as 'outage' (lowercase letters, digits, - and _)")
    language = params.get("language") or None
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    status = params.get("status") or queue.OPEN
    if status not in queue.STATUSES:
        raise ValueError(f"status must be one of {', '.join(queue.STATUSES)}")
    return {"topic": topic, "language": language, "status": status}


def list_queue(brand: str, params: dict[str, str], *, now: float | None = None) -> tuple[int, dict[str, Any]]:
    clock = time.time() if now is None else now
    if not known_brand(brand):
        return 404, {"error": "no such brand"}
    try:
        filters = parse_filters(params)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    entries = queue.list_entries(brand, now=clock, **filters)
    return 200, {
        "brand": brand,
        "order": "urgency (highest first), then waiting time (longest first)",
        "filters": filters,
        "entries": [queue.as_dict(e, clock) for e in entries],
    }


def handled(
    brand: str, entry_id: str, *, actor: str, via: str = "api", now: float | None = None
) -> tuple[int, dict[str, Any]]:
    clock = time.time() if now is None else now
    if not known_brand(brand):
        return 404, {"error": "no such brand"}
    if not _ENTRY.fullmatch(entry_id):
        return 404, {"error": "no such queue entry (ids look like tq_ followed by 20 hex digits)"}
    try:
        entry, changed = queue.mark_handled(brand, entry_id, actor=actor, via=via, now=clock)
    except queue.EntryNotFound:
        return 404, {"error": "no such queue entry"}
    return 200, {**queue.as_dict(entry, clock), "changed": changed}


def digest(brand: str, params: dict[str, str], *, now: float | None = None) -> tuple[int, dict[str, Any]]:
    from chalicelib.triage import digest as daily

    if not known_brand(brand):
        return 404, {"error": "no such brand"}
    value = params.get("date") or ""
    if not _DATE.fullmatch(value):
        return 400, {"error": "date is required as YYYY-MM-DD (the brand's local day)"}
    try:
        report = daily.compute(brand, value, now=now)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 200, report
