"""bench.audit runs end to end on a small workload and reports sane ratios."""

from __future__ import annotations

from pathlib import Path

from bench.audit import measure_appends, measure_verify


def test_audit_bench_measures_both_ratios(tmp_path: Path) -> None:
    appends = measure_appends(200, 8, tmp_path)
    assert appends["with_log"] > 0
    assert appends["without_log"] > 0
    assert appends["commits_with"] <= 200
    verify = measure_verify(300, tmp_path)
    assert verify["entries"] == 300
    assert verify["ratio"] > 1  # verifying does more than hashing the leaves
