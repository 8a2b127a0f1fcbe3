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

    python -m klaxon.moto_server -p PORT   (always binds 127.0.0.1)
"""

from __future__ import annotations

import argparse
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
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
