"""The server as an operator runs it: a separate process, killed or stopped by signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from eucgate import samples
from eucgate_client.client import CertificateClient
from eucgate_client.receipt import verify_receipt
from eucgate_client.v1 import decision_pb2

from .conftest import Env
from .serverlog import follow

START_TIMEOUT = 30


@contextmanager
def server_process(
    env: Env, data_dir: Path
) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """Start `python -m eucgate serve`; yields the process, its port and its log lines."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eucgate",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--bundle",
            str(env.signed_bundle),
            "--policy-admin-key",
            str(env.admin_public_key),
            "--service-key",
            str(env.pki.service_key),
            "--insecure",
            "--init-store",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    port_found = threading.Event()
    port: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "serving":
            port.append(int(event["port"]))
            port_found.set()

    reader = follow(proc, lines, on_event)
    try:
        assert port_found.wait(START_TIMEOUT), "server did not start:\n" + "".join(lines)
        yield proc, port[0], lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=START_TIMEOUT)
        reader.join(timeout=5)


def test_acknowledged_decision_survives_kill(env: Env, tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    with (
        server_process(env, data_dir) as (proc, port, _),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        client = CertificateClient(channel, timeout=20)
        acked = client.submit(env.sign(samples.certificate(datetime.now(UTC))))
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush: only what was committed
        proc.wait(timeout=START_TIMEOUT)
    with (
        server_process(env, data_dir) as (_, port, _),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        again = CertificateClient(channel, timeout=20).get_decision(acked.decision.decision_id)
        assert again.decision == acked.decision
        assert again.receipt == acked.receipt
        verify_receipt(again.receipt, env.pki.service_public_key.read_bytes())


def test_sigterm_drains_and_exits_cleanly(env: Env, tmp_path: Path) -> None:
    with (
        server_process(env, tmp_path / "store") as (proc, port, lines),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        client = CertificateClient(channel, timeout=20)
        decision = client.submit(env.sign(samples.certificate(datetime.now(UTC)))).decision
        assert decision.outcome == decision_pb2.OUTCOME_APPROVED
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=START_TIMEOUT) == 0
    events = [json.loads(line).get("event") for line in lines if line.startswith("{")]
    assert "shutdown_complete" in events


def test_invalid_config_is_a_clear_error(env: Env, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eucgate",
            "serve",
            "--listen",
            "nowhere",
            "--service-key",
            str(env.pki.service_key),
            "--insecure",
            "--init-store",
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert "listen" in result.stderr
    assert "host:port" in result.stderr
    assert "Traceback" not in result.stderr
