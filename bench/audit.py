"""The audit log's costs, each as a ratio measured in one run on one machine.

    python -m bench.audit --appends 4000 --threads 16 --entries 20000 [--workers 2]
        [--repeat 3] [--root-only] [--record]

1. Append throughput of the SQLite store with the log (leaf, tree nodes and tree state
   in the batch transaction, a checkpoint signed after each commit) against the same
   store and writer with the log step switched off (a no-op instead of
   `_append_to_log`, no checkpoint signer): what the log costs a durable append.
2. Export verification against plain hashlib SHA-256 over the same leaf bytes (each
   entry with its 0x00 prefix, read from the export and prefixed beforehand, one
   process, only the hashing timed): how close the verifier comes to the hashing
   floor. Three rows, each timed right after its own baseline and repeated `--repeat`
   times:
   - the root recomputed (`verify_export(..., check_entries=False)`): checkpoint
     signature, every hash tile's size and nodes, every entry's leaf hash, the root
     against the signed checkpoint; in one process, then in `--workers` processes;
   - the full check (`eucgate audit verify`): the same and every entry decoded, its
     canonical form and digests checked, in `--workers` processes (skipped with
     `--root-only`: at a million entries it takes minutes a run).
   Each ratio is also given in CPU time: on a machine others share, the wall-clock
   ratio moves with their load (and where the kernel shares CPU out per session, as
   with autogroup, the workers share this session's part of it), the CPU-time one
   much less.

Records are synthetic but well-formed (tests/logdata.py): a ~1.6 KB DSSE envelope each;
the export is written streaming, so `--entries 1000000` needs disk (about 3 GB), not
memory. `--record` appends the results and the command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.export import ExportWriter, export_entries, verify_export
from eucgate.store import sqlite as sqlite_store
from eucgate.store.base import DecisionRecord
from eucgate.store.sqlite import SqliteStore

from bench.run import RESULTS, _git_commit, _machine
from tests.logdata import entries, make_record

ORIGIN = "bench.example/log"


def _append_rate(
    path: Path, records: Sequence[DecisionRecord], threads: int, signer: CheckpointSigner | None
) -> tuple[float, int]:
    """Appends per second with `threads` concurrent appenders, and the commits used."""
    store = SqliteStore.open(path, signer)
    try:
        chunks = [records[i::threads] for i in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def work(chunk: Sequence[DecisionRecord]) -> None:
            barrier.wait()
            for record in chunk:
                store.append(record)

        workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        return len(records) / elapsed, store.commits
    finally:
        store.close()


def measure_appends(count: int, threads: int, workdir: Path) -> dict[str, float]:
    records = [make_record(n) for n in range(count)]
    signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    with_log, commits_with = _append_rate(workdir / "with.db", records, threads, signer)
    original = sqlite_store._append_to_log
    sqlite_store._append_to_log = lambda *_args: None
    try:
        without, commits_without = _append_rate(workdir / "without.db", records, threads, None)
    finally:
        sqlite_store._append_to_log = original
    return {
        "with_log": with_log,
        "without_log": without,
        "ratio": with_log / without,
        "commits_with": commits_with,
        "commits_without": commits_without,
    }


def hash_leaves(directory: Path, size: int) -> tuple[float, float]:
    """Seconds hashlib takes over every entry's leaf bytes (0x00 || entry), one process:
    wall-clock and CPU time.

    Entries are read a bundle at a time and given their 0x00 prefix untimed: only the
    hashing is timed, one call and one digest a leaf, the least hashlib can do (timing
    the prefixing too made it 4 to 8 % slower and the ratios that much better).
    """
    sha256 = hashlib.sha256
    total, cpu, batch = 0.0, 0.0, []
    for index, entry, _finding in export_entries(directory, size, check=False):
        batch.append(b"\x00" + entry)
        if len(batch) == 256 or index == size - 1:
            started, cpu_started = time.perf_counter(), time.process_time()
            for leaf in batch:
                sha256(leaf).digest()
            total += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
            batch = []
    return total, cpu


def _cpu_s() -> float:
    """CPU seconds of this process and of its waited-for children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


VerifyRow = tuple[str, Callable[[], None]]


@dataclass
class VerifyFigures:
    """Per row name: each run's verification seconds, its baseline's, and their ratio;
    and the same in CPU time (which the machine's other load disturbs far less)."""

    entries: int
    bytes: int
    build_s: float
    max_rss_mb: float = 0.0
    rows: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)  # 1-minute load average at each run


