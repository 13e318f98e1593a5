"""Timing for the benchmarks: medians of per-call wall-clock times, runs interleaved."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

_BLOCK = 20


def medians_us(runs: dict[str, tuple[Callable[[int], object], int]]) -> dict[str, float]:
    """Median microseconds per call of each run (name: (call, rounds)), the runs taken in
    turn in blocks of a few calls: on a shared machine the load changes from second to
    second, and interleaving gives the baseline and the measured code the same share of
    it. Each call gets its index within its run."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    done = dict.fromkeys(runs, 0)
    while any(done[name] < rounds for name, (_, rounds) in runs.items()):
        for name, (run, rounds) in runs.items():
            for i in range(done[name], min(rounds, done[name] + _BLOCK)):
                start = time.perf_counter()
                run(i)
                times[name].append(time.perf_counter() - start)
            done[name] = min(rounds, done[name] + _BLOCK)
    return {name: statistics.median(t) * 1e6 for name, t in times.items()}
