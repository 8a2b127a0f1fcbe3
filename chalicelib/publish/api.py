"""JSON in, JSON out for the staff routes POST /incidents/{id}/publish and
POST /incidents/{id}/resolve-publication (no HTTP framework here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.incidents import service as incidents
from chalicelib.publish import service
from chalicelib.publish.base import HashMismatch, PlatformError, Publisher, PublishError
from chalicelib.statements import service as statements
from chalicelib.statements.api import ApiResult


class PublishRequest(BaseModel):
    """Body of POST /incidents/{id}/publish."""

    model_config = ConfigDict(extra="forbid")

    lang: str = Field(pattern=r"^[a-z]{2,3}$")
    version_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="the version the publisher saw")
    platform: Literal["outbox", "x", "meta", "webhook"] = "outbox"
    reply_to: str | None = Field(None, pattern=r"^[A-Za-z0-9_:.-]{1,100}$")
    surface: Literal["facebook", "instagram"] | None = None
    mode: Literal["thread", "short"] = "thread"


def publish_request(incident_id: str, body: Any, *, actor: str, publisher: Publisher | None = None) -> ApiResult:
    """Publish the approved statement; 200 with where it went, or the reason it was refused."""
    try:
        request = PublishRequest.model_validate(body)
    except ValidationError as exc:
        return ApiResult.invalid(exc)
    try:
        channel = publisher or service.publisher_for(request.platform)
    except PlatformError as exc:  # its credentials are missing here; nothing was contacted, so not a 502
        return ApiResult(503, {"error": f"publishing to {request.platform} is not configured here: {exc}"})
    try:
        publication = service.publish_statement(
            incident_id,
            request.lang,
            publisher=channel,
            actor=actor,
            version_hash=request.version_hash,
            reply_to=request.reply_to,
            surface=request.surface,
            mode=request.mode,
        )
    except incidents.IncidentNotFound:
        return ApiResult(404, {"error": f"no incident {incident_id}"})
    except statements.DraftChanged as exc:
        return ApiResult(409, {"error": str(exc), "current_version_hash": exc.current.hash})
    except statements.StatementError as exc:  # NotApproved, DraftNotFound
        return ApiResult(exc.status, {"error": str(exc)})
    except service.PublishInDoubt as exc:  # 502 when this request lost the answer, 409 when found so
        cause = exc.__cause__
        body: dict[str, Any] = {"error": str(exc), "in_doubt": exc.details}
        if isinstance(cause, PlatformError):
            body |= {"platform_status": cause.response_status, "detail": cause.detail}
        return ApiResult(exc.status, body)
    except PlatformError as exc:
        return ApiResult(502, {"error": str(exc), "platform_status": exc.response_status, "detail": exc.detail})
    except (HashMismatch, PublishError) as exc:
        return ApiResult(exc.status, {"error": str(exc)})
    return ApiResult(200, publication.as_dict())


class ResolveRequest(BaseModel):
    """Body of POST /incidents/{id}/resolve-publication: what a person found on the platform for the
    part of a publication that is in doubt. The publication is named as in the publish request."""

    model_config = ConfigDict(extra="forbid")

    lang: str | None = Field(None, pattern=r"^[a-z]{2,3}$", description="optional: checked if given")
    version_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    platform: Literal["outbox", "x", "meta", "webhook"]
    reply_to: str | None = Field(None, pattern=r"^[A-Za-z0-9_:.-]{1,100}$")
    surface: Literal["facebook", "instagram"] | None = None
    mode: Literal["thread", "short"] = "thread"
    part: int = Field(ge=1, le=1000, description="the part in doubt, as the publish answer named it")
    outcome: Literal["posted", "not_posted"]
    post_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_:.-]{1,100}$", description="when posted: its id")
    note: str | None = Field(None, max_length=500)


def resolve_request(incident_id: str, body: Any, *, actor: str) -> ApiResult:
    """Record what a person found for the part in doubt; 200 with the publication, nothing sent."""
    try:
        request = ResolveRequest.model_validate(body)
    except ValidationError as exc:
        return ApiResult.invalid(exc)
    try:
        incidents.get(incident_id)
        publication = service.resolve_in_doubt(
            incident_id,
            version_hash=request.version_hash,
            platform=request.platform,
            actor=actor,
            lang=request.lang,
            part=request.part,
            outcome=request.outcome,
            post_id=request.post_id,
            reply_to=request.reply_to,
            surface=request.surface,
            mode=request.mode,
            note=request.note,
        )
    except incidents.IncidentNotFound:
        return ApiResult(404, {"error": f"no incident {incident_id}"})
    except PublishError as exc:  # PublicationNotFound (404), NothingInDoubt (409)
        return ApiResult(exc.status, {"error": str(exc)})
    return ApiResult(200, publication.as_dict())
