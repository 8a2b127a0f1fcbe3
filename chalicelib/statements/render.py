"""Render a playbook's statement template into the text a named person signs."""

from __future__ import annotations

import re
from collections.abc import Mapping

from chalicelib.playbooks.models import Person, Statement, render_template

FACT_KEYS = ("product", "what_we_know", "what_we_are_doing", "next_update")
MAX_FACT_CHARS = 2000
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class FactsMissing(ValueError):
    """A template needs facts the request did not give (HTTP 422)."""


Facts = Mapping[str, "str | Mapping[str, str]"]
"""fact -> text for every language, or fact -> {lang: text} (a Hebrew statement needs Hebrew facts)."""


def fact_for(facts: Facts, key: str, lang: str) -> str | None:
    value = facts.get(key)
    if isinstance(value, Mapping):
        value = value.get(lang)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FactsMissing(f"fact {key!r} must be text")
    value = value.replace("\r\n", "\n").strip()
    if len(value) > MAX_FACT_CHARS:
        raise FactsMissing(f"fact {key!r} is longer than {MAX_FACT_CHARS} characters")
    return value or None


def render_statement(statement: Statement, signer: Person, lang: str, facts: Facts, brand_name: str) -> str:
    """The statement text: template filled with the facts, the brand and the signer's local name and role.

    Trailing whitespace is dropped (YAML block scalars end in a newline); nothing else is changed.
    """
    used = set(_PLACEHOLDER.findall(statement.template))
    values: dict[str, str] = {
        "brand": brand_name,
        "signer_name": signer.name_in(lang),
        "signer_role": signer.role_in(lang),
    }
    missing = []
    for key in FACT_KEYS:
        value = fact_for(facts, key, lang)
        if value is not None:
            values[key] = value
        elif key in used:
            missing.append(key)
    unknown = sorted(set(facts) - set(FACT_KEYS) - {"brand"})
    if unknown:
        raise FactsMissing(f"unknown facts: {', '.join(unknown)} (known: {', '.join(FACT_KEYS)})")
    if missing:
        raise FactsMissing(f"the {lang!r} statement needs: {', '.join(missing)}")
    return render_template(statement.template, values).rstrip()
