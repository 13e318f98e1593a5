"""The open batch transaction as the sequencer sees it: one method per statement.

A driver supplies its SQL (`Statements`, named constants in its own module) and how it
runs a statement (`run`, `run_many`, which turn a statement that fails for this job
alone into StoreError and let a broken connection through); this class supplies the
parameters and the row mapping, once for every driver.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eucgate.core.registry import RegistryEntry
from eucgate.store.base import DecisionRecord, Shipment, to_micros
from eucgate.store.ledger import LedgerRow, ReservationRow
from eucgate.store.reads import registry_entry_of, shipment_of


@dataclass(frozen=True)
class Statements:
    """A driver's SQL for the batch transaction, and how it stores registrations."""

    savepoint: str
    rollback_to_savepoint: str
    release_savepoint: str
    select_by_request: str  # RECORD_COLUMNS by (caller, request_id)
    select_leaf_index: str
    select_shipment: str  # SHIPMENT_COLUMNS by gateway_reference
    select_bundle: str
    select_resolution: str
    select_ledger_row: str  # (unit, approved, shipped); PostgreSQL locks it
    select_reservation: str  # (licence, unit, quantity, shipped); PostgreSQL locks it
    select_decision_exists: str
    insert_decision: str
    insert_decision_importer: str
    insert_decision_party: str
    insert_ledger_row: str  # (licence, code, unit, approved), shipped 0
    update_ledger_approved: str  # (total, licence, code)
    update_ledger_shipped: str  # (total, licence, code)
    insert_reservation: str  # (decision, code, licence, unit, quantity), shipped 0
    update_reservation_shipped: str  # (total, decision, code)
    insert_resolution: str
    insert_shipment: str
    insert_log_entry: str
    insert_tree_node: str
    insert_bundle: str
    select_registry: str  # (euc_digest, decision_id, outcome) by (issuer, number)
    insert_registry: str  # (issuer, number, euc_digest, decision_id, outcome)
    update_registry: str  # (euc_digest, decision_id, outcome, issuer, number)
    insert_cosignature: str  # (size, witness, signature); a second one is ignored
    # The driver's column value for a record's importer registrations, and its record
    # from a RECORD_COLUMNS row.
    registrations: Callable[[Sequence[str]], Any]
    record: Callable[[Sequence[Any]], DecisionRecord]


Run = Callable[[str, Sequence[Any]], Any]  # returns a cursor (fetchone)
RunMany = Callable[[str, Sequence[Sequence[Any]]], None]


