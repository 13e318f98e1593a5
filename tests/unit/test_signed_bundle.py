"""Signed bundles: only a policy-admin signature over the canonical payload loads."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from eucgate.core.pki import keyid
from eucgate.core.signedbundle import (
    BUNDLE_PAYLOAD_TYPE,
    AdminPrivateKey,
    admin_public_key,
    open_signed_bundle,
    sign_bundle,
    unverified_bundle,
)
from eucgate.errors import BundleError
from eucgate_client.dsse import Envelope, Signature

from tests.factories import SAMPLE_BUNDLE_PATH, sample_bundle

BUNDLE = sample_bundle()


def _reason(data: bytes, keys: list[AdminPrivateKey]) -> str:
    with pytest.raises(BundleError) as caught:
        open_signed_bundle(data, "bundle.dsse.json", [k.public_key() for k in keys])
    return caught.value.reason


def _resigned(
    payload: bytes, key: AdminPrivateKey, payload_type: str = BUNDLE_PAYLOAD_TYPE
) -> bytes:
    """An envelope over arbitrary payload bytes, validly signed by `key`."""
    unsigned = Envelope(payload_type, payload)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = key.sign(unsigned.pae())
    else:
        digest = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
        sig = key.sign(unsigned.pae(), ec.ECDSA(digest))
    signature = Signature(sig=sig, keyid=keyid(key.public_key()))
    return Envelope(payload_type, payload, (signature,)).to_json()


@pytest.mark.parametrize(
    "key",
    [
        ed25519.Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
    ],
    ids=["ed25519", "p256", "p384"],
)
def test_a_bundle_signed_by_an_admin_key_loads_with_the_same_digest(key: AdminPrivateKey) -> None:
    data = sign_bundle(BUNDLE, key).to_json()
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    loaded = open_signed_bundle(data, "b", [other, key.public_key()])
    assert loaded.digest == BUNDLE.digest
    # The digest is the hash of exactly the signed bytes.
    assert loaded.digest == hashlib.sha256(Envelope.from_json(data).payload).hexdigest()


def test_another_key_or_no_key_is_refused() -> None:
    data = sign_bundle(BUNDLE, ed25519.Ed25519PrivateKey.generate()).to_json()
    assert _reason(data, [ed25519.Ed25519PrivateKey.generate()]) == "BUNDLE_SIGNATURE_INVALID"
    assert _reason(data, []) == "BUNDLE_SIGNATURE_INVALID"


def test_a_payload_changed_after_signing_is_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    envelope = sign_bundle(BUNDLE, key)
    doc = json.loads(envelope.payload)
    doc["parameters"]["max_validity_days"] += 1
    altered = Envelope(
        envelope.payload_type,
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        envelope.signatures,
    )
    assert _reason(altered.to_json(), [key]) == "BUNDLE_SIGNATURE_INVALID"


def test_a_signature_by_an_admin_key_over_another_type_is_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = _resigned(BUNDLE.canonical(), key, payload_type="application/json")
    assert _reason(data, [key]) == "BUNDLE_PAYLOAD_TYPE"


def test_a_validly_signed_payload_that_is_not_canonical_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pretty = json.dumps(json.loads(BUNDLE.canonical()), indent=2).encode()
    assert _reason(_resigned(pretty, key), [key]) == "BUNDLE_NOT_CANONICAL"


def test_validly_signed_invalid_content_is_refused_with_the_path() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    doc = json.loads(BUNDLE.canonical())
    doc["parameters"]["max_validity_days"] = 0
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with pytest.raises(BundleError) as caught:
        open_signed_bundle(_resigned(payload.encode(), key), "b", [key.public_key()])
    assert caught.value.reason == "BUNDLE_INVALID"
    assert "parameters.max_validity_days" in str(caught.value)


def test_unsigned_and_malformed_files_are_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    assert _reason(SAMPLE_BUNDLE_PATH.read_bytes(), [key]) == "BUNDLE_UNSIGNED"
    assert _reason(BUNDLE.canonical(), [key]) == "BUNDLE_UNSIGNED"
    no_sigs = Envelope(BUNDLE_PAYLOAD_TYPE, BUNDLE.canonical()).to_json()
    assert _reason(no_sigs, [key]) == "BUNDLE_UNSIGNED"
    assert _reason(b'{"payloadType": 1}', [key]) == "BUNDLE_ENVELOPE_INVALID"


def test_unverified_reading_still_checks_everything_but_the_signer() -> None:
    data = sign_bundle(BUNDLE, ed25519.Ed25519PrivateKey.generate()).to_json()
    assert unverified_bundle(data, "b").digest == BUNDLE.digest
    with pytest.raises(BundleError):
        unverified_bundle(SAMPLE_BUNDLE_PATH.read_bytes(), "b")


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP521R1())],
    ids=["rsa", "p521"],
)
def test_admin_keys_are_ed25519_or_ecdsa_p256_p384(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
) -> None:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="policy-admin key must be"):
        admin_public_key(pem, "admin.pub.pem")
    with pytest.raises(ValueError, match="not a PEM public key"):
        admin_public_key(b"garbage", "admin.pub.pem")
