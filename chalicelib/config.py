"""Configuration from environment variables, read once per container.

Every setting has a local default so `make run` works on a bare clone; in AWS the
same variables are set by the deployment (secrets resolved from SSM by name).
Nothing here knows whether it talks to moto or to AWS: `AWS_ENDPOINT_URL` decides.

Secrets in AWS live in SSM Parameter Store, one SecureString per variable name under
`KLAXON_SECRETS_PARAMETER_PREFIX` (e.g. `/klaxon/prod/KLAXON_API_KEY`). `load_secrets()` copies
them into the environment once per container, before anything reads a secret. With a prefix set,
Klaxon is deployed: a secret that is missing or still the template's `CHANGE_ME` placeholder is
empty, never the public local default, and every check that needs it fails closed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Local development defaults only. Production sets real values (see README, infra/).
_LOCAL_WEBHOOK_SECRET = "whsec_a2xheG9uLWxvY2FsLWRldmVsb3BtZW50LXNlY3JldA=="

SECRETS_PREFIX_VAR = "KLAXON_SECRETS_PARAMETER_PREFIX"
PLACEHOLDER = "CHANGE_ME"  # what infra/resources.json creates until the operator sets the real value
SECRET_NAMES = (
    "KLAXON_X_CONSUMER_SECRET",
    "KLAXON_META_APP_SECRET",
    "KLAXON_META_VERIFY_TOKEN",
    "KLAXON_WEBHOOK_SECRET",
    "KLAXON_API_KEY",
    "KLAXON_LINK_SECRET",
    "KLAXON_TWILIO_ACCOUNT_SID",
    "KLAXON_TWILIO_AUTH_TOKEN",
    "KLAXON_TWILIO_FROM",
    "KLAXON_X_USER_TOKEN",
    "KLAXON_META_PAGE_TOKEN",
    "KLAXON_PUBLISH_WEBHOOK_SECRET",
)

# Signing secrets of generic outbound subscribers (config/subscribers.yaml `secret_env`) load from SSM
# when their variable names start with this.
OUTBOUND_SECRET_PREFIX = "KLAXON_OUTBOUND_SECRET_"


class SecretsUnavailable(RuntimeError):
    """SSM could not be read at cold start: better to fail the init (Lambda retries) than run open."""


def deployed(environ: Mapping[str, str] | None = None) -> bool:
    """True where secrets come from SSM: local defaults must never be used there."""
    return bool((os.environ if environ is None else environ).get(SECRETS_PREFIX_VAR))


def secret(name: str, local_default: str = "") -> str:
    """A secret's value; "" when unset or a placeholder. The local default only outside AWS."""
    value = os.environ.get(name)
    if value is None:
        return "" if deployed() else local_default
    return "" if value.strip() in ("", PLACEHOLDER) else value


