"""One Powertools Logger, Metrics and Tracer per container, and the Chalice middleware that
wires them to every handler (routes, the SQS ingest and the sweeper alike).

Metrics are CloudWatch EMF lines on stdout (namespace `Klaxon`, dimension `service=klaxon`), flushed
once at the end of each invocation. The alarms and dashboard in infra/resources.json read these
names, so they are constants here:

    MentionsIngested  mentions counted for the first time          (ingest)
    Duplicates        redelivered or replayed mentions skipped     (ingest)
    Alarms            detector alarms raised                       (ingest)
    PagesSent         SMS pages handed to Twilio                   (paging)
    PagesFailed       SMS pages Twilio refused or could not deliver (paging)
    TimeToAcknowledge seconds from an incident opening to its acknowledgement (incidents)

Tracer exists only where it can trace: in Lambda, unless `POWERTOOLS_TRACE_DISABLED` is true. Its
X-Ray SDK builds two botocore clients when imported (bench/coldstart.py measures ~100 ms of a cold
start for it), so nothing imports it elsewhere: not in tests, `make run` or the demo. It patches
botocore only (DynamoDB, SQS, SSM calls); patching requests (Twilio) would import requests at every
cold start, so a Twilio call shows inside the handler's own segment, not as a subsegment of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "klaxon"
NAMESPACE = "Klaxon"

MENTIONS_INGESTED = "MentionsIngested"
DUPLICATES = "Duplicates"
ALARMS = "Alarms"
PAGES_SENT = "PagesSent"
PAGES_FAILED = "PagesFailed"
TIME_TO_ACKNOWLEDGE = "TimeToAcknowledge"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_enabled() -> bool:
    """In Lambda (LAMBDA_TASK_ROOT is set there) and not switched off with POWERTOOLS_TRACE_DISABLED."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not disabled


tracer: Tracer | None = Tracer(service=SERVICE, patch_modules=("botocore",)) if tracing_enabled() else None


def count(name: str, value: float = 1) -> None:
    """Add to a counter metric of this invocation (ignored when value is 0)."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=max(0.0, value))


def flush() -> None:
    """Publish this invocation's metrics, if any, and start the next invocation empty."""
    try:
        if metrics.metric_set:
            metrics.flush_metrics()
    finally:
        metrics.clear_metrics()


def _correlation_id(event: Any) -> str | None:
    """API Gateway's request id, the first SQS message id, or the scheduled event's id."""
    original = event.to_original_event() if hasattr(event, "to_original_event") else event.to_dict()
    if not isinstance(original, dict):
        return None
    request_context = original.get("requestContext")
    if isinstance(request_context, dict) and request_context.get("requestId"):
        return str(request_context["requestId"])
    records = original.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return records[0].get("messageId")
    return original.get("id") if isinstance(original.get("id"), str) else None


def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every event type: correlation id in every log line, metrics flushed."""
    logger.remove_keys(["correlation_id", "brand", "incident_id"])
    correlation_id = _correlation_id(event)
    if correlation_id:
        logger.set_correlation_id(correlation_id)
    params = getattr(event, "uri_params", None) or {}  # staff API routes name their incident or brand
    keys = {
        key: str(params[name])[:64]
        for key, name in (("incident_id", "incident_id"), ("brand", "brand"))
        if name in params
    }
    if keys:
        logger.append_keys(**keys)
    try:
        return get_response(event)
    finally:
        flush()
