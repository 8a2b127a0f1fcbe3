"""Klaxon's Chalice app: routes and event handlers only; the domain lives in chalicelib/."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from chalice import Chalice, Response

from chalicelib.config import settings
from chalicelib.counters.service import read_series
from chalicelib.incidents import service as incidents
from chalicelib.ingest import webhooks

app = Chalice(app_name="klaxon")
logger = Logger(service="klaxon")

# Chalice answers unlisted content types itself with a non-JSON body; list the common ones and let
# `_webhook` refuse anything that is not JSON with Klaxon's own {"error": ...} reply.
JSON = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "multipart/form-data",
    "text/html",
    "application/xml",
]


def _error(status: int, reason: str) -> Response:
    return Response(body={"error": reason}, status_code=status, headers={"Content-Type": "application/json"})


def _raw_body() -> bytes:
    return app.current_request.raw_body or b""


def _query() -> dict[str, str]:
    return dict(app.current_request.query_params or {})


def _webhook(accept: Any) -> Response:
    request = app.current_request
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _error(415, "Content-Type must be application/json")
    try:
        accepted = accept(_raw_body(), request.headers)
    except webhooks.WebhookRejected as exc:
        logger.info("webhook rejected", extra={"path": request.path, "status": exc.status, "reason": exc.reason})
        return _error(exc.status, exc.reason)
    return Response(body=accepted.as_dict(), status_code=200)


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/webhooks/x", methods=["GET"])
def x_crc() -> Response:
    try:
        return Response(body=webhooks.x_challenge(_query()), status_code=200)
    except webhooks.WebhookRejected as exc:
        return _error(exc.status, exc.reason)


@app.route("/webhooks/x", methods=["POST"], content_types=JSON)
def x_events() -> Response:
    return _webhook(webhooks.accept_x)


@app.route("/webhooks/meta", methods=["GET"])
def meta_verify() -> Response:
    try:
        challenge = webhooks.meta_challenge(_query())
    except webhooks.WebhookRejected as exc:
        return _error(exc.status, exc.reason)
    return Response(body=challenge, status_code=200, headers={"Content-Type": "text/plain"})


@app.route("/webhooks/meta", methods=["POST"], content_types=JSON)
def meta_events() -> Response:
    return _webhook(webhooks.accept_meta)


@app.route("/webhooks/generic", methods=["POST"], content_types=JSON)
def generic_events() -> Response:
    return _webhook(webhooks.accept_generic)


def _authorised() -> bool:
    supplied = (app.current_request.headers or {}).get("x-api-key") or ""
    return hmac.compare_digest(supplied.encode("utf-8", "replace"), settings().api_key.encode())


def _step(value: str) -> int:
    try:
        if len(value) > 9:
            raise ValueError
        return int(value)
    except ValueError:
        message = f"step must be a whole number of minutes, in seconds (60, 300, ...), not {value[:20]!r}"
        raise ValueError(message) from None


def _epoch(value: str | None, name: str) -> int:
    if not value:
        raise ValueError(f"{name} is required (ISO 8601 or epoch seconds)")
    if value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name} must be ISO 8601 or epoch seconds") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{name} must include a time zone (e.g. Z)")
    return int(parsed.timestamp())


@app.route("/brands/{brand}/counts", methods=["GET"])
def brand_counts(brand: str) -> Response:
    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    params = _query()
    try:
        start = _epoch(params.get("from"), "from")
        end = _epoch(params.get("to"), "to")
        step = _step(params.get("step", "60"))
        points = read_series(brand, start=start, end=end, step=step)
    except ValueError as exc:
        return _error(400, str(exc))
    return Response(
        body={"brand": brand, "step": step, "points": [p.as_dict() for p in points]},
        status_code=200,
    )


def _json_body() -> dict[str, Any]:
    import json

    try:
        body = json.loads(_raw_body() or b"{}")
    except (ValueError, RecursionError) as exc:
        raise ValueError("body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _actor() -> str:
    actor = (app.current_request.headers or {}).get("x-klaxon-actor") or "staff-api"
    return actor[:64]


@app.route("/incidents", methods=["GET"])
def list_incidents() -> Response:
    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    return Response(body={"incidents": [incidents.as_dict(i) for i in incidents.open_incidents()]}, status_code=200)


@app.route("/incidents/{incident_id}", methods=["GET"])
def get_incident(incident_id: str) -> Response:
    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    try:
        incident = incidents.get(incident_id)
    except incidents.IncidentNotFound:
        return _error(404, "no such incident")
    timeline = [
        {"at": e.at, "actor": e.actor, "action": e.action, "channel": e.channel, "detail": e.detail}
        for e in incidents.timeline(incident_id)
    ]
    return Response(body={**incidents.as_dict(incident), "timeline": timeline}, status_code=200)


@app.route("/incidents/{incident_id}/{action}", methods=["POST"], content_types=JSON)
def change_incident(incident_id: str, action: str) -> Response:
    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    target = {"acknowledge": incidents.ACKNOWLEDGED, "resolve": incidents.RESOLVED}.get(action)
    if target is None:
        return _error(404, "unknown action; use acknowledge or resolve")
    try:
        detail = _json_body().get("note")
        incident = incidents.transition(
            incident_id, target, actor=_actor(), channel="api", detail=str(detail)[:500] if detail else None
        )
    except incidents.IncidentNotFound:
        return _error(404, "no such incident")
    except incidents.InvalidTransition as exc:
        return _error(409, str(exc))
    except ValueError as exc:
        return _error(400, str(exc))
    return Response(body=incidents.as_dict(incident), status_code=200)


@app.schedule("rate(1 minute)", name="sweeper")
def sweeper(event: Any) -> None:
    """Response-time breaches (and, with paging, escalation) are checked once a minute."""
    breaches = incidents.check_breaches()
    if breaches:
        logger.info("response-time targets breached", extra={"breaches": breaches})


@app.on_sqs_message(queue="klaxon-mentions", batch_size=10, name="ingest")
def ingest(event: Any) -> dict[str, Any]:
    # Imported on first use: the classifier (numpy) and Powertools' batch module are only needed
    # by this function, and the webhook functions built from the same package start faster.
    from chalicelib.alerts import service as alerts
    from chalicelib.ingest.pipeline import process_batch
    from chalicelib.playbooks.loader import crisis_terms_for, default_playbooks

    playbooks = default_playbooks()
    response, result = process_batch(event.to_dict(), crisis_terms=lambda b: crisis_terms_for(b, playbooks))
    raised = alerts.feed_batch(result.totals, lambda b: alerts.params_for(b, playbooks))
    opened = alerts.raise_incidents(raised, playbooks)
    logger.info(
        "batch ingested",
        extra={
            "counted": len(result.counted),
            "duplicates": result.duplicates,
            "failed": result.failed,
            "alarms": [f"{a.brand}: {a.alarm.explain()}" for a in raised],
            "incidents": [(o.incident.id, o.created) for o in opened],
        },
    )
    return response
