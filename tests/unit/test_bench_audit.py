"""bench.audit runs end to end on a small workload and reports sane ratios."""

from __future__ import annotations

from pathlib import Path

from bench.audit import measure_appends, measure_verify


def test_audit_bench_measures_both_ratios(tmp_path: Path) -> None:
    appends = measure_appends(200, 8, tmp_path)
    assert appends["with_log"] > 0
    assert appends["without_log"] > 0
    assert appends["commits_with"] <= 200
    # 9000 entries are three chunks of leaf tiles: the workers row really uses workers.
    verify = measure_verify(9000, tmp_path, workers=2, repeat=1)
    assert verify.entries == 9000
    assert len(verify.rows) == 3
    for name, figures in verify.rows.items():
        assert len(figures["ratio"]) == 1
        assert figures["ratio"][0] > 0, name
    full = next(f for name, f in verify.rows.items() if name.startswith("full"))
    assert full["ratio"][0] < 1  # decoding every entry does more than hashing it
