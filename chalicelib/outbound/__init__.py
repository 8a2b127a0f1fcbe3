"""Outbound webhooks: incident events delivered to Slack, Microsoft Teams and signed generic JSON receivers.

`service.emit` (called after an incident write succeeds) enqueues one SQS message per (event,
subscriber); `service.deliver_batch` (the `outbound` SQS handler) POSTs them. See docs/outbound.md.
"""
