"""Cold import of the Lambda entry point, in fresh processes, beside a bare interpreter start.

    python -m bench.importtime [--runs 15]

Each run is a new `python -c "import app"` with the bytecode cache already written (as in a
package built with compileall); the baseline is `python -c "pass"` in the same run, so the
figure that matters is the difference, robust to a busy machine. The process load average is
printed too: on a loaded 2-core machine every figure inflates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time(code: str, runs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    _time("import app", 1)  # write the bytecode cache once
    bare, app = [], []
    for _ in range(args.runs):  # interleaved so load changes hit both alike
        bare += _time("pass", 1)
        app += _time("import app", 1)
    b, a = statistics.median(bare), statistics.median(app)
    print(f"interpreter start (python -c pass): median {b:.0f} ms")
    print(f"python -c 'import app':             median {a:.0f} ms")
    print(
        f"import app itself:                  median {a - b:.0f} ms ({a / b:.1f}x a bare start); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
