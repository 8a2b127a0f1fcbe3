"""Klaxon's Chalice app: routes and event handlers only; the domain lives in chalicelib/."""

from __future__ import annotations

import hmac
import os
import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from chalice import Chalice, ConvertToMiddleware, Response

from chalicelib.config import load_secrets, settings

if os.environ.get("LAMBDA_TASK_ROOT"):  # in Lambda, not while `chalice package` imports the app
    load_secrets()  # secrets from SSM into the environment, once, before any handler runs

# Only what the webhook routes need is imported here: a cold start of the webhook function pays for
# nothing else (bench/coldstart.py). Staff, SMS, ingest and sweeper handlers import their domain
# modules on first use, which their first invocation pays once per container.
from chalicelib.ingest import webhooks  # noqa: E402  (after the secrets: modules may read configuration)
from chalicelib.ingest.queue import INGEST_BATCH_SIZE, INGEST_BATCH_WINDOW_SECONDS  # noqa: E402
from chalicelib.observability import logger, middleware, tracer  # noqa: E402

app = Chalice(app_name="klaxon")
app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)), "all")
if tracer is not None:  # in Lambda with tracing on (chalicelib/observability.py)
    app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler), "all")
app.register_middleware(middleware, "all")

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
    expected = settings().api_key  # "" when a deployment has none: nobody is authorised
    return bool(expected) and hmac.compare_digest(supplied.encode("utf-8", "replace"), expected.encode())


# Path ids that cannot name anything are refused before the store is asked: DynamoDB answers a key
# over 2048 bytes with a ValidationException (a 500), not "not found". Same shapes as the ids made.
_INCIDENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # "inc_<epoch>_<hex>", as in approval links
_BRAND_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # chalicelib.ingest.models.BrandId


def _incident_id_ok(incident_id: str) -> bool:
    return _INCIDENT_ID.fullmatch(incident_id) is not None


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
    from chalicelib.counters.service import read_series

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if _BRAND_ID.fullmatch(brand) is None:
        return _error(404, "no such brand")
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
    from chalicelib.incidents import service as incidents

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    return Response(body={"incidents": [incidents.as_dict(i) for i in incidents.open_incidents()]}, status_code=200)


@app.route("/incidents", methods=["POST"], content_types=JSON)
def open_incident() -> Response:
    """A person opens an incident by hand: {"brand", "playbook", "summary"}; pages like an alarm does."""
    from chalicelib import flows
    from chalicelib.incidents import service as incidents

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    try:
        body = _json_body()
        opened = flows.open_by_hand(
            brand=body.get("brand"), playbook_id=body.get("playbook"), summary=body.get("summary"), actor=_actor()
        )
    except flows.Refused as exc:
        return _error(422, str(exc))
    except ValueError as exc:
        return _error(400, str(exc))
    return Response(
        body={**incidents.as_dict(opened.incident), "created": opened.created},
        status_code=201 if opened.created else 200,
    )


@app.route("/incidents/{incident_id}", methods=["GET"])
def get_incident(incident_id: str) -> Response:
    from chalicelib.incidents import service as incidents

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if not _incident_id_ok(incident_id):
        return _error(404, "no such incident")
    try:
        incident = incidents.get(incident_id)
    except incidents.IncidentNotFound:
        return _error(404, "no such incident")
    timeline = [
        {"at": e.at, "actor": e.actor, "action": e.action, "channel": e.channel, "detail": e.detail}
        for e in incidents.timeline(incident_id)
    ]
    from chalicelib.publish import service as publish

    # Every publication with its state: one `in_doubt` names the part a person must check on the platform.
    published = [p.as_dict() for p in publish.publications(incident_id, every_state=True)]
    return Response(
        body={**incidents.as_dict(incident), "timeline": timeline, "publications": published}, status_code=200
    )


@app.route("/incidents/{incident_id}/{action}", methods=["POST"], content_types=JSON)
def change_incident(incident_id: str, action: str) -> Response:
    from chalicelib.incidents import service as incidents

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if not _incident_id_ok(incident_id):
        return _error(404, "no such incident")
    if action in ("statements", "publish", "resolve-publication"):
        return _statement_action(incident_id, action)
    target = {"acknowledge": incidents.ACKNOWLEDGED, "resolve": incidents.RESOLVED}.get(action)
    if target is None:
        return _error(404, "unknown action; use acknowledge, resolve, statements, publish or resolve-publication")
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


def _statement_action(incident_id: str, action: str) -> Response:
    from chalicelib.publish.api import publish_request, resolve_request
    from chalicelib.statements.api import draft_request

    try:
        body = _json_body()
    except ValueError as exc:
        return _error(400, str(exc))
    handler = {"statements": draft_request, "publish": publish_request, "resolve-publication": resolve_request}[action]
    result = handler(incident_id, body, actor=_actor())
    return Response(body=result.body, status_code=result.status)


