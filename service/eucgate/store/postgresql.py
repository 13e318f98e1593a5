"""The PostgreSQL decision store: one database shared by many replicas, one log.

Each replica gathers its concurrent writes into a batch (one writer thread per store, as
in the SQLite store) and sequences the whole batch in one transaction (DESIGN.md section
5, the pattern of Tessera's PostgreSQL driver): lock the single tree-state row with
SELECT ... FOR UPDATE, check each request's idempotency key, take its quota under row
locks, assign the next leaf indices, write the leaves, tree nodes, ledger changes and the
new tree state, and COMMIT (fsync'd: synchronous_commit stays on). Only then are the
callers answered.

The tree-state row lock is the one point where replicas queue behind each other: no two
batches ever read the same size, so indices are never duplicated or skipped and the tree
cannot fork. A replica killed mid-batch leaves an open transaction that PostgreSQL rolls
back when its connection drops, so nothing it acknowledged is lost and nothing it did not
acknowledge is half-written.

After COMMIT the replica signs a checkpoint of the state it committed and stores it,
unless another replica already stored a larger one: the checkpoint row only ever grows.
"""

from __future__ import annotations

import builtins
import contextlib
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from eucgate_client.tlog import EMPTY_ROOT, CompactRange, leaf_hash
from psycopg_pool import ConnectionPool, PoolTimeout

from eucgate.errors import (
    BundleError,
    EucgateError,
    InvalidSubmission,
    RequestConflict,
    StoreError,
)
from eucgate.log import merkle
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import encode_entry, encode_shipment
from eucgate.store import ledger
from eucgate.store.base import (
    AppendResult,
    DecisionFilter,
    DecisionRecord,
    LicenceBalance,
    Page,
    PageCursor,
    Redecide,
    Shipment,
    ShipmentResult,
    Store,
    StoredCheckpoint,
    StoreStats,
    TreeState,
    check_log_index,
    check_log_size,
    decode_page_token,
    encode_page_token,
    from_micros,
    recorded_extras,
    recorded_parties,
    to_micros,
)
from eucgate.store.ledger import LedgerRow, ReservationRow
from eucgate.store.tree import NodeReader, read_nodes, stored_tree
from eucgate.store.writer import (
    MAX_BATCH,  # noqa: F401 (re-exported: it was defined here)
    Answer,
    AppendJob,
    BatchWriter,
    Job,
    ShipmentJob,
    WriteObserver,
)

# A commit whose outcome is unknown (the connection broke during COMMIT): the write may
# be stored. The caller retries with the same idempotency key and gets the stored one.
STORE_COMMIT_UNKNOWN = "STORE_COMMIT_UNKNOWN"

# --- Schema: versioned migrations, applied in order at open or by `eucgate db migrate` --

CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    id      SMALLINT PRIMARY KEY CHECK (id = 0),  -- always 0: this table has one row
    version INTEGER NOT NULL                      -- the last migration applied
)"""
INSERT_SCHEMA_VERSION_ZERO = """
INSERT INTO schema_version (id, version) VALUES (0, 0) ON CONFLICT (id) DO NOTHING"""
SELECT_SCHEMA_VERSION = "SELECT version FROM schema_version WHERE id = 0"
UPDATE_SCHEMA_VERSION = "UPDATE schema_version SET version = %s WHERE id = 0"
# Serialises replicas that start together (per database; released at COMMIT).
LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock(%s)"
MIGRATION_LOCK_KEY = zlib.crc32(b"eucgate schema migrations")

CREATE_DECISIONS = """
CREATE TABLE decisions (
    decision_id            TEXT PRIMARY KEY,  -- server-assigned, time-sortable id ("dec_...")
    caller                 TEXT NOT NULL,     -- authenticated caller identity
    request_id             TEXT NOT NULL,     -- the caller's idempotency key (AIP-155)
    envelope_digest        TEXT NOT NULL,     -- hex SHA-256 of the envelope as received
    envelope               BYTEA NOT NULL,    -- DSSE envelope, deterministic protobuf bytes
    decision               BYTEA NOT NULL,    -- canonical JSON of the core Decision
    receipt                BYTEA NOT NULL,    -- signed receipt envelope, protobuf bytes
    outcome                TEXT NOT NULL      -- APPROVED, REJECTED or REFERRED
        CHECK (outcome IN ('APPROVED', 'REJECTED', 'REFERRED')),
    decided_at             BIGINT NOT NULL,   -- clock reading, microseconds since 1970 UTC
    bundle_digest          TEXT NOT NULL,     -- policy bundle the decision was made under
    importer_registrations TEXT[] NOT NULL,   -- registrations, as recorded
    UNIQUE (caller, request_id)               -- one decision per idempotency key
)"""
CREATE_DECISIONS_BY_TIME = "CREATE INDEX decisions_by_time ON decisions (decided_at, decision_id)"
CREATE_DECISIONS_BY_OUTCOME = """
CREATE INDEX decisions_by_outcome ON decisions (outcome, decided_at, decision_id)"""
CREATE_DECISION_IMPORTERS = """
CREATE TABLE decision_importers (
    registration TEXT NOT NULL,    -- one importer registration value of the decision
    decided_at   BIGINT NOT NULL,  -- copy of decisions.decided_at, so paging needs this index
    decision_id  TEXT NOT NULL REFERENCES decisions (decision_id),
    PRIMARY KEY (registration, decided_at, decision_id)
)"""
CREATE_DECISION_PARTIES = """
CREATE TABLE decision_parties (
    party       TEXT NOT NULL,    -- "SCHEME:VALUE" of the importer or end user it names
    decided_at  BIGINT NOT NULL,  -- copy of decisions.decided_at, so paging needs this index
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    PRIMARY KEY (party, decided_at, decision_id)
)"""
CREATE_BUNDLES = """
CREATE TABLE bundles (
    digest    TEXT PRIMARY KEY,  -- the bundle's id: digest of its canonical form
    canonical BYTEA NOT NULL     -- canonical bytes, exactly as the digest covers them
)"""
CREATE_LOG_ENTRIES = """
CREATE TABLE log_entries (
    leaf_index BIGINT PRIMARY KEY,     -- 0-based position in the audit log
    record_id  TEXT NOT NULL UNIQUE,   -- a decision ("dec_...") or a shipment ("shp_...")
    entry      BYTEA NOT NULL          -- the canonical entry bytes, exactly as hashed
)"""
CREATE_TREE_NODES = """
CREATE TABLE tree_nodes (
    level      SMALLINT NOT NULL,  -- height: 0 for leaf hashes
    node_index BIGINT NOT NULL,    -- covers leaves [node_index, node_index + 1) * 2^level
    hash       BYTEA NOT NULL,     -- RFC 9162 hash of that perfect subtree (32 bytes)
    PRIMARY KEY (level, node_index)
)"""
CREATE_TREE_STATE = """
CREATE TABLE tree_state (
    id   SMALLINT PRIMARY KEY CHECK (id = 0),  -- always 0: this table has one row
    size BIGINT NOT NULL,                      -- leaves integrated into the tree
    root BYTEA NOT NULL                        -- RFC 9162 root hash of those leaves
)"""
CREATE_CHECKPOINT = """
CREATE TABLE checkpoint (
    id   SMALLINT PRIMARY KEY CHECK (id = 0),  -- always 0: this table has one row
    size BIGINT NOT NULL,                      -- the tree size the note commits to
    note TEXT NOT NULL                         -- C2SP signed note of a C2SP tlog-checkpoint
)"""
CREATE_QUOTA_LEDGER = """
CREATE TABLE quota_ledger (
    licence_number TEXT NOT NULL,     -- the licence whose quota this row draws on
    control_code   TEXT NOT NULL,     -- the control code the quota is kept for
    unit           TEXT NOT NULL,     -- unit of both totals: the first reservation's
    approved       NUMERIC NOT NULL,  -- total reserved by approvals
    shipped        NUMERIC NOT NULL,  -- total debited by shipments
    PRIMARY KEY (licence_number, control_code)
)"""
CREATE_RESERVATIONS = """
CREATE TABLE reservations (
    decision_id    TEXT NOT NULL REFERENCES decisions (decision_id),  -- the approval
    control_code   TEXT NOT NULL,     -- the quota it was taken from
    licence_number TEXT NOT NULL,     -- ... of this licence
    unit           TEXT NOT NULL,     -- unit of quantity and shipped
    quantity       NUMERIC NOT NULL,  -- what the approval reserved
    shipped        NUMERIC NOT NULL,  -- what shipments debited against it so far
    PRIMARY KEY (decision_id, control_code)
)"""
CREATE_SHIPMENTS = """
CREATE TABLE shipments (
    gateway_reference TEXT PRIMARY KEY,      -- the gateway's idempotency key
    shipment_id       TEXT NOT NULL UNIQUE   -- service-assigned id ("shp_..."), its log record
        REFERENCES log_entries (record_id),
    decision_id       TEXT NOT NULL REFERENCES decisions (decision_id),  -- the approval
    caller            TEXT NOT NULL,         -- the gateway identity
    licence_number    TEXT NOT NULL,         -- the licence of the approval
    control_code      TEXT NOT NULL,         -- the quota debited
    quantity          NUMERIC NOT NULL,      -- as the gateway reported it
    unit              TEXT NOT NULL,         -- unit of quantity, as reported
    recorded_at       BIGINT NOT NULL        -- clock reading, microseconds since 1970 UTC
)"""
CREATE_RESOLUTIONS = """
CREATE TABLE resolutions (
    referral_id TEXT PRIMARY KEY REFERENCES decisions (decision_id),      -- REFERRED one
    decision_id TEXT NOT NULL UNIQUE REFERENCES decisions (decision_id)   -- its review
)"""
INSERT_EMPTY_TREE_STATE = "INSERT INTO tree_state (id, size, root) VALUES (0, 0, %s)"

# (version, what it does, statements). Append only: a released migration never changes.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "decisions, bundles, the audit log and the quota ledger",
        (
            CREATE_DECISIONS,
            CREATE_DECISIONS_BY_TIME,
            CREATE_DECISIONS_BY_OUTCOME,
            CREATE_DECISION_IMPORTERS,
            CREATE_BUNDLES,
            CREATE_LOG_ENTRIES,
            CREATE_TREE_NODES,
            CREATE_TREE_STATE,
            CREATE_CHECKPOINT,
            CREATE_QUOTA_LEDGER,
            CREATE_RESERVATIONS,
            CREATE_SHIPMENTS,
            CREATE_RESOLUTIONS,
        ),
    ),
    # Version 2 also indexes every decision already stored (see _backfill_parties).
    (2, "importer scopes: decisions by the registrations they name", (CREATE_DECISION_PARTIES,)),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# --- Connection set-up ----------------------------------------------------------------

SET_CONFIG = "SELECT set_config(%s, %s, false)"

# --- The batch transaction ------------------------------------------------------------

BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
SAVEPOINT_RECORD = "SAVEPOINT record"
RELEASE_RECORD = "RELEASE SAVEPOINT record"
ROLLBACK_TO_RECORD = "ROLLBACK TO SAVEPOINT record"

# Taken first by every batch: the serialisation point between replicas.
SELECT_TREE_STATE_FOR_UPDATE = "SELECT size, root FROM tree_state WHERE id = 0 FOR UPDATE"
# Conditional on the size read under the lock, like a revision check: 0 rows means
# another writer moved the tree, and the batch is rolled back rather than fork it.
UPDATE_TREE_STATE = "UPDATE tree_state SET size = %s, root = %s WHERE id = 0 AND size = %s"

INSERT_DECISION = """
INSERT INTO decisions (
    decision_id, caller, request_id, envelope_digest, envelope, decision, receipt,
    outcome, decided_at, bundle_digest, importer_registrations
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
INSERT_DECISION_IMPORTER = """
INSERT INTO decision_importers (registration, decided_at, decision_id) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING"""
INSERT_DECISION_PARTY = """
INSERT INTO decision_parties (party, decided_at, decision_id) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING"""
SELECT_DECISION_BYTES = "SELECT decision_id, decided_at, decision FROM decisions"
INSERT_LOG_ENTRY = "INSERT INTO log_entries (leaf_index, record_id, entry) VALUES (%s, %s, %s)"
INSERT_TREE_NODE = "INSERT INTO tree_nodes (level, node_index, hash) VALUES (%s, %s, %s)"
SELECT_LEDGER_ROW_FOR_UPDATE = """
SELECT unit, approved, shipped FROM quota_ledger
WHERE licence_number = %s AND control_code = %s FOR UPDATE"""
INSERT_LEDGER_ROW = """
INSERT INTO quota_ledger (licence_number, control_code, unit, approved, shipped)
VALUES (%s, %s, %s, %s, 0)"""
UPDATE_LEDGER_APPROVED = """
UPDATE quota_ledger SET approved = %s WHERE licence_number = %s AND control_code = %s"""
UPDATE_LEDGER_SHIPPED = """
UPDATE quota_ledger SET shipped = %s WHERE licence_number = %s AND control_code = %s"""
INSERT_RESERVATION = """
INSERT INTO reservations (decision_id, control_code, licence_number, unit, quantity, shipped)
VALUES (%s, %s, %s, %s, %s, 0)"""
SELECT_RESERVATION_FOR_UPDATE = """
SELECT licence_number, unit, quantity, shipped FROM reservations
WHERE decision_id = %s AND control_code = %s FOR UPDATE"""
UPDATE_RESERVATION_SHIPPED = """
UPDATE reservations SET shipped = %s WHERE decision_id = %s AND control_code = %s"""
INSERT_SHIPMENT = """
INSERT INTO shipments (
    gateway_reference, shipment_id, decision_id, caller, licence_number, control_code,
    quantity, unit, recorded_at
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"""
INSERT_RESOLUTION = "INSERT INTO resolutions (referral_id, decision_id) VALUES (%s, %s)"
INSERT_BUNDLE = """
INSERT INTO bundles (digest, canonical) VALUES (%s, %s) ON CONFLICT (digest) DO NOTHING"""
# Never moves the checkpoint back: a slower replica's older note loses to a newer one.
UPSERT_CHECKPOINT = """
INSERT INTO checkpoint (id, size, note) VALUES (0, %s, %s)
ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note
WHERE checkpoint.size < excluded.size"""
# The checkpoint is re-signed identically from the tree state if lost, so its row need
# not cost a flush of its own.
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"

# --- Reads ----------------------------------------------------------------------------

RECORD_COLUMNS = """
d.decision_id, d.caller, d.request_id, d.envelope_digest, d.envelope, d.decision,
d.receipt, d.outcome, d.decided_at, d.bundle_digest, d.importer_registrations"""
SELECT_BY_REQUEST = (
    "SELECT" + RECORD_COLUMNS + " FROM decisions AS d WHERE d.caller = %s AND d.request_id = %s"
)
SELECT_BY_ID = "SELECT" + RECORD_COLUMNS + " FROM decisions AS d WHERE d.decision_id = %s"
SELECT_DECISION_EXISTS = "SELECT 1 FROM decisions WHERE decision_id = %s"
SELECT_BUNDLE = "SELECT canonical FROM bundles WHERE digest = %s"
SELECT_TREE_STATE = "SELECT size, root FROM tree_state WHERE id = 0"
SELECT_CHECKPOINT = "SELECT size, note FROM checkpoint WHERE id = 0"
SELECT_NODE = "SELECT hash FROM tree_nodes WHERE level = %s AND node_index = %s"
SELECT_LEAF_INDEX = "SELECT leaf_index FROM log_entries WHERE record_id = %s"
SELECT_ENTRIES = """
SELECT entry FROM log_entries WHERE leaf_index >= %s ORDER BY leaf_index LIMIT %s"""
SELECT_SHIPMENT = """
SELECT shipment_id, decision_id, caller, licence_number, control_code, quantity, unit,
       recorded_at
FROM shipments WHERE gateway_reference = %s"""
SELECT_RESOLUTION = "SELECT decision_id FROM resolutions WHERE referral_id = %s"
SELECT_LEDGER_OF_LICENCE = """
SELECT control_code, unit, approved, shipped FROM quota_ledger
WHERE licence_number = %s ORDER BY control_code"""
SELECT_ONE = "SELECT 1"

# `list`: one head, then any of the conditions, then the order; `{k}` names the table
# whose (decided_at, decision_id) index drives the scan (see the SQLite store).
LIST_ALL = "SELECT" + RECORD_COLUMNS + " FROM decisions AS d WHERE TRUE"
LIST_BY_IMPORTER = (
    "SELECT"
    + RECORD_COLUMNS
    + """
FROM decision_importers AS i JOIN decisions AS d ON d.decision_id = i.decision_id
WHERE i.registration = %(registration)s"""
)
LIST_OUTCOME = " AND d.outcome = %(outcome)s"
# An importer caller's scope.
LIST_PARTIES = """ AND d.decision_id IN (
    SELECT p.decision_id FROM decision_parties AS p WHERE p.party = ANY(%(parties)s))"""
LIST_UNRESOLVED = (
    " AND NOT EXISTS (SELECT 1 FROM resolutions AS r WHERE r.referral_id = d.decision_id)"
)
LIST_AFTER = " AND {k}.decided_at >= %(after)s"
LIST_BEFORE = " AND {k}.decided_at < %(before)s"
LIST_CURSOR = " AND ({k}.decided_at, {k}.decision_id) < (%(cursor_at)s, %(cursor_id)s)"
LIST_ORDER = " ORDER BY {k}.decided_at DESC, {k}.decision_id DESC LIMIT %(limit)s"


@dataclass(frozen=True)
class PoolSettings:
    """How a replica talks to PostgreSQL. Timeouts bound every wait, so a database that
    stops answering turns into StoreError (UNAVAILABLE) instead of hung requests."""

    size: int = 10  # most connections this replica holds (writer and readers share them)
    statement_timeout_ms: int = 5_000  # per statement, including waits for row locks
    connect_timeout_s: float = 5.0  # to open a connection, and to wait for a free one


def migrate(url: str, settings: PoolSettings | None = None) -> int:
    """Apply every migration the database at `url` lacks; returns the version it is at.

    Idempotent, and safe when several replicas run it at once (an advisory lock orders
    them). Raises StoreError if the database cannot be reached, or holds a version newer
    than this release understands.
    """
    settings = settings or PoolSettings()
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, round(settings.connect_timeout_s))
        ) as conn:
            return _migrate(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot migrate the store: {_describe(exc)}") from exc


def _migrate(conn: psycopg.Connection[Any]) -> int:
    with conn.transaction():
        conn.execute(LOCK_MIGRATIONS, (MIGRATION_LOCK_KEY,))
        conn.execute(CREATE_SCHEMA_VERSION)
        conn.execute(INSERT_SCHEMA_VERSION_ZERO)
        row = conn.execute(SELECT_SCHEMA_VERSION).fetchone()
        found = int(row[0]) if row is not None else 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {found} is newer than this eucgate understands"
                f" ({SCHEMA_VERSION}); use a matching release"
            )
        for version, _what, statements in MIGRATIONS:
            if version <= found:
                continue
            for statement in statements:
                conn.execute(statement)
            if version == 1:
                conn.execute(INSERT_EMPTY_TREE_STATE, (EMPTY_ROOT,))
            if version == 2:
                _backfill_parties(conn)
            conn.execute(UPDATE_SCHEMA_VERSION, (version,))
        return SCHEMA_VERSION


