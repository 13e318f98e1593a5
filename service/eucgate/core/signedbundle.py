"""Signed policy bundles: a DSSE envelope whose payload is a bundle's canonical JSON.

The signature covers exactly the bytes that are loaded. The payload must be the
canonical form (`Bundle.canonical()`) of the bundle it parses into, so a signed
bundle's digest is the SHA-256 of its signed payload and nothing outside the signature
(formatting, comments, list files) can change what runs. Only signatures by a
policy-admin key count: Ed25519, or ECDSA P-256 (SHA-256) or P-384 (SHA-384), DER
signatures over the DSSE PAE. One valid signature by a configured key is enough;
signatures by other keys are ignored, so several admins may co-sign.

Spec: https://github.com/secure-systems-lab/dsse (protocol.md). Pure: reads no file.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eucgate_client.dsse import Envelope, EnvelopeError, Signature

from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.pki import keyid
from eucgate.errors import BundleError

BUNDLE_PAYLOAD_TYPE = "application/vnd.eucgate.policy-bundle.v1+json"

AdminPublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
AdminPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def admin_public_key(pem: bytes, source: str) -> AdminPublicKey:
    """A policy-admin public key from SubjectPublicKeyInfo PEM.

    Raises ValueError (naming `source`) for anything but an Ed25519, ECDSA P-256 or
    P-384 public key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{source}: not a PEM public key ({exc})") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1
    ):
        return key
    raise ValueError(f"{source}: a policy-admin key must be Ed25519, ECDSA P-256 or P-384")


def sign_bundle(bundle: Bundle, key: AdminPrivateKey) -> Envelope:
    """A DSSE envelope over `bundle.canonical()` signed by `key` (keyid: SPKI SHA-256).

    Raises ValueError for an ECDSA key on another curve than P-256 or P-384.
    """
    envelope = Envelope(BUNDLE_PAYLOAD_TYPE, bundle.canonical())
    public = key.public_key()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = key.sign(envelope.pae())
    else:
        sig = key.sign(envelope.pae(), ec.ECDSA(_ecdsa_hash(key.curve)))
    return Envelope(
        envelope.payload_type, envelope.payload, (Signature(sig=sig, keyid=keyid(public)),)
    )


def open_signed_bundle(data: bytes, source: str, admin_keys: Sequence[AdminPublicKey]) -> Bundle:
    """The bundle a signed-bundle file holds, if a policy-admin key signed it.

    Raises BundleError with reason BUNDLE_UNSIGNED (not a DSSE envelope, or no
    signature), BUNDLE_ENVELOPE_INVALID (malformed DSSE), BUNDLE_PAYLOAD_TYPE,
    BUNDLE_SIGNATURE_INVALID (no signature verifies under any of `admin_keys`, or none
    are given), BUNDLE_NOT_CANONICAL, or BUNDLE_INVALID (the content fails validation).
    """
    envelope = _envelope(data, source)
    if not admin_keys:
        raise BundleError(
            f"{source}: no policy-admin key is configured to verify it",
            reason="BUNDLE_SIGNATURE_INVALID",
        )
    if not any(_verifies(envelope, s, k) for s in envelope.signatures for k in admin_keys):
        raise BundleError(
            f"{source}: no signature verifies under a configured policy-admin key "
            f"(key ids {', '.join(keyid(k)[:16] for k in admin_keys)})",
            reason="BUNDLE_SIGNATURE_INVALID",
        )
    return _payload_bundle(envelope, source)


def unverified_bundle(data: bytes, source: str) -> Bundle:
    """The bundle of a signed-bundle file WITHOUT checking who signed it.

    For inspection only (`eucgate policy check` without --admin-key); never load a
    bundle to serve this way. Raises BundleError as `open_signed_bundle`, except for
    BUNDLE_SIGNATURE_INVALID.
    """
    return _payload_bundle(_envelope(data, source), source)


def looks_signed(data: bytes) -> bool:
    """Whether `data` is meant as a DSSE envelope (a JSON object naming `payloadType`)."""
    head = data.lstrip()[:1]
    return head == b"{" and b'"payloadType"' in data


def _envelope(data: bytes, source: str) -> Envelope:
    if not looks_signed(data):
        raise BundleError(
            f"{source}: not a signed bundle (a DSSE envelope); sign it with `eucgate policy sign`",
            reason="BUNDLE_UNSIGNED",
        )
    try:
        envelope = Envelope.from_json(data)
    except EnvelopeError as exc:
        raise BundleError(
            f"{source}: not a valid DSSE envelope: {exc}", reason="BUNDLE_ENVELOPE_INVALID"
        ) from None
    if envelope.payload_type != BUNDLE_PAYLOAD_TYPE:
        raise BundleError(
            f"{source}: payloadType is {envelope.payload_type!r}, not {BUNDLE_PAYLOAD_TYPE!r}",
            reason="BUNDLE_PAYLOAD_TYPE",
        )
    if not envelope.signatures:
        raise BundleError(f"{source}: the envelope carries no signature", reason="BUNDLE_UNSIGNED")
    return envelope


def _payload_bundle(envelope: Envelope, source: str) -> Bundle:
    try:
        text = envelope.payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{source}: the payload is not UTF-8") from None
    # Screening list files cannot be named: a signed payload stands on its own.
    bundle = parse_bundle(text, f"{source} (payload)")
    if bundle.canonical() != envelope.payload:
        raise BundleError(
            f"{source}: the payload is not the bundle's canonical JSON; sign it with "
            "`eucgate policy sign`, which writes that form",
            reason="BUNDLE_NOT_CANONICAL",
        )
    return bundle


def _verifies(envelope: Envelope, signature: Signature, key: AdminPublicKey) -> bool:
    # The keyid is a hint only: a signature that names another key is not tried with this one.
    if signature.keyid and signature.keyid != keyid(key):
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature.sig, envelope.pae())
        else:
            key.verify(signature.sig, envelope.pae(), ec.ECDSA(_ecdsa_hash(key.curve)))
    except (InvalidSignature, ValueError):
        return False
    return True


def _ecdsa_hash(curve: ec.EllipticCurve) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(curve, ec.SECP256R1):
        return hashes.SHA256()
    if isinstance(curve, ec.SECP384R1):
        return hashes.SHA384()
    raise ValueError(f"ECDSA curve {curve.name} is not allowed for policy-admin keys")
