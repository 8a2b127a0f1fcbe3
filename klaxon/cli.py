"""`klaxon` command line: the local stack, the demo, and operator tools."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def _run(args: argparse.Namespace) -> int:
    from klaxon.stack import PortInUse, running

    http_port = int(os.environ.get("KLAXON_PORT", "8000"))
    moto_port = int(os.environ.get("KLAXON_MOTO_PORT", "5005"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with running(moto_port=moto_port, http_port=http_port) as stack:
            print(f"Klaxon local stack is up.\n  routes:  {stack.base_url}  (try {stack.base_url}/health)")
            print(f"  moto:    http://127.0.0.1:{moto_port}  (DynamoDB + SQS)")
            print(f"  queue:   {stack.queue_url}\n  poller and scheduler running. Ctrl-C stops everything.")
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            print("\nstopping ...")
    except PortInUse as exc:
        print(f"klaxon run: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace) -> int:
    from klaxon.demo import main as demo_main

    return demo_main(speed=args.speed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="klaxon", description="Klaxon crisis alerting: local tools")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack (moto, routes, poller, scheduler)")
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="replay a mention stream with a crisis through the local stack")
    demo.add_argument("--speed", type=float, default=0.0, help="seconds to pause per simulated minute (0 = fast)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
