"""Triage of individual mentions (issue 11): topic, urgency and the playbook for every mention, a
per-brand queue of the ones that need a human reply, response-time clocks, breaches and a daily digest.

- `models`: the triage configuration schema (`config/triage.yaml`) and the result of triaging one mention
- `config`: loading and line-aware validation of that file (like playbooks)
- `rules`: pure functions: topics, question detection, urgency, the reply rule
- `queue`: the DynamoDB queue: exactly-once grouping writes, listing, handled, breaches
- `digest`: the daily digest per brand
- `web`: the phone-first queue page
See docs/triage.md.
"""
