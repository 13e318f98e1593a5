"""Two SQLite stores on one file, as the worker processes of one server hold it: each
commit reads the tree state under SQLite's write lock, so their appends make one log.

The stores here are two objects in one process (each with its own writer connection and
thread), which is what SQLite sees from two workers; tests/integration/test_workers.py
runs real worker processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.errors import RequestConflict, StoreError
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.store import AppendResult, SqliteStore, StoreLock
from eucgate_client.tlog import leaf_hash, open_checkpoint, root_of

from tests.unit.test_store_sqlite import make_record

ORIGIN = "eucgate.example/log"


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def pair(tmp_path: Path, signer: CheckpointSigner) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    """Two stores on one file under one lock, as a server's parent holds it."""
    path = tmp_path / "eucgate.db"
    lock = StoreLock.take(path)
    first = SqliteStore.open(path, signer, held=lock)
    second = SqliteStore.open(path, signer, held=lock)
    try:
        yield first, second
    finally:
        first.close()
        second.close()
        lock.release()


def test_appends_through_two_stores_on_one_file_make_one_log(
    pair: tuple[SqliteStore, SqliteStore], signer: CheckpointSigner
) -> None:
    stores = pair
    count = 120

    def append(n: int) -> AppendResult:
        return stores[n % 2].append(make_record(n))

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(append, range(count)))

    size = stores[0].tree_state().size
    assert size == count == stores[1].tree_state().size
    assert sorted(r.leaf_index for r in results if r.leaf_index is not None) == list(range(count))
    entries = stores[0].entries(0, count + 1)
    leaves = [leaf_hash(e) for e in entries]
    assert root_of(leaves) == stores[0].tree_state().root
    for result in results:
        assert result.leaf_index is not None
        assert result.checkpoint is not None
        checkpoint = open_checkpoint(result.checkpoint.note, signer.verifier)
        # each caller's checkpoint covers its leaf, and is one the log keeps
        assert checkpoint.size > result.leaf_index
        assert checkpoint.root == root_of(leaves[: checkpoint.size])
        assert stores[1].checkpoint_at(checkpoint.size) == result.checkpoint
        _, proof = stores[1].inclusion_proof(result.leaf_index, checkpoint.size)
        assert len(proof) <= count.bit_length()
    latest = stores[0].latest_checkpoint()
    assert latest is not None
    assert latest.size == count, "the latest checkpoint moved back"


def test_one_request_id_through_both_stores_at_once_is_stored_once(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    def append_at_once(n: int) -> list[AppendResult]:
        barrier = threading.Barrier(2)
        record = make_record(n, request_id=f"same-{n}")

        def append(store: SqliteStore) -> AppendResult:
            barrier.wait(timeout=30)
            return store.append(record)

        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(append, pair))

    for n in range(20):
        a, b = append_at_once(n)
        assert a.record.decision_id == b.record.decision_id
        assert sorted((a.replayed, b.replayed)) == [False, True]
        assert a.leaf_index == b.leaf_index


def test_a_request_id_reused_with_another_envelope_through_the_other_store_conflicts(
    pair: tuple[SqliteStore, SqliteStore],
) -> None:
    pair[0].append(make_record(1, request_id="r"))
    with pytest.raises(RequestConflict):
        pair[1].append(make_record(2, request_id="r", digest="f" * 64))


def test_a_second_server_is_refused_while_the_workers_hold_the_lock(
    pair: tuple[SqliteStore, SqliteStore], tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="another eucgate process"):
        SqliteStore.open(tmp_path / "eucgate.db")
