"""Precompile a Lambda deployment zip: unzip, `compileall --invalidation-mode unchecked-hash`,
add the .pyc files to the zip.

Lambda's /var/task is read-only, so without shipped .pyc every cold start compiles every module
it imports. unchecked-hash .pyc are used without checking source mtimes (zip extraction resets
them). Prints zipped and unzipped sizes. Usage: python infra/precompile.py <deployment.zip> <unzip-dir>
"""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import sys
import zipfile
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def precompile(zip_path: Path, unzip_dir: Path) -> dict[str, int]:
    if unzip_dir.exists():
        shutil.rmtree(unzip_dir)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(unzip_dir)
    source_size = _tree_size(unzip_dir)
    ok = compileall.compile_dir(
        str(unzip_dir),
        quiet=1,
        workers=min(2, os.cpu_count() or 1),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        # Some vendored files are templates or py2 leftovers; compileall reports them, the rest is compiled.
        print("precompile: some files did not compile (listed above); they are imported from source", file=sys.stderr)
    # Append only the new .pyc entries: the sources stay as chalice compressed them (much faster than a rezip).
    with zipfile.ZipFile(zip_path) as zf:
        present = set(zf.namelist())
    added = sorted(p for p in unzip_dir.rglob("*.pyc") if p.relative_to(unzip_dir).as_posix() not in present)
    with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for path in added:
            info = zipfile.ZipInfo(path.relative_to(unzip_dir).as_posix(), FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            out.writestr(info, path.read_bytes())
    sizes = {"unzipped_source": source_size, "unzipped": _tree_size(unzip_dir), "zipped": zip_path.stat().st_size}
    print(
        f"deployment.zip: zipped {sizes['zipped'] / 2**20:.1f} MiB, unzipped {sizes['unzipped'] / 2**20:.1f} MiB "
        f"(without .pyc {sizes['unzipped_source'] / 2**20:.1f} MiB; Lambda: 250 MiB unzipped, zips over 50 MiB via S3)"
    )
    return sizes


if __name__ == "__main__":
    precompile(Path(sys.argv[1]), Path(sys.argv[2]))
