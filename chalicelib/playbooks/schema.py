"""JSON Schema of a playbook file, committed as playbooks/schema.json for editors.

Regenerate with `klaxon playbooks schema`; a unit test fails when the committed file is stale.
Cross-references (brands, people, schedules, policies) cannot be expressed in JSON Schema; the
validator (`klaxon playbooks validate`) checks them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.playbooks.models import PLACEHOLDERS, Playbook


def playbook_schema() -> dict[str, Any]:
    """The schema as a dict, with the placeholder list in its description."""
    schema = Playbook.model_json_schema()
    placeholders = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Klaxon playbook",
        "description": f"One crisis playbook (playbooks/<id>.yaml). Template placeholders: {placeholders}. "
        "See docs/playbooks.md.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    """The exact text of playbooks/schema.json."""
    return json.dumps(playbook_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path) -> bool:
    """Write the schema; True when the file changed."""
    text = schema_text()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
