"""Helpers: a stored-looking Draft without a database."""

from __future__ import annotations

from typing import Any

from chalicelib.statements.hashing import version_hash
from chalicelib.statements.models import ApprovalState, Draft


def make_draft(text: str = "We are sorry.\n\nNoa Ben-David", *, lang: str = "en", version: int = 1, **kw: Any) -> Draft:
    signer = kw.pop("signer_id", "noa-ben-david")
    fields: dict[str, Any] = {
        "incident_id": "inc_1700000000_abcd1234",
        "lang": lang,
        "version": version,
        "text": text,
        "signer_id": signer,
        "signer_name": "Noa Ben-David",
        "signer_role": "VP Communications, Acme Telecom",
        "hash": version_hash(text, signer),
        "brand": "acme-telecom",
        "playbook": "acme-network-outage",
        "approvers": ("maya-katz", "omar-haddad"),
        "quorum": 1,
        "created_at": 1_700_000_000.0,
        "created_by": "klaxon",
        "reason": "drafted",
    }
    fields.update(kw)
    return Draft(**fields)


def empty_state(draft: Draft) -> ApprovalState:
    return ApprovalState(
        draft=draft,
        approvals=(),
        change_requests=(),
        signer_approved=False,
        approver_count=0,
        quorum=draft.quorum,
        open_change_requests=(),
    )
