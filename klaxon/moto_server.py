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

    python -m klaxon.moto_server -p PORT   (always binds 127.0.0.1)
"""

from __future__ import annotations

import argparse
import copy
import os
import threading
from collections.abc import Iterable
from typing import Any

from moto.core.model_instances import reset_model_data
from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_DYNAMODB_LOCK = threading.Lock()
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
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
