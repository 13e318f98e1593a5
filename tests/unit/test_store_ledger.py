"""The quota ledger in the store: reservations in the recording transaction, shipment
debits as logged entries, referral resolutions once each. Real SQLite files and a real
PostgreSQL (one schema per test)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from eucgate.core.canonical import canonical_json
from eucgate.errors import FailedPrecondition, NotFound, RequestConflict
from eucgate.log.entry import (
    KIND_RESOLUTION,
    KIND_SHIPMENT,
    check_any_entry,
    decode_resolution,
    decode_shipment,
    entry_kind,
)
from eucgate.store import DecisionFilter, DecisionRecord, SqliteStore, open_store
from eucgate.store.base import QuotaTaken, Reservation, Shipment
from eucgate.store.sqlite import SCHEMA_VERSION

from tests.logdata import make_record as logged_record
from tests.unit.conftest import AnyStore
from tests.unit.test_store_sqlite import make_record

LICENCE = "MOFCOM-EL-2025-000417"
T1 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def approval(n: int, quantity: str, quota: str = "1000", unit: str = "kg") -> DecisionRecord:
    return dataclasses.replace(
        make_record(n),
        reservations=(Reservation(LICENCE, "1C904", Decimal(quantity), unit, Decimal(quota)),),
    )


def shipment(decision_id: str, reference: str, quantity: str, unit: str = "kg") -> Shipment:
    return Shipment(
        shipment_id=f"shp_{reference}",
        decision_id=decision_id,
        caller="cn:customs-gateway",
        gateway_reference=reference,
        control_code="1C904",
        quantity=Decimal(quantity),
        unit=unit,
        recorded_at=T1,
    )


@pytest.fixture
def store(location: str) -> Iterator[AnyStore]:
    s = open_store(location)
    yield s
    s.close()


def test_approvals_reserve_until_the_quota_is_used(store: AnyStore) -> None:
    store.append(approval(1, "600"))
    store.append(approval(2, "0.4", unit="t"))  # converted into the ledger's kg
    (row,) = store.balances(LICENCE)
    assert (row.control_code, row.unit, row.approved, row.shipped) == (
        "1C904",
        "kg",
        Decimal("1000.0"),
        Decimal(0),
    )
    with pytest.raises(FailedPrecondition) as caught:
        store.append(approval(3, "0.001"))
    assert caught.value.reason == "QUOTA_EXHAUSTED"
    assert store.get("dec_00000003") is None
    assert store.tree_state().size == 2


def test_an_approval_that_no_longer_fits_says_what_the_store_saw(store: AnyStore) -> None:
    # The store refuses it with the totals it saw; the caller decides again on them
    # (outside the transaction) and appends that decision instead.
    store.append(approval(1, "900"))
    with pytest.raises(QuotaTaken, match="cannot cover") as caught:
        store.append(approval(2, "200"))
    assert caught.value.reason == "QUOTA_EXHAUSTED"
    assert caught.value.approved == {(LICENCE, "1C904"): Decimal("900")}
    assert store.get("dec_00000002") is None
    result = store.append(make_record(2, outcome="REJECTED"))
    assert store.get("dec_00000002") == result.record
    assert store.balances(LICENCE)[0].approved == Decimal("900")


def test_concurrent_approvals_never_pass_the_quota(store: AnyStore) -> None:
    # 200 appends of 7 kg against 100 kg: each batch sees what earlier ones reserved.
    def one(n: int) -> str:
        try:
            return store.append(approval(n, "7", quota="100")).record.outcome
        except QuotaTaken:
            return store.append(make_record(n, outcome="REJECTED")).record.outcome

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(one, range(200)))
    assert outcomes.count("APPROVED") == 14  # 14 * 7 = 98 <= 100 < 105
    assert store.balances(LICENCE)[0].approved == Decimal("98")
    assert store.stats().commits < 200  # group commit still batched them


def test_shipments_debit_an_approval_once_per_reference(store: AnyStore) -> None:
    store.append(approval(1, "500"))
    first = store.record_shipment(shipment("dec_00000001", "BOE-1", "200"))
    assert not first.replayed
    assert first.shipment.licence_number == LICENCE
    again = store.record_shipment(dataclasses.replace(shipment("dec_00000001", "BOE-1", "200")))
    assert again.replayed
    assert again.leaf_index == first.leaf_index
    assert store.balances(LICENCE)[0].shipped == Decimal("200")
    with pytest.raises(RequestConflict) as conflict:
        store.record_shipment(shipment("dec_00000001", "BOE-1", "250"))
    assert conflict.value.reason == "SHIPMENT_REFERENCE_REUSED"
    store.record_shipment(shipment("dec_00000001", "BOE-2", "0.3", unit="t"))
    with pytest.raises(FailedPrecondition) as over:
        store.record_shipment(shipment("dec_00000001", "BOE-3", "0.001"))
    assert over.value.reason == "SHIPMENT_EXCEEDS_APPROVAL"
    assert store.balances(LICENCE)[0].shipped == Decimal("500.0")
    entries = store.entries(0, 10)
    assert [entry_kind(e) for e in entries] == ["decision", KIND_SHIPMENT, KIND_SHIPMENT]
    debit = decode_shipment(entries[1])
    assert (debit.gateway_reference, debit.quantity, debit.unit) == ("BOE-1", "200", "kg")
    assert store.leaf_index("shp_BOE-2") == 2


def test_shipments_need_an_approval_that_reserved(store: AnyStore) -> None:
    store.append(make_record(1, outcome="REFERRED"))
    with pytest.raises(FailedPrecondition) as refused:
        store.record_shipment(shipment("dec_00000001", "BOE-1", "1"))
    assert refused.value.reason == "SHIPMENT_NOT_APPROVED"
    with pytest.raises(NotFound):
        store.record_shipment(shipment("dec_00000009", "BOE-2", "1"))
    store.append(approval(2, "5"))
    with pytest.raises(FailedPrecondition) as units:
        store.record_shipment(shipment("dec_00000002", "BOE-3", "1", unit="pcs"))
    assert units.value.reason == "QUOTA_UNIT_MISMATCH"
    assert store.tree_state().size == 2


def resolution(n: int, referral: str) -> DecisionRecord:
    """A logged record whose decision bytes carry the review, as a resolution's do."""
    record = logged_record(n)
    body = json.loads(record.decision)
    body["review"] = {"resolves": referral, "reviewer": "cn:officer", "note": "checked"}
    return dataclasses.replace(
        record, decision=canonical_json(body), resolves=referral, request_id=f"review-{n}"
    )


