"""Publishing approved statements: channel adapters (X, Meta, webhook, outbox) and the publish gate.

There is no delete, hide or block operation anywhere in this package (invariant 6)."""
