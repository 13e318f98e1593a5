"""Durable decision stores: one interface (`base.Store`), one driver per database.

The store is the system of record: an append that returned is committed and fsync'd.
"""

from eucgate.store.base import (
    AppendResult,
    DecisionFilter,
    DecisionRecord,
    Page,
    Store,
    StoredCheckpoint,
    TreeState,
)
from eucgate.store.sqlite import SqliteStore

__all__ = [
    "AppendResult",
    "DecisionFilter",
    "DecisionRecord",
    "Page",
    "SqliteStore",
    "Store",
    "StoredCheckpoint",
    "TreeState",
]
