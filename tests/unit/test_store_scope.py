"""Importer scopes in the store: decisions indexed by the parties their signed bytes
name, listed only for those parties, on both drivers; stores written before the index
existed are indexed when they are opened."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from eucgate.store import DecisionFilter, DecisionRecord, SqliteStore, open_store
from eucgate.store.postgresql import SCHEMA_VERSION as PG_VERSION
from eucgate.store.postgresql import migrate
from eucgate.store.sqlite import SCHEMA_VERSION

from tests.pgdb import fresh_schema
from tests.unit.conftest import AnyStore

T0 = datetime(2026, 6, 1, tzinfo=UTC)
JAY = ("IEC", "0588012345")
KAVERI = ("IEC", "0716054321")


def record(n: int, importer: tuple[str, str], end_user: tuple[str, str]) -> DecisionRecord:
    decision = json.dumps(
        {
            "outcome": "APPROVED",
            "importer": {"legal_name": "I", "registrations": [list(importer)]},
            "end_user": {"legal_name": "E", "registrations": [list(end_user)]},
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
        outcome="APPROVED",
        decided_at=T0 + timedelta(seconds=n),
        bundle_digest="ab" * 32,
        importer_registrations=(importer[1],),
    )


@pytest.fixture
def store(location: str) -> Iterator[AnyStore]:
    opened = open_store(location)
    yield opened
    opened.close()


def ids(store: AnyStore, parties: frozenset[str] | None, page_size: int = 2) -> list[str]:
    flt = DecisionFilter(parties=parties)
    found, token = [], ""
    while True:
        page = store.list(flt, page_size, token)
        found += [r.decision_id for r in page.records]
        token = page.next_page_token
        if not token:
            return found


def fill(store: AnyStore) -> None:
    store.append(record(1, JAY, JAY))
    store.append(record(2, KAVERI, KAVERI))
    store.append(record(3, KAVERI, JAY))  # Kaveri imports for end user Jay-Ushin


def test_a_scope_lists_only_decisions_naming_its_parties(store: AnyStore) -> None:
    fill(store)
    assert ids(store, frozenset({"IEC:0588012345"})) == ["dec_00000003", "dec_00000001"]
    assert ids(store, frozenset({"IEC:0716054321"})) == ["dec_00000003", "dec_00000002"]
    assert ids(store, frozenset({"IEC:0716054321", "IEC:0588012345"}), 1) == [
        "dec_00000003",
        "dec_00000002",
        "dec_00000001",
    ]
    assert ids(store, frozenset({"GSTIN:0588012345"})) == []  # the scheme counts
    assert ids(store, frozenset()) == []
    assert len(ids(store, None)) == 3
    assert store.get("dec_00000003") is not None
    assert store.get("dec_00000003").parties == {"IEC:0588012345", "IEC:0716054321"}  # type: ignore[union-attr]


def test_a_version_3_sqlite_file_is_indexed_at_open(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    store = SqliteStore.open(path)
    fill(store)
    store.close()
    with sqlite3.connect(path) as conn:  # what a version 3 file looks like
        for table in ("decision_parties", "euc_registry", "checkpoints", "cosignatures"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE schema_version SET version = 3")
    migrated = SqliteStore.open(path)
    try:
        assert ids(migrated, frozenset({"IEC:0588012345"})) == ["dec_00000003", "dec_00000001"]
    finally:
        migrated.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_1_postgresql_database_is_indexed_by_migration() -> None:
    with fresh_schema() as url:
        store = open_store(url)
        fill(store)
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:  # what version 1 looks like
            for table in ("checkpoints", "cosignatures", "euc_registry", "decision_parties"):
                conn.execute(f"DROP TABLE {table}")
            conn.execute("UPDATE schema_version SET version = 1")
        assert migrate(url) == PG_VERSION
        migrated = open_store(url)
        try:
            assert ids(migrated, frozenset({"IEC:0716054321"})) == [
                "dec_00000003",
                "dec_00000002",
            ]
        finally:
            migrated.close()
