"""The server on PostgreSQL: `store` in the settings, readiness that follows the
database, and a database outage seen by clients as UNAVAILABLE, never as a lost decision.

The outage is real: the server reaches the real PostgreSQL through a loopback proxy the
test cuts and restores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.v1 import decision_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.pgdb import fresh_schema
from tests.tcpproxy import TcpProxy

from .conftest import Env

WAIT = 30.0


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.fixture
def proxy() -> Iterator[tuple[TcpProxy, str]]:
    """A proxy to the real PostgreSQL and a store URL (fresh schema) that goes through it."""
    with fresh_schema() as url:
        parts = urlsplit(url)
        cut = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
        try:
            yield cut, urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{cut.port}"))
        finally:
            cut.close()


@pytest.fixture
def pg_server(env: Env, tmp_path: object, proxy: tuple[TcpProxy, str]) -> Iterator[RunningServer]:
    _, url = proxy
    running = start_server(
        env.settings(
            env.directory / "unused-data-dir",
            store=url,
            store_connect_timeout_seconds=1,
            store_statement_timeout_ms=2000,
        )
    )
    yield running
    running.stop(grace=1)


def serving(channel: grpc.Channel) -> bool:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="eucgate.v1.CertificateService"), timeout=5
    )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_a_database_outage_is_unavailable_then_heals_losing_nothing(
    env: Env, pg_server: RunningServer, proxy: tuple[TcpProxy, str]
) -> None:
    cut, _ = proxy
    with grpc.insecure_channel(f"127.0.0.1:{pg_server.port}") as channel:
        client = CertificateClient(channel, timeout=20)
        first = client.submit(env.sign(samples.certificate(datetime.now(UTC))), request_id="a-1")
        assert first.decision.outcome == decision_pb2.OUTCOME_APPROVED
        assert serving(channel)

        cut.cut()
        envelope = env.sign(samples.certificate(datetime.now(UTC), number="JUL-EUC-2026-0099"))
        with pytest.raises(ApiError) as refused:
            client.submit(envelope, request_id="during-outage")
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert refused.value.reason in {"STORE_UNAVAILABLE", "STORE_COMMIT_UNKNOWN"}
        eventually(lambda: not serving(channel))

        cut.restore()
        eventually(lambda: serving(channel))
        again = client.get_decision(first.decision.decision_id)
        assert again.decision == first.decision
        retried = client.submit(envelope, request_id="during-outage")
        assert retried.decision.outcome == decision_pb2.OUTCOME_APPROVED
        assert pg_server.store.tree_state().size == 2
