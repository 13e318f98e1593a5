"""bench.replay measures what it says: the synthetic log verifies and every entry replays
to its recorded bytes (measure() stops otherwise), in worker processes as in the bench."""

from __future__ import annotations

from pathlib import Path

from bench import replay


def test_replay_bench_runs_and_reports_the_ratio(tmp_path: Path) -> None:
    figures = replay.measure(entries=300, distinct=3, workers=2, directory=tmp_path / "log")
    assert figures["entries"] == 300
    assert figures["replay_rate"] > 0
    assert figures["baseline_rate"] > figures["replay_rate"] / 2
    text = replay.render(figures, "python -m bench.replay --entries 300")
    assert "`python -m bench.replay --entries 300`" in text
    assert "| replay rate / (baseline × workers) |" in text
