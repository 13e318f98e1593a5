"""The decision store contract, run against real SQLite files and a real PostgreSQL.

The tests above the "SQLite only" line use only the `Store` interface and run on both
stores through the `store` and `reopen` fixtures (a fresh file, or a fresh PostgreSQL
schema, per test).
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from eucgate.errors import BundleError, InvalidSubmission, RequestConflict, StoreError
from eucgate.store import (
    AppendResult,
    DecisionFilter,
    DecisionRecord,
    SqliteStore,
    Store,
    open_store,
)
from eucgate.store.base import PageCursor, encode_page_token
from eucgate.store.sqlite import SCHEMA_VERSION

from tests.unit.conftest import AnyStore, sqlite_only

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
WAIT = 30.0  # seconds: the bound on any wait for a condition, never a measurement


def make_record(
    n: int,
    *,
    caller: str = "importer-system-a",
    request_id: str | None = None,
    digest: str | None = None,
    outcome: str = "APPROVED",
    decided_at: datetime | None = None,
    registrations: tuple[str, ...] = ("IEC-0001",),
) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"dec_{n:08d}",
        caller=caller,
        request_id=request_id if request_id is not None else f"req-{n}",
        envelope_digest=digest if digest is not None else f"{n:064x}",
        envelope=b"\x0a\x00envelope-%d" % n,
        decision=b'{"n":%d}' % n,
        receipt=b"\x00receipt-%d\xff" % n,
        outcome=outcome,
        decided_at=decided_at if decided_at is not None else T0 + timedelta(seconds=n),
        bundle_digest="ab" * 32,
        importer_registrations=registrations,
    )


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.005)


def run_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Run target(i) on `count` threads released together; returns results or errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=WAIT)
        try:
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
        assert not thread.is_alive()
    return results


@pytest.fixture
def store(location: str) -> Iterator[AnyStore]:
    opened = open_store(location)
    yield opened
    opened.close()


@pytest.fixture
def reopen(location: str) -> Iterator[Callable[[], Store]]:
    """Open the same store again (after the test closed the first one)."""
    opened: list[Store] = []

    def _open() -> Store:
        opened.append(open_store(location))
        return opened[-1]

    yield _open
    for each in opened:
        each.close()


def all_records(store: Store, flt: DecisionFilter, page_size: int) -> list[DecisionRecord]:
    records: list[DecisionRecord] = []
    token = ""
    while True:
        page = store.list(flt, page_size, token)
        assert len(page.records) <= page_size
        records.extend(page.records)
        if not page.next_page_token:
            return records
        assert len(page.records) == page_size
        token = page.next_page_token


# --- append, get, find_request ----------------------------------------------------------


def test_append_then_get_and_find_request_return_the_record(store: Store) -> None:
    record = make_record(1, registrations=("IEC-0001", "GSTIN-27AAA"))

    result = store.append(record)

    assert result == AppendResult(record=record, replayed=False, leaf_index=0)
    assert store.get(record.decision_id) == record
    assert store.find_request(record.caller, record.request_id) == record
    assert store.get("dec_missing") is None
    assert store.find_request(record.caller, "req-other") is None
    assert store.find_request("another-caller", record.request_id) is None


def test_same_request_id_and_envelope_replays_the_first_record(store: Store) -> None:
    first = make_record(1, request_id="r", digest="d" * 64)
    again = make_record(2, request_id="r", digest="d" * 64)
    store.append(first)

    result = store.append(again)

    assert result == AppendResult(record=first, replayed=True, leaf_index=0)
    assert store.get(again.decision_id) is None


def test_same_request_id_with_another_envelope_is_a_conflict(store: Store) -> None:
    first = make_record(1, request_id="r", digest="d" * 64)
    store.append(first)

    with pytest.raises(RequestConflict) as caught:
        store.append(make_record(2, request_id="r", digest="e" * 64))

    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert store.get("dec_00000002") is None
    assert store.find_request(first.caller, "r") == first


def test_request_ids_are_scoped_to_the_caller(store: Store) -> None:
    a = make_record(1, caller="a", request_id="r")
    b = make_record(2, caller="b", request_id="r")

    assert not store.append(a).replayed
    assert not store.append(b).replayed
    assert store.find_request("a", "r") == a
    assert store.find_request("b", "r") == b


def test_concurrent_duplicates_store_exactly_one_and_replay_it(store: Store) -> None:
    results = run_threads(
        16, lambda i: store.append(make_record(i, request_id="dup", digest="d" * 64))
    )

    assert all(isinstance(r, AppendResult) for r in results)
    appended = [r for r in results if isinstance(r, AppendResult)]
    winners = [r.record for r in appended if not r.replayed]
    assert len(winners) == 1
    assert all(r.record == winners[0] for r in appended)
    assert all_records(store, DecisionFilter(), 100) == winners


def test_concurrent_reuse_with_other_envelopes_stores_one_and_refuses_the_rest(
    store: Store,
) -> None:
    results = run_threads(16, lambda i: store.append(make_record(i, request_id="dup")))

    winners = [r.record for r in results if isinstance(r, AppendResult)]
    conflicts = [r for r in results if isinstance(r, RequestConflict)]
    assert len(winners) == 1
    assert not any(isinstance(r, AppendResult) and r.replayed for r in results)
    assert len(conflicts) == 15
    assert all_records(store, DecisionFilter(), 100) == winners


def test_naive_decided_at_is_refused_and_other_zones_become_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record(1, decided_at=datetime(2025, 3, 1, 9, 0))
    ist = timezone(timedelta(hours=5, minutes=30))
    record = make_record(1, decided_at=datetime(2025, 3, 1, 14, 30, tzinfo=ist))
    assert record.decided_at == T0
    assert record.decided_at.tzinfo is UTC
    with pytest.raises(ValueError, match="outcome"):
        make_record(1, outcome="MAYBE")


# --- list ---------------------------------------------------------------------------


def paging_corpus(store: Store) -> list[DecisionRecord]:
    """30 records: three outcomes, overlapping importers, and ties on decided_at."""
    outcomes = ("APPROVED", "REJECTED", "REFERRED")
    records = []
    for n in range(30):
        registrations = ("IEC-A",) if n % 2 else ("IEC-B", "IEC-A") if n % 3 == 0 else ("IEC-B",)
        record = make_record(
            n,
            outcome=outcomes[n % 3],
            # pairs share a timestamp, so decision_id must break the tie
            decided_at=T0 + timedelta(minutes=n // 2),
            registrations=registrations,
        )
        store.append(record)
        records.append(record)
    return records


FILTERS = [
    DecisionFilter(),
    DecisionFilter(importer_registration="IEC-A"),
    DecisionFilter(importer_registration="IEC-B"),
    DecisionFilter(importer_registration="IEC-NONE"),
    DecisionFilter(outcome="REJECTED"),
    DecisionFilter(decided_after=T0 + timedelta(minutes=4)),
    DecisionFilter(decided_before=T0 + timedelta(minutes=9)),
    DecisionFilter(
        decided_after=T0 + timedelta(minutes=3), decided_before=T0 + timedelta(minutes=11)
    ),
    DecisionFilter(
        importer_registration="IEC-A",
        outcome="APPROVED",
        decided_after=T0 + timedelta(minutes=2),
        decided_before=T0 + timedelta(minutes=13),
    ),
]


def matches(flt: DecisionFilter, record: DecisionRecord) -> bool:
    return (
        (
            not flt.importer_registration
            or flt.importer_registration in record.importer_registrations
        )
        and (not flt.outcome or record.outcome == flt.outcome)
        and (flt.decided_after is None or record.decided_at >= flt.decided_after)
        and (flt.decided_before is None or record.decided_at < flt.decided_before)
    )


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("page_size", [1, 4, 7, 100])
def test_list_pages_through_every_match_newest_first(
    store: Store, flt: DecisionFilter, page_size: int
) -> None:
    records = paging_corpus(store)
    expected = sorted(
        (r for r in records if matches(flt, r)),
        key=lambda r: (r.decided_at, r.decision_id),
        reverse=True,
    )

    assert all_records(store, flt, page_size) == expected


def test_list_of_an_empty_store_is_one_empty_page(store: Store) -> None:
    page = store.list(DecisionFilter(), 10, "")
    assert page.records == ()
    assert page.next_page_token == ""


def test_page_token_is_bound_to_its_filter(store: Store) -> None:
    paging_corpus(store)
    token = store.list(DecisionFilter(outcome="APPROVED"), 2, "").next_page_token
    assert token

    for other in (DecisionFilter(), DecisionFilter(outcome="REJECTED"), FILTERS[1], FILTERS[5]):
        with pytest.raises(InvalidSubmission) as caught:
            store.list(other, 2, token)
        assert caught.value.reason == "PAGE_TOKEN_INVALID"
        assert caught.value.field == "page_token"
    # the page size may change between pages (AIP-158)
    assert store.list(DecisionFilter(outcome="APPROVED"), 5, token).records


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "e30",  # "{}"
        "bm90IGpzb24",  # "not json"
        "W10",  # "[]"
        encode_page_token(DecisionFilter(), PageCursor(T0, "dec_1")).swapcase(),
        encode_page_token(DecisionFilter(), PageCursor(T0, "dec_1"))[:-3],
        # a well-formed body with a cursor time no datetime can hold
        "eyJmIjoiMCIsImkiOiJ4IiwidCI6MWUzMDAsInYiOjF9",
    ],
)
def test_garbled_page_token_is_invalid(store: Store, token: str) -> None:
    with pytest.raises(InvalidSubmission) as caught:
        store.list(DecisionFilter(), 10, token)
    assert caught.value.reason == "PAGE_TOKEN_INVALID"
    assert caught.value.field == "page_token"


def test_page_size_below_one_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidSubmission) as caught:
        store.list(DecisionFilter(), 0, "")
    assert caught.value.reason == "PAGE_SIZE_INVALID"
    assert caught.value.field == "page_size"


def test_invalid_filters_cannot_be_built() -> None:
    with pytest.raises(InvalidSubmission) as caught:
        DecisionFilter(outcome="MAYBE")
    assert caught.value.reason == "OUTCOME_INVALID"
    assert caught.value.field == "outcome"
    with pytest.raises(InvalidSubmission) as caught:
        DecisionFilter(decided_before=datetime(2025, 1, 1))
    assert caught.value.field == "decided_before"


# --- bundles ------------------------------------------------------------------------


def test_bundles_are_kept_idempotently(store: Store) -> None:
    store.put_bundle("a" * 64, b"canonical-a")
    store.put_bundle("a" * 64, b"canonical-a")
    store.put_bundle("b" * 64, b"")

    assert store.get_bundle("a" * 64) == b"canonical-a"
    assert store.get_bundle("b" * 64) == b""
    assert store.get_bundle("c" * 64) is None
    with pytest.raises(BundleError):
        store.put_bundle("a" * 64, b"other bytes")
    assert store.get_bundle("a" * 64) == b"canonical-a"


# --- durability across close and reopen ------------------------------------------------


def test_reopen_after_close_keeps_everything(store: Store, reopen: Callable[[], Store]) -> None:
    records = paging_corpus(store)
    store.put_bundle("a" * 64, b"canonical-a")
    store.close()

    again = reopen()

    assert all_records(again, DecisionFilter(), 8) == sorted(
        records, key=lambda r: (r.decided_at, r.decision_id), reverse=True
    )
    assert all(again.get(r.decision_id) == r for r in records)
    assert again.get_bundle("a" * 64) == b"canonical-a"
    # idempotency survives the restart too
    assert again.append(make_record(99, request_id="req-3", digest=f"{3:064x}")) == (
        AppendResult(
            record=records[3], replayed=True, leaf_index=again.leaf_index(records[3].decision_id)
        )
    )
    assert again.tree_state().size == len(records)


def test_close_completes_queued_appends_and_then_refuses(
    store: Store, reopen: Callable[[], Store]
) -> None:
    started = threading.Barrier(9)
    results: list[object] = [None] * 8

    def append(i: int) -> None:
        started.wait(timeout=WAIT)
        try:
            results[i] = store.append(make_record(i))
        except StoreError as exc:
            results[i] = exc

    threads = [threading.Thread(target=append, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    started.wait(timeout=WAIT)
    store.close()
    for thread in threads:
        thread.join(timeout=WAIT)

    with pytest.raises(StoreError):
        store.append(make_record(100))
    with pytest.raises(StoreError):
        store.get("dec_00000000")
    with pytest.raises(StoreError):
        store.put_bundle("a" * 64, b"x")
    store.close()  # idempotent
    again = reopen()
    for i, result in enumerate(results):
        # an acknowledged append is stored; a refused one is not
        assert isinstance(result, AppendResult | StoreError)
        stored = again.get(make_record(i).decision_id)
        assert (stored is not None) == isinstance(result, AppendResult)


# --- SQLite only ---------------------------------------------------------------------


@sqlite_only
def test_store_file_is_in_wal_mode(store: SqliteStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@sqlite_only
def test_concurrent_appends_are_group_committed(store: SqliteStore) -> None:
    before = store.commits

    results = run_threads(64, lambda i: store.append(make_record(i)))

    assert all(isinstance(r, AppendResult) and not r.replayed for r in results)
    assert len(all_records(store, DecisionFilter(), 1000)) == 64
    assert store.commits - before < 64
    assert store.stats().appended == 64


class WriteLock:
    """Holds SQLite's write lock from another connection, so the store's writer waits
    and the appends behind it pile up in its queue: a pause with no clock involved."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self._conn.execute("ROLLBACK")
        self._conn.close()


