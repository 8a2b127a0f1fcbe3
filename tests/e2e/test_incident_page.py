"""The incident page behind the SMS short link, in a phone-sized browser."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chalicelib.counters.service import commit
from chalicelib.incidents import service as incidents
from chalicelib.incidents.links import incident_link
from chalicelib.incidents.web import incident_url
from chalicelib.store.models import counter_attribute

BRAND = "e2e-telecom"


def _seed_counts(opened_at: float) -> int:
    """Mentions per minute over the last 30 minutes, rising to a negative spike; returns the peak."""
    minute = int(opened_at) // 60 * 60
    totals: dict[tuple[str, int], Counter[str]] = {}
    peak = 0
    for back in range(30):
        negative = 2 if back > 5 else 40 + (5 - back) * 10
        peak = max(peak, negative)
        totals[(BRAND, minute - back * 60)] = Counter(
            {
                counter_attribute("negative", "he"): negative,
                counter_attribute("neutral", "en"): 6,
                counter_attribute("positive", "he"): 1,
            }
        )
    commit(token=f"e2e-{secrets.token_hex(8)}", totals=totals, ledger_ids=b"")
    return peak


def test_incident_page_shows_targets_chart_and_timeline(stack: Any, page: Any, artifacts: Path) -> None:
    opened = incidents.open_or_update(
        brand=BRAND,
        playbook="e2e-page",
        severity="sev1",
        trigger=incidents.Trigger(
            actor="klaxon",
            channel="detector",
            summary="neg 212/5min, 9.2x usual (expected 23)",
            observed=212,
            expected=23,
            ratio=9.2,
        ),
        ack_seconds=600,
        response_seconds=1800,
    )
    incident = opened.incident
    peak = _seed_counts(float(incident.opened_at))
    incidents.record(incident.id, actor="maya-katz", action="page_sent", channel="sms", detail="paged step 1")
    incidents.record(
        incident.id, actor="noa-ben-david", action="note", channel="api", detail="המוקד מדווח על נפילה במרכז הארץ"
    )
    incidents.transition(incident.id, incidents.ACKNOWLEDGED, actor="maya-katz", channel="sms", detail="ACK")

    token = incident_link(incident.code, "maya-katz", time.time() + 3600)
    response = page.goto(incident_url(incident.code, token, stack.base_url))
    assert response is not None and response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"

    svg = page.locator("svg.mentions")
    assert svg.count() == 1 and svg.is_visible()
    points = int(svg.get_attribute("data-points") or 0)
    assert points >= 120  # two hours before the incident opened, one point a minute
    assert int(svg.get_attribute("data-peak-negative") or 0) == peak
    negative_line = (svg.locator("polyline.negative").get_attribute("points") or "").split()
    assert len(negative_line) == points
    assert len({pair.split(",")[1] for pair in negative_line}) > 2  # not a flat line: the spike is drawn

    assert page.locator("h1").inner_text().startswith("SEV1")
    assert incident.code in page.locator("p.meta").first.inner_text()
    assert "212/5min" in page.locator("p.summary").inner_text()
    ack = page.locator('li[data-target="Acknowledge"]')
    assert ack.get_attribute("data-state") == "met"
    assert page.locator('li[data-target="First public response"]').get_attribute("data-state") == "due"

    entries = page.locator("ol.tl li")
    assert entries.count() == 4
    actions = [entries.nth(i).get_attribute("data-action") for i in range(4)]
    assert actions == ["opened", "page_sent", "note", "acknowledged"]
    hebrew = page.get_by_text("המוקד מדווח על נפילה במרכז הארץ")
    assert hebrew.is_visible() and hebrew.get_attribute("dir") == "auto"
    assert page.get_by_text("paged step 1").is_visible()
    page.screenshot(path=str(artifacts / "incident_page.png"), full_page=True)

    # No token, a token for someone else's code, a forged one, an expired one: nothing is shown.
    other_code = "1000" if incident.code != "1000" else "1001"
    refused = [
        f"{stack.base_url}/i/{incident.code}",
        incident_url(incident.code, incident_link(other_code, "maya-katz", time.time() + 3600), stack.base_url),
        incident_url(incident.code, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), stack.base_url),
        incident_url(incident.code, incident_link(incident.code, "maya-katz", time.time() - 1), stack.base_url),
    ]
    for url in refused:
        response = page.goto(url)
        assert response is not None and response.status == 403, url
        assert page.locator("svg.mentions").count() == 0
        assert "212/5min" not in page.content()
    assert "expired" in page.locator("h1").inner_text().lower()
    page.screenshot(path=str(artifacts / "incident_page_403.png"), full_page=True)
    incidents.transition(incident.id, incidents.RESOLVED, actor="e2e", channel="api")
