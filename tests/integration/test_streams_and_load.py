"""Long-lived streams cannot starve the API, and load shedding says why and when to retry.

Over real gRPC on loopback: hostile callers open grpc.health.v1 Watch streams (which
never end by themselves) and never read them; unary calls must still answer within
their deadline, streams beyond a limit are refused with RESOURCE_EXHAUSTED, ErrorInfo
REQUEST_STREAM_LIMIT naming the limit, and RetryInfo. Unary calls above
`max_concurrent_calls` are refused at once with REQUEST_LOAD_SHED and RetryInfo.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate_client.client import CertificateClient
from eucgate_client.v1 import audit_service_pb2, audit_service_pb2_grpc, decision_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from .conftest import Env

# What a unary call may take while the hostile streams are open: far below the deadline
# that every call timed out at before the fix.
UNARY_DEADLINE = 5.0


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    reason: str
    metadata: dict[str, str]
    retry_seconds: float | None


def refusal(error: grpc.RpcError) -> Refusal:
    """The status code, ErrorInfo and RetryInfo of a failed call."""
    call: Any = error
    status = rpc_status.from_call(call)
    reason, metadata, retry = "", {}, None
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            advice = error_details_pb2.RetryInfo()
            detail.Unpack(advice)
            retry = advice.retry_delay.ToTimedelta().total_seconds()
    return Refusal(call.code(), reason, metadata, retry)


class Watches:
    """Health/Watch streams opened on a channel and never read past their first answer."""

    def __init__(self) -> None:
        self.open: list[Any] = []
        self.refused: list[Refusal] = []

    def watch(self, channel: grpc.Channel) -> bool:
        """Open one; True if the server admitted it (it answered SERVING)."""
        stream = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        )
        try:
            first = next(stream)
        except grpc.RpcError as exc:
            self.refused.append(refusal(exc))
            return False
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        self.open.append(stream)
        return True

    def close(self) -> None:
        for stream in self.open:
            stream.cancel()
        self.open.clear()


def submit(env: Env, channel: grpc.Channel, request_id: str, number: str) -> float:
    """Submit one EUC with a short deadline; the seconds it took (it must be APPROVED)."""
    client = CertificateClient(channel, timeout=UNARY_DEADLINE)
    started = time.monotonic()
    answer = client.submit(
        env.sign(samples.certificate(datetime.now(UTC), number=number)), request_id=request_id
    )
    assert answer.decision.outcome == decision_pb2.OUTCOME_APPROVED
    return time.monotonic() - started


def eventually(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def started(env: Env, tmp_path: Path) -> Iterator[list[RunningServer]]:
    servers: list[RunningServer] = []
    yield servers
    for running in servers:
        running.stop(grace=1)


def test_sixteen_watch_streams_do_not_starve_submissions(
    env: Env, server: RunningServer, channel: grpc.Channel
) -> None:
    # Before the fix: 16 Watch streams held all 16 workers; every submission timed out.
    watches = Watches()
    try:
        for _ in range(16):
            watches.watch(channel)
        for i in range(4):
            assert submit(env, channel, f"s-{i}", f"JUL-EUC-2026-S{i}") < UNARY_DEADLINE
        # Insecure: every caller is `anonymous`, capped at max_streams_per_caller (4).
        assert len(watches.open) == 4
        assert len(watches.refused) == 12
        for refused in watches.refused:
            assert refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refused.reason == "REQUEST_STREAM_LIMIT"
            assert refused.metadata["limit"] == "caller"
            assert refused.metadata["caller"] == "anonymous"
            assert refused.metadata["max_streams"] == "4"
            assert refused.retry_seconds is not None
            assert refused.retry_seconds > 0
        # Every streaming method counts against the same caps: a Replay too.
        replay = audit_service_pb2_grpc.AuditServiceStub(channel).Replay(
            audit_service_pb2.ReplayRequest(), timeout=UNARY_DEADLINE
        )
        with pytest.raises(grpc.RpcError) as capped:
            next(replay)
        assert refusal(capped.value).reason == "REQUEST_STREAM_LIMIT"
        # A stream that ends gives its slot back.
        watches.close()
        eventually(lambda: server.admission.streams.open(caller="anonymous") == 0)
        assert watches.watch(channel)
    finally:
        watches.close()


def test_a_full_stream_pool_leaves_every_unary_worker_free(
    env: Env, tmp_path: Path, started: list[RunningServer]
) -> None:
    # One unary worker and three stream workers: the streams fill their own pool, the
    # one unary worker stays free, and a fourth stream is refused by the server limit.
    running = start_server(
        env.settings(
            tmp_path / "store",
            max_workers=1,
            stream_workers=3,
            max_streams_per_method=3,
            max_streams_per_caller=3,
        )
    )
    started.append(running)
    watches = Watches()
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        try:
            assert all(watches.watch(channel) for _ in range(3))
            assert not watches.watch(channel)
            (refused,) = watches.refused
            assert (refused.code, refused.reason) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "REQUEST_STREAM_LIMIT",
            )
            assert refused.metadata["limit"] == "server"
            assert refused.retry_seconds is not None
            assert submit(env, channel, "one-worker", "JUL-EUC-2026-W1") < UNARY_DEADLINE
            checkpoint = audit_service_pb2_grpc.AuditServiceStub(channel).GetCheckpoint(
                audit_service_pb2.GetCheckpointRequest(), timeout=UNARY_DEADLINE
            )
            assert checkpoint.tree_size == 1
        finally:
            watches.close()


def test_stream_caps_are_per_caller_and_per_method_over_mtls(
    env: Env, tmp_path: Path, started: list[RunningServer]
) -> None:
    running = start_server(
        env.secure_settings(
            tmp_path / "store",
            stream_workers=4,
            max_streams_per_method=3,
            max_streams_per_caller=2,
        )
    )
    started.append(running)
    names = ("auditor", "importer", "gateway")
    channels = {name: env.channel(running.port, name) for name in names}
    watches = Watches()
    try:
        assert watches.watch(channels["auditor"])
        assert watches.watch(channels["auditor"])
        assert not watches.watch(channels["auditor"])  # the auditor's own cap
        assert watches.watch(channels["importer"])  # other callers are not held back
        assert not watches.watch(channels["gateway"])  # but Watch has 3 open: its cap
        caller, method = watches.refused
        assert (caller.reason, caller.metadata["limit"], caller.metadata["caller"]) == (
            "REQUEST_STREAM_LIMIT",
            "caller",
            "auditor",
        )
        assert (method.reason, method.metadata["limit"], method.metadata["caller"]) == (
            "REQUEST_STREAM_LIMIT",
            "method",
            "gateway",
        )
        assert method.metadata["method"] == "/grpc.health.v1.Health/Watch"
        # Another stream method still has room for a caller under its cap.
        entries = audit_service_pb2_grpc.AuditServiceStub(channels["gateway"]).StreamEntries(
            audit_service_pb2.StreamEntriesRequest(), timeout=UNARY_DEADLINE
        )
        with pytest.raises(grpc.RpcError) as denied:  # the gateway may not read the log
            list(entries)
        assert refusal(denied.value).reason == "ROLE_NOT_ALLOWED"
        # The importer submits within its deadline while the streams stay open.
        assert submit(env, channels["importer"], "m-1", "JUL-EUC-2026-M1") < UNARY_DEADLINE
    finally:
        watches.close()
        for ch in channels.values():
            ch.close()


def test_load_shedding_says_why_and_when_to_retry(
    env: Env, tmp_path: Path, started: list[RunningServer]
) -> None:
    # One unary worker and one call in hand at most. The test holds SQLite's write lock,
    # so a submission waits in the store (up to its busy timeout) holding that worker;
    # the next unary call is over the limit and is refused at once.
    running = start_server(env.settings(tmp_path / "store", max_workers=1, max_concurrent_calls=1))
    started.append(running)
    database = tmp_path / "store" / "eucgate.db"
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        audit = audit_service_pb2_grpc.AuditServiceStub(channel)
        audit.GetCheckpoint(audit_service_pb2.GetCheckpointRequest(), timeout=UNARY_DEADLINE)
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        held = True
        results: list[float] = []

        def blocked_submit() -> None:
            results.append(submit_slow(env, channel))

        worker = threading.Thread(target=blocked_submit)
        worker.start()
        try:
            eventually(lambda: running.admission.unary_pool.held == 1)
            started_at = time.monotonic()
            with pytest.raises(grpc.RpcError) as shed:
                audit.GetCheckpoint(audit_service_pb2.GetCheckpointRequest(), timeout=5)
            assert time.monotonic() - started_at < 2.0, "a refusal must not wait for a worker"
            refused = refusal(shed.value)
            assert refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert refused.reason == "REQUEST_LOAD_SHED"
            assert refused.metadata["max_concurrent_calls"] == "1"
            assert refused.retry_seconds is not None
            assert refused.retry_seconds > 0
            lock.execute("ROLLBACK")
            held = False
        finally:
            if held:
                with contextlib.suppress(sqlite3.Error):
                    lock.execute("ROLLBACK")
            lock.close()
            worker.join(timeout=30)
        assert results, "the held submission was answered once the lock was released"
        eventually(lambda: running.admission.unary_pool.held == 0)
        audit.GetCheckpoint(audit_service_pb2.GetCheckpointRequest(), timeout=UNARY_DEADLINE)


def submit_slow(env: Env, channel: grpc.Channel) -> float:
    client = CertificateClient(channel, timeout=30)
    started = time.monotonic()
    answer = client.submit(
        env.sign(samples.certificate(datetime.now(UTC), number="JUL-EUC-2026-L1")),
        request_id="held",
    )
    assert answer.decision.outcome == decision_pb2.OUTCOME_APPROVED
    return time.monotonic() - started
