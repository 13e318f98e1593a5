"""Health tells the truth: readiness follows whether a write could commit now.

Real faults, real stores, real gRPC health checks:

- a silent PostgreSQL partition (a loopback proxy that stops forwarding without closing
  anything, so connections neither reset nor answer) turns readiness NOT_SERVING within
  a bounded time, and SERVING again once it heals;
- commits that fail while reads still answer (SQLite's write lock held by another
  process, as a full disk or a stuck writer would; PostgreSQL's tree-state row locked
  past the statement timeout) turn it NOT_SERVING, and a commit, or the failure
  window's end, turns it back.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import psycopg
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.v1 import decision_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.pgdb import fresh_schema
from tests.tcpproxy import TcpProxy

from .conftest import Env

# Readiness must change within this (default probe timeout 2 s, checked every second).
BOUND = 8.0


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """Wait until `condition` holds; how long it took. Fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not reached within {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - started


def status(running: RunningServer) -> int:
    """Readiness as a probe sees it: the plaintext operations port's health Check."""
    with grpc.insecure_channel(f"127.0.0.1:{running.ops_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="eucgate.v1.CertificateService"), timeout=5
        )
    return int(reply.status)


def serving(running: RunningServer) -> bool:
    return status(running) == int(health_pb2.HealthCheckResponse.SERVING)


def not_serving(running: RunningServer) -> bool:
    return status(running) == int(health_pb2.HealthCheckResponse.NOT_SERVING)


def submit(env: Env, running: RunningServer, request_id: str, number: str) -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        client = CertificateClient(channel, timeout=30)
        return client.submit(
            env.sign(samples.certificate(datetime.now(UTC), number=number)),
            request_id=request_id,
        )


def submit_in_background(env: Env, running: RunningServer, number: str) -> threading.Thread:
    """A submission that the test expects to fail (its store cannot commit)."""

    def run() -> None:
        with contextlib.suppress(ApiError):
            submit(env, running, f"bg-{number}", number)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def started() -> Iterator[list[RunningServer]]:
    servers: list[RunningServer] = []
    yield servers
    for running in servers:
        running.stop(grace=1)


def test_sqlite_failing_commits_turn_readiness_not_serving(
    env: Env, tmp_path: Path, started: list[RunningServer]
) -> None:
    running = start_server(env.settings(tmp_path / "store", ops_listen="127.0.0.1:0"))
    started.append(running)
    first = submit(env, running, "ok-1", "JUL-EUC-2026-R1")
    assert first.decision.outcome == decision_pb2.OUTCOME_APPROVED
    lock = sqlite3.connect(tmp_path / "store" / "eucgate.db", isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # reads still answer; no write can commit
        failing = submit_in_background(env, running, "JUL-EUC-2026-R2")
        # The writer gives up after SQLite's busy timeout (10 s); readiness follows.
        within(15 + BOUND, lambda: not_serving(running))
        assert running.store.stats().failed_batches >= 1
        running.store.ping()  # a read-only probe alone would have said ready
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    failing.join(timeout=30)
    again = submit(env, running, "ok-2", "JUL-EUC-2026-R3")  # a commit: ready at once
    assert again.decision.outcome == decision_pb2.OUTCOME_APPROVED
    within(BOUND, lambda: serving(running))


@pytest.fixture
def pg_proxy() -> Iterator[tuple[TcpProxy, str]]:
    """A proxy to the real PostgreSQL, a store URL (fresh schema) through it, and the
    direct URL the test uses to lock rows."""
    with fresh_schema() as url:
        parts = urlsplit(url)
        proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        try:
            yield proxy, url
        finally:
            proxy.close()


def _through_proxy(
    env: Env,
    pg_proxy: tuple[TcpProxy, str],
    started: list[RunningServer],
    first: tuple[str, str],
    **settings: Any,
) -> RunningServer:
    """A server on PostgreSQL through the proxy, once it has approved the `first`
    (request id, certificate number)."""
    proxy, url = pg_proxy
    through = urlunsplit(urlsplit(url)._replace(netloc=f"postgres@127.0.0.1:{proxy.port}"))
    running = start_server(
        env.settings(
            env.directory / "unused-data-dir",
            store=through,
            ops_listen="127.0.0.1:0",
            **settings,
        )
    )
    started.append(running)
    assert submit(env, running, *first).decision.outcome == decision_pb2.OUTCOME_APPROVED
    return running


def test_postgresql_silent_partition_turns_readiness_not_serving_and_back(
    env: Env, pg_proxy: tuple[TcpProxy, str], started: list[RunningServer]
) -> None:
    proxy = pg_proxy[0]
    running = _through_proxy(
        env,
        pg_proxy,
        started,
        ("p-1", "JUL-EUC-2026-P1"),
        store_connect_timeout_seconds=1,
        store_statement_timeout_ms=2000,
    )
    within(BOUND, lambda: serving(running))
    proxy.stall()  # nothing is reset, nothing answers
    try:
        took = within(BOUND, lambda: not_serving(running))
    finally:
        proxy.restore()
    assert took < BOUND
    within(BOUND, lambda: serving(running))
    again = submit(env, running, "p-2", "JUL-EUC-2026-P2")
    assert again.decision.outcome == decision_pb2.OUTCOME_APPROVED


def test_postgresql_failing_commits_turn_readiness_not_serving_until_the_window_ends(
    env: Env, pg_proxy: tuple[TcpProxy, str], started: list[RunningServer]
) -> None:
    url = pg_proxy[1]
    running = _through_proxy(
        env,
        pg_proxy,
        started,
        ("c-1", "JUL-EUC-2026-C1"),
        store_statement_timeout_ms=1000,
        readiness_failure_window_seconds=3,
    )
    with psycopg.connect(url) as conn:
        # Hold the tree-state row: every batch times out on its lock, reads still answer.
        conn.execute("SELECT size FROM tree_state WHERE id = 0 FOR UPDATE")
        failing = submit_in_background(env, running, "JUL-EUC-2026-C2")
        within(BOUND, lambda: not_serving(running))
        assert running.store.stats().failed_batches >= 1
        running.store.ping()
        failing.join(timeout=30)
        conn.rollback()
    # No traffic, so no commit to prove writes work again: the window's end lets
    # traffic find out.
    within(3 + BOUND, lambda: serving(running))
