"""Issue keys and X.509 certificates and sign DSSE envelopes with them.

The tooling side of signatures: the CLI's `keygen` and `sign`, the demo and the tests use
it; the verifier (`eucgate.core.pki`) never does. Certificates follow the profile the
verifier expects:

- Roots and intermediates are ECDSA (P-256 by default) or RSA, because the chain
  builder of `cryptography.x509.verification` refuses Ed25519 issuer keys.
- Signer leaves are end entities (BasicConstraints ca=False) whose only key usage is
  digitalSignature (critical); their key is Ed25519, ECDSA P-256/P-384 or RSA (2048 or
  3072 bits), and RSA signers sign with RSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt.
- Each CA publishes a CRL (`issue_crl`); a role's PKI (`make_role_pki`) is a root, an
  intermediate, one signer and the CRLs of both CAs.
- A signer's organisation is the subject's O attribute. Each registration number is one
  subject serialNumber attribute (OID 2.5.4.5), in its own RDN, written "SCHEME:VALUE"
  (e.g. "IEC:0305012345"). The scheme holds no colon; the value is everything after the
  first one. Binding a signer to the EUC's party compares these.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID
from eucgate_client.dsse import Envelope, Signature

from eucgate.core.pki import keyid

__all__ = [
    "KEY_TYPES",
    "CaKey",
    "DemoPki",
    "Issuer",
    "KeyType",
    "PrivateKey",
    "RolePki",
    "add_signature",
    "issue_ca",
    "issue_crl",
    "issue_signer",
    "keyid",
    "load_certificates",
    "load_private_key",
    "make_demo_pki",
    "make_role_pki",
    "new_private_key",
    "sign_envelope",
    "write_pem_cert",
    "write_pem_crl",
    "write_pem_key",
    "write_pem_public_key",
]

KeyType = Literal["ed25519", "p256", "p384", "rsa2048", "rsa3072"]
KEY_TYPES: tuple[KeyType, ...] = ("ed25519", "p256", "p384", "rsa2048", "rsa3072")
CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Issuer = tuple[CaKey, x509.Certificate]
# RSA signers: PSS with the salt length the verifier fixes (the SHA-256 digest length).
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

# X.520 serialNumber is a PrintableString: these are the characters it may hold.
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")
_SCHEME = re.compile(r"[A-Za-z0-9]+")


def new_private_key(key_type: KeyType) -> PrivateKey:
    """A fresh private key; raises ValueError for a key type that is not allowed."""
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa2048", "rsa3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise ValueError(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")


def issue_ca(
    common_name: str,
    *,
    key: CaKey | None = None,
    issuer: Issuer | None = None,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None = None,
) -> tuple[CaKey, x509.Certificate]:
    """A CA certificate: a self-signed root, or an intermediate when `issuer` is given.

    A new P-256 key is made unless `key` is given. Raises ValueError if `key` is not
    ECDSA P-256/P-384 or RSA of 2048 bits or more, or the validity window is empty.
    """
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("CA keys must be ECDSA P-256/P-384 or RSA")
    _hash_for(key)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signing_key, issuer_name, issuer_public = (
        (key, subject, key.public_key())
        if issuer is None
        else (issuer[0], issuer[1].subject, issuer[0].public_key())
    )
    builder = (
        _base_builder(subject, issuer_name, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    )
    return key, builder.sign(signing_key, _hash_for(signing_key))


def issue_signer(
    issuer: Issuer,
    *,
    organization: str,
    registrations: Sequence[tuple[str, str]],
    common_name: str,
    country: str,
    key_type: KeyType = "ed25519",
    not_before: datetime,
    not_after: datetime,
) -> tuple[PrivateKey, x509.Certificate]:
    """An end-entity signer certificate for one organisation, with a fresh key.

    Raises ValueError for a registration that cannot be written as a PrintableString
    "SCHEME:VALUE" (see the module docstring), a country that is not two letters, or an
    empty validity window.
    """
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ValueError(f"country {country!r} is not an ISO 3166-1 alpha-2 code")
    rdns = [
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, country)]),
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
        ),
    ]
    for scheme, value in registrations:
        if not _SCHEME.fullmatch(scheme) or not _PRINTABLE.fullmatch(value):
            raise ValueError(f"registration {scheme}:{value} is not printable SCHEME:VALUE")
        rdns.append(
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{scheme}:{value}")]
            )
        )
    rdns.append(
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    ca_key = issuer[0]
    key = new_private_key(key_type)
    builder = end_entity_builder(issuer, x509.Name(rdns), key.public_key(), not_before, not_after)
    return key, builder.sign(ca_key, _hash_for(ca_key))


def issue_crl(
    issuer: Issuer,
    *,
    this_update: datetime,
    next_update: datetime,
    revoked: Sequence[tuple[int, datetime, x509.ReasonFlags | None]] = (),
    number: int = 1,
) -> x509.CertificateRevocationList:
    """A CRL of `issuer` listing `revoked` as (serial number, revocation time, reason).

    Raises ValueError if next_update is not after this_update.
    """
    if next_update <= this_update:
        raise ValueError("next_update must be later than this_update")
    ca_key, ca_cert = issuer
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    for serial, when, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca_key, _hash_for(ca_key))


def sign_envelope(
    payload_type: str,
    payload: bytes,
    signers: Sequence[tuple[PrivateKey, Sequence[x509.Certificate]]],
) -> Envelope:
    """A DSSE envelope over `payload`, one signature per (key, chain) in `signers`.

    Each chain is leaf first, then intermediates; a self-signed certificate after the
    leaf (a root) is left out, since the verifier takes roots from its own policy.
    Raises ValueError if a chain is empty or its leaf does not hold the key's public key.
    """
    envelope = Envelope(payload_type=payload_type, payload=payload)
    for key, chain in signers:
        envelope = add_signature(envelope, key, chain)
    return envelope


def add_signature(
    envelope: Envelope, key: PrivateKey, chain: Sequence[x509.Certificate]
) -> Envelope:
    """`envelope` with one more signature over its PAE; raises ValueError as `sign_envelope`."""
    if not chain:
        raise ValueError("a signer needs its certificate chain, leaf first")
    leaf_spki = keyid(chain[0].public_key())
    if leaf_spki != keyid(key.public_key()):
        raise ValueError("the first certificate of the chain does not hold the signing key")
    sent = [chain[0], *(c for c in chain[1:] if not _self_signed(c))]
    signature = Signature(
        sig=_sign(key, envelope.pae()),
        keyid=leaf_spki,
        certificates=tuple(c.public_bytes(serialization.Encoding.DER) for c in sent),
    )
    return Envelope(
        payload_type=envelope.payload_type,
        payload=envelope.payload,
        signatures=(*envelope.signatures, signature),
    )


def write_pem_key(path: Path, key: PrivateKey) -> None:
    """Write `key` as unencrypted PKCS#8 PEM, readable by its owner only (mode 0600)."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)


