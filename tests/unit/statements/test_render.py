"""Rendering the shipped playbooks' statements: facts per language, signer's local name and role."""

from __future__ import annotations

import pytest

from chalicelib.playbooks.loader import default_playbooks, load_roster
from chalicelib.statements.models import Draft
from chalicelib.statements.render import Facts, FactsMissing, render_statement
from tests.unit.statements.conftest import make_draft

FACTS: Facts = {
    "product": {"en": "Golden hummus 400g", "he": "חומוס גולדן 400 גרם"},
    "what_we_know": {"en": "Listeria in one batch.", "he": "ליסטריה באצווה אחת."},
    "what_we_are_doing": "{not a placeholder} stays as written",
    "next_update": {"en": "by 18:00", "he": "עד 18:00"},
}


def recall():  # type: ignore[no-untyped-def]
    return next(p for p in default_playbooks() if p.id == "golden-product-recall")


def test_english_statement_is_signed_with_name_and_role() -> None:
    roster, playbook = load_roster(), recall()
    statement = playbook.statements["en"]
    signer = roster.person(statement.signer)
    text = render_statement(statement, signer, "en", FACTS, "Golden Foods")
    assert "If you have Golden hummus 400g at home" in text and "I'll update you here by 18:00" in text
    assert text.endswith(f"{signer.name}\n{signer.role}") and not text.endswith("\n")
    assert "{not a placeholder} stays as written" in text  # facts are never re-interpreted as templates


def test_hebrew_statement_uses_the_local_name_and_role() -> None:
    roster, playbook = load_roster(), recall()
    statement = playbook.statements["he"]
    signer = roster.person(statement.signer)
    text = render_statement(statement, signer, "he", FACTS, "גולדן פודס")
    assert text.endswith("אבי שפירא\n" + signer.role_in("he")) and signer.name not in text
    assert "חומוס גולדן 400 גרם" in text and "עד 18:00" in text


def test_missing_fact_is_named() -> None:
    roster, playbook = load_roster(), recall()
    statement = playbook.statements["he"]
    facts: Facts = {**FACTS, "product": {"en": "only English"}}
    with pytest.raises(FactsMissing, match="product"):
        render_statement(statement, roster.person(statement.signer), "he", facts, "x")


def test_unknown_fact_is_refused() -> None:
    roster, playbook = load_roster(), recall()
    statement = playbook.statements["en"]
    with pytest.raises(FactsMissing, match="unknown facts: whatever"):
        render_statement(statement, roster.person(statement.signer), "en", {**FACTS, "whatever": "x"}, "x")


def test_draft_knows_who_may_act() -> None:
    draft: Draft = make_draft()
    assert draft.capacity_of("noa-ben-david") == "signer"
    assert draft.capacity_of("maya-katz") == "approver"
    assert draft.capacity_of("someone-else") is None
    assert make_draft(lang="he").rtl and not draft.rtl
