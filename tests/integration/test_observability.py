"""Metrics (CloudWatch EMF on stdout) and correlated logs, from the real handlers on the local stack."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chalicelib import observability
from chalicelib.incidents import service as incidents
from chalicelib.ingest.queue import enqueue
from klaxon.lambda_sqs import queue_arn, receive, to_event
from tests.integration.test_exactly_once import mentions


def _emf(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return lines


def _metric_values(blobs: list[dict[str, Any]], name: str) -> list[float]:
    values: list[float] = []
    for blob in blobs:
        declared = {m["Name"] for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        if name in declared:
            value = blob[name]
            values += value if isinstance(value, list) else [value]
    return values


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    observability.metrics.clear_metrics()


def test_ingest_emits_mentions_and_duplicates_once_per_invocation(
    env: Any, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log_stream = io.StringIO()
    monkeypatch.setattr(observability.logger.registered_handler, "stream", log_stream)
    items = mentions(4)
    enqueue(items + items[:1])  # one duplicate, as a webhook retry would queue it
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        messages += receive(env.sqs, env.queue_url)
        if len(messages) >= 5:
            break
    assert len(messages) == 5
    capfd.readouterr()
    env.invoke_ingest(to_event(messages, queue_arn(env.sqs, env.queue_url)))
    out = capfd.readouterr().out
    blobs = _emf(out)
    assert len(blobs) == 1, out  # flushed once, at the end of the invocation
    blob = blobs[0]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Klaxon"
    assert blob["service"] == "klaxon"
    assert _metric_values(blobs, observability.MENTIONS_INGESTED) == [4]
    assert _metric_values(blobs, observability.DUPLICATES) == [1]
    # Every log line of the invocation carries the batch's correlation id (its first message id).
    logged = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    batch_lines = [entry for entry in logged if entry["message"] == "batch ingested"]
    assert batch_lines and batch_lines[0]["correlation_id"] == messages[0]["MessageId"]
    assert batch_lines[0]["counted"] == 4 and batch_lines[0]["duplicates"] == 1


def test_an_invocation_with_nothing_to_report_prints_no_metrics(env: Any, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    assert env.client.http.get("/health").status_code == 200
    assert _emf(capfd.readouterr().out) == []


def test_time_to_acknowledge_is_measured_once_per_incident(env: Any, capfd: pytest.CaptureFixture[str]) -> None:
    opened = incidents.open_or_update(
        brand="acme-telecom",
        playbook="negative-spike",
        severity="sev2",
        trigger=incidents.Trigger(actor="test", channel="api", summary="neg 80/5min, 6x usual"),
    )
    observability.flush()
    capfd.readouterr()
    incidents.transition(opened.incident.id, incidents.ACKNOWLEDGED, actor="dana", channel="sms")
    with pytest.raises(incidents.InvalidTransition):  # a second ACK changes nothing and measures nothing
        incidents.transition(opened.incident.id, incidents.ACKNOWLEDGED, actor="noa", channel="sms")
    observability.flush()
    values = _metric_values(_emf(capfd.readouterr().out), observability.TIME_TO_ACKNOWLEDGE)
    assert len(values) == 1 and 0 <= values[0] < 60


def test_staff_api_log_lines_carry_the_incident_id(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    log_stream = io.StringIO()
    monkeypatch.setattr(observability.logger.registered_handler, "stream", log_stream)
    from chalicelib.config import settings

    response = env.client.http.post(
        "/incidents/inc_1_abc/acknowledge",
        body=b"{}",
        headers={"x-api-key": settings().api_key, "content-type": "application/json"},
    )
    assert response.status_code == 404
    observability.logger.info("probe")  # written with the keys of the last request
    assert env.client.http.get("/health").status_code == 200
    observability.logger.info("probe")  # the next invocation starts without them
    probes = [json.loads(line) for line in log_stream.getvalue().splitlines() if '"probe"' in line]
    assert [p.get("incident_id") for p in probes] == ["inc_1_abc", None]
