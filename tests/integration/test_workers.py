"""`eucgate serve --workers 2` on SQLite: two processes on one port, one store, one log.

Calls go over several connections (the kernel spreads connections, not calls, over the
workers). Under concurrent load with races on one quota, on one request id and on one
EUC number, the file must hold one log (no index missing or repeated, the root of every
checkpoint issued), every acknowledged decision at its index, one decision per request
id, one use per EUC and no more approved than the quota, as with PostgreSQL replicas.
Each worker serves its own metrics; a second server on the store is refused while the
workers run; a worker that dies takes the server down (and its lock with it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import decode_entry
from eucgate.signing import load_private_key
from eucgate.store import open_store
from eucgate_client.client import CertificateClient
from eucgate_client.tlog import leaf_hash, open_checkpoint, root_of
from eucgate_client.v1 import decision_pb2

from .conftest import Env
from .serverlog import follow
from .test_quota import LICENCE, small_quota_bundle
from .test_replicas import ORIGIN, euc

START_TIMEOUT = 60
QUOTA_KG = 40
KG_EACH = 2
CONNECTIONS = 8


@dataclass
class Server:
    """A `serve --workers N` process: its port and its workers' pids, from its log."""

    proc: subprocess.Popen[str]
    port: int
    workers: list[int]
    lines: list[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(env: Env, data_dir: Path, bundle: Path, *extra: str) -> Server:
    """Start `eucgate serve --workers 2` and wait until it logs that all workers serve."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "eucgate", "serve", "--workers", "2"),
            *("--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--bundle", str(bundle)),
            *("--policy-admin-key", str(env.admin_public_key)),
            *("--service-key", str(env.pki.service_key), "--insecure", "--init-store", *extra),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()
    server = Server(proc, 0, [], lines)

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "worker_serving":
            server.workers.append(int(event["pid"]))
        if event.get("event") == "workers_serving":
            server.port = int(event["port"])
            found.set()

    follow(proc, lines, on_event)
    if not found.wait(START_TIMEOUT):
        proc.kill()
        raise AssertionError("server did not start:\n" + "".join(lines[-30:]))
    return server


@pytest.fixture
def bundle(env: Env, tmp_path: Path) -> Path:
    return small_quota_bundle(env, tmp_path, str(QUOTA_KG))


@pytest.fixture
def connections() -> Iterator[list[grpc.Channel]]:
    opened: list[grpc.Channel] = []
    yield opened
    for channel in opened:
        channel.close()


def connect(port: int, opened: list[grpc.Channel]) -> list[CertificateClient]:
    """CONNECTIONS clients, each over a connection of its own."""
    for _ in range(CONNECTIONS):
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
        opened.append(channel)
    return [CertificateClient(c, timeout=30) for c in opened]


def rpcs_counted(metrics_port: int) -> float:
    """SubmitCertificate calls one worker's metrics endpoint counted."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("eucgate_rpc_handled_total{") and "SubmitCertificate" in line
    )


@pytest.mark.timeout(300)
def test_two_workers_on_one_store_keep_one_log_and_every_invariant(
    env: Env, tmp_path: Path, bundle: Path, connections: list[grpc.Channel]
) -> None:
    data_dir = tmp_path / "data"
    metrics = free_port()
    server = start(env, data_dir, bundle, "--metrics-listen", f"127.0.0.1:{metrics}")
    try:
        assert len(set(server.workers)) == 2
        clients = connect(server.port, connections)
        replies: list[tuple[str, decision_pb2.Decision, decision_pb2.Receipt]] = []
        lock = threading.Lock()

        def submit(n: int) -> None:
            # two connections each: a request id, and an EUC number under two request ids
            first, second = clients[n % CONNECTIONS], clients[(n + 1) % CONNECTIONS]
            envelope = env.sign(euc(KG_EACH, f"JUL-EUC-W-{n:05d}"))
            barrier = threading.Barrier(3)

            def send(client: CertificateClient, request_id: str) -> None:
                barrier.wait(timeout=30)
                reply = client.submit(envelope, request_id=request_id)
                with lock:
                    replies.append((request_id, reply.decision, reply.receipt))

            with ThreadPoolExecutor(max_workers=3) as pool:
                done = [
                    pool.submit(send, first, f"same-{n}"),
                    pool.submit(send, second, f"same-{n}"),
                    pool.submit(send, second, f"other-{n}"),
                ]
                for future in done:
                    future.result()

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(submit, range(40)))
        # each worker answered some of the calls, and counts them in its own metrics
        assert rpcs_counted(metrics) > 0
        assert rpcs_counted(metrics + 1) > 0
        # the lock the parent holds keeps any other server off the store
        second = subprocess.run(
            [
                *(sys.executable, "-m", "eucgate", "serve", "--listen", "127.0.0.1:0"),
                *("--data-dir", str(data_dir), "--bundle", str(bundle)),
                *("--policy-admin-key", str(env.admin_public_key)),
                *("--service-key", str(env.pki.service_key), "--insecure"),
            ],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        assert second.returncode != 0
        assert "another eucgate process" in second.stderr
    finally:
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=START_TIMEOUT)
    assert code == 0, "".join(server.lines[-30:])

    store = open_store(str(data_dir / "eucgate.db"))
    try:
        size = store.tree_state().size
        entries = store.entries(0, size + 10)
        balances = store.balances(LICENCE)
    finally:
        store.close()
    logged = [decode_entry(e) for e in entries]
    # one log: `size` entries at 0..size-1, one per request id
    assert len(entries) == size == 80
    assert sorted(e.request_id for e in logged) == sorted(
        f"{kind}-{n}" for kind in ("same", "other") for n in range(40)
    )
    ids = [e.decision_id for e in logged]
    by_request: dict[str, str] = {}
    for request_id, decision, receipt in replies:
        # one decision per request id, acknowledged at the index that holds it
        assert by_request.setdefault(request_id, decision.decision_id) == decision.decision_id
        assert ids[receipt.leaf_index] == decision.decision_id
    # the tree gives the root of every checkpoint either worker issued
    verifier = CheckpointSigner(ORIGIN, load_private_key(env.pki.service_key)).verifier  # type: ignore[arg-type]
    leaves = [leaf_hash(e) for e in entries]
    for note in {receipt.checkpoint for _, _, receipt in replies}:
        checkpoint = open_checkpoint(note, verifier)
        assert root_of(leaves[: checkpoint.size]) == checkpoint.root
    # one use per EUC: of the two decisions for each number, at most one is not REJECTED
    outcomes = {e.request_id: json.loads(e.decision)["outcome"] for e in logged}
    for n in range(40):
        assert [outcomes[f"same-{n}"], outcomes[f"other-{n}"]].count("REJECTED") >= 1
    # never approved past the quota, and the ledger agrees with the log
    approved = Counter(outcomes.values())["APPROVED"]
    assert 0 < approved * KG_EACH <= QUOTA_KG
    assert balances[0].approved == Decimal(approved * KG_EACH)


@pytest.mark.timeout(120)
def test_a_worker_that_dies_stops_the_server_and_frees_the_store(
    env: Env, tmp_path: Path, bundle: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start(env, data_dir, bundle)
    os.kill(server.workers[0], signal.SIGKILL)
    code = server.proc.wait(timeout=START_TIMEOUT)
    assert code != 0
    assert any("worker_exited" in line for line in server.lines)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the other worker is gone too
        try:
            os.kill(server.workers[1], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the other worker outlived its server")
    again = start(env, data_dir, bundle)  # the lock went with them
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(timeout=START_TIMEOUT) == 0