def write_pem_public_key(path: Path, public_key: CertificatePublicKeyTypes) -> None:
    """Write `public_key` as SubjectPublicKeyInfo PEM."""
    path.write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def write_pem_crl(path: Path, crl: x509.CertificateRevocationList) -> None:
    """Write a CRL as PEM."""
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def write_pem_cert(path: Path, cert: x509.Certificate | Sequence[x509.Certificate]) -> None:
    """Write one certificate, or several concatenated in the given order, as PEM."""
    certs = [cert] if isinstance(cert, x509.Certificate) else list(cert)
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def load_private_key(path: Path) -> PrivateKey:
    """Read an unencrypted PEM private key.

    Raises ValueError if the file holds no such key, or one that is not Ed25519,
    ECDSA P-256/P-384 or RSA of 2048 bits or more; OSError if it cannot be read.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1
    ):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    raise ValueError(f"{path}: key type is not Ed25519, ECDSA P-256/P-384 or RSA >= 2048")


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Read every certificate of a PEM file, in file order.

    Raises ValueError if the file holds none or one is malformed; OSError if unreadable.
    """
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: no valid PEM certificate ({exc})") from exc
    return certs


@dataclass(frozen=True)
class RolePki:
    """Where `make_role_pki` wrote each file (keys mode 0600)."""

    directory: Path
    role: str
    root_key: Path
    root_cert: Path
    root_crl: Path  # the root's CRL: covers the intermediate
    intermediate_key: Path
    intermediate_cert: Path
    intermediate_crl: Path  # the intermediate's CRL: covers the signer
    signer_key: Path
    signer_cert: Path
    signer_chain: Path  # leaf then intermediate: what `sign` attaches

    @property
    def crls(self) -> tuple[Path, Path]:
        return (self.root_crl, self.intermediate_crl)


