"""Holding statements: signed drafts per language, approvals bound to the sha256 of the exact text,
signed approval links and the phone-first approval page (invariant 5)."""
