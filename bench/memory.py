"""Server memory over a large log: the RSS of a real eucgate server whose store holds
N logged decisions, against the same server over a small log, in one run.

    python -m bench.memory --entries 1000000 [--small 1000] [--submits 2000] [--record]

Driving a million decisions through gRPC takes over an hour on this machine (a few
hundred a second), so each store is filled through the store's own append path first:
`SqliteStore.append` from 32 threads, group-committed by its writer, writing the same
entry, leaf, tree-node and decision rows the server writes, with synthetic well-formed
records (tests/logdata.py). No checkpoint is signed per commit; the server signs one
for the whole tree when it opens the store. Then the real server (`bench.run
--serve-eucgate`, started as `eucgate serve` starts it, in its own process, plaintext
on loopback) opens that store and its VmRSS is read from /proc/<pid>/status after
start, after `--submits` real SubmitCertificate decisions (each verified, decided,
logged and signed), and after reads: GetCheckpoint, inclusion proofs for leaves spread
over the whole log, consistency proofs, and an audit StreamEntries of `--stream`
entries. VmHWM (the peak) is read last. The same steps run over a store of `--small`
entries: the difference between the two is what the log's length costs.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from eucgate.store.sqlite import SQLITE_FILE, SqliteStore
from eucgate_client.client import AuditClient
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2

from bench.run import (
    RESULTS,
    SUBMIT_METHOD,
    _child,
    _git_commit,
    _machine,
    _signed_envelope_fields,
)
from tests.logdata import make_record

FILL_THREADS = 32


def fill(path: Path, count: int) -> float:
    """Append `count` synthetic records to a new store at `path`; returns seconds."""
    store = SqliteStore.open(path, None)
    started = time.perf_counter()
    try:

        def work(first: int) -> None:
            for n in range(first, count, FILL_THREADS):
                store.append(make_record(n))

        workers = [threading.Thread(target=work, args=(i,)) for i in range(FILL_THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        store.close()
    return time.perf_counter() - started


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB (from /proc/<pid>/status)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    return figures


@dataclass
class MemoryRun:
    """One store size: seconds to fill it, and the server's RSS at each step."""

    entries: int
    fill_s: float
    steps: dict[str, float] = field(default_factory=dict)
    peak_mb: float = 0.0


def measure(entries: int, submits: int, stream: int, proofs: int, workdir: Path) -> MemoryRun:
    """Fill a store of `entries`, serve it, and read the server's RSS along the way."""
    directory = workdir / f"log-{entries}"
    directory.mkdir()
    pool = _signed_envelope_fields(directory, min(submits, 1000))
    (directory / "store").mkdir()
    run = MemoryRun(entries, fill(directory / "store" / SQLITE_FILE, entries))
    command = [sys.executable, "-m", "bench.run", "--serve-eucgate", str(directory)]
    server = _child(command, directory, "server")
    with server as (pid, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        run.steps["started"] = rss_mb(pid)["VmRSS"]
        submit = ch.unary_unary(SUBMIT_METHOD, request_serializer=None, response_deserializer=None)
        tag = os.urandom(4).hex()

        def call(i: int) -> None:
            request = svc_pb2.SubmitCertificateRequest(request_id=f"mem-{tag}-{i}")
            # Concatenated protobuf encodings merge: request_id plus envelope.
            submit(request.SerializeToString() + pool[i % len(pool)], timeout=60)

        with ThreadPoolExecutor(8) as calls:
            list(calls.map(call, range(submits)))
        run.steps[f"after {submits:,} SubmitCertificate"] = rss_mb(pid)["VmRSS"]
        audit = AuditClient(ch, timeout=60)
        size = audit.get_checkpoint().tree_size
        picks = random.Random(1)
        for _ in range(proofs):
            audit.inclusion_proof(leaf_index=picks.randrange(size))
            audit.consistency_proof(picks.randrange(1, size))
        run.steps[f"after {proofs:,} inclusion and consistency proofs"] = rss_mb(pid)["VmRSS"]
        for _page in audit.stream_entries(max(0, size - stream), limit=stream, timeout=600):
            pass
        run.steps[f"after streaming the last {stream:,} entries"] = rss_mb(pid)["VmRSS"]
        run.peak_mb = rss_mb(pid)["VmHWM"]
    return run


def render(runs: list[MemoryRun], command: str) -> str:
    small, large = runs
    lines = [
        f"## Server memory: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_git_commit()}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_machine()}",
        "",
        f"Stores filled through SqliteStore.append: {small.entries:,} entries in "
        f"{small.fill_s:.0f} s, {large.entries:,} in {large.fill_s:.0f} s. Server VmRSS, MB:",
        "",
        f"| step | {small.entries:,} logged | {large.entries:,} logged | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for step, value in large.steps.items():
        before = small.steps[step]
        lines.append(f"| {step} | {before:.0f} | {value:.0f} | {value - before:+.0f} |")
    lines.append(
        f"| peak (VmHWM) | {small.peak_mb:.0f} | {large.peak_mb:.0f} | "
        f"{large.peak_mb - small.peak_mb:+.0f} |"
    )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--stream", type=int, default=20000)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if not (1 <= args.small <= args.entries <= 2_000_000 and args.submits >= 1):
        parser.error("need 1 <= small <= entries <= 2000000 and submits >= 1")
    with tempfile.TemporaryDirectory(prefix="eucbench-memory-") as tmp:
        runs = [
            measure(n, args.submits, args.stream, args.proofs, Path(tmp))
            for n in (args.small, args.entries)
        ]
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join(["python", "-m", "bench.memory", *(a for a in given if a != "--record")])
    text = render(runs, command)
    print(text)
    if args.record:
        with RESULTS.open("a") as results:
            results.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
