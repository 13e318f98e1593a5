"""A bare grpcio echo server: the same-run baseline for eucgate's numbers.

It serves one unary-unary method, `/bench.Echo/Echo`, through grpc's generic handlers
with identity (bytes in, bytes out) serialisation, so it needs no proto and does no
work of its own: what it measures is the grpcio floor on this machine, in this run.

`python -m bench.echo` binds 127.0.0.1 (port 0 picks a free one), prints
`PORT <n>` on one line (and writes the number to `--port-file` if given), and serves
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from types import FrameType

import grpc

SERVICE = "bench.Echo"
METHOD = "Echo"


def _echo(request: bytes, _context: grpc.ServicerContext) -> bytes:
    return request


def start(host: str = "127.0.0.1", port: int = 0, workers: int = 16) -> tuple[grpc.Server, int]:
    """Start the echo server; returns it and the bound port.

    Raises RuntimeError when the address cannot be bound.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    handler = grpc.unary_unary_rpc_method_handler(
        _echo, request_deserializer=None, response_serializer=None
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),)
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind {host}:{port}")
    server.start()
    return server, bound


def write_port_file(path: Path, port: int) -> None:
    """Write `port` to `path` atomically, so a reader never sees a partial number."""
    partial = path.with_suffix(".partial")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bare grpcio echo server (bench baseline)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=16, help="handler threads")
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server, port = start(port=args.port, workers=args.workers)
    print(f"PORT {port}", flush=True)
    if args.port_file is not None:
        write_port_file(args.port_file, port)
    stop.wait()
    server.stop(grace=2).wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
