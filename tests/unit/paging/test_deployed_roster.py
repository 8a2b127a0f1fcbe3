"""`deployed_roster()`: validated once per container, again only when the file changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from chalicelib.paging import service as paging
from chalicelib.playbooks.loader import default_roster_file


def test_the_roster_is_parsed_once_and_again_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "roster.yaml"
    shutil.copy(default_roster_file(), copy)
    monkeypatch.setenv("KLAXON_ROSTER_FILE", str(copy))
    first = paging.deployed_roster()
    assert paging.deployed_roster() is first  # no second parse
    text = copy.read_text()
    assert "name: Sarah Whitfield" in text
    copy.write_text(text.replace("name: Sarah Whitfield", "name: Sarah Whitfield-Cohen"))
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime even on coarse clocks
    changed = paging.deployed_roster()
    assert changed is not first
    assert next(p for p in changed.people if p.id == "sarah-whitfield").name == "Sarah Whitfield-Cohen"