def test_a_referral_is_resolved_once(store: AnyStore) -> None:
    referred = logged_record(1)
    store.append(referred)
    assert store.list(DecisionFilter(unresolved=True), 10, "").records == (referred,)
    review = resolution(2, referred.decision_id)
    store.append(review)
    assert store.resolution_of(referred.decision_id) == review.decision_id
    assert store.list(DecisionFilter(unresolved=True), 10, "").records == (review,)
    with pytest.raises(FailedPrecondition) as twice:
        store.append(resolution(3, referred.decision_id))
    assert twice.value.reason == "REFERRAL_ALREADY_RESOLVED"
    entry = store.entries(1, 1)[0]
    assert entry_kind(entry) == KIND_RESOLUTION
    assert decode_resolution(entry).decision_id == review.decision_id
    for raw in store.entries(0, 10):
        check_any_entry(raw)


def test_version_2_store_is_migrated_keeping_its_log(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    store = SqliteStore.open(path)
    for i in range(3):
        store.append(make_record(i))
    root = store.tree_state().root
    store.close()
    with sqlite3.connect(path) as conn:  # what a version 2 file looks like
        for table in (
            "shipments",
            "reservations",
            "resolutions",
            "quota_ledger",
            "decision_parties",
            "euc_registry",
            "checkpoints",
            "cosignatures",
        ):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE log_entries RENAME COLUMN record_id TO decision_id")
        conn.execute("UPDATE schema_version SET version = 2")
    migrated = SqliteStore.open(path)
    try:
        assert migrated.tree_state().root == root
        assert migrated.leaf_index("dec_00000002") == 2
        migrated.append(approval(7, "1"))
        assert migrated.balances(LICENCE)[0].approved == Decimal(1)
    finally:
        migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
