"""Secrets from SSM Parameter Store (the moto server's SSM), as a deployed Lambda reads them.

With `KLAXON_SECRETS_PARAMETER_PREFIX` set, Klaxon is deployed: secrets come from SSM only, the
template's `CHANGE_ME` placeholders count as missing, and anything missing fails closed: never the
public local defaults that make `make run` work on a bare clone.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

from chalicelib import config
from chalicelib.config import SECRET_NAMES, SecretsUnavailable, Settings, load_secrets, settings
from klaxon.signing import meta_headers, x_headers
from klaxon.stack import lambda_client

X_SECRET = "x-secret-from-ssm-" + uuid.uuid4().hex
API_KEY = "api-key-from-ssm-" + uuid.uuid4().hex


def _ssm() -> Any:
    return botocore.session.get_session().create_client(
        "ssm",
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    )


@pytest.fixture
def prefix(env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh parameter path with two real secrets, one placeholder and one stray parameter."""
    path = f"/klaxon/t{uuid.uuid4().hex[:10]}"
    ssm = _ssm()
    ssm.put_parameter(Name=f"{path}/KLAXON_X_CONSUMER_SECRET", Value=X_SECRET, Type="SecureString")
    ssm.put_parameter(Name=f"{path}/KLAXON_API_KEY", Value=API_KEY, Type="SecureString")
    ssm.put_parameter(Name=f"{path}/KLAXON_META_APP_SECRET", Value=config.PLACEHOLDER, Type="String")
    ssm.put_parameter(Name=f"{path}/KLAXON_TABLE_PREFIX", Value="hijacked", Type="String")
    ssm.put_parameter(Name=f"{path}/KLAXON_OUTBOUND_SECRET_OPS", Value="whsec_b3Bz", Type="SecureString")
    # load_secrets() writes os.environ itself, which monkeypatch does not see: restore the whole
    # environment afterwards, or the SSM values leak into every later test in this process.
    saved = dict(os.environ)
    for name in (*SECRET_NAMES, "KLAXON_OUTBOUND_SECRET_OPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(config.SECRETS_PREFIX_VAR, path)
    settings.cache_clear()
    yield path
    os.environ.clear()
    os.environ.update(saved)
    settings.cache_clear()


def test_secrets_are_loaded_from_ssm_and_only_known_real_values_are_taken(prefix: str) -> None:
    table_prefix = os.environ["KLAXON_TABLE_PREFIX"]
    loaded = load_secrets()
    assert loaded == ["KLAXON_API_KEY", "KLAXON_OUTBOUND_SECRET_OPS", "KLAXON_X_CONSUMER_SECRET"]
    assert os.environ["KLAXON_OUTBOUND_SECRET_OPS"] == "whsec_b3Bz"  # a subscriber's signing secret
    assert os.environ["KLAXON_X_CONSUMER_SECRET"] == X_SECRET
    assert os.environ["KLAXON_TABLE_PREFIX"] == table_prefix  # a stray parameter overrides nothing
    cfg = settings()
    assert cfg.x_consumer_secret == X_SECRET and cfg.api_key == API_KEY
    # Deployed: a placeholder or an absent secret is empty, never the public local default.
    assert cfg.meta_app_secret == "" and cfg.webhook_secret == "" and cfg.meta_verify_token == ""
    assert Settings.meta_app_secret != ""


def test_deployed_routes_use_ssm_secrets_and_fail_closed_without_them(prefix: str) -> None:
    load_secrets()
    body = json.dumps({"entry": []}).encode()
    with lambda_client() as client:
        crc = client.http.get("/webhooks/x?crc_token=abc")
        assert crc.status_code == 200
        from chalicelib.ingest.signatures import x_crc_response

        assert json.loads(crc.body)["response_token"] == x_crc_response(X_SECRET, "abc")
        forged = client.http.post("/webhooks/x", body=body, headers=x_headers(Settings.x_consumer_secret, body))
        assert forged.status_code == 401  # signed with the public local default: refused

        # The Meta secret is still the template's placeholder: nothing is accepted, even signed with it.
        meta = client.http.post("/webhooks/meta", body=body, headers=meta_headers(config.PLACEHOLDER, body))
        assert meta.status_code == 503 and b"KLAXON_META_APP_SECRET" in meta.body
        handshake = client.http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
        assert handshake.status_code == 503

        assert client.http.get("/incidents", headers={"x-api-key": API_KEY}).status_code == 200
        assert client.http.get("/incidents", headers={"x-api-key": Settings.api_key}).status_code == 401

        approval = client.http.get("/approve/anything.at-all")
        assert approval.status_code == 503 and b"KLAXON_LINK_SECRET" in approval.body


def test_an_empty_api_key_authorises_nobody(prefix: str) -> None:
    load_secrets()  # KLAXON_API_KEY is loaded; now remove it as if the parameter had been deleted
    os.environ.pop("KLAXON_API_KEY")
    settings.cache_clear()
    with lambda_client() as client:
        assert client.http.get("/incidents", headers={"x-api-key": ""}).status_code == 401
        assert client.http.get("/incidents").status_code == 401


def test_unreadable_parameter_store_fails_the_cold_start(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: SSM unreachable
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(SecretsUnavailable, match=prefix):
        load_secrets()


def test_without_a_prefix_nothing_is_fetched_and_local_defaults_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.SECRETS_PREFIX_VAR, raising=False)
    monkeypatch.delenv("KLAXON_API_KEY", raising=False)
    settings.cache_clear()
    assert load_secrets() == []
    assert settings().api_key == Settings.api_key
    settings.cache_clear()
