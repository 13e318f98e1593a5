"""Replicas as processes: one request id sent to two replicas at once is one decision, and
replicas killed with SIGKILL at random moments under load lose nothing they acknowledged.

PostgreSQL runs two replicas on one database (loopback, distinct ports); SQLite runs its
one replica on its file. After the rounds, the store must hold every acknowledged decision
at the index it was acknowledged with, no index missing or repeated, a tree that gives the
root of every checkpoint issued, and no more approved than the quota.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from eucgate import samples
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import KIND_DECISION, decode_entry, entry_kind
from eucgate.signing import load_private_key
from eucgate.store import open_store
from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.dsse import Envelope
from eucgate_client.tlog import leaf_hash, open_checkpoint, root_of
from eucgate_client.v1 import certificate_pb2, decision_pb2

from tests.pgdb import fresh_schema

from .conftest import Env
from .replicas import Replica
from .test_quota import LICENCE, small_quota_bundle

ROUNDS = 20
QUOTA_KG = 150
KG_EACH = 2
CLIENTS = 6
ORIGIN = "eucgate.example/log"


@pytest.fixture(params=["postgresql", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(store_kind: str, tmp_path: Path) -> Iterator[str]:
    """ "" for each replica's SQLite file in its data dir, else a fresh PostgreSQL URL."""
    if store_kind == "sqlite":
        yield ""
    else:
        with fresh_schema() as url:
            yield url


def euc(kg: int, number: str) -> certificate_pb2.EndUserCertificate:
    cert = samples.certificate(datetime.now(UTC), number=number)
    cert.items[0].quantity.value = str(kg)
    return cert


@dataclass(frozen=True)
class Ack:
    request_id: str
    decision_id: str
    outcome: int
    leaf_index: int
    checkpoint: str


def send_at_once(
    clients: list[CertificateClient], envelope: Envelope, request_id: str
) -> list[str]:
    """Submit the same request to every client at the same moment; the decision ids."""
    barrier = threading.Barrier(len(clients))

    def send(client: CertificateClient) -> str:
        barrier.wait(timeout=30)
        return str(client.submit(envelope, request_id=request_id).decision.decision_id)

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(send, clients))


def test_one_request_id_on_two_replicas_at_once_is_one_decision(env: Env, tmp_path: Path) -> None:
    with fresh_schema() as url:
        replicas = [Replica(env, tmp_path / f"r{i}", env.signed_bundle, url) for i in range(2)]
        try:
            ports = [r.start() for r in replicas]
            channels = [grpc.insecure_channel(f"127.0.0.1:{p}") for p in ports]
            clients = [CertificateClient(c, timeout=30) for c in channels]
            for n in range(10):
                envelope = env.sign(euc(1, f"JUL-EUC-2026-{n:04d}"))
                ids = send_at_once(clients, envelope, f"same-{n}")
                assert ids[0] == ids[1], f"request same-{n} was decided twice: {ids}"
            for channel in channels:
                channel.close()
        finally:
            for replica in replicas:
                replica.kill()
        store = open_store(url)
        try:
            entries = store.entries(0, 1000)
        finally:
            store.close()
        assert sorted(decode_entry(e).request_id for e in entries) == sorted(
            f"same-{n}" for n in range(10)
        )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_replicas_killed_at_random_lose_nothing_acknowledged(
    env: Env, tmp_path: Path, store_kind: str, location: str
) -> None:
    bundle = small_quota_bundle(env, tmp_path, str(QUOTA_KG))
    count = 2 if store_kind == "postgresql" else 1
    data_dir = tmp_path / "data"  # SQLite: the one replica's file survives its restarts
    replicas = [Replica(env, data_dir, bundle, location) for _ in range(count)]
    for replica in replicas:
        replica.start()
    acks: list[Ack] = []
    acks_lock = threading.Lock()
    stop = threading.Event()
    seq = iter(range(1_000_000))
    seq_lock = threading.Lock()

    def client_loop(c: int) -> None:
        rng = random.Random(c)
        while not stop.is_set():
            with seq_lock:
                n = next(seq)
            request_id = f"load-{c}-{n}"
            envelope = env.sign(euc(KG_EACH, f"JUL-EUC-{c:02d}-{n:06d}"))
            for _attempt in range(6):  # an unacknowledged request is retried as itself
                ports = [r.port for r in replicas if r.port]
                if not ports or stop.is_set():
                    time.sleep(0.05)
                    continue
                port = rng.choice(ports)
                try:
                    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                        reply = CertificateClient(channel, timeout=10).submit(
                            envelope, request_id=request_id
                        )
                except (ApiError, grpc.RpcError):
                    time.sleep(0.05)
                    continue
                with acks_lock:
                    acks.append(
                        Ack(
                            request_id,
                            reply.decision.decision_id,
                            reply.decision.outcome,
                            reply.receipt.leaf_index,
                            reply.receipt.checkpoint,
                        )
                    )
                break

    clients = [threading.Thread(target=client_loop, args=(c,)) for c in range(CLIENTS)]
    for thread in clients:
        thread.start()
    rng = random.Random(8)
    started = time.monotonic()
    try:
        for _round in range(ROUNDS):
            time.sleep(rng.uniform(0.2, 0.9))
            victim = rng.choice(replicas)
            victim.kill()
            victim.start()
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
        for replica in replicas:
            replica.kill()
    assert time.monotonic() - started < 200
    assert len(acks) > ROUNDS, "too little load went through to test anything"

    store = open_store(location or str(data_dir / "eucgate.db"))
    try:
        size = store.tree_state().size
        entries = store.entries(0, size + 10)
        balances = store.balances(LICENCE)
    finally:
        store.close()
    # no index missing or repeated: exactly `size` entries, indices 0..size-1
    assert len(entries) == size
    logged = [decode_entry(e) for e in entries if entry_kind(e) == KIND_DECISION]
    assert len(logged) == size
    ids = [e.decision_id for e in logged]
    assert len(set(ids)) == size, "a decision was logged twice"
    assert len({e.request_id for e in logged}) == size, "a request was decided twice"
    # every acknowledged decision is in the log, where its receipt says: even a retry
    # answered after the committing replica died carries a checkpoint and its index
    logged_ids = set(ids)
    for ack in acks:
        assert ack.decision_id in logged_ids
        assert ack.checkpoint, f"{ack.decision_id} was acknowledged without a checkpoint"
        assert ids[ack.leaf_index] == ack.decision_id
    by_request = {a.request_id: a.decision_id for a in acks}
    assert len(by_request) == len(acks), "one request was acknowledged twice"
    # the tree gives the root of every checkpoint any replica issued
    key = load_private_key(env.pki.service_key)
    verifier = CheckpointSigner(ORIGIN, key).verifier  # type: ignore[arg-type]
    leaves = [leaf_hash(e) for e in entries]
    notes = {a.checkpoint for a in acks if a.checkpoint}
    assert notes
    for note in notes:
        checkpoint = open_checkpoint(note, verifier)
        assert checkpoint.size <= size
        assert root_of(leaves[: checkpoint.size]) == checkpoint.root
    # never approved past the quota, and the ledger agrees with the log
    approved = sum(1 for e in logged if json.loads(e.decision)["outcome"] == "APPROVED")
    assert approved * KG_EACH <= QUOTA_KG
    total = balances[0].approved if balances else Decimal(0)
    assert total == approved * KG_EACH
    assert any(a.outcome == decision_pb2.OUTCOME_APPROVED for a in acks)
