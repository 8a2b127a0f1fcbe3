"""Pydantic shapes of the statements domain: drafts, approval state, variants, replies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.statements import xtext


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variants(_Model):
    """What each platform would get, derived deterministically from the approved text, so approving
    the text's hash approves exactly these posts (they are shown on the approval page)."""

    x_length: int
    x_fits: bool
    x_thread: tuple[str, ...]
    x_short: str
    meta: tuple[str, ...]


class Draft(_Model):
    """One version of a statement in one language, as stored."""

    incident_id: str
    lang: str
    version: int = Field(ge=1)
    text: str
    signer_id: str
    signer_name: str
    signer_role: str
    hash: str
    brand: str
    playbook: str
    approvers: tuple[str, ...]
    quorum: int
    created_at: float
    created_by: str
    reason: str
    previous_hash: str | None = None

    @property
    def rtl(self) -> bool:
        return self.lang in RTL_LANGUAGES

    def variants(self) -> Variants:
        return Variants(
            x_length=xtext.weighted_length(self.text),
            x_fits=xtext.fits_x(self.text),
            x_thread=tuple(xtext.x_thread(self.text)),
            x_short=xtext.x_short(self.text, self.signer_name),
            meta=tuple(xtext.meta_parts(self.text)),
        )

    def capacity_of(self, person_id: str) -> str | None:
        """"signer", "approver" or None: what this person may do with this version."""
        if person_id == self.signer_id:
            return "signer"
        return "approver" if person_id in self.approvers else None


RTL_LANGUAGES = frozenset({"he", "ar", "fa", "ur", "yi"})


class Approval(_Model):
    person: str
    capacity: str
    at: float
    channel: str


class ChangeRequest(_Model):
    person: str
    note: str
    at: float


class ApprovalState(_Model):
    """Who has approved the current version, and whether it may be published (invariant 5)."""

    draft: Draft
    approvals: tuple[Approval, ...]
    change_requests: tuple[ChangeRequest, ...]
    signer_approved: bool
    approver_count: int
    quorum: int
    open_change_requests: tuple[str, ...]
    """People who asked for changes to this version and have not approved it since."""

    @property
    def publishable(self) -> bool:
        return self.signer_approved and self.approver_count >= self.quorum and not self.open_change_requests

    def waiting_for(self) -> list[str]:
        """Plain-words list of what is still missing."""
        missing = []
        if not self.signer_approved:
            missing.append(f"the signer ({self.draft.signer_name})")
        if self.approver_count < self.quorum:
            missing.append(f"{self.quorum - self.approver_count} more approver(s)")
        if self.open_change_requests:
            missing.append("answers to change requests from " + ", ".join(self.open_change_requests))
        return missing


class Complaint(_Model):
    """One public complaint worth a personal answer (from the mentions of the incident)."""

    platform: str
    id: str
    handle: str
    text: str
    engagement: int = 0


class ReplyDraft(_Model):
    """A personal reply to one complaint, signed by the statement's signer; published only once approved."""

    platform: str
    reply_to: str
    handle: str
    lang: str
    topic: str | None
    text: str
