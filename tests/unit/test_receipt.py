"""Receipts: the service signs a decision statement; a client verifies it offline."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.core.canonical import canonical_json
from eucgate.core.decision import (
    ApprovedItem,
    Decision,
    Family,
    Outcome,
    PartySummary,
    Reason,
    RuleOutcome,
)
from eucgate.core.pki import keyid
from eucgate.core.receipt import RECEIPT_PAYLOAD_TYPE, receipt_statement, sign_receipt
from eucgate_client import ReceiptError, verify_receipt
from eucgate_client.dsse import Envelope
from eucgate_client.receipt import load_service_public_key
from eucgate_client.v1 import decision_pb2


def _decision(now: datetime) -> Decision:
    party = PartySummary(
        legal_name="Jay-Ushin Limited",
        country_code="IN",
        registrations=(("IEC", "0588012345"), ("GSTIN", "06AAACJ1234F1Z5")),
    )
    return Decision(
        outcome=Outcome.REFERRED,
        reasons=(
            Reason(
                rule_id="RF-001",
                family=Family.RF,
                outcome=RuleOutcome.REFER,
                message="price far above market",
                field="items[0].unit_price",
            ),
        ),
        bundle_digest="b" * 64,
        euc_digest="e" * 64,
        decided_at=now.astimezone(timezone(timedelta(hours=5, minutes=30))),
        valid_from=now,
        valid_until=now + timedelta(days=180),
        approved_items=(
            ApprovedItem(
                description="NdFeB magnets with Dy",
                hs_code="850511",
                elements=("Dy", "Tb"),
                form="MAGNET",
                quantity="1250.5",
                unit="KG",
            ),
        ),
        certificate_number="EUC-2026-0001",
        importer=party,
        end_user=party,
        licence_number="LIC-IN-2026-17",
    )


@pytest.fixture
def receipt(now: datetime, service_key: ed25519.Ed25519PrivateKey) -> Envelope:
    return sign_receipt(receipt_statement("dec-1", "req-1", _decision(now)), service_key)


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _reason(receipt: Envelope, key: ed25519.Ed25519PrivateKey) -> str:
    with pytest.raises(ReceiptError) as info:
        verify_receipt(receipt, key.public_key())
    return info.value.reason


def test_statement_holds_the_decision_summary(now: datetime) -> None:
    statement = receipt_statement("dec-1", "req-1", _decision(now))
    assert statement["version"] == 1
    assert statement["outcome"] == "REFERRED"
    assert statement["reasons"] == [{"rule_id": "RF-001", "outcome": "REFER"}]
    assert statement["decided_at"] == "2026-06-01T12:00:00Z"
    assert statement["validity"] == {
        "not_before": "2026-06-01T12:00:00Z",
        "not_after": "2026-11-28T12:00:00Z",
    }
    assert statement["end_user"]["registrations"] == [
        {"scheme": "IEC", "value": "0588012345"},
        {"scheme": "GSTIN", "value": "06AAACJ1234F1Z5"},
    ]
    assert statement["approved_items"][0]["quantity"] == "1250.5"
    assert json.loads(canonical_json(statement)) == statement


def test_statement_without_parties_or_validity(now: datetime) -> None:
    decision = Decision(
        outcome=Outcome.REJECTED,
        reasons=(),
        bundle_digest="b" * 64,
        euc_digest="e" * 64,
        decided_at=now.replace(microsecond=1500),
    )
    statement = receipt_statement("dec-2", "req-2", decision)
    assert statement["importer"] is None
    assert statement["validity"] == {"not_before": None, "not_after": None}
    assert statement["decided_at"] == "2026-06-01T12:00:00.001500Z"


def test_naive_timestamp_is_refused(now: datetime) -> None:
    decision = _decision(now).model_copy(update={"decided_at": now.replace(tzinfo=None)})
    with pytest.raises(ValueError, match="timezone-aware"):
        receipt_statement("dec-1", "req-1", decision)


def test_signed_receipt_verifies_offline(
    receipt: Envelope, service_key: ed25519.Ed25519PrivateKey, now: datetime
) -> None:
    assert receipt.payload_type == RECEIPT_PAYLOAD_TYPE
    assert receipt.payload == canonical_json(receipt_statement("dec-1", "req-1", _decision(now)))
    (sig,) = receipt.signatures
    assert sig.keyid == keyid(service_key.public_key())
    assert sig.certificates == ()
    statement = verify_receipt(receipt, service_key.public_key())
    assert statement["decision_id"] == "dec-1"
    assert statement["request_id"] == "req-1"


def test_receipt_verifies_from_proto_and_pem(
    receipt: Envelope, service_key: ed25519.Ed25519PrivateKey
) -> None:
    message = decision_pb2.Receipt(envelope=receipt.to_proto())
    wire = decision_pb2.Receipt.FromString(message.SerializeToString())
    assert verify_receipt(wire, _pem(service_key))["outcome"] == "REFERRED"


def test_tampered_payload_is_refused(
    receipt: Envelope, service_key: ed25519.Ed25519PrivateKey
) -> None:
    tampered = replace(receipt, payload=receipt.payload.replace(b"REFERRED", b"APPROVED"))
    assert _reason(tampered, service_key) == "RECEIPT_SIGNATURE_INVALID"


def test_tampered_signature_is_refused(
    receipt: Envelope, service_key: ed25519.Ed25519PrivateKey
) -> None:
    sig = receipt.signatures[0]
    bad = replace(sig, sig=bytes([sig.sig[0] ^ 0x80]) + sig.sig[1:])
    assert _reason(replace(receipt, signatures=(bad,)), service_key) == (
        "RECEIPT_SIGNATURE_INVALID"
    )


def test_wrong_key_is_refused(receipt: Envelope) -> None:
    assert _reason(receipt, ed25519.Ed25519PrivateKey.generate()) == "RECEIPT_KEYID_MISMATCH"


def test_wrong_key_with_its_keyid_is_refused(
    receipt: Envelope, service_key: ed25519.Ed25519PrivateKey
) -> None:
    other = ed25519.Ed25519PrivateKey.generate()
    relabelled = replace(receipt.signatures[0], keyid=keyid(other.public_key()))
    assert _reason(replace(receipt, signatures=(relabelled,)), other) == (
        "RECEIPT_SIGNATURE_INVALID"
    )


def test_wrong_payload_type_is_refused(
    service_key: ed25519.Ed25519PrivateKey, now: datetime
) -> None:
    statement = receipt_statement("dec-1", "req-1", _decision(now))
    signed = sign_receipt(statement, service_key)
    other = replace(signed, payload_type="application/vnd.eucgate.euc.v1+json")
    assert _reason(other, service_key) == "RECEIPT_PAYLOAD_TYPE"


def test_two_signatures_are_refused(
    receipt: Envelope, service_key: ed25519.Ed25519PrivateKey
) -> None:
    doubled = replace(receipt, signatures=receipt.signatures * 2)
    assert _reason(doubled, service_key) == "RECEIPT_SIGNATURE_COUNT"
    assert _reason(replace(receipt, signatures=()), service_key) == "RECEIPT_SIGNATURE_COUNT"


@pytest.mark.parametrize("payload", [b"[1]", b"{", b'{"version": 2}', b"\xff"])
def test_payload_must_be_a_version_1_object(
    service_key: ed25519.Ed25519PrivateKey, payload: bytes
) -> None:
    unsigned = Envelope(payload_type=RECEIPT_PAYLOAD_TYPE, payload=payload)
    signed = replace(
        unsigned,
        signatures=(
            replace(
                sign_receipt({"version": 1}, service_key).signatures[0],
                sig=service_key.sign(unsigned.pae()),
            ),
        ),
    )
    assert _reason(signed, service_key) == "RECEIPT_PAYLOAD_INVALID"


def test_empty_proto_receipt_is_refused(service_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(ReceiptError) as info:
        verify_receipt(decision_pb2.Receipt(), service_key.public_key())
    assert info.value.reason == "RECEIPT_ENVELOPE_INVALID"


def test_service_key_must_be_ed25519_pem() -> None:
    with pytest.raises(ReceiptError) as info:
        load_service_public_key(b"not a key")
    assert info.value.reason == "RECEIPT_KEY_INVALID"


def test_reasons_are_distinct(receipt: Envelope, service_key: ed25519.Ed25519PrivateKey) -> None:
    sig = receipt.signatures[0]
    cases = [
        replace(receipt, signatures=(replace(sig, sig=b"\x00" * 64),)),
        replace(receipt, payload_type="text/plain"),
        replace(receipt, signatures=(sig, sig)),
    ]
    reasons = {_reason(c, service_key) for c in cases}
    reasons.add(_reason(receipt, ed25519.Ed25519PrivateKey.generate()))
    assert len(reasons) == 4
