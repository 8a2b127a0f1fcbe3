"""Invariant 6: nothing Klaxon does deletes, hides or blocks a public comment.

Three independent looks: the adapters' own surface (every method name), what they actually send
(every request a full run makes), and the whole chalicelib source tree (no HTTP DELETE, no Graph API
`is_hidden`, no X hide/block/mute endpoints, no SDK call that moderates).
"""

from __future__ import annotations

import inspect
import itertools
import re
from pathlib import Path

import pytest

import chalicelib
from chalicelib.publish import base, meta, outbox, webhook, x
from chalicelib.publish.base import Target
from chalicelib.statements.hashing import version_hash
from tests.unit.publish.conftest import FakeTransport, ok

ADAPTERS = (x.XPublisher, meta.MetaPublisher, webhook.WebhookPublisher, outbox.OutboxPublisher)
FORBIDDEN_NAME = re.compile(r"delete|remove|hide|hidden|block|ban|mute|moderat|restrict|report_spam|destroy", re.I)
SOURCE_ROOT = Path(chalicelib.__file__).resolve().parent

# Source patterns that would mean Klaxon can take down, hide or silence someone's public words.
FORBIDDEN_SOURCE = {
    "HTTP DELETE verb": re.compile(r"""(["'])DELETE\1|method\s*=\s*["']delete["']""", re.I),
    "Graph API is_hidden": re.compile(r"is_hidden", re.I),
    "Graph API hide/block edges": re.compile(r"/(blocked|hide|hidden)\b|can_hide|\bhide_comment", re.I),
    "X hidden replies endpoint": re.compile(r"/hidden\b|\bhide_replies?\b", re.I),
    "X blocking/muting endpoints": re.compile(r"/(blocking|muting|mutes|blocks)\b", re.I),
    "X delete post endpoint": re.compile(r"tweets/\{?\w*\}?\s*[\"'],\s*method\s*=\s*[\"']DELETE", re.I),
    "moderation helpers": re.compile(r"\bdef\s+\w*(delete|hide|block|mute|ban)_?(comment|post|tweet|reply|user)", re.I),
    "SDK moderation calls": re.compile(r"\.(delete_comment|hide_comment|block_user|mute_user|delete_tweet)\s*\(", re.I),
}


def _members(cls: type) -> list[str]:
    return [name for name, _ in inspect.getmembers(cls) if not name.startswith("__")]


@pytest.mark.parametrize("cls", ADAPTERS, ids=lambda c: c.__name__)
def test_no_adapter_method_deletes_hides_or_blocks(cls: type) -> None:
    names = _members(cls)
    assert "publish" in names
    assert [n for n in names if FORBIDDEN_NAME.search(n)] == []


def test_the_publisher_protocol_has_one_operation() -> None:
    protocol_methods = [n for n in _members(base.Publisher) if callable(getattr(base.Publisher, n))]
    assert [n for n in protocol_methods if not n.startswith("_")] == ["publish"]


def test_every_module_level_function_in_publish_is_harmless() -> None:
    for module in (base, meta, outbox, webhook, x):
        for name, _ in inspect.getmembers(module, inspect.isfunction):
            assert not FORBIDDEN_NAME.search(name), f"{module.__name__}.{name}"


def test_what_the_adapters_send_is_only_post_to_create_edges() -> None:
    signer = "noa-ben-david"
    text = "We are sorry. " * 40
    h = version_hash(text, signer)
    ids = itertools.count(1)
    transport = FakeTransport(lambda m, u, b: ok({"id": str(next(ids)), "data": {"id": str(next(ids))}}, 200))
    x.XPublisher("t", transport).publish(text, h, Target(signer_id=signer, reply_to="9"))
    meta.MetaPublisher("t", transport, page_id="5").publish(text, h, Target(signer_id=signer))
    meta.MetaPublisher("t", transport).publish(text, h, Target(signer_id=signer, reply_to="1_2"))
    meta.MetaPublisher("t", transport).publish(text, h, Target(signer_id=signer, reply_to="3", surface="instagram"))
    webhook.WebhookPublisher("https://h.example/", "whsec_dGVzdHRlc3R0ZXN0dGVzdA==", transport).publish(
        text, h, Target(signer_id=signer)
    )
    assert {c[0] for c in transport.calls} == {"POST"}
    for _, url, _, body in transport.calls:
        path = url.split("://", 1)[1].split("/", 1)[1]
        assert re.fullmatch(r"2/tweets|v[\d.]+/\w+/(comments|replies|feed)|", path), path
        assert not re.search(rb"is_hidden|hide|block|delete", body, re.I)


def _python_files() -> list[Path]:
    return sorted(p for p in SOURCE_ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_source_tree_is_scanned() -> None:
    files = {p.relative_to(SOURCE_ROOT).as_posix() for p in _python_files()}
    assert {"publish/x.py", "publish/meta.py", "statements/service.py", "ingest/platforms.py"} <= files


@pytest.mark.parametrize("label", sorted(FORBIDDEN_SOURCE))
def test_no_source_in_chalicelib_can_delete_hide_or_block(label: str) -> None:
    pattern = FORBIDDEN_SOURCE[label]
    hits = []
    for path in _python_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(SOURCE_ROOT)}:{number}: {line.strip()}")
    assert hits == [], f"{label}:\n" + "\n".join(hits)


def test_the_scanner_would_catch_a_violation() -> None:
    """The patterns are not vacuous: each recognises the thing it forbids."""
    samples = {
        "HTTP DELETE verb": 'transport.request("DELETE", url, {}, b"")',
        "Graph API is_hidden": 'post_json(t, f"{base}/{comment_id}", {"is_hidden": True})',
        "Graph API hide/block edges": 'f"{base}/{page_id}/blocked"',
        "X hidden replies endpoint": 'f"{base}/2/tweets/{tweet_id}/hidden"',
        "X blocking/muting endpoints": 'f"{base}/2/users/{me}/blocking"',
        "X delete post endpoint": 'request(f"{base}/2/tweets/{id}", method="DELETE")',
        "moderation helpers": "def hide_comment(self, comment_id):",
        "SDK moderation calls": "client.delete_tweet(id)",
    }
    assert set(samples) == set(FORBIDDEN_SOURCE)
    for label, sample in samples.items():
        assert FORBIDDEN_SOURCE[label].search(sample), label
