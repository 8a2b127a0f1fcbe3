"""Remove from the staged Lambda package what Klaxon never loads, so it stays well inside
Lambda's 250 MB unzipped limit and uploads fast.

Every rule says why it is safe; tests/infra/test_package.py imports the pruned package in a fresh,
isolated interpreter and exercises the SDK paths Klaxon uses (DynamoDB, SQS, SSM clients; Twilio's
Messages API), so a rule that removes something needed fails the suite, not a deployment.

    python infra/prune.py <stage-dir>/vendor
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# Top-level distributions pulled in only by code paths Klaxon does not use.
DROP_TOP_LEVEL: dict[str, str] = {
    "aiohttp": "twilio's asyncio client; Klaxon uses twilio's synchronous client",
    "aiohttp_retry": "twilio's asyncio client",
    "aiohappyeyeballs": "aiohttp dependency",
    "aiosignal": "aiohttp dependency",
    "frozenlist": "aiohttp dependency",
    "multidict": "aiohttp dependency",
    "propcache": "aiohttp dependency",
    "yarl": "aiohttp dependency",
    "attr": "aiohttp dependency (attrs)",
    "attrs": "aiohttp dependency",
}

# botocore ships the API models of ~400 services; Klaxon calls three, the X-Ray SDK one.
BOTOCORE_SERVICES_USED = {"dynamodb", "sqs", "ssm", "xray"}  # xray: the X-Ray SDK (Tracer) samples through it

# twilio ships generated clients for every Twilio product; Klaxon sends SMS through the 2010 API.
TWILIO_DOMAINS_USED = {"api"}


def _remove(path: Path) -> int:
    if not path.exists():
        return 0
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return size


def prune(vendor: Path) -> dict[str, int]:
    """Delete unused code from `vendor` (a pip --target tree); returns bytes removed per rule."""
    rules = ("dropped distributions", "botocore service models", "twilio domains", "tests")
    removed: dict[str, int] = dict.fromkeys(rules, 0)
    for name in DROP_TOP_LEVEL:
        removed["dropped distributions"] += _remove(vendor / name)
        for info in vendor.glob(f"{name}-*.dist-info"):
            removed["dropped distributions"] += _remove(info)
    data = vendor / "botocore" / "data"
    if data.is_dir():
        for service in data.iterdir():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES_USED:
                removed["botocore service models"] += _remove(service)
    rest = vendor / "twilio" / "rest"
    if rest.is_dir():
        for domain in rest.iterdir():
            if domain.is_dir() and domain.name not in TWILIO_DOMAINS_USED and domain.name != "__pycache__":
                removed["twilio domains"] += _remove(domain)
    for tests in list(vendor.glob("numpy/**/tests")):
        removed["tests"] += _remove(tests)
    return removed


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python infra/prune.py <vendor-dir>", file=sys.stderr)
        return 2
    removed = prune(Path(argv[0]))
    print("pruned: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in removed.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
