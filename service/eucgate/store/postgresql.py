"""The PostgreSQL decision store: one database shared by many replicas, one log.

Each replica gathers its concurrent writes into a batch (one writer thread per store, as
in the SQLite store) and sequences the whole batch in one transaction (the pattern of
Tessera's PostgreSQL driver): lock the single tree-state row with SELECT ... FOR UPDATE,
check each request's idempotency key, take its quota under row locks, assign the next
leaf indices, write the leaves, tree nodes, ledger changes and the new tree state, and
COMMIT (fsync'd: synchronous_commit stays on). Only then are the callers answered.

The tree-state row lock is the one point where replicas queue behind each other: no two
batches ever read the same size, so indices are never duplicated or skipped and the tree
cannot fork. So the lock is held for two round trips a batch, not a dozen a decision:
the lock and every row the batch reads in one pipeline; its writes, the new tree state
and COMMIT in a second (see _PipelinedTransaction). A replica killed mid-batch leaves
an open transaction that PostgreSQL rolls back when its connection drops, so nothing it
acknowledged is lost and nothing it did not acknowledge is half-written.

Before COMMIT, in the same transaction, the replica signs a checkpoint of the state it
is committing and stores it (the checkpoint row only ever grows): a reader that sees a
record sees a checkpoint covering it, and the checkpoint costs no transaction of its own.
A note signed for a batch that then fails to commit is dropped, never stored or returned.
"""

from __future__ import annotations

import builtins
import contextlib
import select
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from eucgate_client.tlog import EMPTY_ROOT, CompactRange
from psycopg_pool import ConnectionPool, PoolTimeout

