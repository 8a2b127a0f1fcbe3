"""Render one event for one subscriber: Slack incoming webhook, Microsoft Teams (Adaptive Card), or
generic JSON signed per Standard Webhooks. Slack and Teams messages are written for a person to read:
severity, brand, what happened, the incident code and a link."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from chalicelib.outbound.models import Message, Subscriber

USER_AGENT = "Klaxon-Webhooks/1"

BRAND_EVENTS = ("triage.breach", "digest.daily")
"""Events about a brand rather than an incident (chalicelib/triage): data carries `brand`, no `incident`."""

_TARGETS = {"acknowledge": "acknowledgement", "first_response": "first public response"}


class MissingSecret(RuntimeError):
    """A generic subscriber's secret variable is unset: retried (and kept in the DLQ) until it is set."""


@lru_cache(maxsize=64)
def brand_name(brand: str) -> str:
    """The display name from the brands file; the id if the file does not list it or cannot be read."""
    try:
        from chalicelib.config import settings
        from chalicelib.ingest.brands import load_brands

        for b in load_brands(settings().brands_file).brands:
            if b.id == brand:
                return str(b.name)
    except Exception:  # a name is a nicety: never fail a delivery over it
        pass
    return brand


def what_happened(message: Message) -> str:
    """One plain sentence for people: the event, by whom, with the timeline's detail."""
    d = message.data
    incident = d.get("incident", {})
    actor = d.get("actor") or "someone"
    detail = d.get("detail") or ""
    return {
        "incident.opened": f"Incident opened: {incident.get('summary') or detail}",
        "incident.updated": f"Spike continues: {detail}" if detail else "Spike continues",
        "incident.acknowledged": f"Acknowledged by {actor}",
        "incident.resolved": f"Resolved by {actor}",
        "statement.approved": f"Statement approved: {detail}",
        "statement.published": f"Statement published: {detail}",
        "incident.response_time_breached": f"Missed the {_TARGETS.get(detail, detail)} target",
        "triage.breach": _triage_breach(d),
        "digest.daily": _digest(d),
    }.get(message.type, f"{message.type}: {detail}")


def _triage_breach(d: dict[str, Any]) -> str:
    entry = d.get("entry") or {}
    posts = entry.get("count") or 1
    who = f" from {entry['author']}" if entry.get("author") else ""
    return (
        f"Unanswered past its {entry.get('target_minutes', '?')}-minute reply target: {posts} post(s){who} on "
        f"{entry.get('platform', '?')}, urgency {entry.get('urgency', '?')}"
        + (f", {', '.join(entry['topics'])}" if entry.get("topics") else "")
    )


def _digest(d: dict[str, Any]) -> str:
    g = d.get("digest") or {}
    share = g.get("negative_share")
    within = g.get("answered_within_target_share")
    median = g.get("median_response_minutes")
    return (
        f"Daily digest {g.get('date', '?')}: {g.get('volume', 0)} mentions, "
        f"{'n/a' if share is None else f'{share:.0%}'} negative; {g.get('needs_reply', 0)} needed a reply, "
        f"{'n/a' if within is None else f'{within:.0%}'} answered within target, median response "
        f"{'n/a' if median is None else f'{median:.0f} min'}"
    )


def _facts(message: Message) -> tuple[str, str, str, str | None]:
    incident = message.data.get("incident", {})
    if not incident and message.type in BRAND_EVENTS:
        label = "TRIAGE" if message.type == "triage.breach" else "DIGEST"
        entry_id = str((message.data.get("entry") or {}).get("entry_id") or message.data.get("digest", {}).get("date"))
        return label, brand_name(str(message.data.get("brand") or "?")), entry_id, message.data.get("link")
    severity = str(incident.get("severity") or "?").upper()
    brand = brand_name(str(incident.get("brand") or "?"))
    code = str(incident.get("code") or "?")
    return severity, brand, code, message.data.get("link")


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(message: Message) -> dict[str, Any]:
    """Slack incoming webhook: `text` (notifications, fallback) plus blocks."""
    severity, brand, code, link = _facts(message)
    what = what_happened(message)
    head = f"[{severity}] {brand}: {what}"
    context = f"Incident {code} · {message.data.get('incident', {}).get('playbook', '')} · {message.type}"
    suffix = f" (incident {code})"
    if message.type in BRAND_EVENTS:  # no incident: name the queue entry or the day
        context, suffix = f"{message.type} · {code}", ""
    if link:
        context += f" · <{link}|open incident>"
    return {
        "text": _slack_escape(f"{head}{suffix}"),
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*[{severity}] {_slack_escape(brand)}*\n{_slack_escape(what)}"},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def teams(message: Message) -> dict[str, Any]:
    """Microsoft Teams incoming webhook (Workflows): a message carrying one Adaptive Card."""
    severity, brand, code, link = _facts(message)
    incident = message.data.get("incident", {})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"[{severity}] {brand}",
                "weight": "Bolder",
                "size": "Medium",
                "color": "Attention" if message.type != "incident.resolved" else "Good",
                "wrap": True,
            },
            {"type": "TextBlock", "text": what_happened(message), "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Incident", "value": code},
                    {"title": "Status", "value": str(incident.get("status", ""))},
                    {"title": "Playbook", "value": str(incident.get("playbook", ""))},
                    {"title": "Event", "value": message.type},
                ],
            },
        ],
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open incident", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def generic(message: Message) -> dict[str, Any]:
    """Standard Webhooks' recommended shape: type, timestamp, data."""
    return {
        "type": message.type,
        "timestamp": datetime.fromtimestamp(message.occurred_at, tz=UTC).isoformat().replace("+00:00", "Z"),
        "data": {"event_id": message.event_id, **message.data},
    }


def render(subscriber: Subscriber, message: Message, *, now: float, secret: str | None) -> tuple[bytes, dict[str, str]]:
    """The request body and headers. Every format carries `webhook-id` (the stable event id, for
    dedupe); generic adds `webhook-timestamp` (this attempt) and `webhook-signature`."""
    builder = {"slack": slack, "teams": teams, "generic": generic}[subscriber.format]
    payload = json.dumps(builder(message), ensure_ascii=False, separators=(",", ":"))
    headers = {"content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": message.event_id}
    if subscriber.format == "generic":
        if not secret:
            raise MissingSecret(f"subscriber {subscriber.name}: {subscriber.secret_env} is not set")
        from standardwebhooks import Webhook

        timestamp = int(now)
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = Webhook(secret).sign(
            message.event_id, datetime.fromtimestamp(timestamp, tz=UTC), payload
        )
    return payload.encode("utf-8"), headers
