"""bench.memory runs end to end on a tiny store: fill, serve, submit, read, RSS."""

from __future__ import annotations

from pathlib import Path

from bench.memory import measure, render


def test_memory_bench_reads_the_server_rss_at_every_step(tmp_path: Path) -> None:
    run = measure(200, submits=10, stream=50, proofs=5, workdir=tmp_path)
    assert run.entries == 200
    assert len(run.steps) == 4
    assert all(mb > 10 for mb in run.steps.values())
    assert run.peak_mb >= max(run.steps.values())
    text = render([run, run], "python -m bench.memory --entries 200")
    assert "| peak (VmHWM) |" in text