def measure_verify(
    count: int, workdir: Path, workers: int = 2, repeat: int = 1, *, full: bool = True
) -> VerifyFigures:
    """Write a `count`-entry export, then time each verification row right after its own
    hashlib baseline, `repeat` times over; without `full`, the root rows only."""
    signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    directory = workdir / "export"
    writer = ExportWriter(directory)
    started = time.perf_counter()
    for entry in entries(count):
        writer.add(entry)
    writer.finish(signer.sign(count, writer.root()))
    build_s = time.perf_counter() - started
    size = sum(f.stat().st_size for f in (directory / "tile" / "entries").rglob("*"))

    def verify(check_entries: bool, processes: int) -> Callable[[], None]:
        def run() -> None:
            result = verify_export(
                directory, signer.verifier, check_entries=check_entries, workers=processes
            )
            if not result.ok or result.entries != count:
                raise RuntimeError(f"the benchmark's own export did not verify: {result.finding}")

        return run

    rows: list[VerifyRow] = [
        ("root recomputed, 1 process", verify(False, 0)),
        (f"root recomputed, {workers} processes", verify(False, workers)),
        (f"full check (entries decoded), {workers} processes", verify(True, workers)),
    ][: 3 if full else 2]
    figures = VerifyFigures(count, size, build_s)
    results = figures.rows = {
        name: {key: [] for key in ("verify_s", "sha256_s", "ratio", "cpu_ratio")}
        for name, _ in rows
    }
    for _ in range(repeat):
        for name, run in rows:
            figures.loads.append(os.getloadavg()[0])
            base, base_cpu = hash_leaves(directory, count)
            started, cpu_started = time.perf_counter(), _cpu_s()
            run()
            elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu_started
            results[name]["verify_s"].append(elapsed)
            results[name]["sha256_s"].append(base)
            results[name]["ratio"].append(base / elapsed)
            results[name]["cpu_ratio"].append(base_cpu / cpu)
    figures.max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def _markdown(command: str, appends: dict[str, float], verify: VerifyFigures) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = verify.rows
    lines = [
        f"## Audit log: {stamp}, commit {_git_commit()}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_machine()}, load average {os.getloadavg()[0]:.2f} at the end",
        "",
        "| measurement | with the log | baseline | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| store appends/s ({int(appends['commits_with'])} vs "
        f"{int(appends['commits_without'])} commits) | {appends['with_log']:.0f} | "
        f"{appends['without_log']:.0f} (log off) | {appends['ratio']:.2f} |",
        "",
        f"Export: {verify.entries:,} entries ({verify.bytes / 1e6:,.0f} MB of entry "
        f"bundles), written streaming in {verify.build_s:.0f} s; the bench process's peak "
        f"RSS {verify.max_rss_mb:.0f} MB. Each row was timed right after hashlib SHA-256 "
        f"over the same leaf bytes (one process); {len(next(iter(rows.values()))['ratio'])} "
        "runs, medians and the range of the ratio (the target's measure), and of the same "
        "ratio in CPU time (hashlib's CPU seconds over the verifier's, workers included: "
        f"what the code costs, whatever else runs). Load average {min(verify.loads):.1f} to "
        f"{max(verify.loads):.1f} as the runs started.",
        "",
        "| verification | time | hashlib SHA-256 of the leaves | rate / hashlib rate "
        "| CPU time: hashlib / verifier |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in rows.items():
        ratios, cpu = figures["ratio"], figures["cpu_ratio"]
        lines.append(
            f"| {name} | {statistics.median(figures['verify_s']):.2f} s | "
            f"{statistics.median(figures['sha256_s']):.2f} s | "
            f"{min(ratios):.2f} to {max(ratios):.2f} | {min(cpu):.2f} to {max(cpu):.2f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--appends", type=int, default=4000, help="records appended per run")
    parser.add_argument("--threads", type=int, default=16, help="concurrent appenders")
    parser.add_argument("--entries", type=int, default=20000, help="entries in the export")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each verification row")
    parser.add_argument("--root-only", action="store_true", help="skip the full-check row")
    parser.add_argument("--record", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args(argv)
    if not (1 <= args.threads <= 256 and 1 <= args.appends <= 1_000_000):
        parser.error("threads must be 1..256 and appends 1..1000000")
    if not 1 <= args.entries <= 1_000_000:
        parser.error("entries must be 1..1000000")
    if not (1 <= args.workers <= 64 and 1 <= args.repeat <= 20):
        parser.error("workers must be 1..64 and repeat 1..20")
    command = shlex.join(["python", "-m", "bench.audit", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="eucbench-audit-") as tmp:
        appends = measure_appends(args.appends, args.threads, Path(tmp))
        verify = measure_verify(
            args.entries, Path(tmp), args.workers, args.repeat, full=not args.root_only
        )
    text = _markdown(command, appends, verify)
    print(text)
    if args.record:
        with RESULTS.open("a") as results:
            results.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
