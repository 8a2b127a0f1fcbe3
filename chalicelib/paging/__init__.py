"""Paging on-call comms staff: SMS text rules, the sender interface and its Twilio adapter."""