class PostgresStore(Store):
    """The decision store in a PostgreSQL database that replicas share. Thread-safe;
    open with `PostgresStore.open`."""

    def __init__(self, pool: ConnectionPool, signer: CheckpointSigner | None) -> None:
        """Use `open`; this takes over an open pool on a migrated database."""
        self._pool = pool
        self._signer = signer
        self._tree = CompactRange()  # the tree as this replica last committed or read it
        self._writer = BatchWriter(self._sequence_batch, "the store is closed")
        self._checkpoint: StoredCheckpoint | None = None
        if signer is not None:
            with self._connection() as conn:
                size, root = conn.execute(SELECT_TREE_STATE).fetchone() or (0, EMPTY_ROOT)
                self._checkpoint = self._publish_checkpoint(conn, int(size), bytes(root))
        self._writer.start()

    @classmethod
    def open(
        cls,
        url: str,
        signer: CheckpointSigner | None = None,
        settings: PoolSettings | None = None,
    ) -> PostgresStore:
        """Connect to the database at `url` (a libpq URL or conninfo string), apply any
        missing migrations, and start this replica's writer.

        With `signer`, a checkpoint is signed after every commit (and at open, if the
        stored one is older than the tree). Raises StoreError if the database cannot be
        reached within the connect timeout or its schema is newer than this release.
        """
        settings = settings or PoolSettings()
        migrate(url, settings)
        timeout = f"{settings.statement_timeout_ms}ms"

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(SET_CONFIG, ("statement_timeout", timeout))
            # A replica stalled inside a batch must not hold the tree lock for ever.
            conn.execute(SET_CONFIG, ("idle_in_transaction_session_timeout", timeout))

        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, settings.size),
            timeout=settings.connect_timeout_s,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, round(settings.connect_timeout_s)),
            },
            configure=configure,
            # A connection the database dropped (restart, failover) is replaced before
            # use, so the first requests after an outage do not fail on stale sockets.
            check=ConnectionPool.check_connection,
            open=False,
            name="eucgate-store",
        )
        try:
            pool.open(wait=True, timeout=settings.connect_timeout_s)
            return cls(pool, signer)
        except (psycopg.Error, PoolTimeout) as exc:
            pool.close()
            raise StoreError(f"cannot open the store: {_describe(exc)}") from exc
        except BaseException:
            pool.close()
            raise

    # --- Store interface ----------------------------------------------------------------

    def find_request(self, caller: str, request_id: str) -> DecisionRecord | None:
        """The committed record for (caller, request_id), or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_BY_REQUEST, (caller, request_id)).fetchone()
        return None if row is None else _record(row)

    def append(self, record: DecisionRecord, redecide: Redecide | None = None) -> AppendResult:
        """Store `record`, committed before this returns (see Store.append).

        `redecide` runs on the writer thread, inside the transaction, and only when the
        record's reservations no longer fit. Raises RequestConflict, FailedPrecondition
        (QUOTA_EXHAUSTED, QUOTA_UNIT_MISMATCH, REFERRAL_ALREADY_RESOLVED), and StoreError:
        STORE_UNAVAILABLE when nothing was stored, STORE_COMMIT_UNKNOWN when the connection
        broke during COMMIT (retry with the same request_id: the stored record is replayed).
        """
        job = AppendJob(record, Future(), redecide)
        self._writer.submit(job)
        return job.future.result()

    def balances(self, licence_number: str) -> builtins.list[LicenceBalance]:
        """The committed ledger rows of a licence, by control code. Raises StoreError."""
        with self._connection() as conn:
            rows = conn.execute(SELECT_LEDGER_OF_LICENCE, (licence_number,)).fetchall()
        return [
            LicenceBalance(licence_number, row[0], row[1], Decimal(row[2]), Decimal(row[3]))
            for row in rows
        ]

    def record_shipment(self, shipment: Shipment) -> ShipmentResult:
        """Debit `shipment` with its log entry, in a batch like appends (see
        Store.record_shipment). Raises StoreError as append does."""
        job = ShipmentJob(shipment, Future())
        self._writer.submit(job)
        return job.future.result()

    def resolution_of(self, decision_id: str) -> str | None:
        """The decision that resolved referral `decision_id`, or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_RESOLUTION, (decision_id,)).fetchone()
        return None if row is None else str(row[0])

    def get(self, decision_id: str) -> DecisionRecord | None:
        """The committed record with `decision_id`, or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_BY_ID, (decision_id,)).fetchone()
        return None if row is None else _record(row)

    def list(self, flt: DecisionFilter, page_size: int, page_token: str) -> Page:
        """Committed records matching `flt`, newest first (see Store.list)."""
        if page_size < 1:
            raise InvalidSubmission(
                f"page_size must be at least 1, got {page_size}",
                reason="PAGE_SIZE_INVALID",
                field="page_size",
            )
        cursor = decode_page_token(flt, page_token)
        sql, params = _list_query(flt, cursor, page_size + 1)
        with self._connection() as conn:
            rows = conn.execute(sql.encode(), params).fetchall()
        records = tuple(_record(row) for row in rows[:page_size])
        token = ""
        if len(rows) > page_size:
            last = records[-1]
            token = encode_page_token(flt, PageCursor(last.decided_at, last.decision_id))
        return Page(records=records, next_page_token=token)

    def put_bundle(self, digest: str, canonical: bytes) -> None:
        """Keep a bundle durably under `digest`; storing the same bytes again is a no-op
        (also when replicas store it at once). Raises BundleError if `digest` already
        holds other bytes, StoreError on failure."""
        with self._connection() as conn:
            conn.execute(INSERT_BUNDLE, (digest, bytes(canonical)))
            row = conn.execute(SELECT_BUNDLE, (digest,)).fetchone()
        if row is None or bytes(row[0]) != canonical:
            raise BundleError(f"bundle {digest} is already stored with different content")

    def get_bundle(self, digest: str) -> bytes | None:
        """The canonical bytes stored under `digest`, or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_BUNDLE, (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    # --- Audit log ----------------------------------------------------------------------

    def tree_state(self) -> TreeState:
        """The committed tree's size and root. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_TREE_STATE).fetchone()
        assert row is not None  # migration 1 inserts the row
        return TreeState(size=int(row[0]), root=bytes(row[1]))

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The latest signed checkpoint any replica stored, or None. Raises StoreError.

        A replica that dies between COMMIT and signing leaves the stored checkpoint
        behind the committed tree; a retry answered by another replica would then carry
        no proof until the next commit. So a checkpoint behind the committed tree is
        signed here, from the committed state, before it is returned.
        """
        with self._connection() as conn:
            row = conn.execute(SELECT_CHECKPOINT).fetchone()
            state = conn.execute(SELECT_TREE_STATE).fetchone()
            assert state is not None  # migration 1 inserts the row
            size, root = int(state[0]), bytes(state[1])
            if self._signer is not None and size > 0 and (row is None or int(row[0]) < size):
                return self._publish_checkpoint(conn, size, root)
        return None if row is None else StoredCheckpoint(size=int(row[0]), note=str(row[1]))

    def leaf_index(self, decision_id: str) -> int | None:
        """The log position of a committed record, or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_LEAF_INDEX, (decision_id,)).fetchone()
        return None if row is None else int(row[0])

    def inclusion_proof(self, index: int, size: int) -> tuple[bytes, builtins.list[bytes]]:
        """(leaf hash, inclusion proof) in O(log n) reads; see Store.inclusion_proof.
        Stored nodes never change, so reading them outside one snapshot is safe."""
        with self._connection() as conn:
            integrated = _tree_size(conn)
            check_log_size(size, integrated)
            check_log_index(index, size)
            ranges = merkle.inclusion_ranges(index, size)
            nodes = read_nodes([(0, index), *merkle.nodes_of(ranges)], _node_reader(conn))
        return nodes[(0, index)], merkle.assemble(ranges, nodes)

    def consistency_proof(self, first: int, second: int) -> builtins.list[bytes]:
        """The consistency proof in O(log n) reads; see Store.consistency_proof."""
        with self._connection() as conn:
            integrated = _tree_size(conn)
            check_log_size(first, integrated, field="first_size")
            check_log_size(second, integrated, field="second_size")
            if first > second:
                raise InvalidSubmission(
                    f"first_size {first} is larger than second_size {second}",
                    reason="PROOF_SIZES_INVALID",
                    field="first_size",
                )
            ranges = merkle.consistency_ranges(first, second)
            nodes = read_nodes(merkle.nodes_of(ranges), _node_reader(conn))
        return merkle.assemble(ranges, nodes)

    def entries(self, start: int, count: int) -> builtins.list[bytes]:
        """Up to `count` committed entries from `start`, in index order. Raises StoreError."""
        with self._connection() as conn:
            rows = conn.execute(SELECT_ENTRIES, (start, count)).fetchall()
        return [bytes(row[0]) for row in rows]

    def ping(self) -> None:
        """Return when the database answers. Raises StoreError within the connect timeout."""
        with self._connection() as conn:
            conn.execute(SELECT_ONE).fetchone()

    def close(self) -> None:
        """Complete every write already queued, stop the writer, close the pool.

        Idempotent. Later calls to any other method raise StoreError.
        """
        self._writer.close()
        self._pool.close()

    # --- Observability ------------------------------------------------------------------

    @property
    def commits(self) -> int:
        """Transactions this replica committed since open; each carried a whole batch."""
        return self._writer.commits

    def stats(self) -> StoreStats:
        """A snapshot of this replica's writer counters."""
        return self._writer.stats()

    def observe_writes(self, observer: WriteObserver | None) -> None:
        """Tell `observer` of every batch the writer commits (None stops it)."""
        self._writer.observer = observer

    # --- Connections --------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection. Raises StoreError if the store is closed, no
        connection comes within the connect timeout, or a statement fails."""
        if self._writer.closed:
            raise StoreError("the store is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"the store is unavailable: {_describe(exc)}") from exc

    # --- Writer -------------------------------------------------------------------------

    def _sequence_batch(self, batch: Sequence[Job]) -> None:
        """One transaction for the whole batch: lock the tree state, apply each job under
        its own savepoint (a job that fails alone is answered with its error, the others
        still commit), write the new tree state, COMMIT, then answer every caller."""
        results: list[tuple[Job, Answer]] = []
        committing = False
        try:
            with self._pool.connection() as conn:
                try:
                    conn.execute(BEGIN)
                    row = conn.execute(SELECT_TREE_STATE_FOR_UPDATE).fetchone()
                    assert row is not None  # migration 1 inserts the row
                    start = self._tree_at(conn, int(row[0]), bytes(row[1]))
                    tree = start.copy()
                    for job in batch:
                        answer, tree = self._apply(conn, job, tree)
                        results.append((job, answer))
                    if tree.size != start.size:
                        moved = conn.execute(
                            UPDATE_TREE_STATE, (tree.size, tree.root(), start.size)
                        ).rowcount
                        if moved != 1:
                            raise StoreError("the tree state moved under its lock")
                    committing = True
                    conn.execute(COMMIT)
                except BaseException:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        with contextlib.suppress(psycopg.Error):
                            conn.execute(ROLLBACK)
                    raise
        except BaseException as exc:
            unknown = committing and isinstance(exc, psycopg.OperationalError)
            what = (
                "the connection broke during COMMIT: the batch may be stored; retry with the"
                " same request id"
                if unknown
                else "commit failed, nothing of it was stored"
            )
            message = f"{what}: {_describe(exc)}"
            reason = STORE_COMMIT_UNKNOWN if unknown else None
            self._writer.failed(batch, lambda: StoreError(message, reason=reason))
            if not isinstance(exc, Exception):
                raise
            return
        self._tree = tree
        checkpoint = self._checkpoint
        if self._signer is not None:
            try:
                with self._pool.connection() as conn:
                    checkpoint = self._publish_checkpoint(conn, tree.size, tree.root())
                self._checkpoint = checkpoint
            except (psycopg.Error, PoolTimeout):
                # The batch is committed; the next commit or open signs again. Callers
                # get the last checkpoint this replica stored.
                checkpoint = self._checkpoint
        self._writer.committed(results, checkpoint)

    def _tree_at(self, conn: psycopg.Connection[Any], size: int, root: bytes) -> CompactRange:
        """The committed tree of (size, root) read under the lock: this replica's own
        copy when no other replica appended since, else its peaks read from storage and
        checked against the root (Trillian rebuilds its compact tree the same way).
        Raises StoreError for nodes that do not give the root."""
        if self._tree.size == size and self._tree.root() == root:
            return self._tree
        return stored_tree(size, root, _node_reader(conn))

    def _publish_checkpoint(
        self, conn: psycopg.Connection[Any], size: int, root: bytes
    ) -> StoredCheckpoint:
        """Sign the committed tree (size, root) and store it unless a replica stored a
        larger one. Returns the note for `size` (what the batch's callers get)."""
        assert self._signer is not None
        stored = conn.execute(SELECT_CHECKPOINT).fetchone()
        if stored is not None and int(stored[0]) == size:
            return StoredCheckpoint(size=size, note=str(stored[1]))
        note = self._signer.sign(size, root)
        with conn.transaction():
            conn.execute(ASYNC_COMMIT)
            conn.execute(UPSERT_CHECKPOINT, (size, note))
        return StoredCheckpoint(size=size, note=note)

    def _apply(
        self, conn: psycopg.Connection[Any], job: Job, tree: CompactRange
    ) -> tuple[Answer, CompactRange]:
        """Write one job inside the open transaction; returns its answer or its error,
        and the batch's working tree after it (`tree` itself unless a leaf was added)."""
        if isinstance(job, ShipmentJob):
            return self._apply_shipment(conn, job.shipment, tree)
        assert isinstance(job, AppendJob)  # bundles are stored outside the writer
        record = job.record
        row = conn.execute(SELECT_BY_REQUEST, (record.caller, record.request_id)).fetchone()
        if row is not None:
            existing = _record(row)
            if existing.envelope_digest != record.envelope_digest:
                return RequestConflict(
                    f"request_id {record.request_id!r} was already used with another envelope",
                    field="request_id",
                ), tree
            index = conn.execute(SELECT_LEAF_INDEX, (existing.decision_id,)).fetchone()
            return AppendResult(
                record=existing, replayed=True, leaf_index=None if index is None else index[0]
            ), tree
        conn.execute(SAVEPOINT_RECORD)
        grown = tree.copy()
        try:
            record = ledger.fitting(_LedgerReads(conn), record, job.redecide)
            _insert_record(conn, record)
            _reserve(conn, record)
            _log(
                conn,
                grown,
                record.decision_id,
                encode_entry(record, record.ledger_reads, kind=record.kind),
            )
        except EucgateError as exc:
            _undo(conn)
            return exc, tree
        except psycopg.OperationalError:
            raise  # the connection or the server failed: the whole batch fails
        except psycopg.Error as exc:
            _undo(conn)
            return StoreError(f"cannot store this write: {_describe(exc)}"), tree
        except Exception as exc:  # the re-decision itself failed: nothing is stored
            _undo(conn)
            return StoreError(f"cannot decide again on the ledger: {exc}"), tree
        conn.execute(RELEASE_RECORD)
        return AppendResult(record=record, replayed=False, leaf_index=tree.size), grown

    def _apply_shipment(
        self, conn: psycopg.Connection[Any], shipment: Shipment, tree: CompactRange
    ) -> tuple[Answer, CompactRange]:
        """Check and debit one shipment inside the open transaction (see _apply)."""
        row = conn.execute(SELECT_SHIPMENT, (shipment.gateway_reference,)).fetchone()
        if row is not None:
            earlier = _shipment(shipment.gateway_reference, row)
            if not earlier.same_request(shipment):
                return RequestConflict(
                    f"gateway_reference {shipment.gateway_reference!r} was already used for "
                    "another shipment",
                    reason="SHIPMENT_REFERENCE_REUSED",
                    field="gateway_reference",
                ), tree
            index = conn.execute(SELECT_LEAF_INDEX, (earlier.shipment_id,)).fetchone()
            assert index is not None  # a shipment and its log entry commit together
            return ShipmentResult(earlier, replayed=True, leaf_index=int(index[0])), tree
        conn.execute(SAVEPOINT_RECORD)
        grown = tree.copy()
        try:
            debited = _debit(conn, shipment)
            entry = encode_shipment(
                shipment_id=debited.shipment_id,
                decision_id=debited.decision_id,
                caller=debited.caller,
                gateway_reference=debited.gateway_reference,
                licence_number=debited.licence_number,
                control_code=debited.control_code,
                quantity=format(debited.quantity, "f"),
                unit=debited.unit,
                recorded_at=debited.recorded_at,
            )
            _log(conn, grown, debited.shipment_id, entry)
            conn.execute(
                INSERT_SHIPMENT,
                (
                    debited.gateway_reference,
                    debited.shipment_id,
                    debited.decision_id,
                    debited.caller,
                    debited.licence_number,
                    debited.control_code,
                    debited.quantity,
                    debited.unit,
                    to_micros(debited.recorded_at),
                ),
            )
        except EucgateError as exc:
            _undo(conn)
            return exc, tree
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            _undo(conn)
            return StoreError(f"cannot store this write: {_describe(exc)}"), tree
        conn.execute(RELEASE_RECORD)
        return ShipmentResult(debited, replayed=False, leaf_index=tree.size), grown


def _describe(exc: BaseException) -> str:
    """One line about a database error, never the connection string (it may hold a
    password)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no detail'}"


def _undo(conn: psycopg.Connection[Any]) -> None:
    """Roll one job back to its savepoint; the batch goes on without it."""
    conn.execute(ROLLBACK_TO_RECORD)
    conn.execute(RELEASE_RECORD)


def _tree_size(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(SELECT_TREE_STATE).fetchone()
    assert row is not None
    return int(row[0])


def _log(conn: psycopg.Connection[Any], tree: CompactRange, record_id: str, entry: bytes) -> None:
    """Log `entry` as the next leaf of `tree`: its bytes, leaf hash and completed nodes."""
    leaf = leaf_hash(entry)
    index = tree.size
    conn.execute(INSERT_LOG_ENTRY, (index, record_id, entry))
    with conn.cursor() as cur:
        cur.executemany(INSERT_TREE_NODE, [(0, index, leaf), *tree.append(leaf)])


class _LedgerReads:
    """The ledger rows, read and locked until COMMIT in the batch's open transaction
    (ledger.LedgerReads)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def resolution(self, referral_id: str) -> str | None:
        row = self._conn.execute(SELECT_RESOLUTION, (referral_id,)).fetchone()
        return None if row is None else str(row[0])

    def ledger_row(self, licence_number: str, control_code: str) -> LedgerRow | None:
        row = self._conn.execute(
            SELECT_LEDGER_ROW_FOR_UPDATE, (licence_number, control_code)
        ).fetchone()
        return None if row is None else LedgerRow.of(row)

    def reservation(self, decision_id: str, control_code: str) -> ReservationRow | None:
        row = self._conn.execute(
            SELECT_RESERVATION_FOR_UPDATE, (decision_id, control_code)
        ).fetchone()
        return None if row is None else ReservationRow.of(row)

    def decision_exists(self, decision_id: str) -> bool:
        return self._conn.execute(SELECT_DECISION_EXISTS, (decision_id,)).fetchone() is not None


def _reserve(conn: psycopg.Connection[Any], record: DecisionRecord) -> None:
    """Add the record's reservations to the ledger rows `ledger.fitting` locked just
    before."""
    reads = _LedgerReads(conn)
    for r in record.reservations:
        row = reads.ledger_row(r.licence_number, r.control_code)
        if row is None:
            conn.execute(INSERT_LEDGER_ROW, (r.licence_number, r.control_code, r.unit, r.quantity))
        else:
            total = ledger.approved_after(row, r)
            conn.execute(UPDATE_LEDGER_APPROVED, (total, r.licence_number, r.control_code))
        conn.execute(
            INSERT_RESERVATION,
            (record.decision_id, r.control_code, r.licence_number, r.unit, r.quantity),
        )
    if record.resolves:
        conn.execute(INSERT_RESOLUTION, (record.resolves, record.decision_id))


def _debit(conn: psycopg.Connection[Any], shipment: Shipment) -> Shipment:
    """Check a new shipment against its approval and move the shipped totals (rows
    locked). Returns the shipment with its licence. Raises NotFound, FailedPrecondition."""
    debit = ledger.debit(_LedgerReads(conn), shipment)
    s = debit.shipment
    conn.execute(
        UPDATE_RESERVATION_SHIPPED, (debit.reservation_shipped, s.decision_id, s.control_code)
    )
    conn.execute(UPDATE_LEDGER_SHIPPED, (debit.ledger_shipped, s.licence_number, s.control_code))
    return s


def _shipment(gateway_reference: str, row: Sequence[Any]) -> Shipment:
    return Shipment(
        shipment_id=row[0],
        decision_id=row[1],
        caller=row[2],
        gateway_reference=gateway_reference,
        licence_number=row[3],
        control_code=row[4],
        quantity=Decimal(row[5]),
        unit=row[6],
        recorded_at=from_micros(int(row[7])),
    )


def _node_reader(conn: psycopg.Connection[Any]) -> NodeReader:
    def node(level: int, index: int) -> bytes | None:
        row = conn.execute(SELECT_NODE, (level, index)).fetchone()
        return None if row is None else bytes(row[0])

    return node


def _insert_record(conn: psycopg.Connection[Any], record: DecisionRecord) -> None:
    decided_at = to_micros(record.decided_at)
    conn.execute(
        INSERT_DECISION,
        (
            record.decision_id,
            record.caller,
            record.request_id,
            record.envelope_digest,
            record.envelope,
            record.decision,
            record.receipt,
            record.outcome,
            decided_at,
            record.bundle_digest,
            list(record.importer_registrations),
        ),
    )
    for value in record.importer_registrations:
        conn.execute(INSERT_DECISION_IMPORTER, (value, decided_at, record.decision_id))
    for party in sorted(record.parties):
        conn.execute(INSERT_DECISION_PARTY, (party, decided_at, record.decision_id))


def _backfill_parties(conn: psycopg.Connection[Any]) -> None:
    """Index the decisions stored before version 2 by the parties their bytes name."""
    for decision_id, decided_at, decision in conn.execute(SELECT_DECISION_BYTES).fetchall():
        for party in sorted(recorded_parties(bytes(decision))):
            conn.execute(INSERT_DECISION_PARTY, (party, decided_at, decision_id))


def _list_query(
    flt: DecisionFilter, cursor: PageCursor | None, limit: int
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit}
    if flt.importer_registration:
        sql, key = LIST_BY_IMPORTER, "i"
        params["registration"] = flt.importer_registration
    else:
        sql, key = LIST_ALL, "d"
    if flt.outcome:
        sql += LIST_OUTCOME
        params["outcome"] = flt.outcome
    if flt.parties is not None:
        sql += LIST_PARTIES
        params["parties"] = sorted(flt.parties)
    if flt.unresolved:
        sql += LIST_UNRESOLVED
    if flt.decided_after is not None:
        sql += LIST_AFTER
        params["after"] = to_micros(flt.decided_after)
    if flt.decided_before is not None:
        sql += LIST_BEFORE
        params["before"] = to_micros(flt.decided_before)
    if cursor is not None:
        sql += LIST_CURSOR
        params["cursor_at"] = to_micros(cursor.decided_at)
        params["cursor_id"] = cursor.decision_id
    sql += LIST_ORDER
    # Only the fixed table aliases above are substituted; every value is a parameter.
    return sql.replace("{k}", key), params


def _record(row: Sequence[Any]) -> DecisionRecord:
    decision = bytes(row[5])
    reads, resolves = recorded_extras(decision)
    return DecisionRecord(
        decision_id=row[0],
        caller=row[1],
        request_id=row[2],
        envelope_digest=row[3],
        envelope=bytes(row[4]),
        decision=decision,
        receipt=bytes(row[6]),
        outcome=row[7],
        decided_at=from_micros(int(row[8])),
        bundle_digest=row[9],
        importer_registrations=tuple(row[10]),
        ledger_reads=reads,
        resolves=resolves,
    )
