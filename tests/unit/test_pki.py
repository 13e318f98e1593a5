"""Signature verification against per-role trust anchors, with real certificates."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from eucgate.core.decision import SignerResult
from eucgate.core.pki import (
    ChainCache,
    TrustPolicy,
    keyid,
    load_anchor_pems,
    verify_signatures,
)
from eucgate.signing import add_signature, issue_ca, issue_signer, sign_envelope
from eucgate_client.dsse import Envelope, Signature

from tests.conftest import END_USER_ORGANIZATION, Pki

PAYLOAD_TYPE = "application/vnd.eucgate.euc.v1+json"
PAYLOAD = b'{"certificateNumber":"EUC-2026-0001"}'


def _signed(pki: Pki) -> Envelope:
    return sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.end_user_key, pki.end_user_chain)])


def _only(envelope: Envelope, pki: Pki, now: datetime) -> tuple[str, str]:
    (result,) = verify_signatures(envelope, pki.trust(), now)
    assert result.verified == (result.failure == "")
    return result.failure, result.role


def _with_sig(envelope: Envelope, **changes: object) -> Envelope:
    sig = replace(envelope.signatures[0], **changes)  # type: ignore[arg-type]
    return replace(envelope, signatures=(sig,))


def pae_of(payload: bytes) -> bytes:
    return Envelope(payload_type=PAYLOAD_TYPE, payload=payload).pae()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _custom_leaf(
    pki: Pki,
    public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey,
    usage: x509.KeyUsage,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custom")]))
        .issuer_name(pki.intermediate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(pki.intermediate_key, hashes.SHA256())
    )


def _usage(*, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=not digital_signature,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.mark.parametrize("hint", ["", "leaf"])
def test_a_verified_result_is_what_validation_gives(pki: Pki, now: datetime, hint: str) -> None:
    """A verified result is a copy of one validated with the verdict (pki._verified); it
    must equal the model validated from its own fields, cache warm or cold, second
    signer included."""
    leaf_keyid = keyid(pki.end_user_cert.public_key())
    envelope = sign_envelope(
        PAYLOAD_TYPE,
        PAYLOAD,
        [(pki.end_user_key, pki.end_user_chain), (pki.consignee_key, pki.consignee_chain)],
    )
    first = replace(envelope.signatures[0], keyid=leaf_keyid if hint else "")
    envelope = replace(envelope, signatures=(first, *envelope.signatures[1:]))
    cache = ChainCache()
    for _ in range(2):
        results = verify_signatures(envelope, pki.trust(), now, cache=cache)
        assert [r.index for r in results] == [0, 1]
        for result in results:
            assert result.verified, result.failure
            again = SignerResult.model_validate(result.model_dump())
            assert result == again
            assert result.model_dump_json() == again.model_dump_json()
        assert results[0].keyid == (leaf_keyid if hint else "")
        assert results[0].checked_at == now


def test_ed25519_end_user_verifies_with_its_facts(pki: Pki, now: datetime) -> None:
    (result,) = verify_signatures(_signed(pki), pki.trust(), now)
    assert result.verified
    assert result.failure == ""
    assert result.role == "end_user"
    assert result.index == 0
    assert result.keyid == keyid(pki.end_user_cert.public_key())
    assert result.organization == END_USER_ORGANIZATION
    assert result.registrations == ("IEC:0588012345", "GSTIN:06AAACJ1234F1Z5")
    assert "O=Jay-Ushin Limited" in result.subject
    assert "serialNumber=IEC:0588012345" in result.subject
    assert result.certificate_digest == pki.end_user_cert.fingerprint(hashes.SHA256()).hex()


def test_two_signers_get_their_own_roles(pki: Pki, now: datetime) -> None:
    envelope = sign_envelope(
        PAYLOAD_TYPE,
        PAYLOAD,
        [(pki.end_user_key, pki.end_user_chain), (pki.consignee_key, pki.consignee_chain)],
    )
    results = verify_signatures(envelope, pki.trust(), now)
    assert [(r.index, r.role, r.verified) for r in results] == [
        (0, "end_user", True),
        (1, "consignee", True),
    ]
    assert results[1].registrations == ("JCN:1234567890123",)


def test_p384_signer_verifies(pki: Pki, now: datetime) -> None:
    key, cert = issue_signer(
        (pki.intermediate_key, pki.intermediate),
        organization="P384 Org",
        registrations=[],
        common_name="p384",
        country="IN",
        key_type="p384",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=1),
    )
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(key, [cert, pki.intermediate])])
    assert _only(envelope, pki, now) == ("", "end_user")


def test_sign_envelope_never_sends_the_root(pki: Pki) -> None:
    envelope = sign_envelope(
        PAYLOAD_TYPE, PAYLOAD, [(pki.end_user_key, [*pki.end_user_chain, pki.root])]
    )
    assert envelope.signatures[0].certificates == (
        _der(pki.end_user_cert),
        _der(pki.intermediate),
    )


def test_sign_envelope_refuses_a_key_the_leaf_does_not_hold(pki: Pki) -> None:
    with pytest.raises(ValueError, match="does not hold the signing key"):
        sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.consignee_key, pki.end_user_chain)])


def test_flipped_payload_byte_is_invalid(pki: Pki, now: datetime) -> None:
    envelope = _signed(pki)
    tampered = replace(envelope, payload=_flip(envelope.payload, 5))
    assert _only(tampered, pki, now) == ("SIG_INVALID", "")


@pytest.mark.parametrize("signer", ["end_user", "consignee"])
def test_flipped_signature_byte_is_invalid(pki: Pki, now: datetime, signer: str) -> None:
    key, chain = (
        (pki.end_user_key, pki.end_user_chain)
        if signer == "end_user"
        else (pki.consignee_key, pki.consignee_chain)
    )
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(key, chain)])
    tampered = _with_sig(envelope, sig=_flip(envelope.signatures[0].sig, 10))
    assert _only(tampered, pki, now) == ("SIG_INVALID", "")


def test_signature_over_raw_payload_without_pae_is_invalid(pki: Pki, now: datetime) -> None:
    envelope = _signed(pki)
    assert isinstance(pki.end_user_key, ed25519.Ed25519PrivateKey)
    raw = _with_sig(envelope, sig=pki.end_user_key.sign(PAYLOAD))
    assert _only(raw, pki, now) == ("SIG_INVALID", "")


def test_payload_type_swapped_after_signing_is_invalid(pki: Pki, now: datetime) -> None:
    envelope = replace(_signed(pki), payload_type="application/vnd.eucgate.euc.v1+protobuf")
    assert _only(envelope, pki, now) == ("SIG_INVALID", "")


def test_forged_signature_is_invalid_even_with_an_untrusted_chain(pki: Pki, now: datetime) -> None:
    envelope = _with_sig(_signed(pki), sig=b"\x00" * 64)
    (result,) = verify_signatures(envelope, TrustPolicy(roles={}), now)
    assert result.failure == "SIG_INVALID"


def test_chain_to_an_unconfigured_root_is_untrusted(pki: Pki, now: datetime) -> None:
    other_root = issue_ca(
        "other root", not_before=now - timedelta(days=1), not_after=now + timedelta(days=9)
    )
    key, cert = issue_signer(
        other_root,
        organization=END_USER_ORGANIZATION,
        registrations=[("IEC", "0588012345")],
        common_name="impostor",
        country="IN",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=1),
    )
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(key, [cert])])
    (result,) = verify_signatures(envelope, pki.trust(), now)
    assert (result.failure, result.role, result.verified) == ("SIG_UNTRUSTED_CHAIN", "", False)
    assert "end_user:" in result.detail
    assert "consignee:" in result.detail
    assert result.organization == END_USER_ORGANIZATION


def test_chain_missing_its_intermediate_is_untrusted(pki: Pki, now: datetime) -> None:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.end_user_key, [pki.end_user_cert])])
    assert _only(envelope, pki, now) == ("SIG_UNTRUSTED_CHAIN", "")


def test_no_anchors_for_any_role_is_untrusted(pki: Pki, now: datetime) -> None:
    (result,) = verify_signatures(_signed(pki), TrustPolicy.from_anchors({"end_user": []}), now)
    assert result.failure == "SIG_UNTRUSTED_CHAIN"


def test_signer_is_tried_against_each_role(pki: Pki, now: datetime) -> None:
    anchors = {"consignee": [pki.consignee_root], "endorser": [pki.root]}
    (result,) = verify_signatures(_signed(pki), TrustPolicy.from_anchors(anchors), now)
    assert (result.verified, result.role) == (True, "endorser")


@pytest.mark.parametrize(
    ("at", "failure"),
    [
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), "SIG_CERT_NOT_YET_VALID"),
        (datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC), "SIG_CERT_EXPIRED"),
    ],
)
def test_leaf_outside_its_validity(pki: Pki, at: datetime, failure: str) -> None:
    assert _only(_signed(pki), pki, at) == (failure, "")


def test_rsa_pss_leaf_verifies(pki: Pki, now: datetime) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _custom_leaf(pki, rsa_key.public_key(), _usage(digital_signature=True))
    sig = rsa_key.sign(
        pae_of(PAYLOAD),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    envelope = Envelope(
        payload_type=PAYLOAD_TYPE,
        payload=PAYLOAD,
        signatures=(Signature(sig=sig, certificates=(_der(cert), _der(pki.intermediate))),),
    )
    assert _only(envelope, pki, now) == ("", "end_user")


def test_other_curve_is_not_allowed(pki: Pki, now: datetime) -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    cert = _custom_leaf(pki, k1.public_key(), _usage(digital_signature=True))
    envelope = Envelope(
        payload_type=PAYLOAD_TYPE,
        payload=PAYLOAD,
        signatures=(
            Signature(
                sig=k1.sign(pae_of(PAYLOAD), ec.ECDSA(hashes.SHA256())),
                certificates=(_der(cert), _der(pki.intermediate)),
            ),
        ),
    )
    assert _only(envelope, pki, now) == ("SIG_KEY_NOT_ALLOWED", "")


def test_leaf_without_digital_signature_usage(pki: Pki, now: datetime) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = _custom_leaf(pki, key.public_key(), _usage(digital_signature=False))
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(key, [cert, pki.intermediate])])
    assert _only(envelope, pki, now) == ("SIG_KEY_USAGE", "")


def test_ca_certificate_as_signer_is_refused(pki: Pki, now: datetime) -> None:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.intermediate_key, [pki.intermediate])])
    assert _only(envelope, pki, now) == ("SIG_KEY_USAGE", "")


def test_signature_without_certificates(pki: Pki, now: datetime) -> None:
    envelope = _with_sig(_signed(pki), certificates=())
    (result,) = verify_signatures(envelope, pki.trust(), now)
    assert (result.failure, result.verified, result.subject) == ("SIG_NO_CERTIFICATE", False, "")


@pytest.mark.parametrize("position", [0, 1])
def test_garbage_der_is_a_bad_certificate(pki: Pki, now: datetime, position: int) -> None:
    certs = [_der(pki.end_user_cert), _der(pki.intermediate)]
    certs[position] = b"\x30\x03\x02\x01\x00garbage"
    envelope = _with_sig(_signed(pki), certificates=tuple(certs))
    assert _only(envelope, pki, now) == ("SIG_BAD_CERTIFICATE", "")


def test_every_signature_gets_a_result(pki: Pki, now: datetime) -> None:
    envelope = add_signature(_signed(pki), pki.consignee_key, pki.consignee_chain)
    envelope = replace(
        envelope, signatures=(*envelope.signatures, Signature(sig=b"", keyid="hint"))
    )
    results = verify_signatures(envelope, pki.trust(), now)
    assert [(r.index, r.failure) for r in results] == [
        (0, ""),
        (1, ""),
        (2, "SIG_NO_CERTIFICATE"),
    ]
    assert results[2].keyid == "hint"


def test_naive_verification_time_is_a_programming_error(pki: Pki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_signatures(_signed(pki), pki.trust(), datetime(2026, 6, 1))


def test_load_anchor_pems(pki: Pki) -> None:
    pem = b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in (pki.root, pki.consignee_root)
    ).decode()
    assert load_anchor_pems([pem]) == [pki.root, pki.consignee_root]
    with pytest.raises(ValueError, match="trust anchor 1"):
        load_anchor_pems([pem, "not a certificate"])


def _openssl(tmp: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)


def test_certificate_made_by_openssl_verifies(tmp_path: Path, now: datetime) -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openssl is required in CI for interoperability tests")
        pytest.skip("openssl command line not installed; interoperability test not run")
    (tmp_path / "req.cnf").write_text(
        "[req]\n"
        "distinguished_name = dn\n"
        "[dn]\n"
        "[v3_ca]\n"
        "basicConstraints = critical,CA:TRUE\n"
        "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
        "subjectKeyIdentifier = hash\n"
        "[v3_leaf]\n"
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    _openssl(
        tmp_path,
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ca.key",
    )
    _openssl(
        tmp_path,
        "req",
        "-new",
        "-x509",
        "-config",
        "req.cnf",
        "-extensions",
        "v3_ca",
        "-key",
        "ca.key",
        "-sha256",
        "-days",
        "3650",
        "-subj",
        "/CN=openssl root",
        "-out",
        "ca.pem",
    )
    _openssl(tmp_path, "genpkey", "-algorithm", "ED25519", "-out", "leaf.key")
    _openssl(
        tmp_path,
        "req",
        "-new",
        "-config",
        "req.cnf",
        "-key",
        "leaf.key",
        "-subj",
        "/C=IN/O=Jay-Ushin Limited/serialNumber=IEC:0588012345/CN=openssl leaf",
        "-out",
        "leaf.csr",
    )
    _openssl(
        tmp_path,
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-sha256",
        "-days",
        "3650",
        "-extfile",
        "req.cnf",
        "-extensions",
        "v3_leaf",
        "-set_serial",
        "4242",
        "-out",
        "leaf.pem",
    )
    root = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((tmp_path / "leaf.pem").read_bytes())
    key = serialization.load_pem_private_key((tmp_path / "leaf.key").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(key, [leaf])])
    at = leaf.not_valid_before_utc + timedelta(minutes=1)  # openssl dates from its clock
    (result,) = verify_signatures(envelope, TrustPolicy.from_anchors({"end_user": [root]}), at)
    assert (result.verified, result.role, result.failure) == (True, "end_user", ""), result.detail
    assert result.registrations == ("IEC:0588012345",)
    assert result.organization == "Jay-Ushin Limited"
