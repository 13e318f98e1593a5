"""What one batch transaction does, once for every driver.

A driver opens its transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN` and the
tree-state row locked `FOR UPDATE`), hands it to `sequence` as a `Transaction`, writes
the tree state it gets back, and commits. `sequence` applies each job of the batch in
order, each under its own savepoint, so a job that fails alone (a conflict, a quota
taken, a constraint) is answered with its error and the others still commit:

1. an append: its idempotency key (caller, request_id) first: the same envelope again
   answers with the stored record, another envelope is a conflict; then a resolution's
   referral must still be open; then its quota reservations must fit the totals now
   (committed, plus what earlier jobs of the batch took), and the registry entries of
   decided EUCs it read must be unchanged; then the record, its reservations, its use
   of the EUC and its log leaf are written;
2. a shipment: its gateway reference, the approval it debits, then the debit and its
   own log leaf;
3. a bundle: stored once by digest, never with other bytes;
4. a witness's cosignature of a checkpoint: kept once per (size, witness).

No callback into the application runs here: an approval whose quota a concurrent
approval took is answered with `QuotaTaken` and the balances seen (a decision whose
registry entries changed, with `RegistryChanged` and the entries now), and the gate
decides again outside the transaction. This module holds no SQL: each `Transaction` method is
one of the driver's statements (store.transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eucgate_client.tlog import CompactRange, leaf_hash

from eucgate.core.registry import USING_OUTCOMES, RegistryEntry
from eucgate.errors import BundleError, EucgateError, RequestConflict
from eucgate.log.entry import encode_shipment
from eucgate.store import ledger
from eucgate.store.base import (
    AppendResult,
    DecisionRecord,
    RegistryChanged,
    Shipment,
    ShipmentResult,
)
from eucgate.store.transaction import Transaction
from eucgate.store.writer import Answer, AppendJob, BundleJob, CosignatureJob, Job, ShipmentJob

# Registry entries read in the transaction, by (issuer, certificate number).
RegistryHeld = Mapping[tuple[str, str], RegistryEntry | None]


def sequence(
    tx: Transaction, batch: Sequence[Job], tree: CompactRange
) -> tuple[list[tuple[Job, Answer]], CompactRange]:
    """Apply every job of `batch` in `tx`, growing a copy of `tree` by each new leaf.

    Returns each job's answer (its result or its error) and the grown tree, which the
    driver writes as the new tree state before COMMIT.
    """
    grown = tree.copy()
    results: list[tuple[Job, Answer]] = []
    for job in batch:
        leaf = None
        try:
            with tx.savepoint():
                answer, leaf = _apply(tx, job, grown)
        except EucgateError as exc:
            answer = exc
        if leaf is not None:  # the job's writes stand: its leaf joins the tree
            grown.append(leaf)
        results.append((job, answer))
    return results, grown


# A job's answer, and the leaf hash it logged (None if it logged nothing).
_Applied = tuple[Answer, bytes | None]


def _apply(tx: Transaction, job: Job, tree: CompactRange) -> _Applied:
    """One job's writes; raises EucgateError to have them rolled back. The caller grows
    `tree` by the returned leaf only once the job's savepoint is released."""
    if isinstance(job, AppendJob):
        return _append(tx, job.record, tree)
    if isinstance(job, ShipmentJob):
        return _ship(tx, job.shipment, tree)
    if isinstance(job, CosignatureJob):
        tx.insert_cosignature(job.size, job.witness, job.signature)
        return None, None
    _keep_bundle(tx, job)
    return None, None


def _append(tx: Transaction, record: DecisionRecord, tree: CompactRange) -> _Applied:
    existing = tx.record_by_request(record.caller, record.request_id)
    if existing is not None:
        if existing.envelope_digest != record.envelope_digest:
            raise RequestConflict(
                f"request_id {record.request_id!r} was already used with another envelope",
                field="request_id",
            )
        replayed = AppendResult(
            record=existing, replayed=True, leaf_index=tx.leaf_index(existing.decision_id)
        )
        return replayed, None
    ledger.check_fits(tx, record)
    held = _check_registry(tx, record)
    tx.insert_record(record)
    _reserve(tx, record)
    take_euc(tx, record, held)
    leaf = _log(tx, tree, record.decision_id, record.log_entry)
    return AppendResult(record=record, replayed=False, leaf_index=tree.size), leaf


