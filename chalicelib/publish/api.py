"""JSON in, JSON out for the staff route POST /incidents/{id}/publish (no HTTP framework here)."""

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
        first = exc.errors()[0]
        return ApiResult(422, {"error": f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"})
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
    except PlatformError as exc:
        return ApiResult(502, {"error": str(exc), "platform_status": exc.response_status, "detail": exc.detail})
    except (HashMismatch, PublishError) as exc:
        return ApiResult(exc.status, {"error": str(exc)})
    return ApiResult(200, publication.as_dict())
