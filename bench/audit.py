"""The audit log's costs, each as a ratio measured in one run on one machine.

    python -m bench.audit --appends 4000 --threads 16 --entries 20000 [--record]

1. Append throughput of the SQLite store with the log (leaf, tree nodes and tree state
   in the batch transaction, a checkpoint signed after each commit) against the same
   store and writer with the log step switched off (a no-op instead of
   `_append_to_log`, no checkpoint signer): what the log costs a durable append.
2. Export verification (`verify_export`: checkpoint signature, tiles, every entry's
   decoding and digests, leaf hashes, root) against plain hashlib SHA-256 over the same
   leaves: how far the verifier is from the hashing floor.

Records are synthetic but well-formed (tests/logdata.py): a ~1.6 KB DSSE envelope each.
`--record` appends the results and the command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.export import ExportWriter, verify_export
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


def measure_verify(count: int, workdir: Path) -> dict[str, float]:
    signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    directory = workdir / "export"
    items = list(entries(count))
    writer = ExportWriter(directory)
    for entry in items:
        writer.add(entry)
    writer.finish(signer.sign(count, writer.root()))
    started = time.perf_counter()
    result = verify_export(directory, signer.verifier)
    verify_s = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"the benchmark's own export did not verify: {result.finding}")
    started = time.perf_counter()
    for entry in items:
        hashlib.sha256(b"\x00" + entry).digest()
    hash_s = time.perf_counter() - started
    return {
        "entries": count,
        "bytes": sum(map(len, items)),
        "verify_s": verify_s,
        "sha256_s": hash_s,
        "ratio": verify_s / hash_s,
    }


def _markdown(command: str, appends: dict[str, float], verify: dict[str, float]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"## Audit log: {stamp}, commit {_git_commit()}",
            "",
            f"Command: `{command}`  ",
            f"Machine: {_machine()}",
            "",
            "| measurement | with the log | baseline | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| store appends/s ({int(appends['commits_with'])} vs "
            f"{int(appends['commits_without'])} commits) | {appends['with_log']:.0f} | "
            f"{appends['without_log']:.0f} (log off) | {appends['ratio']:.2f} |",
            f"| export verification, {int(verify['entries'])} entries "
            f"({verify['bytes'] / 1e6:.1f} MB) | {verify['verify_s']:.2f} s | "
            f"{verify['sha256_s']:.3f} s (hashlib SHA-256 of the leaves) | "
            f"{verify['ratio']:.1f}x |",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--appends", type=int, default=4000, help="records appended per run")
    parser.add_argument("--threads", type=int, default=16, help="concurrent appenders")
    parser.add_argument("--entries", type=int, default=20000, help="entries in the export")
    parser.add_argument("--record", action="store_true", help=f"append to {RESULTS.name}")
    args = parser.parse_args(argv)
    if not (1 <= args.threads <= 256 and 1 <= args.appends <= 1_000_000):
        parser.error("threads must be 1..256 and appends 1..1000000")
    if not 1 <= args.entries <= 1_000_000:
        parser.error("entries must be 1..1000000")
    command = shlex.join(["python", "-m", "bench.audit", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="eucbench-audit-") as tmp:
        appends = measure_appends(args.appends, args.threads, Path(tmp))
        verify = measure_verify(args.entries, Path(tmp))
    text = _markdown(command, appends, verify)
    print(text)
    if args.record:
        with RESULTS.open("a") as results:
            results.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
