"""The light AWS client signs as botocore does, resolves endpoints like it, and retries what botocore would."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from chalicelib import awsjson


@pytest.mark.parametrize(
    ("url", "service", "token"),
    [
        ("https://sqs.eu-west-1.amazonaws.com", "sqs", None),
        ("https://dynamodb.eu-west-1.amazonaws.com", "dynamodb", "session-token/with+chars=="),
        ("http://127.0.0.1:5123", "ssm", "tok"),
        ("https://example.internal:8443/base", "sqs", None),
    ],
)
def test_signature_matches_botocore_byte_for_byte(url: str, service: str, token: str | None) -> None:
    body = json.dumps({"QueueUrl": "https://q", "Entries": [{"Id": "0", "MessageBody": "שלום  \u00e9"}]}).encode()
    target, content_type = awsjson.SERVICES[service]
    headers = {"Content-Type": content_type, "X-Amz-Target": f"{target}.SomeOperation"}
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(
        BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), service, "eu-west-1"
    ).add_auth(request)
    stamp = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    ours = awsjson.sign(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        service=service,
        region="eu-west-1",
        creds=awsjson.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
        now=stamp,
    )
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


def test_endpoint_follows_botocores_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    assert awsjson.endpoint("sqs", "il-central-1") == "https://sqs.il-central-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/")
    assert awsjson.endpoint("sqs", "il-central-1") == "http://127.0.0.1:9"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:10")
    assert awsjson.endpoint("sqs", "il-central-1") == "http://127.0.0.1:10"
    assert awsjson.endpoint("dynamodb", "il-central-1") == "http://127.0.0.1:9"


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next (status, body) of the server's script and records the request."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        server: Any = self.server
        length = int(self.headers.get("Content-Length", "0"))
        server.seen.append((dict(self.headers), self.rfile.read(length)))
        status, body = server.script.pop(0) if server.script else (200, {})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.script, server.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-1")
    monkeypatch.setattr(awsjson.time, "sleep", lambda _s: None)
    yield server
    server.shutdown()
    server.server_close()


def test_call_sends_a_signed_json_request_and_returns_the_answer(scripted: Any) -> None:
    scripted.script = [(200, {"QueueUrl": "http://q/1"})]
    assert awsjson.call("sqs", "GetQueueUrl", {"QueueName": "mentions"}, region="us-east-1") == {
        "QueueUrl": "http://q/1"
    }
    headers, body = scripted.seen[0]
    assert json.loads(body) == {"QueueName": "mentions"}
    assert headers["X-Amz-Target"] == "AmazonSQS.GetQueueUrl"
    assert headers["X-Amz-Security-Token"] == "token-1"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDLOCAL/")


def test_throttling_and_5xx_are_retried_then_succeed(scripted: Any) -> None:
    scripted.script = [
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "slow"}),
        (503, {"__type": "ServiceUnavailable"}),
        (200, {"Item": {}}),
    ]
    assert awsjson.call("dynamodb", "GetItem", {"TableName": "t"}, region="us-east-1") == {"Item": {}}
    assert len(scripted.seen) == 3


def test_retry_budget_is_three_attempts(scripted: Any) -> None:
    scripted.script = [(500, {"__type": "InternalFailure"})] * 5
    with pytest.raises(awsjson.AwsError) as caught:
        awsjson.call("ssm", "GetParametersByPath", {"Path": "/x"}, region="us-east-1")
    assert caught.value.code == "InternalFailure" and caught.value.status == 500
    assert len(scripted.seen) == awsjson.MAX_ATTEMPTS


def test_client_errors_are_raised_at_once_with_their_code(scripted: Any) -> None:
    scripted.script = [
        (400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "no table"})
    ]
    with pytest.raises(awsjson.AwsError) as caught:
        awsjson.call("dynamodb", "PutItem", {"TableName": "t"}, region="us-east-1")
    assert (caught.value.code, caught.value.message) == ("ResourceNotFoundException", "no table")
    assert len(scripted.seen) == 1


def test_an_unreachable_endpoint_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    monkeypatch.setattr(awsjson.time, "sleep", lambda _s: None)
    with pytest.raises(awsjson.AwsError) as caught:
        awsjson.call("sqs", "GetQueueUrl", {"QueueName": "q"}, region="us-east-1")
    assert caught.value.code == "ConnectionError"


def test_a_deadline_stops_the_retries_in_time(scripted: Any) -> None:
    import time

    scripted.script = [(503, {"__type": "ServiceUnavailable"})] * 5
    with pytest.raises(awsjson.AwsError):
        awsjson.call("sqs", "SendMessageBatch", {}, region="us-east-1", deadline=time.monotonic() - 1)
    assert scripted.seen == []  # no time left: not even one attempt
    with pytest.raises(awsjson.AwsError) as caught:
        awsjson.call("sqs", "SendMessageBatch", {}, region="us-east-1", deadline=time.monotonic() + 30)
    assert caught.value.code == "ServiceUnavailable" and len(scripted.seen) == awsjson.MAX_ATTEMPTS


def test_a_slow_answer_is_cut_off_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
        start = time.monotonic()
        with pytest.raises(awsjson.AwsError):
            awsjson.call("sqs", "GetQueueUrl", {"QueueName": "q"}, region="us-east-1", deadline=start + 0.6)
        assert time.monotonic() - start < 2.0  # not 3 x the 5 s read timeout
    finally:
        listener.close()
