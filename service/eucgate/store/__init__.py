"""Durable decision stores: one interface (`base.Store`), one driver per database.

The store is the system of record: an append that returned is committed and fsync'd.
"""

from pathlib import Path

from eucgate.log.checkpoint import CheckpointSigner
from eucgate.store.base import (
    AppendResult,
    DecisionFilter,
    DecisionRecord,
    Page,
    Store,
    StoredCheckpoint,
    StoreStats,
    TreeState,
)
from eucgate.store.postgresql import PoolSettings, PostgresStore
from eucgate.store.sqlite import SqliteStore, StoreLock

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


def is_postgresql(location: str) -> bool:
    """Whether `location` names a PostgreSQL database (a postgresql:// URL)."""
    return location.startswith(POSTGRESQL_SCHEMES)


def open_store(
    location: str | Path,
    signer: CheckpointSigner | None = None,
    pool: PoolSettings | None = None,
    *,
    create: bool = True,
    held: StoreLock | None = None,
) -> Store:
    """The store at `location`: a postgresql:// URL (shared by replicas; `pool` applies),
    else the path of a SQLite file (`held`: the lock a parent process took for this
    worker, see SqliteStore.open). Without `create`, one that does not exist yet is
    refused. Raises StoreError as the store's `open` does."""
    if isinstance(location, str) and is_postgresql(location):
        return PostgresStore.open(location, signer, pool, create=create)
    return SqliteStore.open(Path(location), signer, create=create, held=held)


__all__ = [
    "AppendResult",
    "DecisionFilter",
    "DecisionRecord",
    "Page",
    "PoolSettings",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreLock",
    "StoreStats",
    "StoredCheckpoint",
    "TreeState",
    "is_postgresql",
    "open_store",
]
