"""Configuration from environment variables, read once per container.

Every setting has a local default so `make run` works on a bare clone; in AWS the
same variables are set by the deployment (secrets resolved from SSM by name).
Nothing here knows whether it talks to moto or to AWS: `AWS_ENDPOINT_URL` decides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Local development defaults only. Production sets real values (see README, infra/).
_LOCAL_WEBHOOK_SECRET = "whsec_a2xheG9uLWxvY2FsLWRldmVsb3BtZW50LXNlY3JldA=="


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Construct with `settings()`; tests call `settings.cache_clear()`."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    table_prefix: str = "klaxon"
    queue_name: str = "klaxon-mentions"
    queue_url: str | None = None
    x_consumer_secret: str = "local-x-consumer-secret"
    meta_app_secret: str = "local-meta-app-secret"
    meta_verify_token: str = "local-meta-verify-token"
    webhook_secret: str = _LOCAL_WEBHOOK_SECRET
    api_key: str = "local-api-key"
    max_body_bytes: int = 256 * 1024
    webhook_tolerance_seconds: int = 300
    mention_retention_days: int = 30
    counter_retention_days: int = 400
    counter_shards: int = 4
    brands_file: Path = field(default_factory=lambda: PROJECT_ROOT / "config" / "brands.yaml")

    @property
    def mentions_table(self) -> str:
        return f"{self.table_prefix}-mentions"

    @property
    def counters_table(self) -> str:
        return f"{self.table_prefix}-counters"

    @property
    def incidents_table(self) -> str:
        return f"{self.table_prefix}-incidents"


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Read the environment once per container (Lambda reuses it across invocations)."""
    env = os.environ.get
    brands_file = env("KLAXON_BRANDS_FILE")
    return Settings(
        region=env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env("AWS_ENDPOINT_URL") or None,
        table_prefix=env("KLAXON_TABLE_PREFIX", "klaxon"),
        queue_name=env("KLAXON_QUEUE_NAME", "klaxon-mentions"),
        queue_url=env("KLAXON_QUEUE_URL") or None,
        x_consumer_secret=env("KLAXON_X_CONSUMER_SECRET", Settings.x_consumer_secret),
        meta_app_secret=env("KLAXON_META_APP_SECRET", Settings.meta_app_secret),
        meta_verify_token=env("KLAXON_META_VERIFY_TOKEN", Settings.meta_verify_token),
        webhook_secret=env("KLAXON_WEBHOOK_SECRET", Settings.webhook_secret),
        api_key=env("KLAXON_API_KEY", Settings.api_key),
        max_body_bytes=_int("KLAXON_MAX_BODY_BYTES", Settings.max_body_bytes),
        webhook_tolerance_seconds=_int("KLAXON_WEBHOOK_TOLERANCE_SECONDS", Settings.webhook_tolerance_seconds),
        mention_retention_days=_int("KLAXON_MENTION_RETENTION_DAYS", Settings.mention_retention_days),
        counter_retention_days=_int("KLAXON_COUNTER_RETENTION_DAYS", Settings.counter_retention_days),
        counter_shards=max(1, _int("KLAXON_COUNTER_SHARDS", Settings.counter_shards)),
        brands_file=Path(brands_file) if brands_file else PROJECT_ROOT / "config" / "brands.yaml",
    )
