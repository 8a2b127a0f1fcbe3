"""Triage for the ingest flow: rules per brand (built once per container), and the queue writes for the
mentions that need a reply."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.ingest.models import Mention
from chalicelib.triage import config as triage_config
from chalicelib.triage import queue
from chalicelib.triage.models import TriageFile, effective
from chalicelib.triage.rules import BrandRules, build_rules, triage

_rules_cache: dict[tuple[int, int, str], BrandRules] = {}


def rules_for(brand: str, playbooks: Sequence[Any], file: TriageFile | None = None) -> BrandRules:
    """The brand's compiled rules: its topics and the crisis terms of the playbooks covering it."""
    from chalicelib.playbooks.loader import playbook_for

    file = file or triage_config.deployed()
    key = (id(file), id(playbooks), brand)
    cached = _rules_cache.get(key)
    if cached is None:
        covering = [(p.id, tuple(p.triggers.all_terms())) for p in playbook_for(brand, playbooks)]
        cached = build_rules(brand, effective(file, brand), covering)
        if len(_rules_cache) > 256:
            _rules_cache.clear()
        _rules_cache[key] = cached
    return cached


@dataclass
class BatchTriage:
    triaged: int = 0
    queued: int = 0
    joined: int = 0
    duplicates: int = 0
    entries: list[str] = field(default_factory=list)
    contended: list[Mention] = field(default_factory=list)  # not queued yet: lost to other writers, retry


def triage_batch(
    mentions: Iterable[Mention], playbooks: Sequence[Any], *, now: float | None = None, file: TriageFile | None = None
) -> BatchTriage:
    """Triage each (mention, brand); queue those that need a reply (exactly once: see queue.enqueue_many)."""
    clock = time.time() if now is None else now
    file = file or triage_config.deployed()
    out = BatchTriage()
    waiting: dict[str, list[Mention]] = {}
    for mention in mentions:
        for brand in mention.brands:
            out.triaged += 1
            if triage(mention, rules_for(brand, playbooks, file)).needs_reply:
                waiting.setdefault(brand, []).append(mention)
    for brand, needing in waiting.items():
        targets = effective(file, brand).targets
        outcomes = queue.enqueue_many(
            needing, rules_for(brand, playbooks, file), target_minutes=targets.minutes_for, now=clock
        )
        for mention, done in zip(needing, outcomes, strict=True):
            if done.outcome == queue.CONTENDED:
                out.contended.append(mention)
            elif done.outcome == "duplicate":
                out.duplicates += 1
            else:
                out.queued += done.outcome == "new"
                out.joined += done.outcome == "joined"
                out.entries.append(done.entry_id)
    return out
