"""The packaged deployment (infra/package.sh): cfn-lint clean, least privilege, the ingest wiring, durable tables."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Packaged

pytestmark = pytest.mark.infra

TABLES = {
    "klaxon-prod-mentions": ([("pk", "HASH")], set()),
    "klaxon-prod-counters": ([("pk", "HASH"), ("minute", "RANGE")], set()),
    "klaxon-prod-incidents": ([("pk", "HASH"), ("sk", "RANGE")], {"open-incidents"}),
}
# AWS actions that accept no resource-level permission: `Resource: "*"` is the only form.
UNSCOPED_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(packaged: Packaged) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in packaged.resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in _as_list(policy["PolicyDocument"]["Statement"]):
                yield name, statement
    if packaged.terraform:
        for name, policy in packaged.terraform["resource"].get("aws_iam_role_policy", {}).items():
            for statement in _as_list(json.loads(policy["policy"])["Statement"]):
                yield f"terraform:{name}", statement


def test_cfn_lint_reports_no_errors(packaged: Packaged) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(packaged.sam_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in proc.stdout.splitlines() if ":E" in line]
    # cfn-lint exit codes are bit flags: 2 = errors, 4 = warnings, 8 = informational.
    assert not errors and not proc.returncode & 2, proc.stdout + proc.stderr


def test_no_wildcard_actions_and_resources_are_named(packaged: Packaged) -> None:
    statements = list(_statements(packaged))
    assert len(statements) >= 9, "expected one policy per function with several statements"
    for role, st in statements:
        assert st["Effect"] == "Allow", (role, st)
        actions = _as_list(st["Action"])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (role, action)
        if "*" in _as_list(st["Resource"]):
            assert set(actions) <= UNSCOPED_ACTIONS, (role, st)


def test_each_function_has_its_own_role(packaged: Packaged) -> None:
    functions = packaged.resources("AWS::Serverless::Function")
    assert set(functions) == {"APIHandler", "Ingest", "Sweeper", "Outbound"}
    roles = {json.dumps(f["Properties"]["Role"], sort_keys=True) for f in functions.values()}
    assert len(roles) == 4
    # The sweeper may only announce events (breaches) to the outbound queue: never touch mentions.
    sweeper_text = json.dumps(packaged.sam["Resources"]["SweeperRole"])
    assert "klaxon-prod-mentions" not in sweeper_text and "sqs:ReceiveMessage" not in sweeper_text
    assert "klaxon-prod-outbound" in sweeper_text
    # The outbound function delivers webhooks: no table access at all.
    outbound_text = json.dumps(packaged.sam["Resources"]["OutboundRole"])
    assert "dynamodb:" not in outbound_text and "klaxon-prod-mentions" not in outbound_text


@pytest.mark.parametrize(("function", "queue"), [("Ingest", "MentionsQueue"), ("Outbound", "OutboundQueue")])
def test_sqs_event_sources_report_batch_item_failures(packaged: Packaged, function: str, queue: str) -> None:
    events = packaged.sam["Resources"][function]["Properties"]["Events"]
    (source,) = [e for e in events.values() if e["Type"] == "SQS"]
    props = source["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    if function == "Ingest":  # up to 100 mentions gathered for at most a second (chalicelib/ingest/queue.py)
        assert props["BatchSize"] == 100 and props["MaximumBatchingWindowInSeconds"] == 1
    else:
        assert props["BatchSize"] == 10



def test_tables_match_the_models_with_ttl_and_pitr(packaged: Packaged) -> None:
    tables = {t["Properties"]["TableName"]: t for t in packaged.resources("AWS::DynamoDB::Table").values()}
    assert set(tables) == set(TABLES)
    for name, (keys, indexes) in TABLES.items():
        table = tables[name]
        props = table["Properties"]
        assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == keys, name
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}, name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert table["DeletionPolicy"] == "Retain"
        assert {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])} == indexes
    gsi = tables["klaxon-prod-incidents"]["Properties"]["GlobalSecondaryIndexes"][0]
    assert [(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]] == [
        ("open_shard", "HASH"),
        ("opened_at", "RANGE"),
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}


def test_queue_has_a_dead_letter_queue_after_five_receives(packaged: Packaged) -> None:
    queues = packaged.resources("AWS::SQS::Queue")
    main = queues["MentionsQueue"]["Properties"]
    # the prod stage's KLAXON_QUEUE_NAME (.chalice/config.json), so that stages can share an account
    assert main["QueueName"] == "klaxon-prod-mentions"
    ingest_role = json.dumps(packaged.sam["Resources"]["IngestRole"])
    assert "arn:aws:sqs:*:*:klaxon-prod-mentions" in ingest_role  # the role may read the queue it is fed from
    redrive = main["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["MentionsDeadLetterQueue", "Arn"]}
    assert "MentionsDeadLetterQueue" in queues
    # Lambda's guidance: visibility timeout at least six times the function timeout, plus the batching
    # window, so a message does not reappear while a (retried) invocation may still hold it.
    ingest = packaged.sam["Resources"]["Ingest"]["Properties"]
    (source,) = [e for e in ingest["Events"].values() if e["Type"] == "SQS"]
    window = source["Properties"]["MaximumBatchingWindowInSeconds"]
    assert main["VisibilityTimeout"] >= 6 * ingest["Timeout"] + window


def test_alarms_and_dashboard(packaged: Packaged) -> None:
    alarms = {a["Properties"]["MetricName"] for a in packaged.resources("AWS::CloudWatch::Alarm").values()}
    assert {"ApproximateNumberOfMessagesVisible", "Errors", "PagesFailed"} <= alarms
    assert packaged.resources("AWS::CloudWatch::Dashboard")


def test_secrets_are_ssm_names_not_values(packaged: Packaged) -> None:
    params = packaged.resources("AWS::SSM::Parameter")
    names = {p["Properties"]["Name"] for p in params.values()}
    for secret in ("X_CONSUMER_SECRET", "META_APP_SECRET", "WEBHOOK_SECRET", "TWILIO_AUTH_TOKEN", "LINK_SECRET"):
        assert f"/klaxon/prod/KLAXON_{secret}" in names
    for function in packaged.resources("AWS::Serverless::Function").values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["KLAXON_SECRETS_PARAMETER_PREFIX"] == "/klaxon/prod"
        assert not {k for k in env if "SECRET" in k and k != "KLAXON_SECRETS_PARAMETER_PREFIX"}
        assert not {k for k in env if "TOKEN" in k or k == "KLAXON_API_KEY"}


def test_package_ships_data_files_and_precompiled_bytecode(packaged: Packaged) -> None:
    with zipfile.ZipFile(packaged.out / "sam" / "deployment.zip") as zf:
        names = set(zf.namelist())
        header = zf.read("chalicelib/store/__pycache__/models.cpython-311.pyc")[:16]
    # PEP 552 flags: bit 0 hash-based, bit 1 check_source; unchecked-hash = 0b01 (unzip resets mtimes: ignored).
    assert int.from_bytes(header[4:8], "little") == 0b01
    for path in ("chalicelib/_data/config/brands.yaml", "chalicelib/_data/config/roster.yaml", "app.py"):
        assert path in names, path
    assert any(n.startswith("chalicelib/_data/playbooks/") and n.endswith(".yaml") for n in names)
    tag = "cpython-311"
    assert f"__pycache__/app.{tag}.pyc" in names
    assert f"chalicelib/store/__pycache__/models.{tag}.pyc" in names
    assert f"numpy/__pycache__/__init__.{tag}.pyc" in names


PRUNED_PACKAGE_SMOKE = """
import sys
sys.path.insert(0, sys.argv[1])
import app  # noqa: F401  (what Lambda's init does)
import botocore.session
session = botocore.session.get_session()
for service in ("dynamodb", "sqs", "ssm"):
    session.create_client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                          aws_access_key_id="x", aws_secret_access_key="x")