def append_behind_a_lock(
    store: SqliteStore, db_path: Path, records: list[DecisionRecord]
) -> tuple[object, list[object]]:
    """Append a first record that takes the writer into a wait on the lock, then
    `records` concurrently; all of them are queued together when the lock goes.
    Returns the first append's result and the others'."""
    lock = WriteLock(db_path)
    first: list[object] = []
    blocker = threading.Thread(target=lambda: first.append(store.append(make_record(10_000))))
    blocker.start()
    wait_until(lambda: store.stats().pending == 1 and store.stats().queued == 0)
    results: list[object] = [None] * len(records)

    def append(i: int) -> None:
        try:
            results[i] = store.append(records[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=append, args=(i,)) for i in range(len(records))]
    for thread in threads:
        thread.start()
    wait_until(lambda: store.stats().queued == len(records))
    lock.release()
    for thread in [blocker, *threads]:
        thread.join(timeout=WAIT)
        assert not thread.is_alive()
    return first[0], results


@sqlite_only
def test_appends_waiting_behind_a_commit_share_the_next_one(
    store: SqliteStore, db_path: Path
) -> None:
    before = store.commits

    first, results = append_behind_a_lock(store, db_path, [make_record(i) for i in range(64)])

    assert isinstance(first, AppendResult)
    assert all(isinstance(r, AppendResult) and not r.replayed for r in results)
    # one commit for the blocked batch, one for everything queued behind it
    assert store.commits - before == 2
    assert len(all_records(store, DecisionFilter(), 1000)) == 65


