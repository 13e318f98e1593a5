"""Verify the signatures of a DSSE envelope against X.509 trust anchors per signer role.

Pure: no clock, file or network; the time the chain must be valid at is a parameter.
Every signature yields a `SignerResult`; bad input never raises, it fails with a stable
code (docs/reason-codes.md):

- SIG_NO_CERTIFICATE     the signature carries no certificate chain
- SIG_BAD_CERTIFICATE    a certificate is not decodable X.509 DER
- SIG_KEY_NOT_ALLOWED    the leaf key is not Ed25519 or ECDSA P-256/P-384
- SIG_KEY_USAGE          the leaf lacks key usage digitalSignature, or is a CA
- SIG_CERT_NOT_YET_VALID the leaf is not valid yet at the verification time
- SIG_CERT_EXPIRED       the leaf has expired at the verification time
- SIG_INVALID            the signature does not verify over PAE(payloadType, payload)
- SIG_UNTRUSTED_CHAIN    no role's trust anchors accept the chain

The leaf's public key decides the algorithm (Ed25519; ECDSA with SHA-256 on P-256 and
SHA-384 on P-384); nothing in the envelope can choose it. The signature is checked
before the chain, so a forged signature is SIG_INVALID whoever the certificate names.
Revocation is not checked here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID
from eucgate_client.dsse import Envelope, Signature

from eucgate.core.decision import SignerResult

_VerifyKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
_NAME_OVERRIDES = {NameOID.SERIAL_NUMBER: "serialNumber"}
# What the certificate parser raises for malformed input, some of it only when a
# field (an extension, a key) is first read.
_MALFORMED = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


class _Failure(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def verify_signatures(
    envelope: Envelope,
    anchors: Mapping[str, Sequence[x509.Certificate]],
    at: datetime,
) -> tuple[SignerResult, ...]:
    """One `SignerResult` per signature of `envelope`, in order.

    `anchors` maps a signer role ("end_user", "consignee", "endorser") to its trust
    anchors; roles are tried in mapping order and the first whose anchors accept the
    chain is the signer's `role`. `at` is the time certificates must be valid at.
    Never raises for bad envelope content; raises ValueError only if `at` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verification time must be timezone-aware")
    verifiers = {role: _verifier(certs, at) for role, certs in anchors.items() if len(certs) > 0}
    pae = envelope.pae()
    return tuple(
        _verify_one(i, sig, pae, verifiers, at) for i, sig in enumerate(envelope.signatures)
    )


