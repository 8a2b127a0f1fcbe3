"""JSON in, JSON out for the staff route POST /incidents/{id}/statements (no HTTP framework here)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.config import settings
from chalicelib.incidents import service as incidents
from chalicelib.playbooks.loader import PlaybookError
from chalicelib.statements import service, web
from chalicelib.statements.links import approval_url
from chalicelib.statements.models import Draft
from chalicelib.statements.render import FactsMissing


@dataclass(frozen=True)
class ApiResult:
    status: int
    body: dict[str, Any]

    @classmethod
    def invalid(cls, exc: ValidationError) -> ApiResult:
        """422 naming the first invalid field and why."""
        first = exc.errors()[0]
        return cls(422, {"error": f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"})


class DraftRequest(BaseModel):
    """Body of POST /incidents/{id}/statements."""

    model_config = ConfigDict(extra="forbid")

    facts: dict[str, str | dict[str, str]]
    languages: list[str] | None = Field(
        None, description="default: every language the playbook has; repeats count once; [] is refused (400)"
    )
    links: bool = Field(False, description="also return each signer's and approver's approval URL")
    link_ttl_seconds: int = Field(web.DEFAULT_LINK_TTL, ge=300, le=7 * 86400)


def draft_as_dict(draft: Draft) -> dict[str, Any]:
    state = service.approval_state(draft.incident_id, draft.lang, draft)
    return {
        "lang": draft.lang,
        "version": draft.version,
        "version_hash": draft.hash,
        "text": draft.text,
        "signer": {"id": draft.signer_id, "name": draft.signer_name, "role": draft.signer_role},
        "approvers": list(draft.approvers),
        "quorum": draft.quorum,
        "reason": draft.reason,
        "created_at": draft.created_at,
        "created_by": draft.created_by,
        "variants": draft.variants().model_dump(),
        "approval": {
            "signer_approved": state.signer_approved,
            "approver_count": state.approver_count,
            "publishable": state.publishable,
            "waiting_for": state.waiting_for(),
        },
    }


def draft_request(incident_id: str, body: Any, *, actor: str, now: float | None = None) -> ApiResult:
    """Validate the body, draft every requested language, and describe the new versions (201).

    `languages` names a set: `["en", "en"]` drafts English once (one new version, one approval
    request each), which is what the caller meant; refusing it would only make a retry fail, and two
    versions in one request would void the first at once. An empty list asks for nothing, most likely
    by mistake (omit the field for every language the playbook has): 400 before anything is drafted.

    `approval_requests` says who was texted their link, who had been already, and who was not
    (`skipped`, each with the reason and, if the sweeper will try again, from when: `retry_at`).
    """
    try:
        request = DraftRequest.model_validate(body)
    except ValidationError as exc:
        return ApiResult.invalid(exc)
    if request.languages is not None:
        if not request.languages:
            return ApiResult(
                400,
                {"error": "languages: the list is empty; name at least one, or leave it out for every language "
                 "the playbook has"},
            )
        request.languages = list(dict.fromkeys(request.languages))
    if request.links and not settings().api_approval_links:  # refused before anything is drafted
        return ApiResult(
            403,
            {
                "error": "this deployment does not return approval links through the API "
                "(KLAXON_API_APPROVAL_LINKS is off): drafting texts each signer and approver their own link"
            },
        )
    try:
        drafts = service.draft_statements(incident_id, request.facts, request.languages, actor=actor, now=now)
    except incidents.IncidentNotFound:
        return ApiResult(404, {"error": f"no incident {incident_id}"})
    except (FactsMissing, service.InvalidEdit) as exc:
        return ApiResult(422, {"error": str(exc)})
    except service.StatementError as exc:
        return ApiResult(exc.status, {"error": str(exc)})
    except PlaybookError as exc:
        return ApiResult(500, {"error": f"playbooks are invalid: {exc}"})
    from chalicelib.statements.notify import request_approvals

    texted = request_approvals(incident_id, drafts, now=time.time() if now is None else now)
    result: dict[str, Any] = {
        "incident_id": incident_id,
        "drafts": [draft_as_dict(d) for d in drafts],
        "approval_requests": texted.as_dict(),
    }
    if request.links:
        result["links"] = {
            d.lang: {
                person: approval_url(token)
                for person, token in web.issue_links(
                    incident_id, d.lang, ttl_seconds=request.link_ttl_seconds, now=now
                ).items()
            }
            for d in drafts
        }
    return ApiResult(201, result)