@sqlite_only
def test_a_failing_record_does_not_fail_its_batch(store: SqliteStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON decisions"
            " WHEN NEW.request_id = 'poison'"
            " BEGIN SELECT RAISE(ABORT, 'poisoned record'); END"
        )
    records = [make_record(i) for i in range(8)] + [make_record(8, request_id="poison")]
    before = store.commits

    _, results = append_behind_a_lock(store, db_path, records)

    assert isinstance(results[8], StoreError)
    assert all(isinstance(r, AppendResult) for r in results[:8])
    assert store.commits - before == 2
    assert store.get(records[8].decision_id) is None
    assert all(store.get(r.decision_id) == r for r in records[:8])
    assert store.find_request(records[8].caller, "poison") is None
    # the refused record took no leaf: the log has the blocker and the 8, consecutively
    indices = sorted(r.leaf_index or 0 for r in results[:8] if isinstance(r, AppendResult))
    assert indices == list(range(1, 9))
    assert store.tree_state().size == 9
    assert store.leaf_index(records[8].decision_id) is None


@sqlite_only
def test_a_failed_commit_fails_every_waiter_and_stores_none_of_the_batch(
    store: SqliteStore, db_path: Path
) -> None:
    # A deferred foreign key is checked only at COMMIT, so this makes COMMIT itself fail.
    with sqlite3.connect(db_path) as conn:
        conn.executescript(
            """
            CREATE TABLE fk_parent (id INTEGER PRIMARY KEY);
            CREATE TABLE fk_child (
                parent INTEGER REFERENCES fk_parent (id) DEFERRABLE INITIALLY DEFERRED
            );
            CREATE TRIGGER fail_commit AFTER INSERT ON decisions
            WHEN NEW.request_id = 'poison'
            BEGIN INSERT INTO fk_child VALUES (42); END;
            """
        )
    records = [make_record(i) for i in range(8)] + [make_record(8, request_id="poison")]
    before = store.stats()

    first, results = append_behind_a_lock(store, db_path, records)

    assert isinstance(first, AppendResult)
    assert all(isinstance(r, StoreError) for r in results)
    assert all(store.get(r.decision_id) is None for r in records)
    # nor any of its log: the tree is as the first commit left it
    assert store.tree_state().size == 1
    assert store.entries(0, 100) == store.entries(0, 1)
    after = store.stats()
    assert after.failed_batches - before.failed_batches == 1
    assert after.commits - before.commits == 1
    # the writer carries on, with the next leaf index
    assert store.append(make_record(20)).leaf_index == 1


