"""playbooks/schema.json is generated from the models and must be kept up to date."""

from __future__ import annotations

import json

from chalicelib.playbooks.schema import playbook_schema, schema_text
from tests.unit.playbooks.conftest import PLAYBOOKS


def test_committed_schema_is_up_to_date() -> None:
    committed = (PLAYBOOKS / "schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "playbooks/schema.json is stale: run `klaxon playbooks schema` and commit it"


def test_schema_forbids_unknown_keys_everywhere() -> None:
    schema = playbook_schema()
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, name


def test_schema_describes_durations_and_placeholders() -> None:
    schema = playbook_schema()
    ack = schema["$defs"]["ResponseTargets"]["properties"]["acknowledge"]
    assert ack["type"] == "string" and "pattern" in ack
    assert "{signer_name}" in schema["description"]
    assert set(schema["required"]) >= {"id", "brands", "statements", "schedule", "escalation_policy"}
    json.dumps(schema)  # serialisable