from eucgate.core.registry import RegistryEntry
from eucgate.errors import StoreError
from eucgate.log import merkle
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.store import tree as trees
from eucgate.store.base import (
    AppendResult,
    DecisionFilter,
    DecisionRecord,
    LicenceBalance,
    Page,
    Shipment,
    ShipmentResult,
    Store,
    StoredCheckpoint,
    StoreStats,
    TreeState,
    WriteObserver,
)
from eucgate.store.ledger import LedgerRow, ReservationRow
from eucgate.store.reads import (
    RECORD_COLUMNS,
    SHIPMENT_COLUMNS,
    Dialect,
    page_of,
    record_of,
    registry_entry_of,
)
from eucgate.store.sequencer import sequence, take_euc
from eucgate.store.transaction import Statements, Transaction
from eucgate.store.tree import NodeReader, checkpoint_ahead, stored_tree
from eucgate.store.writer import (
    Answer,
    AppendJob,
    BatchWriter,
    BundleJob,
    CosignatureJob,
    Job,
    ShipmentJob,
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
CREATE_EUC_REGISTRY = """
CREATE TABLE euc_registry (
    issuer             TEXT NOT NULL,  -- the EUC's issuer (end user) by one of its keys
    certificate_number TEXT NOT NULL,  -- the issuer's certificate number
    euc_digest         TEXT NOT NULL,  -- hex SHA-256 of the EUC payload that used it
    decision_id        TEXT NOT NULL REFERENCES decisions (decision_id),  -- who used it
    outcome            TEXT NOT NULL,  -- that decision's outcome
    PRIMARY KEY (issuer, certificate_number)
)"""
CREATE_CHECKPOINTS = """
CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,  -- the tree size the note commits to
    note TEXT NOT NULL        -- every checkpoint the log signed, kept for older proofs
)"""
CREATE_COSIGNATURES = """
CREATE TABLE cosignatures (
    size      BIGINT NOT NULL,  -- the checkpoint's tree size
    witness   TEXT NOT NULL,    -- the witness's key name
    signature TEXT NOT NULL,    -- its C2SP tlog-cosignature line
    PRIMARY KEY (size, witness)
)"""
COPY_LATEST_CHECKPOINT = """
INSERT INTO checkpoints (size, note) SELECT size, note FROM checkpoint
ON CONFLICT (size) DO NOTHING"""
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
    # Version 3 also fills it from every decision already stored (see _backfill_registry).
    (3, "the registry of decided EUCs: one EUC, one use", (CREATE_EUC_REGISTRY,)),
    (
        4,
        "every checkpoint kept, and witnesses' cosignatures",
        (CREATE_CHECKPOINTS, CREATE_COSIGNATURES, COPY_LATEST_CHECKPOINT),
    ),
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
# The same, sent in one pipeline with the COMMIT after it: 0 rows fails the statement
# (division by zero), so the pipeline is aborted and the COMMIT never runs.
UPDATE_TREE_STATE_OR_FAIL = """
WITH moved AS (
    UPDATE tree_state SET size = %s, root = %s WHERE id = 0 AND size = %s RETURNING 1
)
SELECT 1 / count(*) FROM moved"""

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
SELECT_ALL_RECORDS = "SELECT" + RECORD_COLUMNS + " FROM decisions AS d"
SELECT_ALL_RECORDS_IN_LOG_ORDER = (
    "SELECT"
    + RECORD_COLUMNS
    + " FROM decisions AS d JOIN log_entries AS l ON l.record_id = d.decision_id"
    + " ORDER BY l.leaf_index"
)
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
INSERT_REGISTRY = """
INSERT INTO euc_registry (issuer, certificate_number, euc_digest, decision_id, outcome)
VALUES (%s, %s, %s, %s, %s)"""
INSERT_CHECKPOINT = """
INSERT INTO checkpoints (size, note) VALUES (%s, %s) ON CONFLICT (size) DO NOTHING"""
INSERT_COSIGNATURE = """
INSERT INTO cosignatures (size, witness, signature) VALUES (%s, %s, %s)
ON CONFLICT (size, witness) DO NOTHING"""
UPDATE_REGISTRY = """
UPDATE euc_registry SET euc_digest = %s, decision_id = %s, outcome = %s
WHERE issuer = %s AND certificate_number = %s"""
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

SELECT_BY_REQUEST = (
    "SELECT" + RECORD_COLUMNS + " FROM decisions AS d WHERE d.caller = %s AND d.request_id = %s"
)
SELECT_BY_ID = "SELECT" + RECORD_COLUMNS + " FROM decisions AS d WHERE d.decision_id = %s"
SELECT_DECISION_EXISTS = "SELECT 1 FROM decisions WHERE decision_id = %s"
SELECT_BUNDLE = "SELECT canonical FROM bundles WHERE digest = %s"
SELECT_REGISTRY = """
SELECT euc_digest, decision_id, outcome FROM euc_registry
WHERE issuer = %s AND certificate_number = %s"""
# Under the tree-state lock batches are serialised anyway; the row lock keeps the
# registry read and its update one step even so.
SELECT_REGISTRY_FOR_UPDATE = SELECT_REGISTRY + " FOR UPDATE"
SELECT_TREE_STATE = "SELECT size, root FROM tree_state WHERE id = 0"
SELECT_CHECKPOINT = "SELECT size, note FROM checkpoint WHERE id = 0"
SELECT_CHECKPOINT_AT = "SELECT size, note FROM checkpoints WHERE size = %s"
SELECT_COSIGNATURES = "SELECT signature FROM cosignatures WHERE size = %s ORDER BY witness"
# The nodes named, in one query: parallel arrays of levels and node indices.
SELECT_NODES = """
SELECT level, node_index, hash FROM tree_nodes
WHERE (level, node_index) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))"""
SELECT_LEAF_INDEX = "SELECT leaf_index FROM log_entries WHERE record_id = %s"
# The committed size (the row with level -1) and the nodes named, in one statement.
SELECT_SIZE_AND_NODES = """
SELECT -1, size, NULL FROM tree_state WHERE id = 0
UNION ALL
SELECT level, node_index, hash FROM tree_nodes
WHERE (level, node_index) IN (SELECT * FROM unnest(%s::smallint[], %s::bigint[]))"""
SELECT_ENTRIES = """
SELECT entry FROM log_entries WHERE leaf_index >= %s ORDER BY leaf_index LIMIT %s"""
SELECT_SHIPMENT = "SELECT" + SHIPMENT_COLUMNS + " FROM shipments WHERE gateway_reference = %s"
SELECT_RESOLUTION = "SELECT decision_id FROM resolutions WHERE referral_id = %s"
SELECT_LEDGER_OF_LICENCE = """
SELECT control_code, unit, approved, shipped FROM quota_ledger
WHERE licence_number = %s ORDER BY control_code"""
SELECT_ONE = "SELECT 1"

# --- What a batch reads at lock time, one query per kind -------------------------------
# Sent in one pipeline with BEGIN and the tree-state lock, so they run once the lock is
# held (READ COMMITTED: each statement sees every batch committed before it).

# The stored peaks of the tree the lock holds: level b for each bit b set in its size.
# Each peak is its own primary-key lookup (OFFSET 0 keeps the planner from scanning a
# whole level instead, as it may while the table is small).
SELECT_PEAKS = """
SELECT n.level, n.node_index, n.hash
FROM tree_state AS t CROSS JOIN generate_series(0, 62) AS b
CROSS JOIN LATERAL (
    SELECT level, node_index, hash FROM tree_nodes
    WHERE level = b AND node_index = (t.size >> b) - 1 OFFSET 0
) AS n
WHERE t.id = 0 AND (t.size >> b) & 1 = 1"""
# The batch's idempotency keys: RECORD_COLUMNS and the leaf index of each one stored.
SELECT_BY_REQUESTS = (
    "SELECT"
    + RECORD_COLUMNS
    + ", l.leaf_index FROM unnest(%s::text[], %s::text[]) AS k (caller, request_id)"
    + " JOIN decisions AS d ON d.caller = k.caller AND d.request_id = k.request_id"
    + " LEFT JOIN log_entries AS l ON l.record_id = d.decision_id"
)
SELECT_REGISTRY_KEYS_FOR_UPDATE = """
SELECT issuer, certificate_number, euc_digest, decision_id, outcome FROM euc_registry
WHERE (issuer, certificate_number) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
FOR UPDATE"""
SELECT_LEDGER_ROWS_FOR_UPDATE = """
SELECT licence_number, control_code, unit, approved, shipped FROM quota_ledger
WHERE (licence_number, control_code) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
FOR UPDATE"""
SELECT_RESOLUTIONS = """
SELECT referral_id, decision_id FROM resolutions WHERE referral_id = ANY(%s::text[])"""

# --- How a batch's queued writes are sent --------------------------------------------

# The rows of many jobs in one statement each, as parallel arrays (a batch writes a
# few of these per decision: one statement instead of one per row).
INSERT_DECISION_IMPORTERS = """
INSERT INTO decision_importers (registration, decided_at, decision_id)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[])
ON CONFLICT DO NOTHING"""
INSERT_DECISION_PARTIES = """
INSERT INTO decision_parties (party, decided_at, decision_id)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[])
ON CONFLICT DO NOTHING"""
INSERT_REGISTRY_ROWS = """
INSERT INTO euc_registry (issuer, certificate_number, euc_digest, decision_id, outcome)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"""
INSERT_LOG_ENTRIES = """
INSERT INTO log_entries (leaf_index, record_id, entry)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bytea[])"""
INSERT_TREE_NODES = """
INSERT INTO tree_nodes (level, node_index, hash)
SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::bytea[])"""
MULTI_ROW = {
    INSERT_DECISION_IMPORTER: INSERT_DECISION_IMPORTERS,
    INSERT_DECISION_PARTY: INSERT_DECISION_PARTIES,
    INSERT_REGISTRY: INSERT_REGISTRY_ROWS,
    INSERT_LOG_ENTRY: INSERT_LOG_ENTRIES,
    INSERT_TREE_NODE: INSERT_TREE_NODES,
}
# The order queued writes are sent in, whichever job queued them: a row before the rows
# that reference it, and a row's insert before its updates (a job updates only a row
# that exists, and never inserts one that does). In one transaction that gives the rows
# the jobs' own order gives; only a savepoint statement keeps its place.
WRITE_ORDER = {
    sql: position
    for position, sql in enumerate(
        (
            INSERT_DECISION,
            INSERT_DECISION_IMPORTER,
            INSERT_DECISION_PARTY,
            INSERT_REGISTRY,
            UPDATE_REGISTRY,
            INSERT_LEDGER_ROW,
            UPDATE_LEDGER_APPROVED,
            UPDATE_LEDGER_SHIPPED,
            INSERT_RESERVATION,
            UPDATE_RESERVATION_SHIPPED,
            INSERT_RESOLUTION,
            INSERT_LOG_ENTRY,
            INSERT_SHIPMENT,
            INSERT_TREE_NODE,
            INSERT_BUNDLE,
            INSERT_COSIGNATURE,
            UPSERT_CHECKPOINT,
            INSERT_CHECKPOINT,
        )
    )
}
# `Store.list` builds its query in store.reads with this driver's parameters.
DIALECT = Dialect(param=lambda name: f"%({name})s", true="TRUE")


@dataclass(frozen=True)
class PoolSettings:
    """How a replica talks to PostgreSQL. Timeouts bound every wait, so a database that
    stops answering turns into StoreError (UNAVAILABLE) instead of hung requests."""

    size: int = 10  # most connections this replica holds (writer and readers share them)
    statement_timeout_ms: int = 5_000  # per statement, including waits for row locks
    connect_timeout_s: float = 5.0  # to open a connection, and to wait for a free one


SELECT_SCHEMA_VERSION_TABLE = "SELECT to_regclass('schema_version')"


def stored_version(url: str, settings: PoolSettings | None = None) -> int | None:
    """The schema version of the store at `url`, read without changing anything (as
    `migrate` would: it creates the version table); None if it holds no eucgate store.
    Raises StoreError if the database cannot be reached."""
    settings = settings or PoolSettings()
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, round(settings.connect_timeout_s))
        ) as conn:
            table = conn.execute(SELECT_SCHEMA_VERSION_TABLE).fetchone()
            if table is None or table[0] is None:
                return None
            row = conn.execute(SELECT_SCHEMA_VERSION).fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot read the store's schema version: {_describe(exc)}") from exc
    return int(row[0]) if row is not None and int(row[0]) > 0 else None


