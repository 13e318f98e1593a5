"""Human review of REFERRED decisions: a resolution is a new, signed, logged decision.

The resolution's decision names the referral (`Decision.review`) and is recorded like any
decision: its own id, its receipt, its log entry (kind "resolution", with the referral's
envelope), in the store's batch transaction. An approval lists the certificate's items
and takes quota at that moment, under the active bundle; when the quota cannot cover it
the store refuses (FailedPrecondition, QUOTA_EXHAUSTED) and the referral stays open. A
rejection gives the reason REV-001 with the reviewer's note. No `decide()` runs: the
verdict is a person's, so replay skips these entries.
"""

from __future__ import annotations

from typing import Protocol

from eucgate_client.dsse import Envelope
from eucgate_client.v1 import envelope_pb2

from eucgate import licences
from eucgate.core.decide import approved_item
from eucgate.core.decision import Decision, Family, Outcome, Reason, Review, RuleOutcome
from eucgate.core.ledger import RecordingLedger
from eucgate.core.submission import Submission
from eucgate.errors import FailedPrecondition, NotFound, PermissionDenied
from eucgate.gate import Gate, decision_of
from eucgate.store.base import AppendResult, Decisions, Ledger, Recorder

REVIEW_RULE_ID = "REV-001"
MAX_NOTE_CHARS = 2000


class ReviewStore(Decisions, Ledger, Recorder, Protocol):
    """What a review reads and writes: the referral, the licence's balances, the record."""


def resolve(
    gate: Gate,
    store: ReviewStore,
    reviewer: str,
    decision_id: str,
    approve: bool,
    note: str,
    *,
    reviewer_importers: frozenset[str] | None = None,
    four_eyes: bool = True,
) -> AppendResult:
    """Record `reviewer`'s verdict on REFERRED decision `decision_id`.

    Four eyes: with `four_eyes`, a reviewer never resolves a referral its own identity
    submitted, nor one naming an importer it is bound to (`reviewer_importers`); only
    anonymous local use (insecure) turns it off, having no identities to compare.

    The referral is judged by its signed bytes: a record whose outcome, decision or
    envelope differ from what its receipt signed is refused, so a row changed in the
    database cannot be resolved (and take quota) a second time.

    Raises NotFound (DECISION_NOT_FOUND); PermissionDenied (REVIEW_OWN_SUBMISSION);
    FailedPrecondition: RECORD_NOT_AUTHENTIC, REFERRAL_NOT_REFERRED (the decision is not
    REFERRED), REFERRAL_ALREADY_RESOLVED, QUOTA_EXHAUSTED, QUOTA_UNIT_MISMATCH;
    StoreError.
    """
    referred = store.get(decision_id)
    if referred is None:
        raise NotFound(f"no decision {decision_id}", reason="DECISION_NOT_FOUND")
    if four_eyes and (
        referred.caller == reviewer
        or (reviewer_importers is not None and not reviewer_importers.isdisjoint(referred.parties))
    ):
        raise PermissionDenied(
            f"{reviewer} submitted decision {decision_id} or acts for its importer; "
            "another reviewer must resolve it",
            reason="REVIEW_OWN_SUBMISSION",
            field="decision_id",
        )
    gate.check_authentic(referred)
    if referred.outcome != Outcome.REFERRED.value:
        raise FailedPrecondition(
            f"decision {decision_id} is {referred.outcome}, not REFERRED",
            reason="REFERRAL_NOT_REFERRED",
            field="decision_id",
        )
    earlier = store.resolution_of(decision_id)
    if earlier is not None:
        raise FailedPrecondition(
            f"decision {decision_id} was already resolved by {earlier}",
            reason="REFERRAL_ALREADY_RESOLVED",
            field="decision_id",
        )
    envelope = Envelope.from_proto(envelope_pb2.Envelope.FromString(referred.envelope))
    # Recorded bytes were accepted once; no size limit may refuse them now.
    submission = Submission.from_envelope(
        envelope, max_payload_bytes=len(envelope.payload), max_signatures=len(envelope.signatures)
    )
    original = decision_of(referred)
    bundle = gate.bundle
    certificate = submission.certificate
    plan = licences.QuotaPlan.of(bundle, certificate)
    licensee = plan.licensee
    review = Review(resolves=decision_id, reviewer=reviewer, note=note)
    ledger = RecordingLedger(licences.snapshot(store, plan))
    if approve and licensee is not None:
        for quota in licensee.quotas:  # the balances the approval is taken against
            ledger.remaining(licensee.licence_number, quota.control_code)
    reasons = () if approve else (_rejection(reviewer, note),)
    decision = Decision(
        outcome=Outcome.APPROVED if approve else Outcome.REJECTED,
        reasons=reasons,
        bundle_digest=bundle.digest,
        euc_digest=original.euc_digest,
        decided_at=gate.now(),
        valid_from=original.valid_from,
        valid_until=original.valid_until,
        approved_items=tuple(approved_item(i) for i in certificate.items) if approve else (),
        certificate_number=original.certificate_number,
        importer=original.importer,
        end_user=original.end_user,
        licence_number=licensee.licence_number if licensee is not None else "",
        signers=original.signers,
        ledger_reads=ledger.reads,
        review=review,
    )
    record = gate.signed_record(
        reviewer,
        f"review:{decision_id}",
        envelope,
        referred.envelope_digest,
        decision,
        licences.reservations(decision, plan),
        resolves=decision_id,
    )
    return store.append(record)


def _rejection(reviewer: str, note: str) -> Reason:
    return Reason(
        rule_id=REVIEW_RULE_ID,
        family=Family.REV,
        outcome=RuleOutcome.REJECT,
        message=f"rejected on review by {reviewer}: {note}",
    )
