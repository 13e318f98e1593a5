"""The repository stands alone: no file points at design notes kept outside it. What the
code, docs and sample data need from those notes they say in their own words."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Spelt so that this file does not match itself.
OUTSIDE = re.compile(rb"(DESIGN|DOMAIN|STYLE)[.]md|[.][.]" + b"/" + b"shared")


def test_no_file_points_outside_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    pointing = [
        name.decode()
        for name in listed
        if name and OUTSIDE.search((ROOT / name.decode()).read_bytes())
    ]
    assert pointing == []
