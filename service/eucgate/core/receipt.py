"""The service's signed receipt: a statement of one decision, signed with the service key.

The statement is canonical JSON (`core.canonical`) in a
DSSE envelope of type RECEIPT_PAYLOAD_TYPE with one Ed25519 signature whose keyid is the
hex SHA-256 of the service key's SubjectPublicKeyInfo. Clients check it offline with
`eucgate_client.receipt.verify_receipt`. Neither function reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.dsse import Envelope, Signature
from eucgate_client.receipt import RECEIPT_PAYLOAD_TYPE, RECEIPT_VERSION
from eucgate_client.tlog import RECEIPT_LEAF_HASH_KEY

from eucgate.core.canonical import canonical_json
from eucgate.core.decision import Decision, PartySummary
from eucgate.core.pki import keyid

__all__ = [
    "RECEIPT_PAYLOAD_TYPE",
    "QuotaBalance",
    "receipt_statement",
    "rfc3339",
    "sign_receipt",
]


def receipt_statement(
    decision_id: str,
    request_id: str,
    decision: Decision,
    *,
    log_leaf_hash: bytes | None = None,
    licence_balances: Sequence[QuotaBalance] = (),
) -> dict[str, Any]:
    """The JSON-able statement a receipt signs; absent values are null or empty.

    `log_leaf_hash` is the RFC 9162 leaf hash of the decision's audit-log entry (known
    before the append: the entry does not contain the receipt); it binds the receipt to
    the leaf its inclusion proof proves. `licence_balances` are the quotas an approval
    draws on, before and after it, so a customs gateway sees the remaining balance
    without calling home. Raises ValueError if a timestamp is naive.
    """
    return {
        RECEIPT_LEAF_HASH_KEY: None if log_leaf_hash is None else log_leaf_hash.hex(),
        "version": RECEIPT_VERSION,
        "decision_id": decision_id,
        "request_id": request_id,
        "outcome": decision.outcome.value,
        "reasons": [{"rule_id": r.rule_id, "outcome": r.outcome.value} for r in decision.reasons],
        "euc_digest": decision.euc_digest,
        "bundle_digest": decision.bundle_digest,
        "decided_at": rfc3339(decision.decided_at),
        "validity": {
            "not_before": _optional_time(decision.valid_from),
            "not_after": _optional_time(decision.valid_until),
        },
        "certificate_number": decision.certificate_number,
        "importer": _party(decision.importer),
        "end_user": _party(decision.end_user),
        "licence_number": decision.licence_number,
        "approved_items": [
            {
                "hs_code": item.hs_code,
                "description": item.description,
                "elements": list(item.elements),
                "form": item.form,
                "quantity": item.quantity,
                "unit": item.unit,
            }
            for item in decision.approved_items
        ],
        "licence_balances": [
            {
                "licence_number": b.licence_number,
                "control_code": b.control_code,
                "unit": b.unit,
                "quota": format(b.quota, "f"),
                "remaining_before": format(b.remaining_before, "f"),
                "approved": format(b.approved, "f"),
                "remaining_after": format(b.remaining_before - b.approved, "f"),
            }
            for b in licence_balances
        ],
    }


@dataclass(frozen=True)
class QuotaBalance:
    """One quota an approval draws on: the balance read and what the approval takes, in
    the quota's unit."""

    licence_number: str
    control_code: str
    unit: str
    quota: Decimal
    remaining_before: Decimal
    approved: Decimal


def sign_receipt(statement: dict[str, Any], key: Ed25519PrivateKey) -> Envelope:
    """The receipt envelope over canonical_json(statement).

    Raises ValueError if the statement holds a non-finite float; TypeError if it is not
    JSON-able.
    """
    payload = canonical_json(statement)
    unsigned = Envelope(payload_type=RECEIPT_PAYLOAD_TYPE, payload=payload)
    signature = Signature(sig=key.sign(unsigned.pae()), keyid=keyid(key.public_key()))
    return Envelope(payload_type=RECEIPT_PAYLOAD_TYPE, payload=payload, signatures=(signature,))


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with "Z" (microseconds only when present); raises ValueError if naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps in a receipt must be timezone-aware")
    utc = moment.astimezone(UTC)
    spec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def _party(party: PartySummary | None) -> dict[str, Any] | None:
    if party is None:
        return None
    return {
        "legal_name": party.legal_name,
        "country_code": party.country_code,
        "registrations": [{"scheme": s, "value": v} for s, v in party.registrations],
    }
