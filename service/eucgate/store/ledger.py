"""The quota-ledger rules both drivers share: checks and arithmetic over ledger rows.

A driver reads the rows inside its own transaction (plain reads under SQLite's
`BEGIN IMMEDIATE`, `SELECT ... FOR UPDATE` on PostgreSQL) through a `LedgerReads`, and
writes the totals this module returns with its own SQL. Rows read in the transaction
already hold the batch's earlier reservations and debits, so an approval is checked
against the committed totals plus everything the batch took before it.

Nothing here writes, and the reads happen in the order a driver's locking relies on:
for an approval, the resolution row, then each reservation's ledger row; for a
shipment, the decision, its reservation row, then the ledger row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from eucgate.core.quota import QuotaUnitError, convert
from eucgate.errors import FailedPrecondition, NotFound
from eucgate.store.base import DecisionRecord, QuotaTaken, Reservation, Shipment


@dataclass(frozen=True)
class LedgerRow:
    """One quota_ledger row: the totals of a (licence, control code) quota."""

    unit: str
    approved: Decimal
    shipped: Decimal

    @classmethod
    def of(cls, row: Sequence[Any]) -> LedgerRow:
        """From a (unit, approved, shipped) row."""
        return cls(str(row[0]), Decimal(row[1]), Decimal(row[2]))


@dataclass(frozen=True)
class ReservationRow:
    """One reservations row: what an approval reserved under a quota, and shipped."""

    licence_number: str
    unit: str
    quantity: Decimal
    shipped: Decimal

    @classmethod
    def of(cls, row: Sequence[Any]) -> ReservationRow:
        """From a (licence_number, unit, quantity, shipped) row."""
        return cls(str(row[0]), str(row[1]), Decimal(row[2]), Decimal(row[3]))


class LedgerReads(Protocol):
    """The reads the ledger rules make, inside the driver's open transaction."""

    def resolution(self, referral_id: str) -> str | None:
        """The decision that resolved `referral_id`, or None."""
        ...

    def ledger_row(self, licence_number: str, control_code: str) -> LedgerRow | None:
        """The ledger row of the quota, or None if nothing was reserved under it yet."""
        ...

    def reservation(self, decision_id: str, control_code: str) -> ReservationRow | None:
        """What `decision_id` reserved under `control_code`, or None."""
        ...

    def decision_exists(self, decision_id: str) -> bool:
        """Whether a decision `decision_id` is stored."""
        ...


@dataclass(frozen=True)
class Debit:
    """A checked shipment (with its approval's licence) and the shipped totals it moves
    its reservation and its ledger row to; the driver writes them."""

    shipment: Shipment
    reservation_shipped: Decimal
    ledger_shipped: Decimal


def converted(value: Decimal, unit: str, to: str) -> Decimal:
    """`value` in `unit`, expressed in `to`. Raises FailedPrecondition
    (QUOTA_UNIT_MISMATCH) if the units do not convert."""
    try:
        return convert(value, unit, to)
    except QuotaUnitError as exc:
        raise FailedPrecondition(str(exc), reason="QUOTA_UNIT_MISMATCH") from exc


def approved(reads: LedgerReads, r: Reservation) -> Decimal:
    """The approved total under `r`'s quota now (in this transaction), in `r`'s unit.
    Raises FailedPrecondition (QUOTA_UNIT_MISMATCH)."""
    row = reads.ledger_row(r.licence_number, r.control_code)
    if row is None:
        return Decimal(0)
    return converted(row.approved, row.unit, r.unit)


def approved_after(row: LedgerRow, r: Reservation) -> Decimal:
    """The approved total of an existing ledger row once `r` is added, in the row's unit.
    Raises FailedPrecondition (QUOTA_UNIT_MISMATCH)."""
    return row.approved + converted(r.quantity, r.unit, row.unit)


def fits(reads: LedgerReads, record: DecisionRecord) -> bool:
    """Whether every reservation of `record` fits its quota now."""
    return all(approved(reads, r) + r.quantity <= r.quota for r in record.reservations)


def check_fits(reads: LedgerReads, record: DecisionRecord) -> None:
    """Refuse `record` unless it may be stored now: a resolution whose referral is still
    open, and reservations that fit their quotas (committed totals plus what the batch
    took before it). Raises FailedPrecondition (REFERRAL_ALREADY_RESOLVED,
    QUOTA_UNIT_MISMATCH), QuotaTaken (QUOTA_EXHAUSTED, with the approved totals seen:
    the gate decides again on them)."""
    if record.resolves:
        resolved_by = reads.resolution(record.resolves)
        if resolved_by is not None:
            raise FailedPrecondition(
                f"decision {record.resolves} was already resolved by {resolved_by}",
                reason="REFERRAL_ALREADY_RESOLVED",
                field="decision_id",
            )
    if fits(reads, record):
        return
    short = ", ".join(
        f"{r.control_code} of licence {r.licence_number}" for r in record.reservations
    )
    raise QuotaTaken(
        f"the quota left under {short} cannot cover this approval",
        approved={
            (r.licence_number, r.control_code): approved(reads, r) for r in record.reservations
        },
    )


def debit(reads: LedgerReads, shipment: Shipment) -> Debit:
    """Check a new shipment against its approval. Raises NotFound (DECISION_NOT_FOUND),
    FailedPrecondition (SHIPMENT_NOT_APPROVED, SHIPMENT_EXCEEDS_APPROVAL,
    QUOTA_UNIT_MISMATCH)."""
    if not reads.decision_exists(shipment.decision_id):
        raise NotFound(f"no decision {shipment.decision_id}", reason="DECISION_NOT_FOUND")
    row = reads.reservation(shipment.decision_id, shipment.control_code)
    if row is None:
        raise FailedPrecondition(
            f"decision {shipment.decision_id} approved nothing under a quota kept for "
            f"{shipment.control_code}",
            reason="SHIPMENT_NOT_APPROVED",
            field="control_code",
        )
    unit, quantity, shipped = row.unit, row.quantity, row.shipped
    amount = converted(shipment.quantity, shipment.unit, unit)
    if shipped + amount > quantity:
        raise FailedPrecondition(
            f"{format(amount, 'f')} {unit} more would ship "
            f"{format(shipped + amount, 'f')} {unit} under decision {shipment.decision_id}, "
            f"which approved {format(quantity, 'f')} {unit}",
            reason="SHIPMENT_EXCEEDS_APPROVAL",
            field="quantity",
        )
    ledger = reads.ledger_row(row.licence_number, shipment.control_code)
    assert ledger is not None  # a reservation and its ledger row commit together
    return Debit(
        shipment=dataclasses.replace(shipment, licence_number=row.licence_number),
        reservation_shipped=shipped + amount,
        ledger_shipped=ledger.shipped + converted(amount, unit, ledger.unit),
    )