@sqlite_only
def test_newer_schema_version_is_refused(store: SqliteStore, db_path: Path) -> None:
    store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))

    with pytest.raises(StoreError, match="schema version"):
        SqliteStore.open(db_path)


def test_a_database_of_something_else_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE something (x)")
    with pytest.raises(StoreError, match="not an eucgate store"):
        SqliteStore.open(other)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StoreError):
        SqliteStore.open(garbage)


def test_every_acknowledged_append_survives_sigkill(db_path: Path) -> None:
    child = Path(__file__).with_name("store_kill_child.py")
    proc = subprocess.Popen(
        [sys.executable, str(child), str(db_path), "4"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    acked: set[str] = set()
    try:
        while len(acked) < 50:
            try:
                line = lines.get(timeout=WAIT)
            except queue.Empty:
                pytest.fail("the child acknowledged nothing in time")
            if line is None:
                assert proc.stderr is not None
                pytest.fail(f"the child exited early: {proc.stderr.read()}")
            acked.add(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)
    reader.join(timeout=WAIT)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    # acks already in the pipe when the kill landed were promises too
    while (line := lines.get_nowait()) is not None:
        acked.add(line.split()[1])
    assert proc.returncode == -signal.SIGKILL

    store = SqliteStore.open(db_path)
    try:
        missing = [decision_id for decision_id in acked if store.get(decision_id) is None]
        assert missing == []
        # every acknowledged record is logged, and the reopened tree (whose stored nodes
        # `open` checked against the stored root) holds exactly the committed records
        assert all(store.leaf_index(decision_id) is not None for decision_id in acked)
        assert store.tree_state().size == len(store.entries(0, 1_000_000))
    finally:
        store.close()
