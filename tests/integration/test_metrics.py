"""Prometheus metrics over real HTTP on loopback, scraped from a real server."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.config import load_settings
from eucgate.errors import ConfigError
from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.v1 import decision_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Env

SUBMIT = ("eucgate.v1.CertificateService", "SubmitCertificate")
# (metric sample name, sorted label pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def rpc_labels(service: str, method: str, code: str) -> dict[str, str]:
    return {"grpc_service": service, "grpc_method": method, "grpc_code": code}


@pytest.fixture
def metered(env: Env, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(env.settings(tmp_path / "store", metrics_listen="127.0.0.1:0"))
    yield running
    running.stop(grace=1)


def test_scrape_counts_rpcs_decisions_and_store_batches(metered: RunningServer, env: Env) -> None:
    assert metered.metrics_server is not None
    port = metered.metrics_server.port
    before = scrape(port)
    now = datetime.now(UTC)
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
        client = CertificateClient(channel, timeout=20)
        envelope = env.sign(samples.certificate(now))
        approved = client.submit(envelope, request_id="po-metrics-1")
        assert approved.decision.outcome == decision_pb2.OUTCOME_APPROVED
        assert client.submit(envelope, request_id="po-metrics-1").replayed
        rejected = client.submit(
            env.sign(samples.unlicensed_importer(now), signer=env.unlicensed_signer)
        )
        assert rejected.decision.outcome == decision_pb2.OUTCOME_REJECTED
        with pytest.raises(ApiError) as info:
            client.submit(envelope, request_id="has spaces")
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        # Handlers outside the eucgate servicers are counted too: health (unary) and
        # reflection (a bidirectional stream).
        health = health_pb2_grpc.HealthStub(channel)
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        assert len(list(replies)) == 1
    after = scrape(port)

    def moved(metric: str, /, **labels: str) -> float:
        return value(after, metric, **labels) - value(before, metric, **labels)

    assert moved("eucgate_rpc_handled_total", **rpc_labels(*SUBMIT, "OK")) == 3
    assert moved("eucgate_rpc_handled_total", **rpc_labels(*SUBMIT, "INVALID_ARGUMENT")) == 1
    health_check = rpc_labels("grpc.health.v1.Health", "Check", "OK")
    assert moved("eucgate_rpc_handled_total", **health_check) == 1
    reflection = rpc_labels(
        "grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo", "OK"
    )
    assert moved("eucgate_rpc_handled_total", **reflection) == 1
    submit = {"grpc_service": SUBMIT[0], "grpc_method": SUBMIT[1]}
    assert moved("eucgate_rpc_handling_seconds_count", **submit) == 4
    assert moved("eucgate_rpc_handling_seconds_sum", **submit) > 0
    assert value(after, "eucgate_rpc_handling_seconds_bucket", **submit, le="+Inf") >= 4

    # The replayed submission and the refused one record nothing.
    assert moved("eucgate_decisions_recorded_total", outcome="APPROVED") == 1
    assert moved("eucgate_decisions_recorded_total", outcome="REJECTED") == 1
    assert ("eucgate_decisions_recorded_total", (("outcome", "REFERRED"),)) in after
    assert moved("eucgate_decisions_recorded_total", outcome="REFERRED") == 0

    # Two appends, in one or two batches (the writer groups what is queued together).
    assert moved("eucgate_store_batch_size_sum") == 2
    assert 1 <= moved("eucgate_store_batch_size_count") <= 2
    assert moved("eucgate_store_commit_seconds_count") == moved("eucgate_store_batch_size_count")
    assert moved("eucgate_store_commit_seconds_sum") > 0

    bundle = metered.gate.bundle
    active = {"name": bundle.name, "digest": bundle.digest}
    assert value(after, "eucgate_bundle_info", **active) == 1
    assert value(after, "eucgate_ready") == 1


def test_stop_closes_the_metrics_port(metered: RunningServer) -> None:
    assert metered.metrics_server is not None
    port = metered.metrics_server.port
    assert value(scrape(port), "eucgate_ready") == 1
    metered.stop(grace=1)
    assert metered.metrics.registry.get_sample_value("eucgate_ready") == 0
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def _listening_ports() -> set[int]:
    """TCP ports this process listens on, from Linux's /proc."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
@pytest.mark.parametrize("metrics", [False, True], ids=["metrics-disabled", "metrics-enabled"])
def test_metrics_port_opens_only_when_set(env: Env, tmp_path: Path, metrics: bool) -> None:
    before = _listening_ports()
    overrides = {"ops_listen": "127.0.0.1:0"}
    if metrics:
        overrides["metrics_listen"] = "127.0.0.1:0"
    running = start_server(env.settings(tmp_path / "store", **overrides))
    try:
        opened = _listening_ports() - before
        expected = {running.port, running.ops_port}
        if metrics:
            assert running.metrics_server is not None
            expected.add(running.metrics_server.port)
        else:
            assert running.metrics_server is None
        assert opened == expected
    finally:
        running.stop(grace=1)


def test_unusable_metrics_address_is_a_config_error(env: Env, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metrics_listen"):
        load_settings(metrics_listen="9091")
    taken = start_server(env.settings(tmp_path / "a", metrics_listen="127.0.0.1:0"))
    try:
        assert taken.metrics_server is not None
        address = f"127.0.0.1:{taken.metrics_server.port}"
        with pytest.raises(ConfigError, match="cannot listen"):
            start_server(env.settings(tmp_path / "b", metrics_listen=address))
    finally:
        taken.stop(grace=1)
