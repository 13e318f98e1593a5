"""bench.decide measures what it says: the timed EUC is approved by the sample bundle
(measure() stops otherwise), every case runs, and the report carries the command and
the ratios against one Ed25519 verification."""

from __future__ import annotations

from bench import decide


def test_decide_bench_runs_and_reports_ratios() -> None:
    figures = decide.measure(rounds=3)
    rows = ("baseline", "cache", "no cache", "cases", "decode")
    assert all(figures[k] > 0 for k in rows)
    assert figures["case count"] >= 30
    text = decide.render(figures, "python -m bench.decide --rounds 3")
    assert "`python -m bench.decide --rounds 3`" in text
    assert "(baseline) |" in text
    assert "| 1.0 |" in text
    assert "decide(), sample EUC (APPROVED), ChainCache warm" in text
    assert "Submission.from_envelope" in text