def load_secrets(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy the secrets under `KLAXON_SECRETS_PARAMETER_PREFIX` into the environment; names loaded.

    `GetParametersByPath` (with decryption, paginated) once per cold start, through the light
    client in `chalicelib.awsjson` rather than Powertools Parameters: that would import boto3 into
    every function's init (measured: ~400 ms of a cold start in the package). A rotated secret
    reaches new containers at once and warm ones when they are recycled; rotate webhook secrets
    with an overlap window on the platform side. Only the names in `SECRET_NAMES` (and
    `KLAXON_OUTBOUND_SECRET_*`, the subscribers' signing secrets) are taken, so a stray parameter
    cannot override, say, the table prefix.
    """
    env = os.environ if environ is None else environ
    prefix = env.get(SECRETS_PREFIX_VAR, "").rstrip("/")
    if not prefix:
        return []
    from chalicelib import awsjson

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    found: dict[str, str] = {}
    request: dict[str, object] = {"Path": prefix, "Recursive": False, "WithDecryption": True, "MaxResults": 10}
    try:
        for _page in range(100):  # 1,000 parameters: far more than a deployment has
            answer = awsjson.call("ssm", "GetParametersByPath", request, region=region)
            for parameter in answer.get("Parameters", []):
                found[str(parameter["Name"])[len(prefix) :]] = parameter.get("Value")
            if not answer.get("NextToken"):
                break
            request["NextToken"] = answer["NextToken"]
    except Exception as exc:  # AWS errors, missing permissions, no network: one clear failure
        raise SecretsUnavailable(f"cannot read secrets under {prefix}: {exc}") from exc
    loaded = []
    for name, value in found.items():
        name = name.lstrip("/")
        known = name in SECRET_NAMES or name.startswith(OUTBOUND_SECRET_PREFIX)
        if known and isinstance(value, str) and value.strip() not in ("", PLACEHOLDER):
            env[name] = value
            loaded.append(name)
    settings.cache_clear()
    return sorted(loaded)


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
    counter_read_shards: int = 0
    """Shards the readers query when more than counter_shards (0: counter_shards). After lowering
    KLAXON_COUNTER_SHARDS, set KLAXON_COUNTER_READ_SHARDS to the old value until the counter retention has
    passed, or the counts already stored in the higher shards are not read."""
    brands_file: Path = field(default_factory=lambda: PROJECT_ROOT / "config" / "brands.yaml")
    # Outbound webhooks (chalicelib/outbound): queue, subscribers, delivery timing.
    outbound_queue_name: str = "klaxon-outbound"  # settings(): KLAXON_OUTBOUND_QUEUE_NAME, else <table prefix>-outbound
    outbound_queue_url: str | None = None
    subscribers_file: Path = field(default_factory=lambda: PROJECT_ROOT / "config" / "subscribers.yaml")
    allow_local_subscribers: bool = False
    outbound_timeout_seconds: int = 5
    outbound_backoff_base_seconds: int = 30
    outbound_backoff_cap_seconds: int = 900
    outbound_max_receives: int = 8
    # `"links": true` on drafting returns every signer's and approver's approval link to the API key
    # holder (SECURITY.md); off by default where deployed, since drafting texts each person their own.
    api_approval_links: bool = True

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
    subscribers_file = env("KLAXON_SUBSCRIBERS_FILE")
    table_prefix = env("KLAXON_TABLE_PREFIX", "klaxon")
    return Settings(
        region=env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env("AWS_ENDPOINT_URL") or None,
        table_prefix=table_prefix,
        queue_name=env("KLAXON_QUEUE_NAME", "klaxon-mentions"),
        queue_url=env("KLAXON_QUEUE_URL") or None,
        x_consumer_secret=secret("KLAXON_X_CONSUMER_SECRET", Settings.x_consumer_secret),
        meta_app_secret=secret("KLAXON_META_APP_SECRET", Settings.meta_app_secret),
        meta_verify_token=secret("KLAXON_META_VERIFY_TOKEN", Settings.meta_verify_token),
        webhook_secret=secret("KLAXON_WEBHOOK_SECRET", Settings.webhook_secret),
        api_key=secret("KLAXON_API_KEY", Settings.api_key),
        max_body_bytes=_int("KLAXON_MAX_BODY_BYTES", Settings.max_body_bytes),
        webhook_tolerance_seconds=_int("KLAXON_WEBHOOK_TOLERANCE_SECONDS", Settings.webhook_tolerance_seconds),
        mention_retention_days=_int("KLAXON_MENTION_RETENTION_DAYS", Settings.mention_retention_days),
        counter_retention_days=_int("KLAXON_COUNTER_RETENTION_DAYS", Settings.counter_retention_days),
        counter_shards=max(1, _int("KLAXON_COUNTER_SHARDS", Settings.counter_shards)),
        counter_read_shards=max(0, _int("KLAXON_COUNTER_READ_SHARDS", Settings.counter_read_shards)),
        brands_file=Path(brands_file) if brands_file else PROJECT_ROOT / "config" / "brands.yaml",
        outbound_queue_name=env("KLAXON_OUTBOUND_QUEUE_NAME") or f"{table_prefix}-outbound",
        outbound_queue_url=env("KLAXON_OUTBOUND_QUEUE_URL") or None,
        subscribers_file=Path(subscribers_file) if subscribers_file else PROJECT_ROOT / "config" / "subscribers.yaml",
        allow_local_subscribers=env("KLAXON_ALLOW_LOCAL_SUBSCRIBERS", "") == "1",
        outbound_timeout_seconds=max(1, _int("KLAXON_OUTBOUND_TIMEOUT_SECONDS", Settings.outbound_timeout_seconds)),
        outbound_backoff_base_seconds=max(
            0, _int("KLAXON_OUTBOUND_BACKOFF_BASE_SECONDS", Settings.outbound_backoff_base_seconds)
        ),
        outbound_backoff_cap_seconds=max(
            0, _int("KLAXON_OUTBOUND_BACKOFF_CAP_SECONDS", Settings.outbound_backoff_cap_seconds)
        ),
        outbound_max_receives=max(1, _int("KLAXON_OUTBOUND_MAX_RECEIVES", Settings.outbound_max_receives)),
        api_approval_links=env("KLAXON_API_APPROVAL_LINKS", "0" if deployed() else "1").strip().lower()
        in ("1", "true", "yes", "on"),
    )
