"""The embedded local stack: moto (DynamoDB + SQS) on loopback, tables, queues, routes, poller.

Production code is unchanged locally: it reads `AWS_ENDPOINT_URL` like it would read any
endpoint, and the poller invokes the same handler functions Lambda would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DLQ_MAX_RECEIVES = 5
VISIBILITY_TIMEOUT = 30


class PortInUse(RuntimeError):
    pass


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {LOOPBACK}:{port} after {timeout:.0f}s")


def local_environment(moto_port: int) -> dict[str, str]:
    """Environment that points boto3/botocore/PynamoDB at the local moto server."""
    return {
        "AWS_ENDPOINT_URL": f"http://{LOOPBACK}:{moto_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Klaxon",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def start_moto(port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """moto's real HTTP server in its own process (its own GIL, like a real service)."""
    if not port_free(port):
        raise PortInUse(f"port {port} on {LOOPBACK} is taken; set KLAXON_MOTO_PORT to another port")
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "klaxon.moto_server", "-p", str(port)],
        stdout=out,
        stderr=out,
        env={**os.environ, "MOTO_CALL_RESET_API": "true"},
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5) -> None:
    """Terminate, then kill if it lingers (moto's werkzeug threads can outlive SIGTERM)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def ensure_queues(queue_name: str) -> tuple[str, str]:
    """Create the mention queue and its dead-letter queue (idempotent); returns their URLs."""
    from chalicelib.ingest.queue import sqs_client

    client = sqs_client()
    dlq_url = client.create_queue(QueueName=f"{queue_name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = client.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(DLQ_MAX_RECEIVES)}),
        },
    )["QueueUrl"]
    return url, dlq_url


def ensure_outbound_queues() -> tuple[str, str]:
    """The outbound webhook queue and its DLQ (idempotent): settings().outbound_queue_name, maxReceiveCount
    from settings (8 by default: the retry budget of chalicelib/outbound)."""
    from chalicelib.config import settings
    from chalicelib.ingest.queue import sqs_client

    cfg, client = settings(), sqs_client()
    dlq_url = client.create_queue(
        QueueName=f"{cfg.outbound_queue_name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(cfg.outbound_max_receives)}
    url = client.create_queue(
        QueueName=cfg.outbound_queue_name,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    return url, dlq_url


def provision() -> tuple[str, str]:
    """Tables and queues for the current environment's endpoint (returns the mention queue and its DLQ)."""
    from chalicelib.config import settings
    from chalicelib.store.tables import ensure_tables

    settings.cache_clear()
    ensure_tables()
    ensure_outbound_queues()
    return ensure_queues(settings().queue_name)


@dataclass
class Stack:
    """A running local stack; `stop()` ends everything it started."""

    moto_port: int
    http_port: int | None
    queue_url: str
    dlq_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    servers: list[Any] = field(default_factory=list)
    twilio: Any = None  # the local fake Twilio, unless real KLAXON_TWILIO_* credentials are set

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def stop(self) -> None:
        self.stopping.set()
        for server in self.servers:
            server.shutdown()
        for thread in self.threads:
            thread.join(timeout=5)
        for proc in self.processes:
            stop_process(proc)


def _serve_routes(stack: Stack, port: int, quiet: bool) -> None:
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalDevServer, create_local_server

    if quiet:  # the demo prints its own story; per-request access lines would drown it
        ChaliceRequestHandler.log_message = lambda *args, **kwargs: None  # type: ignore[method-assign]
    # The handler writes headers and body separately: with Nagle on, a keep-alive client's delayed
    # ACK stalls every answer ~40 ms (bench/load.py: webhook p50 60 ms -> 20 ms). API Gateway has no such stall.
    ChaliceRequestHandler.disable_nagle_algorithm = True

    import app as chalice_app

    config = Config(chalice_stage=LOCAL_STAGE)
    if isinstance(chalice_app.app, CustomLocalChalice):
        # create_local_server re-bases the app's class; a second stack in one process must not redo it.
        server = LocalDevServer(chalice_app.app, config, LOOPBACK, port)
    else:
        server = create_local_server(chalice_app.app, config, LOOPBACK, port)
    server.server.daemon_threads = True
    stack.servers.append(server.server)
    thread = threading.Thread(target=server.server.serve_forever, name="routes", daemon=True)
    thread.start()
    stack.threads.append(thread)


LOCAL_STAGE = "local"


def lambda_client() -> Any:
    """chalice.test.Client for the local stage: the deployment stages in .chalice/config.json set
    AWS paths and table prefixes that must not leak into local runs and tests."""
    from chalice.test import Client

    import app as chalice_app

    return Client(chalice_app.app, stage_name=LOCAL_STAGE)


