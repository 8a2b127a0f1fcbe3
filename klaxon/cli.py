"""`klaxon` command line: the local stack, the demo, and operator tools."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.playbooks.loader import ValidationIssue


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
            print(f"  queue:   {stack.queue_url}")
            if stack.twilio is not None:
                print(f"  twilio:  {stack.twilio.base_url}  (local fake; set KLAXON_TWILIO_* for real Twilio)")
            print("  poller and scheduler running. Ctrl-C stops everything.")
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


def _playbooks_validate(args: argparse.Namespace) -> int:
    from chalicelib.playbooks.loader import validate_all

    report = validate_all(args.directory, args.roster, args.brands, display=True)
    issues = list(report.issues) + _triage_issues(args.brands)
    for issue in issues:
        print(issue)
    checked = _plural(report.playbooks, "playbook")
    if issues:
        errors, files = _plural(len(issues), "error"), _plural(len({i.file for i in issues}), "file")
        print(f"{errors} in {files} ({checked} checked)")
        return 1
    print(f"OK: {checked}, roster and brands valid")  # and the triage rules, when there is a file
    return 0


def _triage_issues(brands: Path | None) -> list[ValidationIssue]:
    """config/triage.yaml (or KLAXON_TRIAGE_FILE), checked against the brand ids (docs/triage.md)."""
    from chalicelib.playbooks.loader import check_brands, default_brands_file, display_path
    from chalicelib.triage.config import DEFAULT_FILE, check_triage, triage_file

    path = triage_file()
    if path == DEFAULT_FILE and not path.exists():
        return []
    brand_ids, _ = check_brands(Path(brands or default_brands_file()))  # brand problems are reported above
    return check_triage(path, brand_ids, display_path(path))[1]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _playbooks_schema(args: argparse.Namespace) -> int:
    from chalicelib.playbooks.loader import default_playbooks_dir, display_path
    from chalicelib.playbooks.schema import write_schema

    path = args.output or default_playbooks_dir() / "schema.json"
    print(f"{display_path(path)}: {'written' if write_schema(path) else 'already up to date'}")
    return 0


def _add_playbooks(sub: argparse._SubParsersAction) -> None:
    playbooks = sub.add_parser("playbooks", help="validate crisis playbooks and the roster; export their JSON Schema")
    actions = playbooks.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="check playbooks, config/roster.yaml and brand ids")
    validate.add_argument("directory", nargs="?", type=Path, help="playbooks directory (default: playbooks/)")
    validate.add_argument("--roster", type=Path, help="roster file (default: KLAXON_ROSTER_FILE or config/roster.yaml)")
    validate.add_argument("--brands", type=Path, help="brands file (default: KLAXON_BRANDS_FILE or config/brands.yaml)")
    validate.set_defaults(func=_playbooks_validate)
    schema = actions.add_parser("schema", help="regenerate playbooks/schema.json")
    schema.add_argument("--output", type=Path, help="where to write (default: playbooks/schema.json)")
    schema.set_defaults(func=_playbooks_schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="klaxon", description="Klaxon crisis alerting: local tools")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack (moto, routes, poller, scheduler)")
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="replay a mention stream with a crisis through the local stack")
    demo.add_argument("--speed", type=float, default=0.0, help="seconds to pause per simulated minute (0 = fast)")
    demo.set_defaults(func=_demo)
    _add_playbooks(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
