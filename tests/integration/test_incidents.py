"""Invariant 3 and the incident lifecycle, against the real moto server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.incidents import service as incidents
from chalicelib.incidents.service import InvalidTransition, Trigger

pytestmark = pytest.mark.integration


def alarm(observed: float = 120, ratio: float = 6.0) -> Trigger:
    return Trigger(
        actor="detector",
        channel="ingest",
        summary=f"neg {observed:.0f}/5min, {ratio:.0f}x usual",
        observed=observed,
        expected=observed / ratio,
        ratio=ratio,
    )


def test_parallel_alarms_open_exactly_one_incident(env: Any) -> None:
    results: list[incidents.Opened] = []
    errors: list[BaseException] = []

    def fire(i: int) -> None:
        try:
            results.append(
                incidents.open_or_update(
                    brand="acme-telecom", playbook="outage", severity="sev1", trigger=alarm(100 + i, 5 + i / 10)
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.created for r in results) == 1
    ids = {r.incident.id for r in results}
    assert len(ids) == 1
    (incident_id,) = ids
    stored = incidents.get(incident_id)
    assert stored.alarms == 20
    assert stored.observed == 119 and stored.peak_ratio == pytest.approx(6.9)
    actions = [e.action for e in incidents.timeline(incident_id)]
    assert actions.count("opened") == 1 and actions.count("spike_continues") == 19
    assert [i.id for i in incidents.open_incidents()] == [incident_id]


def test_lifecycle_refuses_invalid_transitions_and_logs_every_change(env: Any) -> None:
    opened = incidents.open_or_update(
        brand="golden-foods",
        playbook="recall",
        severity="sev2",
        trigger=alarm(),
        ack_seconds=900,
        response_seconds=3600,
    )
    incident_id = opened.incident.id
    assert incidents.by_code(opened.incident.code).id == incident_id
    with pytest.raises(InvalidTransition):
        incidents.transition(incident_id, incidents.PUBLISHED, actor="noa", channel="api")
    acked = incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="noa", channel="sms")
    assert acked.status == "acknowledged" and acked.acknowledged_by == "noa"
    with pytest.raises(InvalidTransition):
        incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="noa", channel="sms")
    incidents.transition(incident_id, incidents.STATEMENT_APPROVED, actor="dana", channel="web")
    published = incidents.transition(incident_id, incidents.PUBLISHED, actor="klaxon", channel="publish")
    assert published.first_response_at is not None
    resolved = incidents.transition(incident_id, incidents.RESOLVED, actor="noa", channel="api")
    assert resolved.status == "resolved"
    with pytest.raises(InvalidTransition):
        incidents.transition(incident_id, incidents.ACKNOWLEDGED, actor="noa", channel="api")
    timeline = incidents.timeline(incident_id)
    assert [e.action for e in timeline] == ["opened", "acknowledged", "statement_approved", "published", "resolved"]
    assert [e.channel for e in timeline] == ["ingest", "sms", "web", "publish", "api"]
    assert incidents.open_incidents() == []
    with pytest.raises(incidents.IncidentNotFound):
        incidents.by_code(opened.incident.code)  # codes are released on resolve
    # After resolution a new spike opens a new incident.
    again = incidents.open_or_update(brand="golden-foods", playbook="recall", severity="sev2", trigger=alarm())
    assert again.created and again.incident.id != incident_id


def test_response_time_breaches_recorded_once(env: Any) -> None:
    opened = incidents.open_or_update(
        brand="acme-telecom",
        playbook="outage",
        severity="sev1",
        trigger=alarm(),
        ack_seconds=600,
        response_seconds=3600,
    )
    start = opened.incident.opened_at
    assert incidents.check_breaches(now=start + 60) == []
    assert incidents.check_breaches(now=start + 601) == [(opened.incident.id, "acknowledge")]
    assert incidents.check_breaches(now=start + 700) == []
    incidents.transition(opened.incident.id, incidents.ACKNOWLEDGED, actor="noa", channel="sms")
    assert incidents.check_breaches(now=start + 3601) == [(opened.incident.id, "first_response")]
    actions = [e.action for e in incidents.timeline(opened.incident.id)]
    assert actions.count("target_breached") == 2


def test_a_breach_and_its_timeline_entry_land_together_or_not_at_all(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The breach mark and its entry are one transaction: a write that fails leaves neither, so the
    next sweep records the breach (before, the mark could land without the entry and its event)."""
    from pynamodb.transactions import TransactWrite

    opened = incidents.open_or_update(
        brand="acme-telecom", playbook="outage", severity="sev1", trigger=alarm(), ack_seconds=600
    )
    start = opened.incident.opened_at
    real_exit = TransactWrite.__exit__

    def fail_once(self: Any, *exc: Any) -> Any:
        monkeypatch.setattr(TransactWrite, "__exit__", real_exit)
        for item in self._put_items:  # the entry is written: make the whole transaction fail after it
            if "target_breached" in str(item):
                raise RuntimeError("the sweep died mid-write")
        return real_exit(self, *exc)

    monkeypatch.setattr(TransactWrite, "__exit__", fail_once)
    with pytest.raises(RuntimeError):
        incidents.check_breaches(now=start + 601)
    assert incidents.get(opened.incident.id).breaches in (None, [])
    assert "target_breached" not in [e.action for e in incidents.timeline(opened.incident.id)]
    assert incidents.check_breaches(now=start + 602) == [(opened.incident.id, "acknowledge")]
    assert [e.action for e in incidents.timeline(opened.incident.id)].count("target_breached") == 1