def keyid(public_key: CertificatePublicKeyTypes) -> str:
    """Lowercase hex SHA-256 of the key's SubjectPublicKeyInfo (DER): the DSSE keyid."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def load_anchor_pems(pems: Sequence[str]) -> list[x509.Certificate]:
    """Parse trust anchors; each string may hold several PEM certificates.

    Raises ValueError naming the entry that holds no valid PEM certificate.
    """
    out: list[x509.Certificate] = []
    for i, pem in enumerate(pems):
        try:
            out.extend(x509.load_pem_x509_certificates(pem.encode("utf-8")))
        except ValueError as exc:
            raise ValueError(f"trust anchor {i}: not a valid PEM certificate ({exc})") from exc
    return out


def _verifier(certs: Sequence[x509.Certificate], at: datetime) -> verification.ClientVerifier:
    # Signer certificates are not web PKI: CAs keep the web PKI rules, end entities are
    # checked by our own key usage rules instead. A client verifier, since a signer has
    # no server name to match.
    return (
        verification.PolicyBuilder()
        .store(verification.Store(list(certs)))
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )


def _verify_one(
    index: int,
    sig: Signature,
    pae: bytes,
    verifiers: Mapping[str, verification.ClientVerifier],
    at: datetime,
) -> SignerResult:
    if not sig.certificates:
        return SignerResult(
            index=index,
            keyid=sig.keyid,
            failure="SIG_NO_CERTIFICATE",
            detail="the signature carries no certificate chain",
        )
    try:
        chain = [_load_der(der, j) for j, der in enumerate(sig.certificates)]
        leaf = chain[0]
        subject = leaf.subject.rfc4514_string(_NAME_OVERRIDES)
        digest = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
        organization = _attribute(leaf, NameOID.ORGANIZATION_NAME)
        registrations = tuple(
            _text(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        )
    except _Failure as f:
        return SignerResult(index=index, keyid=sig.keyid, failure=f.code, detail=f.detail)
    except _MALFORMED as exc:
        return SignerResult(
            index=index, keyid=sig.keyid, failure="SIG_BAD_CERTIFICATE", detail=str(exc)
        )
    role = ""
    failure = detail = ""
    try:
        key = _leaf_key(leaf)
        _check_key_usage(leaf)
        _check_validity(leaf, at)
        _check_signature(key, sig.sig, pae)
        role = _trusted_role(leaf, chain[1:], verifiers)
    except _Failure as f:
        failure, detail = f.code, f.detail
    except _MALFORMED as exc:
        failure, detail = "SIG_BAD_CERTIFICATE", str(exc)
    return SignerResult(
        index=index,
        keyid=sig.keyid,
        role=role,
        subject=subject,
        certificate_digest=digest,
        organization=organization,
        registrations=registrations,
        verified=not failure,
        failure=failure,
        detail=detail,
    )


def _load_der(der: bytes, j: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise _Failure("SIG_BAD_CERTIFICATE", f"certificate {j} is not X.509 DER: {exc}") from exc


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    attrs = cert.subject.get_attributes_for_oid(oid)
    return _text(attrs[0].value) if attrs else ""


def _leaf_key(leaf: x509.Certificate) -> _VerifyKey:
    try:
        key = leaf.public_key()
    except UnsupportedAlgorithm as exc:
        raise _Failure("SIG_KEY_NOT_ALLOWED", f"unsupported leaf key: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
            return key
        raise _Failure("SIG_KEY_NOT_ALLOWED", f"ECDSA curve {key.curve.name} is not allowed")
    raise _Failure("SIG_KEY_NOT_ALLOWED", f"leaf key type {type(key).__name__} is not allowed")


def _check_key_usage(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise _Failure("SIG_KEY_USAGE", "leaf has no key usage extension") from exc
    if not usage.digital_signature:
        raise _Failure("SIG_KEY_USAGE", "leaf key usage lacks digitalSignature")
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if constraints.ca:
        raise _Failure("SIG_KEY_USAGE", "leaf is a CA certificate, not an end entity")


def _check_validity(leaf: x509.Certificate, at: datetime) -> None:
    if at < leaf.not_valid_before_utc:
        raise _Failure(
            "SIG_CERT_NOT_YET_VALID",
            f"leaf is valid from {leaf.not_valid_before_utc.isoformat()}",
        )
    if at > leaf.not_valid_after_utc:
        raise _Failure(
            "SIG_CERT_EXPIRED", f"leaf expired at {leaf.not_valid_after_utc.isoformat()}"
        )


def _check_signature(key: _VerifyKey, signature: bytes, pae: bytes) -> None:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, pae)
        else:
            digest = hashes.SHA256() if isinstance(key.curve, ec.SECP256R1) else hashes.SHA384()
            key.verify(signature, pae, ec.ECDSA(digest))
    except (InvalidSignature, ValueError) as exc:
        raise _Failure("SIG_INVALID", "signature does not verify over the envelope") from exc


def _trusted_role(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    verifiers: Mapping[str, verification.ClientVerifier],
) -> str:
    errors: list[str] = []
    for role, verifier in verifiers.items():
        try:
            verifier.verify(leaf, intermediates)
        except verification.VerificationError as exc:
            errors.append(f"{role}: {exc}")
            continue
        return role
    detail = "; ".join(errors) if errors else "no trust anchors are configured"
    raise _Failure("SIG_UNTRUSTED_CHAIN", detail)
