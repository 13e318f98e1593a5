"""The path of one submission, without gRPC: decode, decide, sign, record.

The servicer, the demo and the benchmarks all go through `Gate`, so there is one code
path from envelope to recorded decision. I/O happens here (clock, store, key); the
decision itself is `core.decide.decide`, which is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.dsse import Envelope
from eucgate_client.receipt import ReceiptError, ServiceKey, verify_receipt
from eucgate_client.tlog import RECEIPT_LEAF_HASH_KEY, leaf_hash
from eucgate_client.v1 import decision_pb2, envelope_pb2
from google.protobuf.message import DecodeError

from eucgate import licences
from eucgate.core.bundle import Bundle
from eucgate.core.canonical import canonical_json
from eucgate.core.decide import decide
from eucgate.core.decision import Decision
from eucgate.core.ledger import LedgerView
from eucgate.core.pki import ChainCache
from eucgate.core.receipt import receipt_statement, sign_receipt
from eucgate.core.registry import SnapshotRegistry, issuers_of
from eucgate.core.submission import Submission
from eucgate.errors import FailedPrecondition, PermissionDenied, RequestConflict
from eucgate.ids import new_decision_id
from eucgate.store.base import (
    AppendResult,
    DecisionRecord,
    QuotaTaken,
    RegistryChanged,
    Reservation,
    Store,
)

log = structlog.get_logger("eucgate.gate")

# How often one submission is decided again because concurrent approvals took its quota
# in between; each time on the totals then committed, so more than one is rare.
MAX_REDECISIONS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ActiveBundle:
    """The bundle a gate decides with and when it switched to it; replaced whole."""

    bundle: Bundle
    loaded_at: datetime


@dataclass(frozen=True)
class Recorded:
    """What `Gate.decide_and_record` recorded, and the core Decision that record holds."""

    result: AppendResult
    _decision: Decision | None = None

    @classmethod
    def of(cls, result: AppendResult, record: DecisionRecord, decision: Decision) -> Recorded:
        """`result` of appending `record`, made from `decision`: kept when the store
        recorded that very record, not when it answered with an earlier one."""
        ours = not result.replayed and result.record.decision_id == record.decision_id
        return cls(result, decision if ours else None)

    @property
    def decision(self) -> Decision:
        """The Decision of `result.record`: the one in hand, else parsed from the record."""
        return self._decision if self._decision is not None else decision_of(self.result.record)


class Gate:
    """Decides and records submissions against one bundle snapshot at a time."""

    def __init__(
        self,
        store: Store,
        bundle: Bundle,
        service_key: Ed25519PrivateKey,
        *,
        max_payload_bytes: int,
        max_signatures: int,
        clock: Callable[[], datetime] = utc_now,
        verification_keys: Sequence[ServiceKey] = (),
    ) -> None:
        """`verification_keys` are the published receipt keys (earlier ones kept after a
        rotation, with their periods); the signing key is always among them."""
        self._store = store
        self._key = service_key
        self._verification_keys = (ServiceKey(service_key.public_key()), *verification_keys)
        self._clock = clock
        # Verified intermediate paths and CRL signatures: saves work, never changes an
        # answer (see core.pki.ChainCache).
        self._chain_cache = ChainCache()
        self._max_payload_bytes = max_payload_bytes
        self._max_signatures = max_signatures
        store.put_bundle(bundle.digest, bundle.canonical())
        # One reference, swapped whole by replace_bundle: a reader sees the old or the
        # new bundle with its own load time, never a mix.
        self._active = ActiveBundle(bundle, clock())

    @property
    def bundle(self) -> Bundle:
        return self._active.bundle

    @property
    def active(self) -> ActiveBundle:
        return self._active

    def replace_bundle(self, bundle: Bundle) -> ActiveBundle:
        """Store `bundle` by digest, then make it the one new decisions use.

        A decision already under way finishes with the bundle it started with. The same
        digest again changes nothing (the current ActiveBundle is returned). Raises
        StoreError, or BundleError for a digest stored with other content; either way
        nothing is switched. Callers serialise calls (see `policysource.Reloader`).
        """
        current = self._active
        if bundle.digest == current.bundle.digest:
            return current
        self._store.put_bundle(bundle.digest, bundle.canonical())
        self._active = ActiveBundle(bundle, self._clock())
        return self._active

    def now(self) -> datetime:
        """The gate's clock reading (UTC): what decisions are made at."""
        return self._clock()

    def decide_and_record(
        self,
        caller: str,
        request_id: str,
        envelope: Envelope,
        *,
        importers: frozenset[str] | None = None,
    ) -> Recorded:
        """Decide `envelope` and record the decision durably before returning it.

        `importers` are the registrations ("SCHEME:VALUE") an importer caller is bound
        to: the certificate's importer or end user must carry one of them, or nothing is
        decided (PermissionDenied, IMPORTER_NOT_BOUND). None: any certificate.

        Approvals reserve quota in the recording transaction; one that concurrent
        approvals outran is decided again, outside it, on the balances the store saw
        (see `licences`), so the record returned may differ from the first decision.
        Raises InvalidSubmission for input that cannot be decoded (nothing is recorded),
        RequestConflict when `request_id` was used with another envelope, StoreError
        when the store cannot commit, FailedPrecondition (QUOTA_EXHAUSTED) only under a
        bundle that keeps quotas without a QTY-001 rule.

        The Decision comes back with the record so that the answer is built from the
        object in hand rather than by parsing the bytes just encoded from it; for an
        earlier record (a replayed request_id) it is parsed from the record.
        """
        submission = Submission.from_envelope(
            envelope,
            max_payload_bytes=self._max_payload_bytes,
            max_signatures=self._max_signatures,
        )
        if importers is not None and importers.isdisjoint(parties_of(submission)):
            raise PermissionDenied(
                "neither the importer nor the end user of this EUC carries a registration "
                "the caller is bound to; nothing was decided",
                reason="IMPORTER_NOT_BOUND",
            )
        earlier = self._store.find_request(caller, request_id)
        if earlier is not None:
            if earlier.envelope_digest != submission.envelope_digest:
                raise RequestConflict(
                    f"request_id {request_id!r} was already used with another envelope",
                    field="request_id",
                )
            return Recorded(AppendResult(record=earlier, replayed=True))
        bundle = self._active.bundle  # one snapshot: a decision never sees a mix of bundles
        now = self._clock()
        plan = licences.QuotaPlan.of(bundle, submission.certificate)

        ledger: LedgerView = licences.snapshot(self._store, plan)
        registry = self._registry_snapshot(submission)

        def decided() -> tuple[DecisionRecord, Decision]:
            decision = decide(
                submission, bundle, ledger, now, registry=registry, chain_cache=self._chain_cache
            )
            record = self.signed_record(
                caller,
                request_id,
                envelope,
                submission.envelope_digest,
                decision,
                licences.reservations(decision, plan),
            )
            return record, decision

        record, decision = decided()
        for _ in range(MAX_REDECISIONS):
            try:
                return Recorded.of(self._store.append(record), record, decision)
            except QuotaTaken as taken:
                # Concurrent approvals took the quota after this decision was made: decide
                # again on the totals the store saw (QTY-001 then rejects, and a rejection
                # reserves nothing, so it fits). See `licences`.
                ledger = licences.view_of(plan, taken.approved)
            except RegistryChanged as changed:
                # A concurrent decision used this EUC (or its number) first: decide again
                # on the registry as the store holds it (DOC-005/DOC-006 then reject).
                registry = SnapshotRegistry(changed.entries)
            record, decision = decided()
        return Recorded.of(self._store.append(record), record, decision)

    def _registry_snapshot(self, submission: Submission) -> SnapshotRegistry:
        """The registry entries of the submission's EUC (issuer keys and number), read
        once before deciding; the store re-checks them when it records."""
        number = submission.certificate.certificate_number
        return SnapshotRegistry(
            {
                (issuer, number): self._store.registry_entry(issuer, number)
                for issuer in issuers_of(submission.certificate)
            }
        )

    def check_authentic(self, record: DecisionRecord) -> None:
        """Refuse a stored record whose bytes are not the ones this service signed.

        The receipt's signature (by the service key) covers the decision id, outcome and
        the leaf hash of the record's log entry, which covers the envelope, the decision
        bytes, the caller and the ledger reads: a row changed with database access fails
        here. A receipt of an earlier (rotated) key verifies within that key's period.
        Raises FailedPrecondition (RECORD_NOT_AUTHENTIC).
        """
        try:
            statement = verify_receipt(
                decision_pb2.Receipt(envelope=envelope_pb2.Envelope.FromString(record.receipt)),
                self._verification_keys,
            )
        except (ReceiptError, DecodeError) as exc:
            raise _not_authentic(record, f"its receipt does not verify: {exc}") from None
        leaf = leaf_hash(record.log_entry)
        signed = (
            statement.get("decision_id"),
            statement.get("outcome"),
            statement.get(RECEIPT_LEAF_HASH_KEY),
        )
        if signed != (record.decision_id, record.outcome, leaf.hex()):
            raise _not_authentic(record, "its stored bytes differ from what its receipt signed")

    def signed_record(
        self,
        caller: str,
        request_id: str,
        envelope: Envelope,
        envelope_digest: str,
        decision: Decision,
        reservations: tuple[Reservation, ...] = (),
        *,
        resolves: str = "",
    ) -> DecisionRecord:
        """A new record of `decision` (a fresh decision id of its clock reading) with its
        signed receipt, bound to the log entry the store will write for it."""
        decision_id = new_decision_id(decision.decided_at)
        unsigned = DecisionRecord(
            decision_id=decision_id,
            caller=caller,
            request_id=request_id,
            envelope_digest=envelope_digest,
            envelope=envelope.digest_input(),
            decision=canonical_json(decision.model_dump(mode="json")),
            receipt=b"",
            outcome=decision.outcome.value,
            decided_at=decision.decided_at,
            bundle_digest=decision.bundle_digest,
            importer_registrations=tuple(
                value for _, value in (decision.importer.registrations if decision.importer else ())
            ),
            ledger_reads=licences.log_reads(decision),
            resolves=resolves,
            reservations=reservations,
        )
        # The store logs exactly this entry; its leaf hash goes into the signed receipt.
        leaf = leaf_hash(unsigned.log_entry)
        statement = receipt_statement(
            decision_id,
            request_id,
            decision,
            log_leaf_hash=leaf,
            licence_balances=licences.receipt_balances(decision, reservations),
        )
        receipt = sign_receipt(statement, self._key)
        return unsigned.with_receipt(receipt.to_proto().SerializeToString(deterministic=True))


def parties_of(submission: Submission) -> frozenset[str]:
    """The importer and end-user registrations ("SCHEME:VALUE") a submission names."""
    certificate = submission.certificate
    return frozenset(
        f"{r.scheme}:{r.value}"
        for party in (certificate.importer, certificate.end_user)
        for r in party.registrations
    )


def _not_authentic(record: DecisionRecord, why: str) -> FailedPrecondition:
    log.error("record_not_authentic", decision_id=record.decision_id, why=why)
    return FailedPrecondition(
        f"decision {record.decision_id} cannot be trusted: {why}; nothing was changed",
        reason="RECORD_NOT_AUTHENTIC",
        field="decision_id",
    )


def decision_of(record: DecisionRecord) -> Decision:
    """The core Decision a record holds."""
    return Decision.model_validate_json(record.decision)
