"""What only the PostgreSQL store promises: migrations, and many replicas (here, several
`PostgresStore`s on one real database) sharing one log, one ledger and one set of
idempotency keys; a database outage fails writes with StoreError and heals by itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.errors import StoreError
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import decode_entry
from eucgate.store import AppendResult, PoolSettings, PostgresStore
from eucgate.store.base import QuotaTaken, Reservation
from eucgate.store.postgresql import SCHEMA_VERSION, migrate
from eucgate_client.tlog import leaf_hash, open_checkpoint, root_of, verify_inclusion

from tests.pgdb import fresh_schema
from tests.tcpproxy import TcpProxy
from tests.unit.test_store_sqlite import make_record, run_threads, wait_until

REPLICAS = 3
LICENCE = "MOFCOM-EL-2025-000417"


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_schema() as fresh:
        yield fresh


@pytest.fixture
def signer(service_key: ed25519.Ed25519PrivateKey) -> CheckpointSigner:
    return CheckpointSigner("eucgate.example/log", service_key)


@pytest.fixture
def replicas(url: str, signer: CheckpointSigner) -> Iterator[list[PostgresStore]]:
    opened = [PostgresStore.open(url, signer) for _ in range(REPLICAS)]
    yield opened
    for store in opened:
        store.close()


def version_of(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
    assert row is not None
    return int(row[0])


def test_migrations_are_idempotent_and_safe_to_run_at_once(url: str) -> None:
    results = run_threads(4, lambda _i: migrate(url))
    assert results == [SCHEMA_VERSION] * 4
    assert migrate(url) == SCHEMA_VERSION
    assert version_of(url) == SCHEMA_VERSION
    store = PostgresStore.open(url)  # opening migrates too, and changes nothing now
    try:
        assert store.tree_state().size == 0
    finally:
        store.close()


def test_a_newer_schema_is_refused(url: str) -> None:
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this eucgate understands"):
        PostgresStore.open(url)


def test_an_unreachable_database_is_a_store_error_at_open() -> None:
    with pytest.raises(StoreError, match="cannot"):
        PostgresStore.open(
            "postgresql://postgres@127.0.0.1:1/test", settings=PoolSettings(connect_timeout_s=1)
        )


def test_replicas_append_to_one_log_with_no_index_lost_or_repeated(
    replicas: list[PostgresStore], signer: CheckpointSigner
) -> None:
    results = run_threads(60, lambda i: replicas[i % REPLICAS].append(make_record(i)))

    appended = [r for r in results if isinstance(r, AppendResult)]
    assert len(appended) == 60
    assert sorted(r.leaf_index or 0 for r in appended) == list(range(60))
    entries = replicas[0].entries(0, 1000)
    assert len(entries) == 60
    assert sorted(decode_entry(e).decision_id for e in entries) == sorted(
        make_record(i).decision_id for i in range(60)
    )
    assert replicas[1].tree_state().root == root_of(leaf_hash(e) for e in entries)
    for result in appended:  # each caller's checkpoint proves its own record
        assert result.checkpoint is not None
        assert result.leaf_index is not None
        checkpoint = open_checkpoint(result.checkpoint.note, signer.verifier)
        leaf, proof = replicas[2].inclusion_proof(result.leaf_index, checkpoint.size)
        assert leaf == leaf_hash(entries[result.leaf_index])
        verify_inclusion(result.leaf_index, checkpoint.size, leaf, proof, checkpoint.root)
    latest = replicas[0].latest_checkpoint()
    assert latest is not None
    assert latest.size == 60


def test_the_same_request_on_every_replica_at_once_is_stored_once(
    replicas: list[PostgresStore],
) -> None:
    results = run_threads(
        12,
        lambda i: replicas[i % REPLICAS].append(make_record(i, request_id="dup", digest="d" * 64)),
    )
    appended = [r for r in results if isinstance(r, AppendResult)]
    assert len(appended) == 12
    winners = {r.record.decision_id for r in appended if not r.replayed}
    assert len(winners) == 1
    assert {r.record.decision_id for r in appended} == winners
    assert {r.leaf_index for r in appended} == {0}
    assert replicas[0].tree_state().size == 1


def test_replicas_never_approve_past_a_quota(replicas: list[PostgresStore]) -> None:
    def one(n: int) -> str:
        record = dataclasses.replace(
            make_record(n),
            reservations=(Reservation(LICENCE, "1C904", Decimal(7), "kg", Decimal(100)),),
        )
        replica = replicas[n % REPLICAS]
        try:
            return replica.append(record).record.outcome
        except QuotaTaken:
            return replica.append(make_record(n, outcome="REJECTED")).record.outcome

    with ThreadPoolExecutor(max_workers=24) as pool:
        outcomes = list(pool.map(one, range(120)))
    assert outcomes.count("APPROVED") == 14  # 14 * 7 = 98 <= 100 < 105
    assert replicas[0].balances(LICENCE)[0].approved == Decimal(98)


def test_an_outage_fails_writes_and_heals_by_itself(url: str) -> None:
    parts = urlsplit(url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    through = urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{proxy.port}"))
    store = PostgresStore.open(through, settings=PoolSettings(connect_timeout_s=1))
    try:
        before = store.append(make_record(1))
        proxy.cut()
        with pytest.raises(StoreError):
            store.append(make_record(2))
        with pytest.raises(StoreError):
            store.ping()
        proxy.restore()

        def healthy() -> bool:
            try:
                store.ping()
            except StoreError:
                return False
            return True

        wait_until(healthy)
        after = store.append(make_record(3))
        assert after.leaf_index == 1  # the refused write took no index
        assert store.get(before.record.decision_id) == before.record
        assert store.get("dec_00000002") is None
    finally:
        store.close()
        proxy.close()
