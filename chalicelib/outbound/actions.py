"""Which timeline actions are outbound events. Plain data, so the incident service can mark those
entries at write time without importing the outbound models (pydantic, ~20 ms of a cold start)."""

# Timeline actions (the facts the incident service already writes) -> the event each one is.
# Anything else on the timeline (pages sent, drafts, edits...) is not sent outside.
ACTION_EVENTS: dict[str, str] = {
    "opened": "incident.opened",
    "spike_continues": "incident.updated",
    "acknowledged": "incident.acknowledged",
    "resolved": "incident.resolved",
    "statement_approval_complete": "statement.approved",
    "statement_published": "statement.published",
    "target_breached": "incident.response_time_breached",
}

UNANNOUNCED = "announce"
"""`open_shard` of a timeline entry whose event has not reached SQS yet (the sparse `open-incidents`
index lists them under this hash key by time; see chalicelib/outbound/service.py)."""