def _check_registry(tx: Transaction, record: DecisionRecord) -> RegistryHeld:
    """Refuse a decision made on registry entries that concurrent decisions changed
    since (committed, or earlier in this batch). Raises RegistryChanged with the entries
    now held under the keys it read; returns them otherwise (take_euc need not read
    them again)."""
    reads = record.registry_reads
    now = {(r.issuer, r.certificate_number): tx.registry_entry(r.issuer, r.certificate_number)
           for r in reads}  # fmt: skip
    if any(now[(r.issuer, r.certificate_number)] != r.entry for r in reads):
        raise RegistryChanged(
            f"the registry of decided EUCs changed under decision {record.decision_id}",
            entries=now,
        )
    return now


def take_euc(tx: Transaction, record: DecisionRecord, known: RegistryHeld | None = None) -> None:
    """Record which decision used the EUC, under each of its issuer's keys: an APPROVED
    or REFERRED decision takes a number that is free or held only by a rejection; a
    rejection takes only a free one (the EUC may be corrected and sent again). `known`:
    entries this job read already in this transaction (each key is read once). Also run
    by the stores' migrations over decisions recorded before the registry existed."""
    claim = record.registry_claim
    if claim is None:
        return
    known = known or {}
    for issuer in claim.issuers:
        key = (issuer, claim.certificate_number)
        held = known[key] if key in known else tx.registry_entry(*key)
        if held is None:
            tx.insert_registry(issuer, claim.certificate_number, claim.entry)
        elif held.outcome == "REJECTED" and claim.entry.outcome in USING_OUTCOMES:
            tx.update_registry(issuer, claim.certificate_number, claim.entry)


def _reserve(tx: Transaction, record: DecisionRecord) -> None:
    """Add the record's reservations to the ledger (checked by `ledger.check_fits`)."""
    for r in record.reservations:
        row = tx.ledger_row(r.licence_number, r.control_code)
        if row is None:
            tx.insert_ledger_row(r.licence_number, r.control_code, r.unit, _text(r.quantity))
        else:
            total = ledger.approved_after(row, r)
            tx.update_ledger_approved(r.licence_number, r.control_code, _text(total))
        tx.insert_reservation(
            record.decision_id, r.control_code, r.licence_number, r.unit, _text(r.quantity)
        )
    if record.resolves:
        tx.insert_resolution(record.resolves, record.decision_id)


def _ship(tx: Transaction, shipment: Shipment, tree: CompactRange) -> _Applied:
    earlier = tx.shipment_by_reference(shipment.gateway_reference)
    if earlier is not None:
        if not earlier.same_request(shipment):
            raise RequestConflict(
                f"gateway_reference {shipment.gateway_reference!r} was already used for "
                "another shipment",
                reason="SHIPMENT_REFERENCE_REUSED",
                field="gateway_reference",
            )
        return ShipmentResult(
            earlier, replayed=True, leaf_index=tx.leaf_index(earlier.shipment_id)
        ), None
    debit = ledger.debit(tx, shipment)
    s = debit.shipment
    tx.update_reservation_shipped(s.decision_id, s.control_code, _text(debit.reservation_shipped))
    tx.update_ledger_shipped(s.licence_number, s.control_code, _text(debit.ledger_shipped))
    entry = encode_shipment(
        shipment_id=s.shipment_id,
        decision_id=s.decision_id,
        caller=s.caller,
        gateway_reference=s.gateway_reference,
        licence_number=s.licence_number,
        control_code=s.control_code,
        quantity=_text(s.quantity),
        unit=s.unit,
        recorded_at=s.recorded_at,
    )
    leaf = _log(tx, tree, s.shipment_id, entry)
    tx.insert_shipment(s)
    return ShipmentResult(s, replayed=False, leaf_index=tree.size), leaf


def _keep_bundle(tx: Transaction, job: BundleJob) -> None:
    stored = tx.bundle(job.digest)
    if stored is None:
        tx.insert_bundle(job.digest, job.canonical)
    elif stored != job.canonical:
        raise BundleError(f"bundle {job.digest} is already stored with different content")


def _log(tx: Transaction, tree: CompactRange, record_id: str, entry: bytes) -> bytes:
    """Write `entry` as leaf `tree.size` with the nodes it completes; returns its leaf
    hash (the tree itself grows only when the job's writes stand)."""
    leaf = leaf_hash(entry)
    index = tree.size
    tx.insert_leaf(index, record_id, entry)
    tx.insert_nodes([(0, index, leaf), *tree.copy().append(leaf)])
    return leaf


def _text(value: object) -> str:
    return format(value, "f")
