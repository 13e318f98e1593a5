"""Core decision types to eucgate.v1 messages. One direction only: the core never sees protobuf."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from eucgate_client.v1 import certificate_pb2, decision_pb2
from google.protobuf import timestamp_pb2

from eucgate.core.decision import Decision, Outcome, PartySummary


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def outcome_to_proto(outcome: Outcome) -> decision_pb2.Outcome:
    return cast(decision_pb2.Outcome, decision_pb2.Outcome.Value(f"OUTCOME_{outcome.value}"))


def outcome_from_proto(value: int) -> str:
    """ "" for OUTCOME_UNSPECIFIED, else "APPROVED" / "REJECTED" / "REFERRED"."""
    if value == decision_pb2.OUTCOME_UNSPECIFIED:
        return ""
    return decision_pb2.Outcome.Name(value).removeprefix("OUTCOME_")


def _party(p: PartySummary) -> decision_pb2.PartySummary:
    return decision_pb2.PartySummary(
        legal_name=p.legal_name,
        country_code=p.country_code,
        registrations=[certificate_pb2.Registration(scheme=s, value=v) for s, v in p.registrations],
    )


def decision_to_proto(decision_id: str, request_id: str, d: Decision) -> decision_pb2.Decision:
    msg = decision_pb2.Decision(
        decision_id=decision_id,
        request_id=request_id,
        outcome=outcome_to_proto(d.outcome),
        bundle_digest=d.bundle_digest,
        euc_digest=d.euc_digest,
        decided_at=timestamp(d.decided_at),
        certificate_number=d.certificate_number,
        licence_number=d.licence_number,
    )
    for r in d.reasons:
        msg.reasons.add(
            rule_id=r.rule_id,
            family=decision_pb2.RuleFamily.Value(f"RULE_FAMILY_{r.family.value}"),
            outcome=decision_pb2.RuleOutcome.Value(f"RULE_OUTCOME_{r.outcome.value}"),
            message=r.message,
            field=r.field,
        )
    if d.valid_from is not None:
        msg.validity.not_before.CopyFrom(timestamp(d.valid_from))
    if d.valid_until is not None:
        msg.validity.not_after.CopyFrom(timestamp(d.valid_until))
    for item in d.approved_items:
        msg.approved_items.add(
            description=item.description,
            hs_code=item.hs_code,
            elements=item.elements,
            form=certificate_pb2.ItemForm.Value(f"ITEM_FORM_{item.form}"),
            quantity=certificate_pb2.Quantity(value=item.quantity, unit=item.unit),
        )
    if d.importer is not None:
        msg.importer.CopyFrom(_party(d.importer))
    if d.end_user is not None:
        msg.end_user.CopyFrom(_party(d.end_user))
    for s in d.signers:
        msg.signers.add(
            role=s.role,
            subject=s.subject,
            certificate_digest=s.certificate_digest,
            keyid=s.keyid,
            verified=s.verified,
            failure=s.failure,
            revocation=s.revocation,
            revocation_failure=s.revocation_failure,
            checked_at=timestamp(s.checked_at) if s.checked_at is not None else None,
        )
    for read in d.ledger_reads:
        msg.ledger_reads.add(
            licence_number=read.licence_number,
            control_code=read.control_code,
            remaining=read.remaining or "",
        )
    if d.review is not None:
        msg.review.CopyFrom(
            decision_pb2.Review(
                resolves_decision_id=d.review.resolves,
                reviewer=d.review.reviewer,
                note=d.review.note,
            )
        )
    return msg