@app.route("/approve/{token}", methods=["GET"])
def approval_page(token: str) -> Response:
    from chalicelib.statements import web

    page = web.approval_get(token)
    return Response(body=page.body, status_code=page.status, headers=page.headers)


@app.route("/approve/{token}", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def approval_action(token: str) -> Response:
    from chalicelib.statements import web

    page = web.approval_post(token, _raw_body())
    return Response(body=page.body, status_code=page.status, headers=page.headers)


@app.route("/a/{code}", methods=["GET"])
def approval_requests(code: str) -> Response:
    """The link texted to signers and approvers: what awaits their approval on incident `code` (?t=)."""
    from chalicelib.statements import web

    page = web.approval_requests_response(code, _query().get("t"))
    return Response(body=page.body, status_code=page.status, headers=page.headers)


@app.route("/i/{code}", methods=["GET"])
def incident_page(code: str) -> Response:
    """The SMS short link: the incident page, shown only with the signed per-person token `t`."""
    from chalicelib.incidents import web as incident_web

    status, body, headers = incident_web.incident_page_response(code, _query().get("t"), time.time())
    return Response(body=body, status_code=status, headers=headers)


def _twilio_form(path: str) -> dict[str, str] | Response:
    """The form Twilio posted, if its X-Twilio-Signature matches the public URL it called."""

    from chalicelib.paging.twilio_sms import verify_twilio_form

    token = os.environ.get("KLAXON_TWILIO_AUTH_TOKEN")
    base = os.environ.get("KLAXON_PUBLIC_URL")
    if not token or not base:
        return _error(503, "SMS is not configured (KLAXON_TWILIO_AUTH_TOKEN, KLAXON_PUBLIC_URL)")
    query = app.current_request.query_params or {}
    url = base.rstrip("/") + path + (f"?{urlencode(dict(query))}" if query else "")
    body = _raw_body()
    if len(body) > 16_384:
        return _error(413, "form too large")
    try:  # before the signature check, which would raise on it (a 500)
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "form is not UTF-8")
    signature = (app.current_request.headers or {}).get("x-twilio-signature")
    if not verify_twilio_form(url, text, signature, token):
        return _error(403, "X-Twilio-Signature does not match")
    return dict(parse_qsl(text, keep_blank_values=True))


def _twiml(reply: str | None) -> Response:
    from xml.sax.saxutils import escape

    inner = f"<Message>{escape(reply)}</Message>" if reply else ""
    return Response(
        body=f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>',
        status_code=200,
        headers={"Content-Type": "text/xml"},
    )


FORM = ["application/x-www-form-urlencoded"]


@app.route("/sms/inbound", methods=["POST"], content_types=FORM)
def sms_inbound() -> Response:
    """An on-call person's reply ("ACK 4821"); only numbers in the roster can change anything."""
    from chalicelib.paging import service as paging

    form = _twilio_form("/sms/inbound")
    if isinstance(form, Response):
        return form
    reply = paging.handle_inbound_sms(form.get("From", ""), form.get("Body", ""), paging.deployed_roster(), time.time())
    return _twiml(reply)


@app.route("/sms/status", methods=["POST"], content_types=FORM)
def sms_status() -> Response:
    from chalicelib.paging import service as paging

    form = _twilio_form("/sms/status")
    if isinstance(form, Response):
        return form
    page_key = (app.current_request.query_params or {}).get("page")
    outcome = paging.handle_status_callback(form, page_key=page_key)
    return Response(body={"status": outcome}, status_code=200)


@app.schedule("rate(1 minute)", name="sweeper")
def sweeper(event: Any) -> None:
    """Once a minute: escalate unacknowledged pages, record missed response-time targets (incidents
    and the triage queue), send each brand's daily digest once, send again the approval-request SMS
    Twilio refused, enqueue again the outbound events SQS refused, and relay the events of timeline
    entries whose writer never queued them."""
    from chalicelib.flows import sweep_approval_requests, sweep_triage
    from chalicelib.incidents import service as incidents
    from chalicelib.outbound.service import announce_pending, retry_parked
    from chalicelib.paging import service as paging

    outcome = paging.sweep(time.time())
    breaches = incidents.check_breaches()
    logger.info("sweep", extra={"breaches": breaches, "paging": str(outcome)})
    logger.info("triage sweep", extra=sweep_triage(time.time()))
    logger.info("approval requests sweep", extra=sweep_approval_requests(time.time()))
    logger.info("outbound parked events sent again", extra={"sent": retry_parked()})
    logger.info("outbound events relayed from the timeline", extra={"sent": announce_pending()})