class Transaction:
    """The writer's open transaction (store.sequencer uses it; ledger.LedgerReads too).

    Reads and writes raise StoreError when a statement fails for this job alone, which
    the sequencer answers with after rolling the job back to its savepoint.
    """

    def __init__(self, sql: Statements, run: Run, run_many: RunMany) -> None:
        self._sql = sql
        self._run = run
        self._run_many = run_many

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Around one job: released on success, rolled back to on any exception."""
        self._run(self._sql.savepoint, ())
        try:
            yield
        except BaseException:
            self._run(self._sql.rollback_to_savepoint, ())
            self._run(self._sql.release_savepoint, ())
            raise
        self._run(self._sql.release_savepoint, ())

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        return self._run(sql, params).fetchone()

    # --- reads ----------------------------------------------------------------------

    def record_by_request(self, caller: str, request_id: str) -> DecisionRecord | None:
        row = self._one(self._sql.select_by_request, (caller, request_id))
        return None if row is None else self._sql.record(row)

    def leaf_index(self, record_id: str) -> int | None:
        row = self._one(self._sql.select_leaf_index, (record_id,))
        return None if row is None else int(row[0])

    def shipment_by_reference(self, gateway_reference: str) -> Shipment | None:
        row = self._one(self._sql.select_shipment, (gateway_reference,))
        return None if row is None else shipment_of(gateway_reference, row)

    def bundle(self, digest: str) -> bytes | None:
        row = self._one(self._sql.select_bundle, (digest,))
        return None if row is None else bytes(row[0])

    def resolution(self, referral_id: str) -> str | None:
        row = self._one(self._sql.select_resolution, (referral_id,))
        return None if row is None else str(row[0])

    def ledger_row(self, licence_number: str, control_code: str) -> LedgerRow | None:
        row = self._one(self._sql.select_ledger_row, (licence_number, control_code))
        return None if row is None else LedgerRow.of(row)

    def reservation(self, decision_id: str, control_code: str) -> ReservationRow | None:
        row = self._one(self._sql.select_reservation, (decision_id, control_code))
        return None if row is None else ReservationRow.of(row)

    def decision_exists(self, decision_id: str) -> bool:
        return self._one(self._sql.select_decision_exists, (decision_id,)) is not None

    def registry_entry(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        row = self._one(self._sql.select_registry, (issuer, certificate_number))
        return None if row is None else registry_entry_of(row)

    # --- writes ---------------------------------------------------------------------

    def insert_record(self, record: DecisionRecord) -> None:
        """The decision row and its index rows (importer values, parties)."""
        decided_at = to_micros(record.decided_at)
        self._run(
            self._sql.insert_decision,
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
                self._sql.registrations(record.importer_registrations),
            ),
        )
        for value in record.importer_registrations:
            self._run(self._sql.insert_decision_importer, (value, decided_at, record.decision_id))
        self.insert_parties(record)

    def insert_parties(self, record: DecisionRecord) -> None:
        """Index `record` by the parties its decision names (also run by migrations)."""
        decided_at = to_micros(record.decided_at)
        self._run_many(
            self._sql.insert_decision_party,
            [(party, decided_at, record.decision_id) for party in sorted(record.parties)],
        )

    def insert_ledger_row(
        self, licence_number: str, control_code: str, unit: str, approved: str
    ) -> None:
        self._run(self._sql.insert_ledger_row, (licence_number, control_code, unit, approved))

    def update_ledger_approved(self, licence_number: str, control_code: str, total: str) -> None:
        self._run(self._sql.update_ledger_approved, (total, licence_number, control_code))

    def update_ledger_shipped(self, licence_number: str, control_code: str, total: str) -> None:
        self._run(self._sql.update_ledger_shipped, (total, licence_number, control_code))

    def insert_reservation(
        self, decision_id: str, control_code: str, licence_number: str, unit: str, quantity: str
    ) -> None:
        self._run(
            self._sql.insert_reservation,
            (decision_id, control_code, licence_number, unit, quantity),
        )

    def update_reservation_shipped(self, decision_id: str, control_code: str, total: str) -> None:
        self._run(self._sql.update_reservation_shipped, (total, decision_id, control_code))

    def insert_resolution(self, referral_id: str, decision_id: str) -> None:
        self._run(self._sql.insert_resolution, (referral_id, decision_id))

    def insert_shipment(self, shipment: Shipment) -> None:
        self._run(
            self._sql.insert_shipment,
            (
                shipment.gateway_reference,
                shipment.shipment_id,
                shipment.decision_id,
                shipment.caller,
                shipment.licence_number,
                shipment.control_code,
                format(shipment.quantity, "f"),
                shipment.unit,
                to_micros(shipment.recorded_at),
            ),
        )

    def insert_leaf(self, index: int, record_id: str, entry: bytes) -> None:
        self._run(self._sql.insert_log_entry, (index, record_id, entry))

    def insert_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """(level, node_index, hash) rows of the perfect subtrees a leaf completed."""
        self._run_many(self._sql.insert_tree_node, nodes)

    def insert_bundle(self, digest: str, canonical: bytes) -> None:
        self._run(self._sql.insert_bundle, (digest, canonical))

    def insert_cosignature(self, size: int, witness: str, signature: str) -> None:
        self._run(self._sql.insert_cosignature, (size, witness, signature))

    def insert_registry(self, issuer: str, number: str, entry: RegistryEntry) -> None:
        self._run(
            self._sql.insert_registry,
            (issuer, number, entry.euc_digest, entry.decision_id, entry.outcome),
        )

    def update_registry(self, issuer: str, number: str, entry: RegistryEntry) -> None:
        self._run(
            self._sql.update_registry,
            (entry.euc_digest, entry.decision_id, entry.outcome, issuer, number),
        )