def make_role_pki(
    directory: Path,
    *,
    role: str,
    now: datetime,
    organization: str,
    registrations: Sequence[tuple[str, str]],
    country: str,
    key_type: KeyType = "ed25519",
    crl_days: int = 30,
) -> RolePki:
    """Write a small PKI for one signer role into `directory` (created if missing).

    A root "eucgate <role> root" (10 years), an intermediate (5 years), a signer for
    `organization` with a `key_type` key (1 year), and an empty CRL of each CA (valid
    `crl_days`). All validity starts a day before `now`. Existing files are
    overwritten. Raises ValueError as `issue_signer`, OSError on I/O.
    """
    directory.mkdir(parents=True, exist_ok=True)
    start = now - timedelta(days=1)
    label = role.replace("_", "-")
    root = issue_ca(
        f"eucgate {label} root",
        not_before=start,
        not_after=now + timedelta(days=3650),
        path_length=1,
    )
    intermediate = issue_ca(
        f"eucgate {label} issuing CA",
        issuer=root,
        not_before=start,
        not_after=now + timedelta(days=1825),
        path_length=0,
    )
    signer_key, signer_cert = issue_signer(
        intermediate,
        organization=organization,
        registrations=registrations,
        common_name=f"{organization} EUC signing",
        country=country,
        key_type=key_type,
        not_before=start,
        not_after=now + timedelta(days=365),
    )
    crl_end = now + timedelta(days=crl_days)
    pki = RolePki(
        directory=directory,
        role=role,
        root_key=directory / "root.key.pem",
        root_cert=directory / "root.pem",
        root_crl=directory / "root.crl.pem",
        intermediate_key=directory / "intermediate.key.pem",
        intermediate_cert=directory / "intermediate.pem",
        intermediate_crl=directory / "intermediate.crl.pem",
        signer_key=directory / "signer.key.pem",
        signer_cert=directory / "signer.pem",
        signer_chain=directory / "signer-chain.pem",
    )
    write_pem_key(pki.root_key, root[0])
    write_pem_cert(pki.root_cert, root[1])
    write_pem_crl(pki.root_crl, issue_crl(root, this_update=start, next_update=crl_end))
    write_pem_key(pki.intermediate_key, intermediate[0])
    write_pem_cert(pki.intermediate_cert, intermediate[1])
    write_pem_crl(
        pki.intermediate_crl, issue_crl(intermediate, this_update=start, next_update=crl_end)
    )
    write_pem_key(pki.signer_key, signer_key)
    write_pem_cert(pki.signer_cert, signer_cert)
    write_pem_cert(pki.signer_chain, [signer_cert, intermediate[1]])
    return pki


@dataclass(frozen=True)
class DemoPki(RolePki):
    """An end-user `RolePki` plus the service's receipt key files."""

    service_key: Path = Path()
    service_public_key: Path = Path()


def make_demo_pki(
    directory: Path,
    *,
    now: datetime,
    organization: str,
    registrations: Sequence[tuple[str, str]],
    country: str = "IN",
) -> DemoPki:
    """Write a complete demo PKI into `directory` (created if missing).

    The end-user `make_role_pki` (Ed25519 signer for `organization`, CRLs valid 30
    days) and the service's Ed25519 receipt key (service.key.pem, service.pub.pem).
    Existing files are overwritten. Raises ValueError as `issue_signer`, OSError on I/O.
    """
    role = make_role_pki(
        directory,
        role="end_user",
        now=now,
        organization=organization,
        registrations=registrations,
        country=country,
    )
    service_key = ed25519.Ed25519PrivateKey.generate()
    pki = DemoPki(
        **{f: getattr(role, f) for f in RolePki.__dataclass_fields__},
        service_key=directory / "service.key.pem",
        service_public_key=directory / "service.pub.pem",
    )
    write_pem_key(pki.service_key, service_key)
    write_pem_public_key(pki.service_public_key, service_key.public_key())
    return pki


def end_entity_builder(
    issuer: Issuer,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """An end-entity certificate whose only key usage is digitalSignature, under
    `issuer`: signers add nothing, TLS leaves add their extended key usage and names.
    Raises ValueError for an empty validity window."""
    ca_key, ca_cert = issuer
    return (
        _base_builder(subject, ca_cert.subject, public_key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    if not_after <= not_before:
        raise ValueError("not_after must be later than not_before")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _hash_for(key: CaKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ValueError(f"RSA key of {key.key_size} bits is too weak (2048 or more)")
        return hashes.SHA256()
    if isinstance(key.curve, ec.SECP256R1):
        return hashes.SHA256()
    if isinstance(key.curve, ec.SECP384R1):
        return hashes.SHA384()
    raise ValueError(f"ECDSA curve {key.curve.name} is not allowed (P-256 or P-384 only)")


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PSS, hashes.SHA256())
    return key.sign(data, ec.ECDSA(_hash_for(key)))


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
