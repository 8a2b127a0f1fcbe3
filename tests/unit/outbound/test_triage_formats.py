"""The triage events (triage.breach, digest.daily) read right in Slack, Teams and generic JSON."""

from __future__ import annotations

import json

from chalicelib.outbound.formats import render
from chalicelib.outbound.models import Message, Subscriber

BREACH = Message(
    event_id="evt_1", type="triage.breach", occurred_at=1_780_000_000, subscriber="s",
    data={"brand": "acme-telecom", "entry": {"entry_id": "tq_0123456789abcdef0123", "count": 3, "author": "dana",
          "platform": "x", "urgency": 57, "topics": ["outage"], "target_minutes": 30}, "link": None},
)
DIGEST = Message(
    event_id="evt_2", type="digest.daily", occurred_at=1_780_000_000, subscriber="s",
    data={"brand": "acme-telecom", "digest": {"date": "2026-05-01", "volume": 1200, "negative_share": 0.25,
          "needs_reply": 40, "answered_within_target_share": 0.8, "median_response_minutes": 22.0}},
)


def body(fmt: str, message: Message) -> dict[str, object]:
    secret = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXRyaWFnZS1mb3JtYXRzMTIz"
    subscriber = Subscriber(name="s", url="https://hooks.example.com/x", format=fmt,  # type: ignore[arg-type]
                            secret_env="S" if fmt == "generic" else None)
    raw, _ = render(subscriber, message, now=1_780_000_000, secret=secret)
    return json.loads(raw)


def test_slack_breach_names_the_brand_the_target_and_the_entry() -> None:
    text = body("slack", BREACH)["text"]
    assert text == ("[TRIAGE] Acme Telecom: Unanswered past its 30-minute reply target: 3 post(s) from dana on x, "
                    "urgency 57, outage")
    blocks = json.dumps(body("slack", BREACH)["blocks"], ensure_ascii=False)
    assert "triage.breach · tq_0123456789abcdef0123" in blocks and "Incident" not in blocks


def test_teams_and_generic_digest() -> None:
    card = json.dumps(body("teams", DIGEST), ensure_ascii=False)
    assert "[DIGEST] Acme Telecom" in card
    assert (
        "Daily digest 2026-05-01: 1200 mentions, 25% negative; 40 needed a reply, 80% answered within target, "
        "median response 22 min"
    ) in card
    generic = body("generic", DIGEST)
    assert generic["type"] == "digest.daily" and generic["data"]["brand"] == "acme-telecom"  # type: ignore[index]
