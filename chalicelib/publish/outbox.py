"""Local outbox: the default channel. "Publishes" by appending what would go out, for the demo,
tests and dry runs: JSON lines in a file (KLAXON_OUTBOX_FILE), else items in the incidents table."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from pathlib import Path

from chalicelib.publish.base import Progress, PublishedRef, Target, require_hash
from chalicelib.store.models import OutboxItem, bind


class OutboxPublisher:
    platform = "outbox"

    def __init__(self, path: Path | str | None = None) -> None:
        self._path = Path(path) if path else None

    @classmethod
    def from_env(cls) -> OutboxPublisher:
        return cls(os.environ.get("KLAXON_OUTBOX_FILE") or None)

    def publish(self, text: str, version_hash: str, target: Target, progress: Progress | None = None) -> PublishedRef:
        """One message; `progress` is not used (there is one part, written locally)."""
        require_hash(text, version_hash, target.signer_id)
        now = time.time()
        ref = f"outbox_{int(now * 1000)}_{secrets.token_hex(4)}"
        if self._path is not None:
            record = {
                "id": ref,
                "at": now,
                "incident_id": target.incident_id,
                "lang": target.lang,
                "target": target.key(),
                "version_hash": version_hash,
                "text": text,
            }
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as out:
                fcntl.flock(out, fcntl.LOCK_EX)  # whole lines even with concurrent writers
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return PublishedRef(ref, self._path.resolve().as_uri(), (ref,))
        bind()
        OutboxItem(
            f"incident#{target.incident_id}",
            f"outbox#{int(now * 1000):015d}#{ref}",
            incident_id=target.incident_id,
            lang=target.lang,
            hash=version_hash,
            target=target.key(),
            text=text,
            at=now,
        ).save(condition=OutboxItem.sk.does_not_exist())
        return PublishedRef(ref, None, (ref,))


def outbox_items(incident_id: str) -> list[OutboxItem]:
    """What the outbox "published" for an incident (DynamoDB mode), oldest first."""
    bind()
    return list(OutboxItem.query(f"incident#{incident_id}", OutboxItem.sk.startswith("outbox#"), consistent_read=True))
