"""The audit log inside the stores: leaves, tree state, checkpoints, proofs. The tests
taking `store` run on SQLite and PostgreSQL; those that open a file are SQLite's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.errors import InvalidSubmission, StoreError
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import decode_entry, encode_entry
from eucgate.store import AppendResult, SqliteStore, open_store
from eucgate.store.sqlite import SCHEMA_VERSION
from eucgate_client.tlog import (
    EMPTY_ROOT,
    leaf_hash,
    open_checkpoint,
    root_of,
    verify_consistency,
    verify_inclusion,
)

from tests.unit.conftest import AnyStore
from tests.unit.test_store_sqlite import make_record, run_threads

ORIGIN = "eucgate.example/log"


def _note(result: AppendResult) -> str:
    assert result.checkpoint is not None
    return result.checkpoint.note


@pytest.fixture
def signer(service_key: ed25519.Ed25519PrivateKey) -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, service_key)


@pytest.fixture
def store(location: str, signer: CheckpointSigner) -> Iterator[AnyStore]:
    opened = open_store(location, signer)
    yield opened
    opened.close()


def test_a_new_store_has_an_empty_tree_and_its_checkpoint(
    store: AnyStore, signer: CheckpointSigner
) -> None:
    assert store.tree_state().size == 0
    assert store.tree_state().root == EMPTY_ROOT
    stored = store.latest_checkpoint()
    assert stored is not None
    assert open_checkpoint(stored.note, signer.verifier).size == 0


def test_appends_get_consecutive_leaves_and_a_checkpoint_that_proves_them(
    store: AnyStore, signer: CheckpointSigner
) -> None:
    records = [make_record(i) for i in range(5)]
    for i, record in enumerate(records):
        result = store.append(record)
        assert result.leaf_index == i
        checkpoint = open_checkpoint(_note(result), signer.verifier)
        assert checkpoint.size == i + 1
        leaf, proof = store.inclusion_proof(i, checkpoint.size)
        assert leaf == leaf_hash(encode_entry(record))
        verify_inclusion(i, checkpoint.size, leaf, proof, checkpoint.root)
    entries = store.entries(0, 100)
    assert [decode_entry(e).decision_id for e in entries] == [r.decision_id for r in records]
    assert store.tree_state().root == root_of(leaf_hash(e) for e in entries)


def test_replays_and_conflicts_add_no_leaf(store: AnyStore) -> None:
    first = store.append(make_record(1, request_id="r", digest="d" * 64))
    replay = store.append(make_record(2, request_id="r", digest="d" * 64))
    assert replay.replayed
    assert replay.leaf_index == first.leaf_index == 0
    with pytest.raises(Exception, match="already used"):
        store.append(make_record(3, request_id="r", digest="e" * 64))
    assert store.tree_state().size == 1


def test_concurrent_appends_share_commits_and_all_prove_inclusion(
    store: AnyStore, signer: CheckpointSigner
) -> None:
    results = run_threads(40, lambda i: store.append(make_record(i)))
    assert all(isinstance(r, AppendResult) for r in results)
    appended = [r for r in results if isinstance(r, AppendResult)]
    assert sorted(r.leaf_index for r in appended if r.leaf_index is not None) == list(range(40))
    assert store.stats().commits < 40  # group commit: batches, each with one checkpoint
    for result in appended:
        assert result.leaf_index is not None
        checkpoint = open_checkpoint(_note(result), signer.verifier)
        # the checkpoint of the commit that included the record
        assert checkpoint.size > result.leaf_index
        leaf, proof = store.inclusion_proof(result.leaf_index, checkpoint.size)
        assert leaf == leaf_hash(encode_entry(result.record))
        verify_inclusion(result.leaf_index, checkpoint.size, leaf, proof, checkpoint.root)


def test_every_stored_proof_verifies(store: AnyStore) -> None:
    roots = [EMPTY_ROOT]
    for i in range(40):
        store.append(make_record(i))
        roots.append(store.tree_state().root)
    leaves = [leaf_hash(e) for e in store.entries(0, 100)]
    for size in range(1, 41):
        assert roots[size] == root_of(leaves[:size])
        for index in range(size):
            leaf, proof = store.inclusion_proof(index, size)
            verify_inclusion(index, size, leaf, proof, roots[size])
        for first in range(size + 1):
            verify_consistency(
                first, size, roots[first], roots[size], store.consistency_proof(first, size)
            )


@pytest.mark.parametrize(
    ("call", "reason", "field"),
    [
        (lambda s: s.inclusion_proof(-1, 3), "LOG_INDEX_INVALID", "leaf_index"),
        (lambda s: s.inclusion_proof(3, 3), "LOG_INDEX_BEYOND_SIZE", "leaf_index"),
        (lambda s: s.inclusion_proof(2, 1), "LOG_INDEX_BEYOND_SIZE", "leaf_index"),
        (lambda s: s.inclusion_proof(0, 4), "LOG_SIZE_BEYOND_TREE", "tree_size"),
        (lambda s: s.inclusion_proof(0, -1), "LOG_SIZE_INVALID", "tree_size"),
        (lambda s: s.consistency_proof(2, 1), "PROOF_SIZES_INVALID", "first_size"),
        (lambda s: s.consistency_proof(-1, 2), "LOG_SIZE_INVALID", "first_size"),
        (lambda s: s.consistency_proof(1, 4), "LOG_SIZE_BEYOND_TREE", "second_size"),
    ],
)
def test_bad_proof_requests_are_invalid_arguments(
    store: AnyStore, call: object, reason: str, field: str
) -> None:
    for i in range(3):
        store.append(make_record(i))
    with pytest.raises(InvalidSubmission) as info:
        call(store)  # type: ignore[operator]
    assert (info.value.reason, info.value.field) == (reason, field)


def test_a_lost_checkpoint_is_re_signed_identically_at_open(
    tmp_path: Path, signer: CheckpointSigner
) -> None:
    path = tmp_path / "log.db"
    store = SqliteStore.open(path, signer)
    for i in range(3):
        note = _note(store.append(make_record(i)))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM checkpoint")
    again = SqliteStore.open(path, signer)
    try:
        stored = again.latest_checkpoint()
        assert stored is not None
        assert stored.note == note
    finally:
        again.close()


def test_version_1_store_is_migrated_in_append_order(
    tmp_path: Path, signer: CheckpointSigner
) -> None:
    path = tmp_path / "v1.db"
    store = SqliteStore.open(path)
    records = [make_record(i) for i in (5, 3, 9, 1)]
    for record in records:
        store.append(record)
    expected_root = store.tree_state().root
    store.close()
    with sqlite3.connect(path) as conn:  # what a version 1 file looks like
        ledger = ("shipments", "reservations", "resolutions", "quota_ledger")
        log = ("log_entries", "tree_nodes", "tree_state", "checkpoint")
        later = ("decision_parties", "euc_registry", "checkpoints", "cosignatures")
        for table in (*ledger, *log, *later):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE schema_version SET version = 1")
    migrated = SqliteStore.open(path, signer)
    try:
        assert migrated.tree_state().root == expected_root
        assert [decode_entry(e).decision_id for e in migrated.entries(0, 10)] == [
            r.decision_id for r in records
        ]
        stored = migrated.latest_checkpoint()
        assert stored is not None
        assert stored.size == 4
        assert migrated.append(make_record(20)).leaf_index == 4
    finally:
        migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_damaged_tree_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    store = SqliteStore.open(path)
    for i in range(3):
        store.append(make_record(i))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 1")
    with pytest.raises(StoreError, match="do not give the stored root"):
        SqliteStore.open(path)


def test_every_checkpoint_is_kept_with_its_cosignatures(
    location: str, signer: CheckpointSigner
) -> None:
    store = open_store(location, signer)
    try:
        sizes = []
        for i in range(3):
            sizes.append(store.append(make_record(i)).checkpoint.size)  # type: ignore[union-attr]
        assert sizes == [1, 2, 3]
        kept = [store.checkpoint_at(n) for n in sizes]
        assert all(k is not None and k.size == n for k, n in zip(kept, sizes, strict=True))
        assert kept[0].note.split("\n")[1] == "1"  # type: ignore[union-attr]
        assert store.checkpoint_at(99) is None
        store.add_cosignature(2, "witness.example/w1", "— witness.example/w1 AAAA")
        store.add_cosignature(2, "witness.example/w1", "— witness.example/w1 AAAA")  # again
        assert store.cosignatures(2) == ["— witness.example/w1 AAAA"]
        assert store.cosignatures(1) == []
    finally:
        store.close()