def _poll(stack: Stack, queue_url: str | None = None, function: str = "ingest") -> None:
    """An SQS event source mapping: long-poll `queue_url` and invoke `function` with each batch."""
    from chalicelib.ingest.queue import INGEST_BATCH_SIZE, INGEST_BATCH_WINDOW_SECONDS, sqs_client
    from klaxon.lambda_sqs import DeliveryStats, deliver, gather, queue_arn

    # The event source mappings' settings (app.py): ingest gathers up to 100 within a second.
    batch_size, window = (INGEST_BATCH_SIZE, INGEST_BATCH_WINDOW_SECONDS) if function == "ingest" else (10, 0)
    url = queue_url or stack.queue_url
    sqs = sqs_client()
    arn = queue_arn(sqs, url)
    stats = DeliveryStats()
    with lambda_client() as chalice_client:
        while not stack.stopping.is_set():
            try:
                messages = gather(sqs, url, batch_size=batch_size, window_seconds=window)
                deliver(sqs, url, arn, lambda m: chalice_client.lambda_.invoke(function, m), messages, stats)
            except Exception as exc:  # keep polling through a moto hiccup, like Lambda would
                print(f"poller ({function}): {exc}", file=sys.stderr)
                time.sleep(1)


def _poll_outbound(stack: Stack) -> None:
    """The outbound webhook queue's event source mapping (deliveries to subscribers)."""
    outbound_url, _ = ensure_outbound_queues()
    _poll(stack, outbound_url, "outbound")


def _schedule(stack: Stack) -> None:
    """Call each `@app.schedule` handler at its rate, as EventBridge would."""
    import app as chalice_app

    jobs = []
    for source in chalice_app.app.event_sources:
        expression = getattr(source, "schedule_expression", None)
        if expression is None:
            continue
        text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
        seconds = _rate_seconds(text)
        if seconds:
            jobs.append([source.name, seconds, time.monotonic() + seconds])
    with lambda_client() as client:  # a Lambda context for the handlers' middleware, as EventBridge's call has
        while jobs and not stack.stopping.wait(0.5):
            for job in jobs:
                name, seconds, due = job
                if time.monotonic() >= due:
                    job[2] = due + seconds
                    try:
                        client.lambda_.invoke(name, scheduled_event(name))
                    except Exception as exc:
                        print(f"scheduler: {name}: {exc}", file=sys.stderr)


def scheduled_event(rule: str) -> dict[str, Any]:
    """The EventBridge event a scheduled Lambda receives (Chalice builds its CloudWatchEvent from it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": os.environ.get("AWS_REGION", "us-east-1"),
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
        "detail": {},
    }


def _rate_seconds(expression: str) -> int | None:
    if not expression.startswith("rate(") or not expression.endswith(")"):
        return None
    amount, _, unit = expression[5:-1].partition(" ")
    scale = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    return int(amount) * scale.get(unit, 0) or None


@contextmanager
def bench_moto(prefix: str) -> Iterator[int]:
    """A moto server of the benchmark's own, the environment pointed at it, its own table prefix and
    queue name; yields the port and stops the server on exit."""
    port = free_port()
    proc = start_moto(port)
    os.environ.update(local_environment(port))
    os.environ["KLAXON_TABLE_PREFIX"] = prefix
    os.environ["KLAXON_QUEUE_NAME"] = f"{prefix}-mentions"
    try:
        yield port
    finally:
        stop_process(proc)


@contextmanager
def running(
    *,
    moto_port: int | None = None,
    http_port: int | None = None,
    poller: bool = True,
    log: Path | None = None,
    quiet: bool = False,
) -> Iterator[Stack]:
    """Start moto, provision, serve routes (if `http_port`), run the poller and scheduler."""
    moto_port = moto_port or free_port()
    if http_port is not None and not port_free(http_port):
        raise PortInUse(f"port {http_port} on {LOOPBACK} is taken; set KLAXON_PORT to another port")
    proc = start_moto(moto_port, log)
    os.environ.update(local_environment(moto_port))
    stack = Stack(moto_port=moto_port, http_port=http_port, queue_url="", dlq_url="", processes=[proc])
    fake_twilio = None
    try:
        if not os.environ.get("KLAXON_TWILIO_ACCOUNT_SID"):
            from klaxon.fake_twilio import running_fake_twilio

            fake_twilio = running_fake_twilio()
            stack.twilio = fake_twilio.__enter__()
            os.environ.update(stack.twilio.environment())
        if http_port is not None:
            os.environ.setdefault("KLAXON_PUBLIC_URL", f"http://{LOOPBACK}:{http_port}")
        stack.queue_url, stack.dlq_url = provision()
        if http_port is not None:
            _serve_routes(stack, http_port, quiet)
        if poller:
            for target in (_poll, _poll_outbound, _schedule):
                thread = threading.Thread(target=target, args=(stack,), name=target.__name__, daemon=True)
                thread.start()
                stack.threads.append(thread)
        yield stack
    finally:
        stack.stop()
        if fake_twilio is not None:
            fake_twilio.__exit__(None, None, None)
