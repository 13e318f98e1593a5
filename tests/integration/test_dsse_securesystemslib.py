"""Our DSSE envelopes against an independent implementation: securesystemslib's.

securesystemslib is the DSSE authors' own library; an envelope it accepts is DSSE, not
just something our code agrees with itself about. Both directions are checked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eucgate.core.decision import Decision, Outcome
from eucgate.core.receipt import receipt_statement, sign_receipt
from eucgate.signing import KeyType, issue_ca, issue_signer, keyid, sign_envelope
from eucgate_client.dsse import Envelope
from eucgate_client.receipt import verify_receipt
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey


def _sslib(envelope: Envelope) -> SslibEnvelope:
    return SslibEnvelope.from_dict(json.loads(envelope.to_json()))


def _key(public: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> SSlibKey:
    return SSlibKey.from_crypto(public, keyid=keyid(public))


def test_receipt_verifies_with_securesystemslib() -> None:
    service = ed25519.Ed25519PrivateKey.generate()
    decision = Decision(
        outcome=Outcome.APPROVED,
        reasons=(),
        bundle_digest="b" * 64,
        euc_digest="e" * 64,
        decided_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    receipt = sign_receipt(
        receipt_statement("dec_01JD3Z0000000000000000000", "r-1", decision), service
    )
    accepted = _sslib(receipt).verify([_key(service.public_key())], 1)
    assert list(accepted) == [keyid(service.public_key())]


@pytest.mark.parametrize("key_type", ["ed25519", "p256", "p384"])
def test_signed_euc_verifies_with_securesystemslib(key_type: KeyType) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ca = issue_ca("interop root", not_before=start, not_after=start + timedelta(days=365))
    key, leaf = issue_signer(
        ca,
        organization="Jay-Ushin Limited",
        registrations=[("IEC", "0588012345")],
        common_name="interop signer",
        country="IN",
        key_type=key_type,
        not_before=start,
        not_after=start + timedelta(days=365),
    )
    payload = b'{"certificateNumber":"X"}'
    envelope = sign_envelope("application/vnd.eucgate.euc.v1+json", payload, [(key, [leaf])])
    public = key.public_key()
    assert isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    accepted = _sslib(envelope).verify([_key(public)], 1)
    assert list(accepted) == [keyid(public)]


def test_envelope_signed_by_securesystemslib_verifies_with_ours() -> None:
    service = ed25519.Ed25519PrivateKey.generate()
    statement = json.dumps({"version": 1, "decision_id": "dec_x"}).encode()
    foreign = SslibEnvelope(
        payload=statement,
        payload_type="application/vnd.eucgate.receipt.v1+json",
        signatures={},
    )
    foreign.sign(CryptoSigner(service, _key(service.public_key())))
    ours = Envelope.from_json(json.dumps(foreign.to_dict()).encode())
    assert verify_receipt(ours, service.public_key())["decision_id"] == "dec_x"
