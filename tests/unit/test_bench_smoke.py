"""Seconds-long runs of the benchmarks that have no test of their own, so none rots:
each runs end to end on tiny inputs and reports the figures its RESULTS entry needs."""

from __future__ import annotations

import pytest

from bench import cel, replicas, screening
from tests.pgdb import require_postgres


def test_screening_bench_speed_and_quality(capsys: pytest.CaptureFixture[str]) -> None:
    assert screening.main(["--entries", "200", "--repeat", "2"]) == 0
    speed = capsys.readouterr().out
    assert "/ Ed25519 verify" in speed
    assert "screen the certificate, index" in speed
    assert screening.main(["--quality"]) == 0
    quality = capsys.readouterr().out
    assert "recall" in quality.lower()


def test_cel_bench_compares_engines(capsys: pytest.CaptureFixture[str]) -> None:
    assert cel.main(["--repeat", "5"]) == 0
    assert "common-expression-language" in capsys.readouterr().out


def test_replicas_bench_runs_two_replicas_and_one(capsys: pytest.CaptureFixture[str]) -> None:
    require_postgres()
    code = replicas.main(
        ["--duration", "0.5", "--concurrency", "2", "--max-calls", "20", "--warmup", "2"]
    )
    assert code == 0
    assert "replica" in capsys.readouterr().out.lower()