def migrate(url: str, settings: PoolSettings | None = None, *, create: bool = True) -> int:
    """Apply every migration the database at `url` lacks; returns the version it is at.

    Idempotent, and safe when several replicas run it at once (an advisory lock orders
    them). Without `create`, a database that holds no eucgate store yet is refused
    rather than made a new, empty log. Raises StoreError if the database cannot be
    reached, holds no store (without `create`), or holds a version newer than this
    release understands.
    """
    settings = settings or PoolSettings()
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, round(settings.connect_timeout_s))
        ) as conn:
            return _migrate(conn, create)
    except psycopg.Error as exc:
        raise StoreError(f"cannot migrate the store: {_describe(exc)}") from exc


def _migrate(conn: psycopg.Connection[Any], create: bool) -> int:
    with conn.transaction():
        conn.execute(LOCK_MIGRATIONS, (MIGRATION_LOCK_KEY,))
        conn.execute(CREATE_SCHEMA_VERSION)
        conn.execute(INSERT_SCHEMA_VERSION_ZERO)
        row = conn.execute(SELECT_SCHEMA_VERSION).fetchone()
        found = int(row[0]) if row is not None else 0
        if found == 0 and not create:
            raise StoreError(
                "the database holds no eucgate store: create one with `eucgate db init` "
                "(or start with --init-store), or point the store URL at the existing one"
            )
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
            if version == 3:
                _backfill_registry(conn)
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
        with self._connection() as conn:
            # The checkpoint first: other replicas may commit between the two reads, and
            # a checkpoint is only ever signed for a tree already committed, so read in
            # this order it can exceed the tree only if the tree went back.
            stored = conn.execute(SELECT_CHECKPOINT).fetchone()
            size, root = conn.execute(SELECT_TREE_STATE).fetchone() or (0, EMPTY_ROOT)
            signed = None if stored is None else int(stored[0])
            if ahead := checkpoint_ahead(signed, int(size), "the database"):
                raise StoreError(f"{ahead}; restore the database that signed it")
            if signer is not None:
                self._checkpoint = self._publish_checkpoint(conn, int(size), bytes(root))
        self._writer.start()

    @classmethod
    def open(
        cls,
        url: str,
        signer: CheckpointSigner | None = None,
        settings: PoolSettings | None = None,
        *,
        create: bool = True,
    ) -> PostgresStore:
        """Connect to the database at `url` (a libpq URL or conninfo string), apply any
        missing migrations, and start this replica's writer.

        With `signer`, a checkpoint is signed and stored with every commit (and at open, if the
        stored one is older than the tree). Raises StoreError if the database cannot be
        reached within the connect timeout, holds no store and `create` is off, its
        stored checkpoint is ahead of its tree, or its schema is newer than this release.
        """
        settings = settings or PoolSettings()
        migrate(url, settings, create=create)
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
                # A silently partitioned database (no reset, no answer) must fail the
                # connection, not hang it: statement_timeout is the server's to enforce.
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                "tcp_user_timeout": settings.statement_timeout_ms,
            },
            configure=configure,
            # A connection the database dropped (restart, failover) is replaced before
            # use, so the first requests after an outage do not fail on stale sockets.
            check=_check_connection,
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

    def append(self, record: DecisionRecord) -> AppendResult:
        """Store `record`, committed before this returns (Recorder.append). Raises as
        Recorder.append says, and StoreError: STORE_UNAVAILABLE when nothing was stored,
        STORE_COMMIT_UNKNOWN when the connection broke during COMMIT (retry with the same
        request_id: the stored record is replayed).
        """
        job = AppendJob(record.derive(), Future())
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
        """Committed records matching `flt`, newest first (Decisions.list)."""
        return page_of(flt, page_size, page_token, DIALECT, self._fetch_list)

    def _fetch_list(self, sql: str, params: dict[str, Any]) -> builtins.list[DecisionRecord]:
        with self._connection() as conn:
            return [_record(row) for row in conn.execute(sql.encode(), params).fetchall()]

    def add_cosignature(self, size: int, witness: str, signature: str) -> None:
        """Keep a witness's cosignature of the checkpoint of `size` (Witnessed)."""
        job = CosignatureJob(size, witness, signature, Future())
        self._writer.submit(job)
        job.future.result()

    def put_bundle(self, digest: str, canonical: bytes) -> None:
        """Keep a bundle durably under `digest`; storing the same bytes again is a no-op
        (also when replicas store it at once: batches are serialised). Raises
        BundleError if `digest` already holds other bytes, StoreError on failure."""
        if self.get_bundle(digest) == canonical:
            return
        job = BundleJob(digest, bytes(canonical), Future())
        self._writer.submit(job)
        job.future.result()

    def registry_entry(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        """The decision that used (issuer, number), or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_REGISTRY, (issuer, certificate_number)).fetchone()
        return None if row is None else registry_entry_of(row)

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

        Batches store their checkpoint with them, but a database written by a release
        that signed after COMMIT may hold a checkpoint behind the committed tree (a
        replica died in between); a retry answered by another replica would then carry
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

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint any replica signed for `size`, or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_CHECKPOINT_AT, (size,)).fetchone()
        return None if row is None else StoredCheckpoint(size=int(row[0]), note=str(row[1]))

    def cosignatures(self, size: int) -> builtins.list[str]:
        """The cosignature lines kept for the checkpoint of `size`. Raises StoreError."""
        with self._connection() as conn:
            return [str(r[0]) for r in conn.execute(SELECT_COSIGNATURES, (size,)).fetchall()]

    def leaf_index(self, record_id: str) -> int | None:
        """The log position of a committed record, or None. Raises StoreError."""
        with self._connection() as conn:
            row = conn.execute(SELECT_LEAF_INDEX, (record_id,)).fetchone()
        return None if row is None else int(row[0])

    def inclusion_proof(self, index: int, size: int) -> tuple[bytes, builtins.list[bytes]]:
        """(leaf hash, inclusion proof) in O(log n) reads; see AuditLog.inclusion_proof.

        Every decision's answer carries one, so the committed size and the nodes it
        names come in one statement (a proof's nodes follow from `index` and `size`
        alone) when `size` is within the tree this replica committed or read; any other
        request is checked against the committed size before a node is read."""
        with self._connection() as conn:
            if not 0 <= index < size <= self._tree.size:
                return trees.inclusion_proof(_node_reader(conn), _tree_size(conn), index, size)
            keys = [(0, index), *merkle.nodes_of(merkle.inclusion_ranges(index, size))]
            levels, indices = [k[0] for k in keys], [k[1] for k in keys]
            rows = conn.execute(SELECT_SIZE_AND_NODES, (levels, indices)).fetchall()
            integrated = next(int(r[1]) for r in rows if r[0] < 0)
            found = {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows if r[0] >= 0}

            def nodes(wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
                if all(key in found for key in wanted):
                    return {key: found[key] for key in wanted}
                return dict(_node_reader(conn)(wanted))

            return trees.inclusion_proof(nodes, integrated, index, size)

    def consistency_proof(self, first: int, second: int) -> builtins.list[bytes]:
        """The consistency proof in O(log n) reads; see AuditLog.consistency_proof."""
        with self._connection() as conn:
            return trees.consistency_proof(_node_reader(conn), _tree_size(conn), first, second)

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
        """The batch transaction: BEGIN, lock the tree-state row (the one point where
        replicas queue), every job under its own savepoint (store.sequencer), the new
        tree state (only if still the size read under the lock), a checkpoint of it,
        COMMIT; then answer every caller.

        Pipelined first (`_sequence_pipelined`: two round trips under the lock, not a
        dozen per decision). If a statement fails there (a constraint one job broke),
        nothing was committed: the transaction is rolled back and the batch sequenced
        again statement by statement, so that job alone is answered with its error."""
        committing = False
        try:
            with self._pool.connection() as conn:
                try:
                    try:
                        tx, results, grown, checkpoint, tree_state = self._sequence_pipelined(
                            conn, batch
                        )
                        committing = True
                        tx.commit(tree_state)
                    except psycopg.Error as exc:
                        if isinstance(exc, psycopg.OperationalError):
                            raise
                        committing = False
                        _rollback(conn)
                        results, grown, checkpoint = self._sequence_each(conn, batch)
                        committing = True
                        conn.execute(COMMIT)
                except BaseException:
                    _rollback(conn)
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
        self._tree, self._checkpoint = grown, checkpoint
        self._writer.committed(results, checkpoint)

    def _sequence_pipelined(
        self, conn: psycopg.Connection[Any], batch: Sequence[Job]
    ) -> tuple[
        _PipelinedTransaction,
        builtins.list[tuple[Job, Answer]],
        CompactRange,
        StoredCheckpoint | None,
        tuple[int, bytes, int] | None,
    ]:
        """Up to COMMIT, in one round trip: BEGIN, the lock and everything the batch
        reads in one pipeline; then the sequencer over those reads (no statement waits:
        its writes are queued) and the checkpoint, queued too. Returns the transaction
        to commit and the new tree state to commit with it (None if the tree did not
        grow). Raises psycopg.Error (the transaction is left to roll back)."""
        tx = _PipelinedTransaction(conn)
        size, root, peaks = tx.begin(batch)
        start = self._tree_at(conn, size, root, peaks)
        results, grown = sequence(tx, batch, start)
        checkpoint = self._checkpoint
        if grown.size == start.size:  # replays only: no new tree state
            if self._signer is not None:
                tx.send()
                checkpoint = self._checkpoint_of(conn, start, grown)
            return tx, results, grown, checkpoint, None
        if self._signer is not None:
            # Under the lock no checkpoint beyond `start` can be stored yet: sign without
            # asking (see _checkpoint_of).
            note = self._signer.sign(grown.size, grown.root())
            tx.queue(UPSERT_CHECKPOINT, (grown.size, note))
            tx.queue(INSERT_CHECKPOINT, (grown.size, note))
            checkpoint = StoredCheckpoint(size=grown.size, note=note)
        return tx, results, grown, checkpoint, (grown.size, grown.root(), start.size)

    def _sequence_each(
        self, conn: psycopg.Connection[Any], batch: Sequence[Job]
    ) -> tuple[builtins.list[tuple[Job, Answer]], CompactRange, StoredCheckpoint | None]:
        """Up to COMMIT, one statement at a time (each job under a real savepoint), so
        a statement that fails is that job's error alone."""
        conn.execute(BEGIN)
        row = conn.execute(SELECT_TREE_STATE_FOR_UPDATE).fetchone()
        assert row is not None  # migration 1 inserts the row
        start = self._tree_at(conn, int(row[0]), bytes(row[1]))
        results, grown = sequence(_transaction(conn), batch, start)
        if grown.size != start.size:
            moved = conn.execute(UPDATE_TREE_STATE, (grown.size, grown.root(), start.size))
            if moved.rowcount != 1:
                raise StoreError("the tree state moved under its lock")
        checkpoint = self._checkpoint
        if self._signer is not None:
            checkpoint = self._checkpoint_of(conn, start, grown)
        return results, grown, checkpoint

    def _checkpoint_of(
        self, conn: psycopg.Connection[Any], start: CompactRange, grown: CompactRange
    ) -> StoredCheckpoint:
        """In the batch transaction: the checkpoint of `grown`, signed and stored with
        the batch. Under the tree-state row lock no checkpoint of a size beyond `start`
        can be stored yet, so a batch that appended signs without asking (one Ed25519
        signature, about one round trip's time); one that did not (replays only) takes
        the stored one of its size, if there is one."""
        assert self._signer is not None
        if grown.size == start.size:
            stored = conn.execute(SELECT_CHECKPOINT).fetchone()
            if stored is not None and int(stored[0]) == grown.size:
                return StoredCheckpoint(size=grown.size, note=str(stored[1]))
        note = self._signer.sign(grown.size, grown.root())
        conn.execute(UPSERT_CHECKPOINT, (grown.size, note))
        conn.execute(INSERT_CHECKPOINT, (grown.size, note))
        return StoredCheckpoint(size=grown.size, note=note)

    def _tree_at(
        self,
        conn: psycopg.Connection[Any],
        size: int,
        root: bytes,
        peaks: dict[tuple[int, int], bytes] | None = None,
    ) -> CompactRange:
        """The committed tree of (size, root) read under the lock: this replica's own
        copy when no other replica appended since, else its peaks (`peaks` if read
        already, else read from storage) checked against the root (Trillian rebuilds its
        compact tree the same way). Raises StoreError for nodes that do not give the root."""
        if self._tree.size == size and self._tree.root() == root:
            return self._tree
        reader = _node_reader(conn)
        if peaks is not None:
            known = peaks

            def reader(keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
                if all(key in known for key in keys):
                    return {key: known[key] for key in keys}
                return dict(_node_reader(conn)(keys))

        return stored_tree(size, root, reader)

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
            conn.execute(INSERT_CHECKPOINT, (size, note))
        return StoredCheckpoint(size=size, note=note)


def _describe(exc: BaseException) -> str:
    """One line about a database error, never the connection string (it may hold a
    password)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no detail'}"


def _check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check before it hands out `conn`: raises if the connection is dead.

    A server that drops a connection (restart, failover, an idle timeout) says so on its
    socket, with a message or by closing it, so an idle connection with nothing to read
    is as it was returned and costs no round trip (every checkout asked the database
    before: about six round trips a decision). Anything that did arrive is read by
    psycopg_pool's own check, which raises for a dead connection."""
    socket = select.poll()
    socket.register(conn.fileno(), select.POLLIN)
    if socket.poll(0):  # something to read, or hung up
        ConnectionPool.check_connection(conn)


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a transaction left open (or failed) by an error; the error itself is the one
    to report, so a connection already broken is not a second one."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            conn.execute(ROLLBACK)


def _tree_size(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(SELECT_TREE_STATE).fetchone()
    assert row is not None
    return int(row[0])


def _node_reader(conn: psycopg.Connection[Any]) -> NodeReader:
    def nodes(keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        levels, indices = [k[0] for k in keys], [k[1] for k in keys]
        rows = conn.execute(SELECT_NODES, (levels, indices)).fetchall()
        return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}

    return nodes


def _backfill_registry(conn: psycopg.Connection[Any]) -> None:
    """Take each EUC for the decisions stored before version 3, in log order."""
    tx = _transaction(conn)
    for row in conn.execute(SELECT_ALL_RECORDS_IN_LOG_ORDER).fetchall():
        take_euc(tx, _record(row))


def _backfill_parties(conn: psycopg.Connection[Any]) -> None:
    """Index the decisions stored before version 2 by the parties their bytes name."""
    tx = _transaction(conn)
    for row in conn.execute(SELECT_ALL_RECORDS).fetchall():
        tx.insert_parties(_record(row))


def _record(row: Sequence[Any]) -> DecisionRecord:
    return record_of(row, row[10])


STATEMENTS = Statements(
    savepoint=SAVEPOINT_RECORD,
    rollback_to_savepoint=ROLLBACK_TO_RECORD,
    release_savepoint=RELEASE_RECORD,
    select_by_request=SELECT_BY_REQUEST,
    select_leaf_index=SELECT_LEAF_INDEX,
    select_shipment=SELECT_SHIPMENT,
    select_bundle=SELECT_BUNDLE,
    select_resolution=SELECT_RESOLUTION,
    select_ledger_row=SELECT_LEDGER_ROW_FOR_UPDATE,
    select_reservation=SELECT_RESERVATION_FOR_UPDATE,
    select_decision_exists=SELECT_DECISION_EXISTS,
    insert_decision=INSERT_DECISION,
    insert_decision_importer=INSERT_DECISION_IMPORTER,
    insert_decision_party=INSERT_DECISION_PARTY,
    insert_ledger_row=INSERT_LEDGER_ROW,
    update_ledger_approved=UPDATE_LEDGER_APPROVED,
    update_ledger_shipped=UPDATE_LEDGER_SHIPPED,
    insert_reservation=INSERT_RESERVATION,
    update_reservation_shipped=UPDATE_RESERVATION_SHIPPED,
    insert_resolution=INSERT_RESOLUTION,
    insert_shipment=INSERT_SHIPMENT,
    insert_log_entry=INSERT_LOG_ENTRY,
    insert_tree_node=INSERT_TREE_NODE,
    insert_bundle=INSERT_BUNDLE,
    select_registry=SELECT_REGISTRY_FOR_UPDATE,
    insert_registry=INSERT_REGISTRY,
    update_registry=UPDATE_REGISTRY,
    insert_cosignature=INSERT_COSIGNATURE,
    registrations=list,
    record=_record,
)


def _transaction(conn: psycopg.Connection[Any]) -> Transaction:
    """The batch's open transaction for the sequencer. A statement that fails on its own
    (a constraint) is a StoreError for its job; a broken connection (OperationalError)
    propagates and fails the batch."""

    def run(sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        try:
            return conn.execute(sql, params)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise StoreError(f"cannot store this write: {_describe(exc)}") from exc

    def run_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise StoreError(f"cannot store this write: {_describe(exc)}") from exc

    return Transaction(STATEMENTS, run, run_many)


_T = TypeVar("_T")
_Key = tuple[str, Any]  # (what, key): a value `_PipelinedTransaction` knows
_ABSENT = object()  # in an undo entry: the key was not known before


class _PipelinedTransaction(Transaction):
    """The batch transaction in two round trips, COMMIT included.

    `begin` sends BEGIN, the tree-state lock and one query per kind of row the batch
    will read (its idempotency keys, registry entries and ledger rows, locked as the
    sequencer would lock them) in one pipeline. The sequencer's reads are then answered
    from what this transaction knows: those rows, updated by each write it queues.
    Writes are queued, not sent, and `commit` sends them with the new tree state and
    COMMIT in a second pipeline. A read of anything not known (shipments, bundles, a
    request twice in one batch) first sends the queued writes, then asks the database,
    so every read still sees the batch's earlier writes.

    A job that fails (QuotaTaken, RegistryChanged, a conflict) forgets its queued
    writes and what it taught; a SAVEPOINT is sent only if some of its writes went out
    already. psycopg errors are not turned into a job's StoreError: the caller rolls
    the whole transaction back and sequences the batch one statement at a time.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(STATEMENTS, self._queue_one, self._queue_many)
        self._conn = conn
        self._queued: builtins.list[tuple[str, Sequence[Sequence[Any]]]] = []
        self._known: dict[_Key, Any] = {}
        self._undo: builtins.list[tuple[_Key, Any]] | None = None  # the job's, if in one
        self._job_start = 0  # where the job's writes start in _queued
        self._job_savepoint = False  # a SAVEPOINT for the job went out

    # --- the two pipelines ----------------------------------------------------------

    def begin(self, batch: Sequence[Job]) -> tuple[int, bytes, dict[tuple[int, int], bytes]]:
        """BEGIN, lock the tree state and read what `batch` needs, in one round trip.
        Returns the locked (size, root) and the stored peaks of that tree."""
        records = [job.record for job in batch if isinstance(job, AppendJob)]
        requests = sorted({(r.caller, r.request_id) for r in records})
        registry = sorted(
            {(x.issuer, x.certificate_number) for r in records for x in r.registry_reads}
            | {
                (issuer, claim.certificate_number)
                for r in records
                if (claim := r.registry_claim) is not None
                for issuer in claim.issuers
            }
        )
        quotas = sorted(
            {(x.licence_number, x.control_code) for r in records for x in r.reservations}
        )
        referrals = sorted({r.resolves for r in records if r.resolves})
        conn = self._conn
        with conn.pipeline():
            conn.execute(BEGIN)
            state = conn.execute(SELECT_TREE_STATE_FOR_UPDATE)
            peaks = conn.execute(SELECT_PEAKS)
            found_requests = _pairs(conn, SELECT_BY_REQUESTS, requests)
            found_registry = _pairs(conn, SELECT_REGISTRY_KEYS_FOR_UPDATE, registry)
            found_quotas = _pairs(conn, SELECT_LEDGER_ROWS_FOR_UPDATE, quotas)
            found_referrals = conn.execute(SELECT_RESOLUTIONS, (referrals,)) if referrals else None
        row = state.fetchone()
        assert row is not None  # migration 1 inserts the row
        known = self._known
        for key in requests:
            known[("request", key)] = None
        for r in found_requests.fetchall() if found_requests else ():
            record = _record(r)
            known[("request", (record.caller, record.request_id))] = record
            known[("exists", record.decision_id)] = True
            known[("leaf", record.decision_id)] = None if r[11] is None else int(r[11])
        for key in registry:
            known[("registry", key)] = None
        for r in found_registry.fetchall() if found_registry else ():
            known[("registry", (r[0], r[1]))] = registry_entry_of(r[2:])
        for key in quotas:
            known[("ledger", key)] = None
        for r in found_quotas.fetchall() if found_quotas else ():
            known[("ledger", (r[0], r[1]))] = LedgerRow.of(r[2:])
        for referral in referrals:
            known[("resolution", referral)] = None
        for r in found_referrals.fetchall() if found_referrals else ():
            known[("resolution", r[0])] = str(r[1])
        nodes = {(int(r[0]), int(r[1])): bytes(r[2]) for r in peaks.fetchall()}
        return int(row[0]), bytes(row[1]), nodes

    def queue(self, sql: str, params: Sequence[Any]) -> None:
        """Send `sql` with the next round trip (outside any job's savepoint)."""
        self._queued.append((sql, [params]))

    def send(self) -> None:
        """Send every queued write now, in one round trip."""
        self._flush()

    def commit(self, tree_state: Sequence[Any] | None) -> None:
        """Send every queued write, the new tree state (UPDATE_TREE_STATE_OR_FAIL's
        parameters, if the tree grew) and COMMIT, in one round trip. Raises psycopg.Error
        if any of it fails: then nothing of the batch was committed, unless it is an
        OperationalError (the connection broke: the COMMIT may have run)."""
        self._flush(tree_state, commit=True)

    def _flush(self, tree_state: Sequence[Any] | None = None, *, commit: bool = False) -> None:
        if not (self._queued or tree_state or commit):
            return
        if self._undo is not None and not self._job_savepoint:
            # Part of a job goes out: it can be undone now only by its savepoint.
            self._queued.insert(self._job_start, (SAVEPOINT_RECORD, [()]))
            self._job_savepoint = True
        queued, self._queued, self._job_start = self._queued, [], 0
        conn = self._conn
        with conn.pipeline(), conn.cursor() as cur:
            for sql, rows in _in_write_order(queued):
                if sql in MULTI_ROW and len(rows) > 1:
                    cur.execute(
                        MULTI_ROW[sql], [list(column) for column in zip(*rows, strict=True)]
                    )
                elif len(rows) == 1:
                    cur.execute(sql, rows[0])
                elif rows:
                    cur.executemany(sql, rows)
            if tree_state:
                cur.execute(UPDATE_TREE_STATE_OR_FAIL, tree_state)
            if commit:
                cur.execute(COMMIT)

    # --- jobs -----------------------------------------------------------------------

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Around one job: on an exception its queued writes are dropped (rolled back
        to its savepoint if some went out) and what it taught this transaction undone."""
        self._undo, self._job_start, self._job_savepoint = [], len(self._queued), False
        try:
            yield
        except BaseException:
            for key, value in reversed(self._undo):
                if value is _ABSENT:
                    self._known.pop(key, None)
                else:
                    self._known[key] = value
            del self._queued[self._job_start :]
            if self._job_savepoint:
                self.queue(ROLLBACK_TO_RECORD, ())
                self.queue(RELEASE_RECORD, ())
            raise
        else:
            if self._job_savepoint:
                self.queue(RELEASE_RECORD, ())
        finally:
            self._undo = None

    def _queue_one(self, sql: str, params: Sequence[Any]) -> None:
        self._queued.append((sql, [params]))

    def _queue_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._queued.append((sql, rows))

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        """A read of something not known: after the queued writes, so it sees them."""
        self._flush()
        return self._conn.execute(sql, params).fetchone()

    def _learn(self, key: _Key, value: Any) -> None:
        if self._undo is not None:
            self._undo.append((key, self._known.get(key, _ABSENT)))
        self._known[key] = value

    def _forget(self, key: _Key) -> None:
        if key in self._known:
            if self._undo is not None:
                self._undo.append((key, self._known[key]))
            del self._known[key]

    def _read(self, key: _Key, read: Callable[..., _T], *args: Any) -> _T:
        if key in self._known:
            value: _T = self._known[key]
            return value
        value = read(*args)
        self._learn(key, value)
        return value

    # --- reads: known, else asked -----------------------------------------------------

    def record_by_request(self, caller: str, request_id: str) -> DecisionRecord | None:
        key = ("request", (caller, request_id))
        return self._read(key, super().record_by_request, caller, request_id)

    def leaf_index(self, record_id: str) -> int | None:
        return self._read(("leaf", record_id), super().leaf_index, record_id)

    def shipment_by_reference(self, gateway_reference: str) -> Shipment | None:
        key = ("shipment", gateway_reference)
        return self._read(key, super().shipment_by_reference, gateway_reference)

    def bundle(self, digest: str) -> bytes | None:
        return self._read(("bundle", digest), super().bundle, digest)

    def resolution(self, referral_id: str) -> str | None:
        return self._read(("resolution", referral_id), super().resolution, referral_id)

    def ledger_row(self, licence_number: str, control_code: str) -> LedgerRow | None:
        key = ("ledger", (licence_number, control_code))
        return self._read(key, super().ledger_row, licence_number, control_code)

    def reservation(self, decision_id: str, control_code: str) -> ReservationRow | None:
        key = ("reservation", (decision_id, control_code))
        return self._read(key, super().reservation, decision_id, control_code)

    def decision_exists(self, decision_id: str) -> bool:
        return self._read(("exists", decision_id), super().decision_exists, decision_id)

    def registry_entry(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        key = ("registry", (issuer, certificate_number))
        return self._read(key, super().registry_entry, issuer, certificate_number)

    # --- writes: queued, and what they change is learnt or forgotten --------------------

    def insert_record(self, record: DecisionRecord) -> None:
        super().insert_record(record)
        self._forget(("request", (record.caller, record.request_id)))  # read it back
        self._learn(("exists", record.decision_id), True)

    def insert_leaf(self, index: int, record_id: str, entry: bytes) -> None:
        super().insert_leaf(index, record_id, entry)
        self._learn(("leaf", record_id), index)

    def insert_ledger_row(
        self, licence_number: str, control_code: str, unit: str, approved: str
    ) -> None:
        super().insert_ledger_row(licence_number, control_code, unit, approved)
        row = LedgerRow(unit, Decimal(approved), Decimal(0))
        self._learn(("ledger", (licence_number, control_code)), row)

    def update_ledger_approved(self, licence_number: str, control_code: str, total: str) -> None:
        super().update_ledger_approved(licence_number, control_code, total)
        self._change_ledger(licence_number, control_code, Decimal(total), None)

    def update_ledger_shipped(self, licence_number: str, control_code: str, total: str) -> None:
        super().update_ledger_shipped(licence_number, control_code, total)
        self._change_ledger(licence_number, control_code, None, Decimal(total))

    def _change_ledger(
        self,
        licence_number: str,
        control_code: str,
        approved: Decimal | None,
        shipped: Decimal | None,
    ) -> None:
        key = ("ledger", (licence_number, control_code))
        row = self._known.get(key)
        if isinstance(row, LedgerRow):
            approved = row.approved if approved is None else approved
            shipped = row.shipped if shipped is None else shipped
            self._learn(key, LedgerRow(row.unit, approved, shipped))
        else:
            self._forget(key)

    def insert_reservation(
        self, decision_id: str, control_code: str, licence_number: str, unit: str, quantity: str
    ) -> None:
        super().insert_reservation(decision_id, control_code, licence_number, unit, quantity)
        self._forget(("reservation", (decision_id, control_code)))

    def update_reservation_shipped(self, decision_id: str, control_code: str, total: str) -> None:
        super().update_reservation_shipped(decision_id, control_code, total)
        self._forget(("reservation", (decision_id, control_code)))

    def insert_resolution(self, referral_id: str, decision_id: str) -> None:
        super().insert_resolution(referral_id, decision_id)
        self._learn(("resolution", referral_id), decision_id)

    def insert_shipment(self, shipment: Shipment) -> None:
        super().insert_shipment(shipment)
        self._forget(("shipment", shipment.gateway_reference))

    def insert_bundle(self, digest: str, canonical: bytes) -> None:
        super().insert_bundle(digest, canonical)
        self._forget(("bundle", digest))

    def insert_registry(self, issuer: str, number: str, entry: RegistryEntry) -> None:
        super().insert_registry(issuer, number, entry)
        self._learn(("registry", (issuer, number)), _entry(entry))

    def update_registry(self, issuer: str, number: str, entry: RegistryEntry) -> None:
        super().update_registry(issuer, number, entry)
        self._learn(("registry", (issuer, number)), _entry(entry))


def _in_write_order(
    queued: Sequence[tuple[str, Sequence[Sequence[Any]]]],
) -> Iterator[tuple[str, builtins.list[Sequence[Any]]]]:
    """`queued` as (statement, all its rows) in WRITE_ORDER, between savepoint
    statements (which stay where they are): one statement or executemany per kind."""
    kinds: dict[str, builtins.list[Sequence[Any]]] = {}
    for sql, rows in queued:
        if sql in WRITE_ORDER:
            kinds.setdefault(sql, []).extend(rows)
            continue
        yield from sorted(kinds.items(), key=lambda kind: WRITE_ORDER[kind[0]])
        kinds = {}
        yield sql, builtins.list(rows)
    yield from sorted(kinds.items(), key=lambda kind: WRITE_ORDER[kind[0]])


def _entry(entry: RegistryEntry) -> RegistryEntry:
    """`entry` as a read of its stored row gives it back."""
    return registry_entry_of((entry.euc_digest, entry.decision_id, entry.outcome))


def _pairs(
    conn: psycopg.Connection[Any], sql: str, keys: Sequence[tuple[str, str]]
) -> psycopg.Cursor[Any] | None:
    """Run `sql` over `keys` as two parallel text arrays (in a pipeline: sent, not
    waited for); None when there are no keys."""
    if not keys:
        return None
    return conn.execute(sql, ([k[0] for k in keys], [k[1] for k in keys]))
