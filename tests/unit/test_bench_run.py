"""A seconds-long run of bench.run, so the end-to-end benchmark does not rot."""

from __future__ import annotations

from bench import run


def test_run_bench_measures_plaintext_and_mutual_tls() -> None:
    code = run.main(
        ["--duration", "0.5", "--concurrency", "2", "--max-calls", "20", "--warmup", "2", "--tls"]
    )
    assert code == 0


def test_run_bench_measures_workers_over_several_connections() -> None:
    code = run.main(
        [
            *("--duration", "0.5", "--concurrency", "4", "--max-calls", "20", "--warmup", "2"),
            *("--workers", "2", "--channels", "4"),
        ]
    )
    assert code == 0
