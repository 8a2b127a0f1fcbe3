"""Infrastructure tests: package the app once per session and inspect the generated templates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_SH = ROOT / "infra" / "package.sh"
WHEELS_UNAVAILABLE = 3  # infra/package.sh: the Lambda wheels could not be installed (no registry)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "infra: packages the app with `chalice package` (infra/package.sh)")


class Packaged:
    def __init__(self, out: Path, log: str, seconds: float) -> None:
        self.out, self.log, self.seconds = out, log, seconds
        self.sam_path = out / "sam" / "sam.json"
        self.sam: dict[str, Any] = json.loads(self.sam_path.read_text())
        tf = out / "terraform" / "chalice.tf.json"
        self.terraform: dict[str, Any] | None = json.loads(tf.read_text()) if tf.exists() else None

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.sam["Resources"].items() if v.get("Type") == type_}


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    if os.environ.get("KLAXON_SKIP_INFRA_TESTS"):
        pytest.skip("KLAXON_SKIP_INFRA_TESTS is set")
    if shutil.which("chalice", path=str(ROOT / ".venv" / "bin")) is None and shutil.which("chalice") is None:
        pytest.skip("chalice is not installed")
    out = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_CONFIG_FILE="/dev/null")
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(PACKAGE_SH), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    log = proc.stdout + proc.stderr
    if proc.returncode == WHEELS_UNAVAILABLE:
        pytest.skip(f"chalice package cannot run here: {log.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"infra/package.sh failed ({proc.returncode}):\n{log[-4000:]}"
    return Packaged(out, log, time.monotonic() - started)
