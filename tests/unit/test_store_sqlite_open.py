"""What SQLite's open checks and what it leaves to `db check` (check_file), on real
files: open reads only what the next append depends on (schema, tree state, peaks, the
log's tail), so damage elsewhere in a large file does not hold a restart for the time
a full read takes; check_file reads every page and finds it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eucgate.errors import StoreError
from eucgate.store import SqliteStore
from eucgate.store.sqlite import check_file
from eucgate_client.tlog import leaf_hash, root_of

from tests.logdata import make_record

PAGE = 4096  # SQLite's default page size, which the store keeps


def filled(path: Path, count: int) -> list[bytes]:
    """A closed store of `count` records, its WAL folded into the file; the entries."""
    store = SqliteStore.open(path)
    for n in range(count):
        store.append(make_record(n))
    entries = store.entries(0, count)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE
    return entries


def zero_page(path: Path, number: int) -> None:
    """Overwrite page `number` (1-based) with zeros, as a bad disk block would read."""
    with path.open("r+b") as f:
        f.seek((number - 1) * PAGE)
        f.write(bytes(PAGE))


def page_holding(path: Path, content: bytes) -> int:
    data = path.read_bytes()
    offset = data.find(content)
    assert offset > 0
    assert data.find(content, offset + 1) == -1  # one copy: the entry's own row
    return offset // PAGE + 1


def root_page(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
        return int(row.fetchone()[0])


def change(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    with sqlite3.connect(path) as conn:
        for sql, params in statements:
            conn.execute(sql, params)


def test_damage_to_an_old_entry_does_not_hold_open_but_check_file_finds_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    entries = filled(path, 300)
    zero_page(path, page_holding(path, entries[3]))
    store = SqliteStore.open(path, create=False)
    try:
        assert store.tree_state().size == 300
        assert store.append(make_record(300)).leaf_index == 300  # the next append is sound
        with pytest.raises(StoreError, match="malformed"):
            store.entries(3, 1)  # a read of the damaged page fails; it never returns garbage
    finally:
        store.close()
    for full in (False, True):
        found = check_file(path, full=full)
        assert found.check == ("integrity_check" if full else "quick_check")
        assert found.problems
        assert found.log_size == 301  # the log's own checks pass: the damage is elsewhere


def test_check_file_passes_a_sound_store_even_beside_its_server(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 20)
    found = check_file(path)
    assert (found.problems, found.schema_version, found.log_size) == ((), 6, 20)
    store = SqliteStore.open(path, create=False)  # holds the lock and appends meanwhile
    try:
        store.append(make_record(20))
        found = check_file(path, full=True)
        assert (found.problems, found.log_size) == ((), 21)
    finally:
        store.close()


def test_a_damaged_page_that_open_reads_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 10)
    zero_page(path, root_page(path, "tree_state"))
    with pytest.raises(StoreError, match=r"the store is damaged.*db check"):
        SqliteStore.open(path, create=False)
    assert check_file(path).problems


def test_a_tree_state_its_peaks_do_not_give_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 7)
    change(path, ("UPDATE tree_state SET root = zeroblob(32)", ()))
    with pytest.raises(StoreError, match=r"damaged.*do not give the stored root"):
        SqliteStore.open(path, create=False)
    assert any("do not give the stored root" in p for p in check_file(path).problems)


def test_a_missing_tree_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 2)
    change(path, ("DELETE FROM tree_state", ()))
    with pytest.raises(StoreError, match=r"damaged.*tree state row is missing"):
        SqliteStore.open(path, create=False)
    assert check_file(path).problems == ("the tree state row is missing",)


def test_a_missing_peak_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 6)  # peaks (2, 0) and (1, 2)
    change(path, ("DELETE FROM tree_nodes WHERE level = 1 AND node_index = 2", ()))
    with pytest.raises(StoreError, match=r"damaged.*tree node \(1, 2\) is missing"):
        SqliteStore.open(path, create=False)


def test_a_tree_state_behind_its_entries_is_refused(tmp_path: Path) -> None:
    # A consistent older tree state over newer entries (tables of different moments):
    # its peaks give its root, but the next append would collide with entry 4.
    path = tmp_path / "log.db"
    entries = filled(path, 5)
    older = root_of(leaf_hash(e) for e in entries[:4])
    change(path, ("UPDATE tree_state SET size = 4, root = ?", (older,)))
    with pytest.raises(StoreError, match="tree holds 4 leaves, but the newest log entry is at"):
        SqliteStore.open(path, create=False)
    assert check_file(path).problems


def test_entries_missing_under_the_tree_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 5)
    change(path, ("DELETE FROM log_entries WHERE leaf_index = 4", ()))
    with pytest.raises(StoreError, match="newest log entry is at index 3"):
        SqliteStore.open(path, create=False)


def test_a_newest_entry_that_is_not_its_leaf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 5)
    change(path, ("UPDATE log_entries SET entry = entry || 'x' WHERE leaf_index = 4", ()))
    with pytest.raises(StoreError, match="log entry 4 does not hash to its stored leaf"):
        SqliteStore.open(path, create=False)
    assert check_file(path).problems == ("log entry 4 does not hash to its stored leaf",)


def test_a_store_missing_a_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 1)
    change(path, ("DROP TABLE cosignatures", ()))
    with pytest.raises(StoreError, match="no table cosignatures"):
        SqliteStore.open(path, create=False)
    assert check_file(path).problems == ("not an eucgate store (no table cosignatures)",)


def test_a_file_that_is_not_sqlite_is_damaged_and_a_missing_one_is_no_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    path.write_bytes(b"\xa5" * 3 * PAGE)
    with pytest.raises(StoreError, match="damaged"):
        SqliteStore.open(path, create=False)
    assert check_file(path).problems
    with pytest.raises(StoreError, match="no store here"):
        check_file(tmp_path / "none.db")


def test_check_file_leaves_an_older_layout_to_its_migration(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    filled(path, 3)
    change(  # back to layout 5: no checkpoint history or cosignatures yet
        path,
        ("DROP TABLE checkpoints", ()),
        ("DROP TABLE cosignatures", ()),
        ("UPDATE schema_version SET version = 5", ()),
    )
    found = check_file(path)
    assert (found.problems, found.schema_version, found.log_size) == ((), 5, None)
    SqliteStore.open(path, create=False).close()  # migrated at open
    assert check_file(path).log_size == 3
