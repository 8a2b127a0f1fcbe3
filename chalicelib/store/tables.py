"""Create Klaxon's tables when missing (local stack and tests; AWS uses infra/ templates)."""

from __future__ import annotations

import time

from pynamodb.exceptions import TableError
from pynamodb.models import Model

from chalicelib.config import Settings, settings
from chalicelib.store.models import ALL_MODELS, bind


def ensure_tables(cfg: Settings | None = None) -> None:
    """Create each table on demand with TTL on `expires`; safe to call repeatedly and concurrently."""
    cfg = bind(cfg or settings())
    seen: set[str] = set()
    for model in ALL_MODELS:
        if model.Meta.table_name in seen:
            continue
        seen.add(model.Meta.table_name)
        _create(model)
        _enable_ttl(model)


def _create(model: type[Model]) -> None:
    if model.exists():
        return
    try:
        model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    except TableError:
        # Another process created it between exists() and create_table(): wait for it.
        for _ in range(50):
            if model.exists():
                return
            time.sleep(0.1)
        raise


def _enable_ttl(model: type[Model]) -> None:
    client = model._get_connection().connection.client  # type: ignore[attr-defined]
    current = client.describe_time_to_live(TableName=model.Meta.table_name)
    if current.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    client.update_time_to_live(
        TableName=model.Meta.table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
    )
