"""Crisis playbooks (playbooks/*.yaml) and the on-call roster (config/roster.yaml). See docs/playbooks.md.

Public API:
- load_playbooks(dir, roster, brands) -> [Playbook]; load_roster(path) -> Roster (raise PlaybookError)
- validate_dir(dir, roster_path, brands_path) -> [ValidationIssue] (file, line, key path, message)
- playbook_for(brand, playbooks) -> [Playbook], most severe first
- crisis_terms_for(brand, playbooks=None) -> terms for chalicelib.sentiment.classify
"""

from chalicelib.playbooks.loader import (
    PlaybookError,
    ValidationIssue,
    crisis_terms_for,
    default_playbooks,
    load_playbooks,
    load_roster,
    playbook_for,
    validate_dir,
)
from chalicelib.playbooks.models import (
    PLACEHOLDERS,
    EscalationPolicy,
    Person,
    Playbook,
    Roster,
    Schedule,
    Statement,
    format_duration,
    parse_duration,
    render_template,
)

__all__ = [
    "PLACEHOLDERS",
    "EscalationPolicy",
    "Person",
    "Playbook",
    "PlaybookError",
    "Roster",
    "Schedule",
    "Statement",
    "ValidationIssue",
    "crisis_terms_for",
    "default_playbooks",
    "format_duration",
    "load_playbooks",
    "load_roster",
    "parse_duration",
    "playbook_for",
    "render_template",
    "validate_dir",
]
