"""eucgate's SubmitCertificate against a bare grpcio echo server, in one run, on loopback.

    python -m bench.run --duration 10 --concurrency 16 [--workers N --channels M] [--tls]
        [--record]

Each server runs in its own process on a free 127.0.0.1 port; the load generator
(bench.load) drives it with the same concurrency, duration and call budget. The echo
server goes first, then eucgate. The numbers that carry meaning are the ratios: both
measurements share this machine, its noise and its load generator, so "eucgate QPS /
echo QPS" holds up across machines far better than either QPS alone.

`--workers N` serves eucgate as N processes on one port (`workers` in the settings). The
kernel spreads connections, not calls, over them, so `--channels M` has the load
generator spread its calls over M connections, to echo and eucgate alike.
`--tls` measures eucgate a second time on mutual TLS (the deployed configuration: a
client certificate mapped to the importer role), reported as a ratio to plaintext.
`--record` appends the table, the ratios and the exact command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from eucgate import samples
from eucgate.api import signals
from eucgate.api.server import start_server
from eucgate.api.workers import start_workers
from eucgate.cli.keys import policy_admin_key, write_signed_bundle, write_trusting_bundle
from eucgate.config import load_settings
from eucgate.logconfig import configure_logging
from eucgate.signing import load_certificates, load_private_key, make_demo_pki, sign_envelope
from eucgate.tlsfiles import LocalAccess, make_local_access
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2
from eucgate_client.v1 import decision_pb2
from google.protobuf import json_format

from bench import load
from bench.echo import write_port_file

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SUBMIT_METHOD = "/eucgate.v1.CertificateService/SubmitCertificate"
# The EUC media type the proto documents (envelope.proto); JSON is what ERPs send.
PAYLOAD_TYPE_JSON = "application/vnd.eucgate.euc.v1+json"
# Distinct signed certificates made before the clock starts; beyond this many calls the
# pool is reused, each call still under its own request_id.
ENVELOPE_POOL = 1000
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EucgateRun:
    """The eucgate measurement plus what the server decided and how big requests were."""

    result: load.LoadResult
    outcomes: dict[str, int] = field(default_factory=dict)
    request_bytes: int = 0


# --- child processes ----------------------------------------------------------------


@contextlib.contextmanager
def _child(
    command: Sequence[str],
    workdir: Path,
    name: str,
    *,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[tuple[int, int]]:
    """Run a server process that writes its port to a file; yields (its pid, the port).

    Its output goes to `workdir/<name>.log`. On exit it gets SIGTERM, then SIGKILL if it
    has not stopped within STOP_TIMEOUT_S. Raises RuntimeError when it fails to start
    within `start_timeout_s`.
    """
    port_file = workdir / f"{name}.port"
    log_path = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUCGATE_")}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [*command, "--port-file", str(port_file)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_timeout_s
            while not port_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} server did not start:\n{tail}")
                time.sleep(0.05)
            yield proc.pid, int(port_file.read_text())
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=STOP_TIMEOUT_S)


# --- echo ---------------------------------------------------------------------------


def measure_echo(
    *,
    concurrency: int,
    duration_s: float,
    max_calls: int,
    warmup_calls: int,
    payload_bytes: int,
    workdir: Path,
    workers: int = 16,
    channels: int = 1,
) -> load.LoadResult:
    """Start bench.echo in a subprocess and measure it."""
    command = [sys.executable, "-m", "bench.echo", "--port", "0", "--workers", str(workers)]
    with _child(command, workdir, "echo") as (_, port):
        return asyncio.run(
            load.measure_echo(
                f"127.0.0.1:{port}",
                concurrency=concurrency,
                duration_s=duration_s,
                max_calls=max_calls,
                payload_bytes=payload_bytes,
                warmup_calls=warmup_calls,
                channels=channels,
            )
        )


# --- eucgate ------------------------------------------------------------------------


def _signed_envelope_fields(directory: Path, count: int) -> list[bytes]:
    """`count` distinct signed EUCs, each serialised as the request's `envelope` field.

    Writes the demo PKI, the policy bundle trusting it, and the service key into
    `directory`, where the server process finds them.
    """
    now = datetime.now(UTC)
    pki = make_demo_pki(
        directory / "pki",
        now=now,
        organization=samples.JAY_USHIN.legal_name,
        registrations=samples.JAY_USHIN.registrations,
    )
    bundle = write_trusting_bundle(directory / "bundle.yaml", pki.root_cert, pki.crls)
    admin_key, _ = policy_admin_key(directory / "policy-admin")
    write_signed_bundle(bundle, admin_key, directory / "bundle.dsse.json")
    signer = (load_private_key(pki.signer_key), load_certificates(pki.signer_chain))
    run_tag = uuid.uuid4().hex[:8].upper()
    fields = []
    for i in range(count):
        euc = samples.certificate(now, number=f"BENCH-{run_tag}-{i:06d}")
        payload = json_format.MessageToJson(euc).encode()
        envelope = sign_envelope(PAYLOAD_TYPE_JSON, payload, [signer])
        request = svc_pb2.SubmitCertificateRequest(envelope=envelope.to_proto())
        fields.append(request.SerializeToString(deterministic=True))
    return fields


def _serve_eucgate(directory: Path, port_file: Path, workers: int = 1) -> int:
    """Child process: serve eucgate from `directory` on a free loopback port until SIGTERM,
    as `workers` processes; on mutual TLS when `directory` holds a tls/ directory
    (tlsfiles), else plaintext."""
    tls = LocalAccess(directory / "tls")
    transport: dict[str, Any] = (
        {
            "tls_cert_path": tls.server_cert,
            "tls_key_path": tls.server_key,
            "access_path": tls.access_file,
        }
        if tls.access_file.exists()
        else {"insecure": True}
    )
    settings = load_settings(
        listen="127.0.0.1:0",
        data_dir=directory / "store",
        bundle_path=directory / "bundle.dsse.json",
        policy_admin_keys=[directory / "policy-admin" / "policy-admin.pub.pem"],
        service_key_path=directory / "pki" / "service.key.pem",
        init_store=True,
        workers=workers,
        **transport,
    )
    # As `eucgate serve` does: JSON log lines per request are part of the real cost.
    configure_logging(settings.log_level, json=settings.log_json)
    stop = threading.Event()
    signals.handle({signal.SIGTERM: stop.set, signal.SIGINT: stop.set})
    if workers > 1:
        several = start_workers(settings.model_copy(update={"grace_seconds": 5.0}))
        write_port_file(port_file, several.port)
        stop.wait()
        several.stop()
        return 0
    running = start_server(settings)
    write_port_file(port_file, running.port)
    stop.wait()
    running.stop(grace=5)
    return 0


def measure_eucgate(
    *,
    concurrency: int,
    duration_s: float,
    max_calls: int,
    warmup_calls: int,
    workdir: Path,
    tls: bool = False,
    workers: int = 1,
    channels: int = 1,
) -> EucgateRun:
    """Start a fresh eucgate server in a subprocess and measure SubmitCertificate.

    Every call carries its own request_id, so each one is decided, signed and logged
    (none is an idempotent replay). Envelopes are signed before the clock starts. With
    `tls`, the server and the load generator speak mutual TLS, as the importer role.
    Raises RuntimeError when the server does not start (its log tail is in the message).
    """
    directory = workdir / ("eucgate-tls" if tls else "eucgate")
    directory.mkdir()
    pool = _signed_envelope_fields(directory, min(ENVELOPE_POOL, warmup_calls + max_calls))
    credentials = None
    if tls:
        files = make_local_access(
            directory / "tls",
            now=datetime.now(UTC),
            importers=[f"{s}:{v}" for s, v in samples.JAY_USHIN.registrations],
        )
        cert, key = files.client("importer")
        credentials = grpc.ssl_channel_credentials(
            files.server_ca.read_bytes(), key.read_bytes(), cert.read_bytes()
        )
    run_tag = uuid.uuid4().hex[:12]
    outcomes: Counter[str] = Counter()

    def open_channel(port: int) -> grpc.aio.Channel:
        if credentials is None:
            return grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=load.OWN_CONNECTION)
        return grpc.aio.secure_channel(
            f"localhost:{port}", credentials, options=load.OWN_CONNECTION
        )

    async def drive(port: int) -> load.LoadResult:
        async with contextlib.AsyncExitStack() as stack:
            opened = [await stack.enter_async_context(open_channel(port)) for _ in range(channels)]
            for channel in opened:
                await asyncio.wait_for(channel.channel_ready(), timeout=START_TIMEOUT_S)
            submits = [
                c.unary_unary(SUBMIT_METHOD, request_serializer=None, response_deserializer=None)
                for c in opened
            ]

            async def call(index: int) -> object:
                request_id = svc_pb2.SubmitCertificateRequest(
                    request_id=f"bench-{run_tag}-{index}"
                ).SerializeToString()
                # Concatenated protobuf encodings merge: request_id plus envelope.
                submit = submits[index % len(submits)]
                raw = await submit(request_id + pool[index % len(pool)], timeout=CALL_TIMEOUT_S)
                response = svc_pb2.SubmitCertificateResponse.FromString(raw)
                outcomes[decision_pb2.Outcome.Name(response.decision.outcome)] += 1
                return response

            return await load.run_load(
                call,
                name="eucgate mTLS" if tls else "eucgate",
                concurrency=concurrency,
                duration_s=duration_s,
                max_calls=max_calls,
                warmup_calls=warmup_calls,
            )

    command = [
        sys.executable,
        *("-m", "bench.run", "--serve-eucgate", str(directory), "--workers", str(workers)),
    ]
    with _child(command, workdir, directory.name) as (_, port):
        result = asyncio.run(drive(port))
    return EucgateRun(
        result=result,
        outcomes=dict(outcomes),
        request_bytes=round(sum(map(len, pool)) / len(pool)),
    )


# --- report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratios:
    qps: float
    p50: float
    p99: float


def ratios(eucgate: load.LoadResult, echo: load.LoadResult) -> Ratios:
    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return Ratios(
        qps=div(eucgate.qps, echo.qps),
        p50=div(eucgate.p50_s, echo.p50_s),
        p99=div(eucgate.p99_s, echo.p99_s),
    )


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            # RESULTS.md itself changes with every --record; it is not code under test.
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!bench/RESULTS.md",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+uncommitted" if dirty else head


def _machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}"
    )


def _markdown(
    command: str,
    echo: load.LoadResult,
    eucgate: EucgateRun | None,
    payload_bytes: int,
    secure: EucgateRun | None = None,
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {stamp}, commit {_git_commit()}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_machine()}",
        "",
        "| target | concurrency | calls ok | errors | QPS | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [(f"echo ({payload_bytes} B each way)", echo)]
    if eucgate is not None:
        rows.append((f"eucgate SubmitCertificate (~{eucgate.request_bytes} B in)", eucgate.result))
    if secure is not None:
        rows.append(("eucgate SubmitCertificate, mutual TLS", secure.result))
    for label, r in rows:
        lines.append(
            f"| {label} | {r.concurrency} | {r.ok} | {r.error_count} | {r.qps:.1f} | "
            f"{r.p50_s * 1e3:.2f} | {r.p99_s * 1e3:.2f} |"
        )
    if eucgate is not None:
        rt = ratios(eucgate.result, echo)
        mix = ", ".join(f"{k} {v}" for k, v in sorted(eucgate.outcomes.items())) or "none"
        lines += [
            "",
            f"Ratios, eucgate / echo: QPS {rt.qps:.3f}, p50 {rt.p50:.1f}x, p99 {rt.p99:.1f}x  ",
            f"Decisions (warm-up included): {mix}",
        ]
        if eucgate.result.errors:
            lines.append(f"Errors by status: {eucgate.result.errors}")
    if eucgate is not None and secure is not None:
        cost = ratios(secure.result, eucgate.result)
        lines.append(
            f"Ratios, mutual TLS / plaintext eucgate: QPS {cost.qps:.3f}, "
            f"p50 {cost.p50:.2f}x, p99 {cost.p99:.2f}x"
        )
        if secure.result.errors:
            lines.append(f"mTLS errors by status: {secure.result.errors}")
    return "\n".join(lines) + "\n"


def _print_report(
    echo: load.LoadResult, eucgate: EucgateRun | None, secure: EucgateRun | None = None
) -> None:
    results = [echo] + [r.result for r in (eucgate, secure) if r is not None]
    print(load.format_table(results))
    if eucgate is not None and secure is not None:
        cost = ratios(secure.result, eucgate.result)
        print(f"mTLS QPS / plaintext QPS : {cost.qps:.3f} (p99 {cost.p99:.2f}x)")
    if eucgate is None:
        return
    rt = ratios(eucgate.result, echo)
    print()
    print(f"eucgate QPS / echo QPS : {rt.qps:.3f}")
    print(f"eucgate p50 / echo p50 : {rt.p50:.1f}x")
    print(f"eucgate p99 / echo p99 : {rt.p99:.1f}x")
    print(f"decisions (incl. warm-up): {dict(sorted(eucgate.outcomes.items()))}")
    if eucgate.result.errors:
        print(f"eucgate errors by status: {eucgate.result.errors}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="eucgate SubmitCertificate vs a bare grpcio echo, same run, loopback.",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per target")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent callers")
    parser.add_argument("--max-calls", type=int, default=200_000, help="call budget per target")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first")
    parser.add_argument(
        "--payload-bytes", type=int, default=3072, help="echo payload (about a signed EUC)"
    )
    parser.add_argument("--echo-only", action="store_true", help="measure the baseline only")
    parser.add_argument(
        "--tls", action="store_true", help="also measure eucgate on mutual TLS (ratio to plain)"
    )
    parser.add_argument("--workers", type=int, default=1, help="eucgate server processes")
    parser.add_argument(
        "--channels", type=int, default=1, help="connections the callers share (both targets)"
    )
    parser.add_argument("--record", action="store_true", help=f"append to {RESULTS.name}")
    parser.add_argument("--keep", type=Path, help="keep keys, bundle, store and logs here")
    parser.add_argument("--serve-eucgate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_eucgate is not None:
        if args.port_file is None:
            parser.error("--serve-eucgate needs --port-file")
        return _serve_eucgate(args.serve_eucgate, args.port_file, args.workers)

    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eucbench-")))
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
        print(f"echo: {args.duration:g} s, {args.concurrency} callers ...", flush=True)
        if not 1 <= args.workers <= 64 or not 1 <= args.channels <= args.concurrency:
            parser.error("--workers must be 1..64 and --channels 1..--concurrency")
        echo = measure_echo(
            payload_bytes=args.payload_bytes, workdir=workdir, channels=args.channels, **bounds
        )
        eucgate = None
        if not args.echo_only:
            print(f"eucgate: {args.duration:g} s, {args.concurrency} callers ...", flush=True)
            eucgate = measure_eucgate(
                workdir=workdir, workers=args.workers, channels=args.channels, **bounds
            )
        secure = None
        if args.tls and not args.echo_only:
            print(f"eucgate mTLS: {args.duration:g} s, {args.concurrency} callers ...", flush=True)
            secure = measure_eucgate(
                workdir=workdir, tls=True, workers=args.workers, channels=args.channels, **bounds
            )
        print()
        _print_report(echo, eucgate, secure)
        if args.record:
            with RESULTS.open("a") as out:
                out.write("\n" + _markdown(command, echo, eucgate, args.payload_bytes, secure))
            print(f"\nappended to {RESULTS.relative_to(ROOT)}")
        failed = echo.error_count + sum(r.result.error_count for r in (eucgate, secure) if r)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
