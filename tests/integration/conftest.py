"""Integration fixtures: one real moto server per test session, a fresh namespace per test.

Each test gets its own table prefix and queue name on the shared server, so tests never see
each other's data and no in-process fake stands in for DynamoDB or SQS.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client

from klaxon import stack as local_stack


@pytest.fixture(scope="session")
def moto_server() -> Iterator[int]:
    port = local_stack.free_port()
    proc = local_stack.start_moto(port)
    saved = dict(os.environ)
    os.environ.update(local_stack.local_environment(port))
    try:
        yield port
    finally:
        local_stack.stop_process(proc)
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Env:
    """A provisioned namespace on the moto server, plus clients to drive it."""

    queue_url: str
    dlq_url: str
    client: Client
    sqs: Any

    def invoke_ingest(self, event: dict[str, Any]) -> Any:
        return self.client.lambda_.invoke("ingest", event)

    def drain(self, **kwargs: Any) -> Any:
        from klaxon.lambda_sqs import drain

        return drain(self.sqs, self.queue_url, self.invoke_ingest, **kwargs)


@pytest.fixture
def env(moto_server: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from chalicelib.config import settings
    from chalicelib.ingest.queue import sqs_client

    name = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("KLAXON_TABLE_PREFIX", name)
    monkeypatch.setenv("KLAXON_QUEUE_NAME", f"{name}-mentions")
    settings.cache_clear()
    queue_url, dlq_url = local_stack.provision()
    with local_stack.lambda_client() as client:
        yield Env(queue_url=queue_url, dlq_url=dlq_url, client=client, sqs=sqs_client())
    settings.cache_clear()
