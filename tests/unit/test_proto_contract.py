"""The API contract: committed generated code matches proto/ and buf lints it clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
GENERATED = ROOT / "clients" / "python" / "eucgate_client" / "v1"
sys.path.insert(0, str(ROOT / "clients" / "python"))
import gen_proto  # noqa: E402


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    gen_proto.generate(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in GENERATED.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "run: python clients/python/gen_proto.py"
    for name, text in fresh.items():
        assert committed[name] == text, f"{name} drifted; run: python clients/python/gen_proto.py"


def _buf() -> str:
    found = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if found is None:
        pytest.fail("buf not installed: it comes with the dev extra (buf-bin)")
    return found


def test_buf_lint_clean() -> None:
    result = subprocess.run(
        [_buf(), "lint", str(PROTO)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
