"""Smoke test of bench/load.py: its whole path (signed webhooks over HTTP from a sender process, ingest
pollers, the counters API, the burst and the ceiling) on a handful of mentions, in its own interpreter
and its own local stack, so the bench cannot rot between the runs that produce its figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_load_bench_smoke_counts_every_accepted_mention_once() -> None:
    # A clean environment: the session's moto endpoint, table prefix or Twilio settings must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLAXON_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert "lost 0, doubled 0" in out and "0 still queued, 0 in the DLQ" in out
    assert "mentions/s" in out and "x the ceiling" in out and "drained" in out
