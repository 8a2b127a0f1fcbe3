"""moto's server, with DynamoDB requests applied one at a time, as DynamoDB applies them atomically.

moto serves each request on its own thread and its DynamoDB backend takes no locks, so two
concurrent conditional writes or transactions can both pass their conditions: something real
DynamoDB never allows, and exactly what Klaxon's invariants rest on (one open incident per
brand and playbook, one claim per mention). Serialising DynamoDB calls restores those
semantics; SQS calls stay concurrent so long polls never block the tables.

    python -m klaxon.moto_server -p PORT   (always binds 127.0.0.1)
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_DYNAMODB_LOCK = threading.Lock()


def serialised(app: Any) -> Any:
    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
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