@app.on_sqs_message(
    queue=settings().queue_name,
    batch_size=INGEST_BATCH_SIZE,
    maximum_batching_window_in_seconds=INGEST_BATCH_WINDOW_SECONDS,
    name="ingest",
)
def ingest(event: Any) -> dict[str, Any]:
    """Mentions from the webhooks, up to 100 at a time; failed records are retried alone (batchItemFailures)."""
    from chalicelib import flows

    summary = flows.ingest_batch(event.to_dict())
    logger.info(
        "batch ingested",
        extra={
            "counted": summary.counted,
            "duplicates": summary.duplicates,
            "failed": summary.failed,
            "alarms": summary.alarms,
            "incidents": summary.incidents,
        },
    )
    return summary.response


@app.on_sqs_message(queue=settings().outbound_queue_name, batch_size=10, name="outbound")
def outbound(event: Any) -> dict[str, Any]:
    """Incident events to webhook subscribers; failed records come back after their backoff."""
    from chalicelib.outbound.service import deliver_batch

    return deliver_batch(event.to_dict())


# --- triage ---
# Issue 11: the per-brand triage queue, its phone page and the daily digest (chalicelib/triage, docs/triage.md).
# Imports are inside the handlers (lazy): the API function loads the triage modules only when asked.


@app.route("/brands/{brand}/triage", methods=["GET"])
def triage_queue(brand: str) -> Response:
    """The brand's queue of mentions needing a reply, most urgent first: ?topic=&language=&status=."""
    from chalicelib.triage import api as triage_api

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if _BRAND_ID.fullmatch(brand) is None:
        return _error(404, "no such brand")
    status, body = triage_api.list_queue(brand, _query())
    return Response(body=body, status_code=status)


@app.route("/brands/{brand}/triage/{entry_id}/handled", methods=["POST"], content_types=JSON)
def triage_handled(brand: str, entry_id: str) -> Response:
    """A person answered the entry's posts: stop its clock and take it off the open queue."""
    from chalicelib.triage import api as triage_api

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if _BRAND_ID.fullmatch(brand) is None:
        return _error(404, "no such brand")
    status, body = triage_api.handled(brand, entry_id, actor=_actor())
    return Response(body=body, status_code=status)


@app.route("/brands/{brand}/triage/link", methods=["GET"])
def triage_link(brand: str) -> Response:
    """A signed, expiring link to the queue page for one person: ?person=<id>&hours=<1-72, default 12>."""
    from chalicelib.triage import api as triage_api
    from chalicelib.triage import web as triage_web

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if _BRAND_ID.fullmatch(brand) is None or not triage_api.known_brand(brand):
        return _error(404, "no such brand")
    params = _query()
    person, hours = params.get("person") or "", params.get("hours") or "12"
    if _BRAND_ID.fullmatch(person) is None:
        return _error(400, "person must be a person id (lowercase letters, digits and hyphens)")
    if not triage_api.known_person(person):  # a link names who pressed "handled": only roster people
        return _error(404, "no such person in the roster")
    if not hours.isdigit() or not 1 <= int(hours) <= 72:
        return _error(400, "hours must be a whole number from 1 to 72")
    expires = int(time.time()) + int(hours) * 3600
    token = triage_web.triage_link(brand, person, expires)
    base = os.environ.get("KLAXON_PUBLIC_URL", "").rstrip("/")
    url = f"{base}/brands/{brand}/triage/page?t={token}"
    return Response(body={"url": url, "expires_at": expires}, status_code=200)


@app.route("/brands/{brand}/triage/page", methods=["GET"])
def triage_page(brand: str) -> Response:
    """The queue page for a phone (signed link `t`, or the x-api-key header); Hebrew brands are RTL."""
    from chalicelib.triage import web as triage_web

    if _BRAND_ID.fullmatch(brand) is None:
        return _error(404, "no such brand")
    status, body, headers = triage_web.queue_page(brand, _query(), api_key_ok=_authorised(), now=time.time())
    return Response(body=body, status_code=status, headers=headers)


@app.route("/brands/{brand}/triage/page/{entry_id}/handled", methods=["POST"], content_types=FORM)
def triage_page_handled(brand: str, entry_id: str) -> Response:
    """The page's "handled" button (the signed link's person is recorded); back to the page."""
    from chalicelib.triage import web as triage_web

    if _BRAND_ID.fullmatch(brand) is None:
        return _error(404, "no such brand")
    status, body, headers = triage_web.handled_from_page(brand, entry_id, _query(), now=time.time())
    return Response(body=body, status_code=status, headers=headers)


@app.route("/brands/{brand}/digest", methods=["GET"])
def brand_digest(brand: str) -> Response:
    """The brand's daily digest: ?date=YYYY-MM-DD (its local day)."""
    from chalicelib.triage import api as triage_api

    if not _authorised():
        return _error(401, "missing or wrong x-api-key header")
    if _BRAND_ID.fullmatch(brand) is None:
        return _error(404, "no such brand")
    status, body = triage_api.digest(brand, _query())
    return Response(body=body, status_code=status)