from twilio.rest import Client
messages = Client("AC" + "0" * 32, "token").messages
assert type(messages).__name__ == "MessageList", type(messages)
from chalicelib.sentiment import classify
assert classify(["terrible, I want a refund"])[0] in {"negative", "neutral", "positive"}
from chalicelib.ingest import signatures  # noqa: F401  (standardwebhooks)
leaked = [m.__file__ for m in sys.modules.values()
          if getattr(m, "__file__", None) and "site-packages" in m.__file__]
assert not leaked, leaked
print("ok")
"""


def test_pruned_package_still_reaches_every_sdk_path_klaxon_uses(packaged: Packaged) -> None:
    """infra/prune.py removes unused SDK code; the package alone must still do what Klaxon does."""
    unzipped = packaged.out / "unzipped"
    assert not (unzipped / "aiohttp").exists() and not (unzipped / "botocore" / "data" / "ec2").exists()
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", PRUNED_PACKAGE_SMOKE, str(unzipped)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=unzipped,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr[-3000:]


def test_package_fits_lambda_limits_with_room_to_grow(packaged: Packaged) -> None:
    unzipped = packaged.out / "unzipped"
    size = sum(p.stat().st_size for p in unzipped.rglob("*") if p.is_file())
    zipped = (packaged.out / "sam" / "deployment.zip").stat().st_size
    assert size < 150 * 2**20, f"unzipped package {size / 2**20:.0f} MiB (Lambda's limit is 250 MiB)"
    assert zipped < 50 * 2**20, f"zipped package {zipped / 2**20:.0f} MiB (direct-upload limit 50 MiB)"


def test_each_stage_has_its_own_queue_and_its_policies_name_it() -> None:
    """dev and prod can share an account and region: no queue name in common, and each stage's IAM
    policies name that stage's queues only."""
    root = Path(__file__).resolve().parents[2]
    stages = json.loads((root / ".chalice" / "config.json").read_text())["stages"]
    names = {stage: cfg["environment_variables"]["KLAXON_QUEUE_NAME"] for stage, cfg in stages.items()}
    assert len(set(names.values())) == len(names), names
    for stage, queue in names.items():
        for policy in (root / ".chalice").glob(f"policy-{stage}-*.json"):
            text = policy.read_text()
            others = [q for s, q in names.items() if s != stage]
            assert not any(f":{q}\"" in text for q in others), (policy.name, others)
            if "sqs:ReceiveMessage" in text or "sqs:SendMessage" in text:
                assert f":{queue}\"" in text or "-outbound\"" in text, policy.name
