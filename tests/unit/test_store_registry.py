"""The registry of decided EUCs in the store: taken in the recording transaction, checked
against what each decision read, on both drivers and across PostgreSQL replicas."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eucgate.core.registry import RegistryEntry
from eucgate.store import DecisionRecord, SqliteStore, open_store
from eucgate.store.base import RegistryChanged

from tests.pgdb import fresh_schema
from tests.unit.conftest import AnyStore

T0 = datetime(2026, 6, 1, tzinfo=UTC)
ISSUER = "IEC:0588012345"


def record(n: int, digest: str, outcome: str, read: RegistryEntry | None) -> DecisionRecord:
    """A decision on EUC JUL-1 of ISSUER that read `read` in the registry."""
    decision = json.dumps(
        {
            "outcome": outcome,
            "euc_digest": digest,
            "certificate_number": "JUL-1",
            "end_user": {
                "legal_name": "Jay",
                "country_code": "IN",
                "registrations": [["IEC", "0588012345"]],
            },
            "registry_reads": [
                {
                    "issuer": ISSUER,
                    "certificate_number": "JUL-1",
                    "entry": None if read is None else read.model_dump(),
                }
            ],
        }
    ).encode()
    return DecisionRecord(
        decision_id=f"dec_{n:08d}",
        caller="erp",
        request_id=f"req-{n}",
        envelope_digest=f"{n:064x}",
        envelope=b"envelope-%d" % n,
        decision=decision,
        receipt=b"",
        outcome=outcome,
        decided_at=T0 + timedelta(seconds=n),
        bundle_digest="ab" * 32,
        importer_registrations=(),
    )


@pytest.fixture
def store(location: str) -> Iterator[AnyStore]:
    opened = open_store(location)
    yield opened
    opened.close()


def test_a_decision_takes_its_euc_and_a_stale_read_is_refused(store: AnyStore) -> None:
    assert store.registry_entry(ISSUER, "JUL-1") is None
    store.append(record(1, "d1", "APPROVED", None))
    taken = RegistryEntry(euc_digest="d1", decision_id="dec_00000001", outcome="APPROVED")
    assert store.registry_entry(ISSUER, "JUL-1") == taken
    # Decided on a registry read before the first one was recorded: refused, with the
    # entry now held, and nothing stored.
    with pytest.raises(RegistryChanged) as caught:
        store.append(record(2, "d1", "APPROVED", None))
    assert caught.value.entries == {(ISSUER, "JUL-1"): taken}
    assert store.get("dec_00000002") is None
    # Decided again on what the store holds: recorded, and the EUC stays the first's.
    store.append(record(2, "d1", "REJECTED", taken))
    assert store.registry_entry(ISSUER, "JUL-1") == taken


def test_a_rejection_leaves_the_euc_free_for_a_corrected_one(store: AnyStore) -> None:
    store.append(record(1, "d1", "REJECTED", None))
    rejected = RegistryEntry(euc_digest="d1", decision_id="dec_00000001", outcome="REJECTED")
    assert store.registry_entry(ISSUER, "JUL-1") == rejected
    store.append(record(2, "d1", "APPROVED", rejected))
    assert store.registry_entry(ISSUER, "JUL-1") == RegistryEntry(
        euc_digest="d1", decision_id="dec_00000002", outcome="APPROVED"
    )


def test_replicas_share_one_registry() -> None:
    with fresh_schema() as url:
        first, second = open_store(url), open_store(url)
        try:
            first.append(record(1, "d1", "APPROVED", None))
            with pytest.raises(RegistryChanged):
                second.append(record(2, "d1", "APPROVED", None))
        finally:
            first.close()
            second.close()


def test_a_version_4_sqlite_file_gets_its_registry_from_its_decisions(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    store = SqliteStore.open(path)
    store.append(record(1, "d1", "REJECTED", None))
    rejected = RegistryEntry(euc_digest="d1", decision_id="dec_00000001", outcome="REJECTED")
    store.append(record(2, "d1", "APPROVED", rejected))
    store.close()
    with sqlite3.connect(path) as conn:  # what a version 4 file looks like
        for table in ("euc_registry", "checkpoints", "cosignatures"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE schema_version SET version = 4")
    migrated = SqliteStore.open(path)
    try:
        assert migrated.registry_entry(ISSUER, "JUL-1") == RegistryEntry(
            euc_digest="d1", decision_id="dec_00000002", outcome="APPROVED"
        )
    finally:
        migrated.close()
