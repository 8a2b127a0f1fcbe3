"""Subscriber configuration, the SSRF guard, rendering and retry classification, without any network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from chalicelib.config import PROJECT_ROOT, Settings
from chalicelib.outbound import formats
from chalicelib.outbound.config import SubscriberConfigError, check_subscribers, subscribers
from chalicelib.outbound.models import Message, Subscriber, address_is_public, check_url
from chalicelib.outbound.service import DONE, PERMANENT, RETRY, backoff_seconds, classify

SECRET = "whsec_" + "dW5pdC10ZXN0LXNlY3JldC1mb3Itb3V0Ym91bmQ="


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subscribers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n"
        "  - name: ok\n"
        "    url: https://hooks.slack.com/services/x\n"
        "    format: slack\n"
        "  - name: bad\n"
        "    url: http://10.0.0.7/hook\n"
        "    format: generic\n"
        "    evnets: [incident.opened]\n",
    )
    subs, issues = check_subscribers(path, allow_local=False)
    assert subs == ()
    text = [str(i) for i in issues]
    assert any(t.startswith(f"{path}:6: subscribers[1].url:") and "private" in t for t in text), text
    assert any(t.startswith(f"{path}:8: subscribers[1].evnets:") and "did you mean 'events'" in t for t in text), text
    with pytest.raises(SubscriberConfigError) as exc:
        subscribers(Settings(subscribers_file=path))
    assert f"{path}:6:" in str(exc.value)


def test_generic_needs_a_secret_and_unknown_events_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n  - name: g\n    url: https://x.example/h\n    format: generic\n"
        "  - name: s\n    url: https://x.example/s\n    format: slack\n    events: [incident.exploded]\n",
    )
    text = [str(i) for i in check_subscribers(path, allow_local=False)[1]]
    assert any(":2: subscribers[0]:" in t and "secret_env" in t for t in text), text
    assert any(":8: subscribers[1].events[0]:" in t for t in text), text


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example/",
        "file:///etc/passwd",
        "http://127.0.0.1:8000/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254 (instance metadata)
        "http://[64:ff9b::10.0.0.1]/",
        "http://[64:ff9b:1::c0a8:101]/",  # RFC 8215 local-use NAT64 of 192.168.1.1
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/",
        "http://[::10.0.0.1]/",  # IPv4-compatible
        "http://[::]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://192.168.1.1/",
        "https://user:pw@x.example/",
        "http:///nohost",
    ],
)
def test_ssrf_guard_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url, allow_local=False)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"],
)
def test_public_addresses_pass_also_when_embedded_in_ipv6(address: str) -> None:
    assert address_is_public(address)


def test_local_flag_allows_loopback_only_for_http_schemes() -> None:
    assert check_url("http://127.0.0.1:9/x", allow_local=True)
    assert check_url("https://hooks.slack.com/services/x", allow_local=False)
    with pytest.raises(ValueError):
        check_url("gopher://127.0.0.1/", allow_local=True)


def test_shipped_example_is_valid_and_empty() -> None:
    assert check_subscribers(PROJECT_ROOT / "config" / "subscribers.yaml", allow_local=False) == ((), [])
    assert subscribers(Settings()) == ()  # the default file: no subscribers, the demo is unchanged


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SubscriberConfigError, match="file not found"):
        subscribers(Settings(subscribers_file=tmp_path / "missing.yaml"))


def _message(kind: str = "incident.opened", detail: str | None = None) -> Message:
    return Message(
        event_id="evt_1",
        type=kind,
        occurred_at=1_700_000_000.5,
        subscriber="s",
        data={
            "incident": {
                "id": "inc_1",
                "code": "4821",
                "brand": "acme",
                "playbook": "outage",
                "severity": "sev2",
                "status": "triggered",
                "summary": "neg 212/5min, 9x usual <b>",
            },
            "actor": "dana",
            "detail": detail,
            "link": "https://k.example/i/4821",
        },
    )


def test_generic_signature_verifies_and_uses_the_stable_id() -> None:
    sub = Subscriber(name="g", url="https://x.example/h", format="generic", secret_env="S")
    body, headers = formats.render(sub, _message(), now=__import__("time").time(), secret=SECRET)
    payload = Webhook(SECRET).verify(body, headers)
    assert headers["webhook-id"] == "evt_1" and payload["type"] == "incident.opened"
    assert payload["timestamp"] == "2023-11-14T22:13:20.500000Z" and payload["data"]["event_id"] == "evt_1"
    with pytest.raises(formats.MissingSecret):
        formats.render(sub, _message(), now=0, secret=None)


def test_slack_and_teams_are_readable_and_escaped() -> None:
    s = formats.slack(_message())
    assert s["text"].startswith("[SEV2] acme: Incident opened: neg 212/5min, 9x usual &lt;b&gt;")
    assert "<https://k.example/i/4821|open incident>" in s["blocks"][1]["elements"][0]["text"]
    t = formats.teams(_message("incident.response_time_breached", "first_response"))
    body = t["attachments"][0]["content"]["body"]
    assert body[1]["text"] == "Missed the first public response target"
    assert json.dumps(t)  # serialisable


def test_classify_and_backoff() -> None:
    assert [classify(s) for s in (200, 204, 301, 400, 401, 404, 408, 429, 500, 503)] == [
        DONE,
        DONE,
        PERMANENT,
        PERMANENT,
        PERMANENT,
        PERMANENT,
        RETRY,
        RETRY,
        RETRY,
        RETRY,
    ]
    cfg = Settings(outbound_backoff_base_seconds=30, outbound_backoff_cap_seconds=900)
    top = [backoff_seconds(n, cfg, rand=lambda lo, hi: hi) for n in range(1, 9)]
    low = [backoff_seconds(n, cfg, rand=lambda lo, hi: lo) for n in range(1, 9)]
    assert top == [30, 60, 120, 240, 480, 900, 900, 900] and low == [15, 30, 60, 120, 240, 450, 450, 450]