def test_sweeper_schedule_runs_through_chalice(env: Any) -> None:
    from klaxon.stack import scheduled_event

    opened = incidents.open_or_update(
        brand="acme-telecom", playbook="outage", severity="sev1", trigger=alarm(), ack_seconds=1, response_seconds=3600
    )
    import time

    time.sleep(1.2)
    env.client.lambda_.invoke("sweeper", scheduled_event("sweeper"))
    assert incidents.get(opened.incident.id).breaches == ["acknowledge"]


def test_webhook_spike_opens_exactly_one_incident(env: Any) -> None:
    """The whole path: warm detector, a burst of outage mentions through SQS, one incident."""
    import random
    from datetime import UTC, datetime, timedelta

    from chalicelib.alerts.service import params_for, warm_start
    from chalicelib.ingest.models import Author, Mention
    from chalicelib.ingest.queue import enqueue
    from chalicelib.playbooks.loader import default_playbooks

    rng = random.Random(5)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    quiet = [
        (int((now - timedelta(minutes=m)).timestamp()), float(rng.randint(0, 3)), float(rng.randint(8, 14)))
        for m in range(3 * 1440, 5, -1)
    ]
    playbooks = default_playbooks()
    assert warm_start("acme-telecom", quiet, params_for("acme-telecom", playbooks))
    burst = [
        Mention(
            platform="x",
            platform_id=f"9{minute}{i:03d}",
            text=f"@AcmeTelecom network down, no signal since noon {i}",
            author=Author(handle=f"u{i}"),
            created_at=now - timedelta(minutes=5 - minute) + timedelta(seconds=i),
            brands=("acme-telecom",),
        )
        for minute in range(5)
        for i in range(60)
    ]
    for start in range(0, len(burst), 40):
        enqueue(burst[start : start + 40])
        env.drain()
    open_now = incidents.open_incidents()
    assert [(i.brand, i.playbook) for i in open_now] == [("acme-telecom", "acme-network-outage")]
    (incident,) = open_now
    assert incident.severity == "sev1" and incident.ack_due == pytest.approx(incident.opened_at + 600)
    assert "usual" in incident.summary


def test_staff_open_an_incident_by_hand(env: Any) -> None:
    import json

    from chalicelib.config import settings

    headers = {"content-type": "application/json", "x-api-key": settings().api_key, "x-klaxon-actor": "noa-ben-david"}
    body = {"brand": "acme-telecom", "playbook": "acme-network-outage", "summary": "Call centre reports no 4G in Haifa"}
    first = env.client.http.post("/incidents", body=json.dumps(body).encode(), headers=headers)
    assert first.status_code == 201, first.body
    opened = json.loads(first.body)
    assert opened["created"] and opened["opened_by"] == "noa-ben-david" and opened["status"] == "triggered"
    again = env.client.http.post("/incidents", body=json.dumps(body).encode(), headers=headers)
    assert again.status_code == 200 and json.loads(again.body)["id"] == opened["id"]  # merged, not a second one
    timeline = [e.action for e in incidents.timeline(opened["id"])]
    assert timeline[0] == "opened" and "spike_continues" in timeline
    wrong = env.client.http.post(
        "/incidents", body=json.dumps({**body, "brand": "golden-foods"}).encode(), headers=headers
    )
    assert wrong.status_code == 422 and "does not cover" in json.loads(wrong.body)["error"]
    no_key = env.client.http.post(
        "/incidents", body=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    assert no_key.status_code == 401
