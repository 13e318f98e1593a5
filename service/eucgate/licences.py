"""The quota ledger at the edge: balances read before deciding, reservations to record.

How an approval never passes a quota while `decide()` stays pure:

1. Before deciding, the gate reads the committed balances of the end user's licence
   (`snapshot`) and hands them to `decide()` as a LedgerView; the decision records every
   balance it read (`Decision.ledger_reads`, and the log entry's `ledger_reads`).
2. An APPROVED decision carries `reservations` (what it takes from each quota, with the
   quota of the bundle it was made under).
3. The store's batch transaction re-checks each reservation against the totals then
   committed, plus those reserved earlier in the same batch. If one no longer fits, the
   store refuses the record (`QuotaTaken`, with the totals it saw) and the gate decides
   the same submission again, at the same clock reading, on those totals (`view_of`),
   outside the transaction: no application code runs while the store holds its lock.
   QTY-001 then rejects, and that decision, with the balances it read, is what is
   recorded and answered. One code path decides; replay gets the same answer from the
   recorded balances.

Quota units: the ledger keeps each (licence, control code) total in the unit of its first
reservation and converts exactly (core.quota) when a later bundle keeps it in another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from eucgate.core.bundle import Bundle, LicensedImporter
from eucgate.core.decision import Decision, Outcome
from eucgate.core.ledger import SnapshotLedger
from eucgate.core.model import Certificate
from eucgate.core.quota import QuotaUnitError, convert, demand
from eucgate.core.receipt import QuotaBalance
from eucgate.log import entry
from eucgate.store.base import Ledger, LicenceBalance, Reservation

Approved = Mapping[tuple[str, str], Decimal]


@dataclass(frozen=True)
class QuotaPlan:
    """Which licence a submission's quotas draw on, found once per submission: the
    licensed importer of the bundle that is the certificate's end user (None if it has
    no licence), with what it needs to read balances and reserve."""

    bundle: Bundle
    certificate: Certificate
    licensee: LicensedImporter | None

    @classmethod
    def of(cls, bundle: Bundle, certificate: Certificate) -> QuotaPlan:
        return cls(bundle, certificate, bundle.licensed_importer_for(certificate.end_user))


def snapshot(store: Ledger, plan: QuotaPlan) -> SnapshotLedger:
    """The committed balances of the end user's licence quotas (none if unlicensed).

    Raises StoreError.
    """
    licensee = plan.licensee
    if licensee is None or not licensee.quotas:
        return SnapshotLedger({})
    rows = {row.control_code: row for row in store.balances(licensee.licence_number)}
    approved: dict[tuple[str, str], Decimal] = {}
    for quota in licensee.quotas:
        row = rows.get(quota.control_code)
        if row is None:
            continue
        try:
            approved[(licensee.licence_number, quota.control_code)] = convert(
                row.approved, row.unit, quota.unit
            )
        except QuotaUnitError:
            continue  # QTY-001 cannot compare; the store refuses to reserve across units
    return view_of(plan, approved)


def view_of(plan: QuotaPlan, approved: Approved) -> SnapshotLedger:
    """The view `decide()` reads when `approved` (in the quotas' units) is taken:
    remaining = quota - approved for every quota-kept code of the end user's licence."""
    licensee = plan.licensee
    if licensee is None:
        return SnapshotLedger({})
    number = licensee.licence_number
    return SnapshotLedger(
        {
            (number, q.control_code): q.quantity - approved.get((number, q.control_code), 0)
            for q in licensee.quotas
        }
    )


def reservations(decision: Decision, plan: QuotaPlan) -> tuple[Reservation, ...]:
    """What an APPROVED decision takes from its licence's quotas; () otherwise.

    Raises QuotaUnitError only if QTY-001 is absent from the bundle and an item's unit
    does not convert (with QTY-001 such a decision is REFERRED, never APPROVED).
    """
    licensee = plan.licensee
    if decision.outcome is not Outcome.APPROVED or licensee is None or not licensee.quotas:
        return ()
    taken = []
    for code, amount in demand(plan.bundle, licensee, plan.certificate.items).items():
        quota = licensee.quota_for(code)
        assert quota is not None  # demand() counts only quota-kept codes
        taken.append(Reservation(licensee.licence_number, code, amount, quota.unit, quota.quantity))
    return tuple(taken)


def receipt_balances(
    decision: Decision, reservations: Sequence[Reservation]
) -> tuple[QuotaBalance, ...]:
    """What each reservation of an approval leaves of its quota, from the balance the
    decision read (a quota nothing was recorded against reads as the whole quota)."""
    reads = {(r.licence_number, r.control_code): r.remaining for r in decision.ledger_reads}
    balances = []
    for res in reservations:
        read = reads.get((res.licence_number, res.control_code))
        balances.append(
            QuotaBalance(
                licence_number=res.licence_number,
                control_code=res.control_code,
                unit=res.unit,
                quota=res.quota,
                remaining_before=res.quota if read is None else Decimal(read),
                approved=res.quantity,
            )
        )
    return tuple(balances)


def log_reads(decision: Decision) -> tuple[entry.LedgerRead, ...]:
    """The decision's ledger reads as the log entry holds them."""
    return tuple(
        entry.LedgerRead(r.licence_number, r.control_code, r.remaining)
        for r in decision.ledger_reads
    )


def balance_rows(
    store: Ledger, bundle: Bundle, licence_number: str
) -> list[tuple[str, str, Decimal, Decimal, Decimal]]:
    """(control code, unit, quota, approved, shipped) per quota of `licence_number` under
    `bundle`, totals in the quota's unit; codes with ledger rows but no quota in this
    bundle come last with quota 0. Raises StoreError, QuotaUnitError."""
    licensee = next(
        (li for li in bundle.licensed_importers if li.licence_number == licence_number), None
    )
    rows: dict[str, LicenceBalance] = {r.control_code: r for r in store.balances(licence_number)}
    out = []
    for quota in licensee.quotas if licensee is not None else ():
        row = rows.pop(quota.control_code, None)
        approved = convert(row.approved, row.unit, quota.unit) if row else Decimal(0)
        shipped = convert(row.shipped, row.unit, quota.unit) if row else Decimal(0)
        out.append((quota.control_code, quota.unit, quota.quantity, approved, shipped))
    for code, row in sorted(rows.items()):
        out.append((code, row.unit, Decimal(0), row.approved, row.shipped))
    return out


def held_by(bundle: Bundle, licence_number: str, registrations: frozenset[str]) -> bool:
    """Whether `bundle` lists `licence_number` for an importer carrying one of
    `registrations` ("SCHEME:VALUE"): what an importer caller may read balances of."""
    return any(
        li.licence_number == licence_number
        and not registrations.isdisjoint(f"{r.scheme}:{r.value}" for r in li.registrations)
        for li in bundle.licensed_importers
    )
