"""The path of one submission, without gRPC: decode, decide, sign, record.

The servicer, the demo and the benchmarks all go through `Gate`, so there is one code
path from envelope to recorded decision. I/O happens here (clock, store, key); the
decision itself is `core.decide.decide`, which is pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.dsse import Envelope
from eucgate_client.tlog import leaf_hash

from eucgate import licences
from eucgate.core.bundle import Bundle
from eucgate.core.canonical import canonical_json
from eucgate.core.decide import decide
from eucgate.core.decision import Decision
from eucgate.core.ledger import LedgerView
from eucgate.core.pki import ChainCache
from eucgate.core.receipt import receipt_statement, sign_receipt
from eucgate.core.submission import Submission
from eucgate.errors import PermissionDenied, RequestConflict
from eucgate.ids import new_decision_id
from eucgate.log.entry import encode_entry
from eucgate.store.base import AppendResult, DecisionRecord, Reservation, Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ActiveBundle:
    """The bundle a gate decides with and when it switched to it; replaced whole."""

    bundle: Bundle
    loaded_at: datetime


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
    ) -> None:
        self._store = store
        self._key = service_key
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

    @property
    def store(self) -> Store:
        return self._store

    def now(self) -> datetime:
        """The gate's clock reading (UTC): what decisions are made at."""
        return self._clock()

    def submit(
        self,
        caller: str,
        request_id: str,
        envelope: Envelope,
        *,
        importers: frozenset[str] | None = None,
    ) -> AppendResult:
        """Decide `envelope` and record the decision durably before returning it.

        `importers` are the registrations ("SCHEME:VALUE") an importer caller is bound
        to: the certificate's importer or end user must carry one of them, or nothing is
        decided (PermissionDenied, IMPORTER_NOT_BOUND). None: any certificate.

        Approvals reserve quota in the recording transaction; one that a concurrent
        approval outran is decided again there on the balances then (see `licences`), so
        the record returned may differ from the first decision. Raises InvalidSubmission
        for input that cannot be decoded (nothing is recorded), RequestConflict when
        `request_id` was used with another envelope, StoreError when the store cannot
        commit, FailedPrecondition (QUOTA_EXHAUSTED) only under a bundle that keeps
        quotas without a QTY-001 rule.
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
            return AppendResult(record=earlier, replayed=True)
        bundle = self._active.bundle  # one snapshot: a decision never sees a mix of bundles
        now = self._clock()
        certificate = submission.certificate

        def decided(view: LedgerView) -> DecisionRecord:
            decision = decide(submission, bundle, view, now, chain_cache=self._chain_cache)
            return self.signed_record(
                caller,
                request_id,
                envelope,
                submission.envelope_digest,
                decision,
                licences.reservations(decision, bundle, certificate),
            )

        def redecide(approved: licences.Approved) -> DecisionRecord:
            # Runs in the store's transaction when a concurrent approval took the quota.
            return decided(licences.view_of(bundle, certificate, approved))

        first = decided(licences.snapshot(self._store, bundle, certificate))
        return self._store.append(first, redecide)

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
        """A new record of `decision` (fresh decision id) with its signed receipt, bound to
        the log entry the store will write for it. Pure but for the id and the key."""
        decision_id = new_decision_id()
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
        leaf = leaf_hash(encode_entry(unsigned, unsigned.ledger_reads, kind=unsigned.kind))
        statement = receipt_statement(
            decision_id,
            request_id,
            decision,
            log_leaf_hash=leaf,
            licence_balances=licences.receipt_balances(decision, reservations),
        )
        receipt = sign_receipt(statement, self._key)
        return dataclasses.replace(
            unsigned, receipt=receipt.to_proto().SerializeToString(deterministic=True)
        )


def parties_of(submission: Submission) -> frozenset[str]:
    """The importer and end-user registrations ("SCHEME:VALUE") a submission names."""
    certificate = submission.certificate
    return frozenset(
        f"{r.scheme}:{r.value}"
        for party in (certificate.importer, certificate.end_user)
        for r in party.registrations
    )


def decision_of(record: DecisionRecord) -> Decision:
    """The core Decision a record holds."""
    return Decision.model_validate_json(record.decision)
