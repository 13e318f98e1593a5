"""Decisions per second: two eucgate replicas on one PostgreSQL against one replica on
SQLite, in the same run, on loopback.

    python -m bench.replicas --duration 10 --concurrency 16 [--record]

Each replica is its own process (`--serve-replica`) with the same keys and signed bundle;
the load generator (bench.load) spreads its callers' calls over the replicas in turn.
Every call carries its own request_id, so each one is decided, logged and committed (no
idempotent replays). PostgreSQL gets a fresh schema, dropped afterwards.

`--record` appends the table and the exact command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shlex
import signal
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import grpc
import grpc.aio
import psycopg
from eucgate.api import signals
from eucgate.api.server import start_server
from eucgate.config import load_settings
from eucgate.logconfig import configure_logging
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2
from eucgate_client.v1 import decision_pb2

from bench import load
from bench.echo import write_port_file
from bench.run import (
    CALL_TIMEOUT_S,
    ENVELOPE_POOL,
    RESULTS,
    ROOT,
    START_TIMEOUT_S,
    SUBMIT_METHOD,
    _child,
    _git_commit,
    _machine,
    _signed_envelope_fields,
)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Setup:
    """One measured configuration: its label, store and number of replicas."""

    label: str
    store: str  # "" for SQLite in each replica's data dir
    replicas: int


@contextlib.contextmanager
def _schema(server: str) -> Iterator[str]:
    """A fresh schema on `server` and a store URL that uses it; dropped afterwards."""
    name = f"eucgate_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{server}?options={quote(f'-c search_path={name}')}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def _serve_replica(directory: Path, store: str, port_file: Path) -> int:
    """Child process: one replica on `store` (or SQLite in directory/store) until SIGTERM."""
    settings = load_settings(
        listen="127.0.0.1:0",
        data_dir=directory / "store",
        store=store,
        bundle_path=directory / "bundle.dsse.json",
        policy_admin_keys=[directory / "policy-admin" / "policy-admin.pub.pem"],
        service_key_path=directory / "pki" / "service.key.pem",
        init_store=True,
        insecure=True,
    )
    configure_logging(settings.log_level, json=settings.log_json)
    stop = threading.Event()
    signals.handle({signal.SIGTERM: stop.set, signal.SIGINT: stop.set})
    running = start_server(settings)
    write_port_file(port_file, running.port)
    stop.wait()
    running.stop(grace=5)
    return 0


def measure(
    setup: Setup,
    *,
    directory: Path,
    pool: list[bytes],
    workdir: Path,
    concurrency: int,
    duration_s: float,
    max_calls: int,
    warmup_calls: int,
) -> tuple[load.LoadResult, dict[str, int]]:
    """Start `setup.replicas` replicas and drive SubmitCertificate over all of them."""
    run_tag = uuid.uuid4().hex[:12]
    outcomes: Counter[str] = Counter()

    async def drive(ports: list[int]) -> load.LoadResult:
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in ports]
        try:
            for channel in channels:
                await asyncio.wait_for(channel.channel_ready(), timeout=START_TIMEOUT_S)
            submits = [
                c.unary_unary(SUBMIT_METHOD, request_serializer=None, response_deserializer=None)
                for c in channels
            ]

            async def call(index: int) -> object:
                request_id = svc_pb2.SubmitCertificateRequest(
                    request_id=f"bench-{run_tag}-{index}"
                ).SerializeToString()
                submit = submits[index % len(submits)]
                raw = await submit(request_id + pool[index % len(pool)], timeout=CALL_TIMEOUT_S)
                response = svc_pb2.SubmitCertificateResponse.FromString(raw)
                outcomes[decision_pb2.Outcome.Name(response.decision.outcome)] += 1
                return response

            return await load.run_load(
                call,
                name=setup.label,
                concurrency=concurrency,
                duration_s=duration_s,
                max_calls=max_calls,
                warmup_calls=warmup_calls,
            )
        finally:
            for channel in channels:
                await channel.close(None)

    with contextlib.ExitStack() as stack:
        ports = []
        for i in range(setup.replicas):
            command = [
                sys.executable,
                "-m",
                "bench.replicas",
                "--serve-replica",
                str(directory),
                "--store",
                setup.store,
            ]
            name = f"{setup.label.split()[0]}-{i}"
            ports.append(stack.enter_context(_child(command, workdir, name))[1])
        result = asyncio.run(drive(ports))
    return result, dict(outcomes)


def _markdown(command: str, rows: list[tuple[load.LoadResult, dict[str, int]]]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {stamp}, commit {_git_commit()}: replicas on PostgreSQL against SQLite",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_machine()}",
        "",
        "| setup | concurrency | decisions ok | errors | decisions/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r, _ in rows:
        lines.append(
            f"| {r.name} | {r.concurrency} | {r.ok} | {r.error_count} | {r.qps:.1f} | "
            f"{r.p50_s * 1e3:.2f} | {r.p99_s * 1e3:.2f} |"
        )
    lines.append("")
    for r, mix in rows:
        text = ", ".join(f"{k} {v}" for k, v in sorted(mix.items())) or "none"
        lines.append(f"Decisions of {r.name} (warm-up included): {text}  ")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replicas",
        description="decisions/s: two replicas on PostgreSQL vs one on SQLite, same run.",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per setup")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent callers")
    parser.add_argument("--max-calls", type=int, default=200_000, help="call budget per setup")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL server (a schema is made)"
    )
    parser.add_argument("--record", action="store_true", help=f"append to {RESULTS.name}")
    parser.add_argument("--serve-replica", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_replica is not None:
        if args.port_file is None:
            parser.error("--serve-replica needs --port-file")
        return _serve_replica(args.serve_replica, args.store, args.port_file)

    bounds = {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "max_calls": args.max_calls,
        "warmup_calls": args.warmup,
    }
    try:
        load.check_bounds(**bounds)
    except ValueError as exc:
        parser.error(str(exc))
    command = shlex.join(
        ["python", "-m", "bench.replicas", *(sys.argv[1:] if argv is None else argv)]
    )
    rows = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eucbench-")))
        directory = workdir / "eucgate"
        directory.mkdir()
        pool = _signed_envelope_fields(directory, min(ENVELOPE_POOL, args.warmup + args.max_calls))
        url = stack.enter_context(_schema(args.postgres))
        for setup in (
            Setup("sqlite, 1 replica", "", 1),
            Setup("postgresql, 2 replicas", url, 2),
        ):
            print(f"{setup.label}: {args.duration:g} s, {args.concurrency} callers ...", flush=True)
            rows.append(measure(setup, directory=directory, pool=pool, workdir=workdir, **bounds))
    print()
    print(load.format_table([r for r, _ in rows]))
    for r, mix in rows:
        print(f"{r.name}: decisions (incl. warm-up) {dict(sorted(mix.items()))}")
    if args.record:
        with RESULTS.open("a") as out:
            out.write("\n" + _markdown(command, rows))
        print(f"\nappended to {RESULTS.relative_to(ROOT)}")
    return 1 if any(r.error_count for r, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
