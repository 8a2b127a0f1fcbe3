"""The local moto server keeps DynamoDB's all-or-nothing transactions with item-level rollback
(klaxon.moto_server.cheap_transaction_rollback), and a transaction's cost does not grow with the table."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def table(moto_server: int) -> Iterator[tuple[Any, str]]:
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{moto_server}", region_name="us-east-1")
    name = f"tx{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client, name
    client.delete_table(TableName=name)


def _get(client: Any, name: str, sk: str) -> dict[str, Any] | None:
    return client.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": sk}}, ConsistentRead=True).get("Item")


def test_failed_transaction_changes_nothing(table: tuple[Any, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"S": "old"}, "n": {"N": "1"}})
    items = [
        {"Put": {"TableName": name, "Item": {"pk": {"S": "p"}, "sk": {"S": "new"}}}},
        {
            "Update": {
                "TableName": name,
                "Key": {"pk": {"S": "p"}, "sk": {"S": "old"}},
                "UpdateExpression": "ADD n :one SET extra = :x",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":x": {"S": "x"}},
            }
        },
        {"Delete": {"TableName": name, "Key": {"pk": {"S": "p"}, "sk": {"S": "old2"}}}},
        {
            "Put": {
                "TableName": name,
                "Item": {"pk": {"S": "p"}, "sk": {"S": "guarded"}},
                "ConditionExpression": "attribute_exists(pk)",  # fails: the item does not exist
            }
        },
    ]
    with pytest.raises(ClientError) as caught:
        client.transact_write_items(TransactItems=items)
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _get(client, name, "new") is None
    assert _get(client, name, "old") == {"pk": {"S": "p"}, "sk": {"S": "old"}, "n": {"N": "1"}}
    assert _get(client, name, "guarded") is None

    items[-1]["Put"].pop("ConditionExpression")
    client.transact_write_items(TransactItems=items)
    assert _get(client, name, "new") is not None
    assert _get(client, name, "old") == {"pk": {"S": "p"}, "sk": {"S": "old"}, "n": {"N": "2"}, "extra": {"S": "x"}}


def test_transaction_cost_does_not_grow_with_the_table(table: tuple[Any, str]) -> None:
    """moto alone deep-copies the table per transaction item: 3,000 items made each 4-item transaction
    about 40x slower than on an empty table. Compared with itself, in one run (no absolute time)."""
    client, name = table

    def timed_transactions(tag: str) -> float:
        started = time.perf_counter()
        for i in range(20):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": name, "Item": {"pk": {"S": "p"}, "sk": {"S": f"{tag}{i}-{j}"}}}}
                    for j in range(4)
                ]
            )
        return time.perf_counter() - started

    small = min(timed_transactions(f"a{r}") for r in range(2))
    for start in range(0, 3000, 25):
        client.batch_write_item(
            RequestItems={
                name: [
                    {"PutRequest": {"Item": {"pk": {"S": "bulk"}, "sk": {"S": f"{n:05d}"}, "pad": {"S": "x" * 200}}}}
                    for n in range(start, start + 25)
                ]
            }
        )
    large = min(timed_transactions(f"b{r}") for r in range(2))
    assert large < small * 4, (small, large)


def test_queue_semantics_and_cost_at_depth(moto_server: int) -> None:
    """klaxon.moto_server.quicker_sqs: receive, visibility, delete (twice), DLQ after maxReceiveCount and
    the approximate counts behave as SQS does; and a receive + delete at a depth of 3,000 costs about
    what it costs at 100 (moto alone scans the whole queue, several times, per message)."""
    import json

    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{moto_server}", region_name="us-east-1")
    name = f"q{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})},
    )["QueueUrl"]

    def send(count: int, tag: str) -> None:
        for start in range(0, count, 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": f"{tag}{start + i}"} for i in range(min(10, count - start))],
            )

    send(3, "a")
    sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=30)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert [m["Body"] for m in first] == ["a0", "a1", "a2"]  # in order; the delayed one not yet
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None  # all in flight
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])  # again: allowed
    with pytest.raises(ClientError):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[1]["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in again] == ["a1"]  # its second receive
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None  # a1 -> DLQ
    moved = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == ["a1"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessagesNotVisible"], counts["ApproximateNumberOfMessagesDelayed"]) == ("1", "1")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[2]["ReceiptHandle"])

    def timed(step: Any) -> float:
        started = time.perf_counter()
        step()
        return time.perf_counter() - started

    def receive_and_delete(count: int) -> None:
        while count > 0:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            )
            count -= len(got)

    # at a depth of about 0, then about 3,000: 200 messages sent, then 200 received and deleted
    shallow_send = min(timed(lambda: send(200, "s")) for _ in range(2))
    shallow_drain = timed(lambda: receive_and_delete(400))
    send(3000, "d")
    # best of two for every figure: one sample on a shared 2-core machine can be a scheduler stall
    deep_send = min(timed(lambda: send(200, "x")) for _ in range(2))
    deep_drain = min(timed(lambda: receive_and_delete(200)) for _ in range(2))
    assert deep_send < shallow_send * 3, (shallow_send, deep_send)
    assert deep_drain < shallow_drain / 2 * 3, (shallow_drain / 2, deep_drain)
