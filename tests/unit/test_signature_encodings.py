"""Encodings other languages produce: unpadded base64 (the protobuf JSON mapping accepts
it) and WebCrypto's raw r||s ECDSA signature, which gets a hint that DER is expected."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from eucgate.core.pki import verify_signatures
from eucgate.signing import sign_envelope
from eucgate_client.dsse import Envelope

from tests.conftest import Pki
from tests.unit.test_pki import PAYLOAD, PAYLOAD_TYPE, _with_sig


def test_unpadded_base64_is_accepted(pki: Pki) -> None:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.end_user_key, pki.end_user_chain)])
    doc = json.loads(envelope.to_json())
    doc["payload"] = doc["payload"].rstrip("=")
    doc["signatures"][0]["sig"] = base64.urlsafe_b64encode(envelope.signatures[0].sig).decode()
    doc["signatures"][0]["sig"] = doc["signatures"][0]["sig"].rstrip("=")
    parsed = Envelope.from_json(json.dumps(doc).encode())
    assert parsed.payload == envelope.payload
    assert parsed.signatures[0].sig == envelope.signatures[0].sig


def test_a_raw_ecdsa_signature_is_told_der_is_expected(pki: Pki, now: datetime) -> None:
    assert isinstance(pki.consignee_key, ec.EllipticCurvePrivateKey)
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.consignee_key, pki.consignee_chain)])
    r, s = decode_dss_signature(envelope.signatures[0].sig)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # what WebCrypto's sign() returns
    (result,) = verify_signatures(_with_sig(envelope, sig=raw), pki.trust(), now)
    assert result.failure == "SIG_INVALID"
    assert "raw r||s" in result.detail
    assert "DER" in result.detail
