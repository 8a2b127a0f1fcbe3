"""moto's server, with DynamoDB requests applied one at a time, as DynamoDB applies them atomically.

moto serves each request on its own thread and its DynamoDB backend takes no locks, so two
concurrent conditional writes or transactions can both pass their conditions: something real
DynamoDB never allows, and exactly what Klaxon's invariants rest on (one open incident per
brand and playbook, one claim per mention). Serialising DynamoDB calls restores those
semantics; SQS calls stay concurrent so long polls never block the tables.

moto also keeps a reference to every model object it ever created (every DynamoDB item version,
every SQS message) for its dashboard, so a long benchmark grows the server by gigabytes (6 GB
after 3,000 incidents). Those references are dropped every `FORGET_EVERY` requests with moto's
own `reset_model_data()`; the data the backends hold is untouched.

moto's `TransactWriteItems` deep-copies every table a transaction touches, once per item in it, to
roll back on failure: O(items x table size) per transaction, so a table of a few thousand items made
each transaction cost tens of milliseconds and a demo's triage writes (one transaction per post)
took minutes. `cheap_transaction_rollback()` keeps the same all-or-nothing behaviour by saving only
the items the transaction names (before any of it runs) and putting exactly those back on failure.

moto's SQS queue rebuilds the list of visible messages (two clock reads per message) for every
receive and for every long-poll wake-up, which every send triggers, and rebuilds the whole message
list for every delete: O(queue depth) per message, so a 20,000-message burst slowed to a crawl.
`quicker_sqs()` keeps the semantics (same messages, same order, same visibility rules) and makes
those paths stop at the first match: the visible messages are produced lazily with one clock read,
"is any visible?" stops at the first one, and a delete finds its message by position.

Every request also paid for two look-ups that never change while the server runs: routing listed
moto's package directory (`os.listdir` plus a `stat` per entry, ~110 system calls) to ask "is this
host a moto module name?", and each response class was introspected with `inspect.getmembers` to
find its action methods. `cheaper_dispatch()` computes both once (bench/load.py: moto's CPU per
request roughly halved).

    python -m klaxon.moto_server -p PORT   (always binds 127.0.0.1)
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from moto.core.model_instances import reset_model_data
from moto.core.utils import unix_time_millis
from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_DYNAMODB_LOCK = threading.Lock()
_SENDING = threading.local()
FORGET_EVERY = 500


def cheap_transaction_rollback() -> None:
    """Replace moto's whole-table rollback copies with copies of the named items (module docstring).
    Safe because DynamoDB requests are serialised (`serialised`): nothing else writes mid-transaction."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend, DynamoType, Table

    if getattr(DynamoDBBackend.transact_write_items, "klaxon_patched", False):
        return
    moto_transact = DynamoDBBackend.transact_write_items

    class TablesByReference:
        """`copy` as moto's backend module sees it: tables are not copied (we save their items)."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = TablesByReference  # type: ignore[attr-defined,assignment]

    def saved_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
        saved = []
        for entry in transact_items:
            try:
                op = next(iter(entry.values()))
                table = backend.get_table(op["TableName"])
                key = op.get("Key") or op["Item"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                current = table.get_item(hash_value, range_value)
            except Exception:  # noqa: BLE001 - a malformed item: moto's own code raises the right error
                continue
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
        return saved

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = saved_items(self, transact_items)
        try:
            moto_transact(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if range_value is None:
                    table.items.pop(hash_value, None)
                    if item is not None:
                        table.items[hash_value] = item
                else:
                    table.items[hash_value].pop(range_value, None)
                    if item is not None:
                        table.items[hash_value][range_value] = item
            raise

    transact_write_items.klaxon_patched = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


class VisibleMessages:
    """moto's `Queue.messages` (visible, not delayed, in order), produced on demand: receives stop
    after a batch, long-poll checks after the first visible message."""

    def __init__(self, messages: list[Any]) -> None:
        self._messages = messages  # the list object as it is now: deletes replace it, never mutate it
        self._now = unix_time_millis()  # moto's clock, read once

    def __iter__(self) -> Iterator[Any]:
        now = self._now
        return (m for m in self._messages if now > m.visible_at and not now < m.delayed_until)

    def __bool__(self) -> bool:
        return any(True for _ in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def quicker_sqs() -> None:
    """See the module docstring: the same queue behaviour without O(depth) work per message."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue, "klaxon_patched", False):
        return

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # deleting twice is allowed
        messages = self._messages
        for index, message in enumerate(messages):
            if message.had_receipt_handle(receipt_handle):
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                self._messages = messages[:index] + messages[index + 1 :]  # a new list, as moto does
                return
        raise ReceiptHandleIsInvalid()

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        # moto builds every queue attribute (three full scans of the queue) to read this one
        period = int(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > unix_time_millis() / 1000)

    def count(test: Any) -> property:
        def counted(self: Any) -> int:
            if getattr(_SENDING, "active", False):
                return 0  # see `send_message` below: nobody reads it
            now = unix_time_millis()  # one clock read per count, not two per message
            return sum(1 for m in self._messages if test(m, now))

        return property(counted)

    moto_send = SQSBackend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's send reads `queue.attributes` for one flag (ContentBasedDeduplication); building that
        # dict counts the whole queue three times, per message sent. The counts are not read there.
        _SENDING.active = True
        try:
            return moto_send(self, *args, **kwargs)
        finally:
            _SENDING.active = False

    Queue.messages = property(lambda self: VisibleMessages(self._messages))  # type: ignore[assignment]
    Queue.approximate_number_of_messages = count(  # type: ignore[assignment]
        lambda m, now: now > m.visible_at and not now < m.delayed_until
    )
    Queue.approximate_number_of_messages_delayed = count(lambda m, now: now < m.delayed_until)  # type: ignore[assignment]
    Queue.approximate_number_of_messages_not_visible = count(lambda m, now: not now > m.visible_at)  # type: ignore[assignment]
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    Queue.klaxon_patched = True  # type: ignore[attr-defined]


def cheaper_dispatch() -> None:
    """Compute once what moto's request routing recomputed on every request (see the module docstring)."""
    from moto import backends
    from moto.core import responses

    if getattr(backends, "klaxon_patched", False):
        return
    modules = tuple(backends.list_of_moto_modules())  # the installed package's directories: fixed
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    names_of = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    responses.method_names_from_class = lambda clazz: list(names_of(clazz))  # a copy: callers own their list
    backends.klaxon_patched = True  # type: ignore[attr-defined]


def serialised(app: Any) -> Any:
    requests = iter(range(1, 2**63))  # next() on a range iterator is atomic under the GIL

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if next(requests) % FORGET_EVERY == 0:
            reset_model_data()  # the dashboard's references only: see the module docstring
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _DYNAMODB_LOCK:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wsgi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    cheap_transaction_rollback()
    quicker_sqs()
    cheaper_dispatch()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
