"""Fuzzing stays on: every corpus input replays cleanly, and each target runs a bounded
atheris session in CI (a fixed number of inputs, a few seconds each).

`tests/fuzz/corpus/<target>/` holds the seeds and every input that once crashed a
target (`crash-*`): each is a regression case, replayed here on every run. The long
run is in tests/fuzz/README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
# Inputs per target in CI; with instrumentation each session takes a few seconds.
RUNS = {
    "envelope": 200_000,
    "model": 40_000,
    "bundle": 600,
    "tlog": 100_000,
    "decide": 10_000,
    "export": 1500,
}
MAX_SECONDS = 6


def _corpus(target: str) -> list[Path]:
    return sorted((CORPUS / target).glob("*"))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_corpus_input_is_handled(target: str) -> None:
    """Seeds and former crashes: only the documented errors come out."""
    files = _corpus(target)
    assert files, f"tests/fuzz/corpus/{target} is empty"
    for path in files:
        TARGETS[target].one_input(path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_short_fuzzing_session_finds_no_crash(target: str, tmp_path: Path) -> None:
    work = tmp_path / "corpus"
    work.mkdir()
    for i, seed in enumerate(TARGETS[target].seeds()):  # today's seeds, as the code stands
        (work / f"seed-{i}").write_bytes(seed)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            f"-runs={RUNS[target]}",
            f"-max_total_time={MAX_SECONDS}",
            "-max_len=20000",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            str(work),
            str(CORPUS / target),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    detail = result.stderr[-4000:]
    assert result.returncode == 0, (
        f"{target} crashed; add the input to tests/fuzz/corpus/{target}/ and fix it: "
        f"{[c.name for c in crashes]}\n{detail}"
    )
    assert not crashes
    assert "Done" in result.stderr, detail
