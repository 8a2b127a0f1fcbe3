"""Event types, the subscriber configuration schema, and the queued message."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chalicelib.outbound.actions import ACTION_EVENTS as ACTION_EVENTS  # re-exported

EventType = Literal[
    "incident.opened",
    "incident.updated",
    "incident.acknowledged",
    "incident.resolved",
    "statement.approved",
    "statement.published",
    "incident.response_time_breached",
    "triage.breach",
    "digest.daily",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]

Format = Literal["slack", "teams", "generic"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
"""RFC 6052 well-known and RFC 8215 local-use NAT64 prefixes: the last 32 bits are an IPv4 address."""
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to when a translator or tunnel delivers it: IPv4-mapped
    (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _IPV4_COMPATIBLE or any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_is_public(address: str) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast, reserved and unspecified,
    also when written as an IPv6 address that embeds one (a dual-stack VPC's NAT64 or a 6to4 relay
    would deliver to the IPv4 address inside). Teredo is refused outright: no receiver needs it and
    its client address is obfuscated."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return inner.is_global and not inner.is_multicast
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_local: bool) -> str:
    """http(s) only, a host, no credentials in the URL; a literal private address or localhost is
    refused unless local subscribers are allowed. (Names are resolved and checked again at delivery.)"""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url must be http or https, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise ValueError("url has no host")
    if parts.username or parts.password:
        raise ValueError("url must not carry credentials (user:password@)")
    if not allow_local:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise ValueError("url points at localhost (set KLAXON_ALLOW_LOCAL_SUBSCRIBERS=1 for local testing)")
        try:
            public = address_is_public(host)
        except ValueError:
            public = True  # a name: checked after resolving, at delivery
        if not public:
            raise ValueError(
                f"url points at a private or reserved address {host} (set KLAXON_ALLOW_LOCAL_SUBSCRIBERS=1 "
                "for local testing)"
            )
    return url


class Subscriber(BaseModel):
    """One receiver: where, in which format, which events (and brands), and for generic its secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    format: Format
    events: list[EventType] = Field(default_factory=lambda: list(EVENT_TYPES), min_length=1)
    brands: list[str] | None = None
    secret_env: str | None = None
    """Name of the environment variable holding the Standard Webhooks secret (whsec_...; generic only)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use lowercase letters, digits, - and _ (at most 63)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        allow_local = bool((info.context or {}).get("allow_local"))
        return check_url(value, allow_local=allow_local)

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (A-Z, 0-9, _)")
        return value

    @model_validator(mode="after")
    def _secret_for_generic(self) -> Subscriber:
        if self.format == "generic" and not self.secret_env:
            raise ValueError("a generic subscriber needs secret_env (the variable holding its whsec_ secret)")
        if self.format != "generic" and self.secret_env:
            raise ValueError("secret_env is only used by the generic format (Slack and Teams URLs are the secret)")
        return self

    def wants(self, event_type: str, brand: str) -> bool:
        return event_type in self.events and (self.brands is None or brand in self.brands)


class SubscribersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscribers: list[Subscriber] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SubscribersFile:
        seen: set[str] = set()
        for s in self.subscribers:
            if s.name in seen:
                raise ValueError(f"subscriber name {s.name!r} is used twice")
            seen.add(s.name)
        return self


class Message(BaseModel):
    """The SQS message body: one event for one subscriber. Rendered and signed at delivery."""

    model_config = ConfigDict(extra="ignore")

    v: int = 1
    event_id: str
    type: str
    occurred_at: float
    subscriber: str
    data: dict[str, Any]
