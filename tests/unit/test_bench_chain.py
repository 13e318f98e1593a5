"""bench.chain measures what it says: every measured envelope verifies, with and without
the cache (measure() stops otherwise), and the report carries the command and ratios."""

from __future__ import annotations

from bench import chain


def test_chain_bench_runs_and_reports_ratios() -> None:
    figures = chain.measure(rounds=5)
    assert set(figures) == {"baseline", "no cache", "new signer", "known signer"}
    assert all(v > 0 for v in figures.values())
    text = chain.render(figures, "python -m bench.chain --rounds 5")
    assert "`python -m bench.chain --rounds 5`" in text
    assert "| one Ed25519 verification (baseline) |" in text
    assert "| 1.00 |" in text
