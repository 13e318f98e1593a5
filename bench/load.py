"""Closed-loop gRPC load generator over grpc.aio, bounded in time and in count.

N callers share one channel (or spread their calls over several, each its own
connection: a server of several processes on one port gets connections, not calls,
spread over its processes); each issues its next call as soon as the previous one
returns, until the duration has passed or the call budget is spent, whichever comes
first. Every call has a deadline, so a stuck server cannot hang a run. Latency is
measured per successful call, client side, with `time.perf_counter`.

Only loopback targets are accepted: this tool never sends load anywhere else.

Run against an echo server on its own: `python -m bench.load --target 127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
import grpc.aio

#: The longest run this tool agrees to make, in seconds.
MAX_DURATION_S = 600.0
#: The most calls one run may make.
MAX_CALLS = 5_000_000
#: The most concurrent callers.
MAX_CONCURRENCY = 1024

ECHO_METHOD = "/bench.Echo/Echo"
#: Channel options for one connection per channel: without a local subchannel pool,
#: channels to one target share a connection.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)

#: One call: given a sequence number unique within the run, it performs one RPC.
Call = Callable[[int], Awaitable[object]]


@dataclass(frozen=True)
class LoadResult:
    """What one run measured. `latencies_s` holds successful calls only, sorted."""

    name: str
    concurrency: int
    elapsed_s: float
    latencies_s: tuple[float, ...]
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def qps(self) -> float:
        """Successful calls per second of wall-clock time."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def p50_s(self) -> float:
        return percentile(self.latencies_s, 50)

    @property
    def p99_s(self) -> float:
        return percentile(self.latencies_s, 99)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return math.nan
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def check_loopback(target: str) -> None:
    """Raise ValueError unless `target` ("host:port") names a loopback address."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"target must be host:port, got {target!r}")
    host = host.strip("[]")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"refusing to send load to {host!r}: only loopback targets")


def check_bounds(
    *, concurrency: int, duration_s: float, max_calls: int, warmup_calls: int = 0
) -> None:
    """Raise ValueError naming the first bound that is out of range."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be 1..{MAX_CONCURRENCY}, got {concurrency}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration must be in (0, {MAX_DURATION_S}] s, got {duration_s}")
    if not 1 <= max_calls <= MAX_CALLS:
        raise ValueError(f"max calls must be 1..{MAX_CALLS}, got {max_calls}")
    if not 0 <= warmup_calls <= MAX_CALLS:
        raise ValueError(f"warm-up calls must be 0..{MAX_CALLS}, got {warmup_calls}")


async def run_load(
    call: Call,
    *,
    name: str,
    concurrency: int,
    duration_s: float,
    max_calls: int,
    warmup_calls: int = 0,
) -> LoadResult:
    """Drive `call` with `concurrency` callers until `duration_s` or `max_calls` is reached.

    Sequence numbers passed to `call` are distinct across warm-up and measured calls.
    Warm-up calls (issued by the same callers, not timed) let channels connect and
    servers fill their caches before the clock starts. An RPC that fails with a gRPC
    status is counted under its code; any other exception propagates.

    Raises ValueError when a bound is out of range.
    """
    check_bounds(
        concurrency=concurrency,
        duration_s=duration_s,
        max_calls=max_calls,
        warmup_calls=warmup_calls,
    )

    next_index = 0

    async def warm() -> None:
        nonlocal next_index
        while next_index < warmup_calls:
            index = next_index
            next_index += 1
            await call(index)

    await asyncio.gather(*(warm() for _ in range(min(concurrency, max(warmup_calls, 1)))))

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    budget_end = next_index + max_calls
    started = time.perf_counter()
    deadline = started + duration_s

    async def caller() -> None:
        nonlocal next_index
        while next_index < budget_end and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                await call(index)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        name=name,
        concurrency=concurrency,
        elapsed_s=elapsed,
        latencies_s=tuple(latencies),
        errors=dict(errors),
    )


def echo_call(
    channels: Sequence[grpc.aio.Channel], payload: bytes, timeout_s: float = 10.0
) -> Call:
    """A call that sends `payload` to the echo server's identity method, call i over
    channel i mod len(channels)."""
    methods = [
        c.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
        for c in channels
    ]

    async def call(index: int) -> object:
        return await methods[index % len(methods)](payload, timeout=timeout_s)

    return call


async def measure_echo(
    target: str,
    *,
    concurrency: int,
    duration_s: float,
    max_calls: int,
    payload_bytes: int,
    warmup_calls: int = 200,
    channels: int = 1,
) -> LoadResult:
    """Measure the echo server at `target` (loopback only) over `channels` connections."""
    check_loopback(target)
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(
                grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
            )
            for _ in range(channels)
        ]
        for channel in opened:
            await asyncio.wait_for(channel.channel_ready(), timeout=10)
        return await run_load(
            echo_call(opened, b"\x00" * payload_bytes),
            name="echo",
            concurrency=concurrency,
            duration_s=duration_s,
            max_calls=max_calls,
            warmup_calls=warmup_calls,
        )


def format_table(results: Sequence[LoadResult]) -> str:
    """A fixed-width table: one row per result."""
    names = ("conc", "ok", "errors", "QPS", "p50 ms", "p99 ms")
    widths = (5, 8, 7, 9, 8, 8)
    head = f"{'target':<10} " + " ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.name:<10} {r.concurrency:>5} {r.ok:>8} {r.error_count:>7} {r.qps:>9.1f} "
            f"{r.p50_s * 1e3:>8.2f} {r.p99_s * 1e3:>8.2f}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", required=True, help="loopback host:port of an echo server")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="callers (default 16)")
    parser.add_argument("--max-calls", type=int, default=1_000_000, help="call budget")
    parser.add_argument("--payload-bytes", type=int, default=2048, help="echo payload size")
    args = parser.parse_args(argv)
    try:
        check_loopback(args.target)
    except ValueError as exc:
        parser.error(str(exc))
    result = asyncio.run(
        measure_echo(
            args.target,
            concurrency=args.concurrency,
            duration_s=args.duration,
            max_calls=args.max_calls,
            payload_bytes=args.payload_bytes,
        )
    )
    print(format_table([result]))
    return 0 if result.error_count == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
