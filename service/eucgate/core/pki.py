"""Verify the signatures of a DSSE envelope against X.509 trust per signer role.

Pure: no clock, file or network; the times are parameters. Every signature yields a
`SignerResult`; bad input never raises, it fails with a stable code (documented in
docs/reason-codes.md, checked in this order):

- SIG_NO_CERTIFICATE      the signature carries no certificate chain
- SIG_BAD_CERTIFICATE     a certificate is not decodable X.509 DER
- SIG_KEY_TOO_WEAK        RSA under 2048 bits, or an elliptic curve under 256 bits
- SIG_KEY_NOT_ALLOWED     any other key that is not Ed25519, ECDSA P-256/P-384 or RSA
- SIG_KEY_USAGE           the leaf lacks digitalSignature, is a CA, or has an extended
                          key usage without documentSigning (RFC 9336) or anyEKU
- SIG_INTERMEDIATE_NOT_CA a certificate after the leaf is not a CA (basicConstraints)
- SIG_CERT_NOT_YET_VALID  the leaf is not valid yet at the verification time
- SIG_CERT_EXPIRED        the leaf has expired at the verification time
- SIG_INVALID             the signature does not verify over PAE(payloadType, payload)
- SIG_KEYID_MISMATCH      the keyid hint names another key than the leaf's
- SIG_DUPLICATE           an earlier signature of the envelope is by the same key
- SIG_SELF_SIGNED         the leaf signed itself: no authority vouches for it
- SIG_UNTRUSTED_CHAIN     no role's trust anchors accept the chain; when a CA on the
                          way to an anchor breaks the CA profile (`ca_profile_problems`),
                          the detail names that certificate and its extension
- SIG_CERT_REVOKED        a CRL of the role revokes the leaf or an intermediate

Algorithms are decided by the leaf's public key, never by the envelope: Ed25519;
ECDSA with SHA-256 on P-256 and SHA-384 on P-384; RSA (2048 to 8192 bits) with
RSASSA-PSS, SHA-256, MGF1-SHA-256 and a salt of exactly 32 bytes (the digest length).
Only when the policy allows PKCS#1 v1.5 is a signature that fails PSS tried once more
as RSASSA-PKCS1-v1_5 with SHA-256. Nothing in a signature selects the padding, hash or
salt length.

Chains are built by `cryptography.x509.verification` from the leaf and the intermediates
the signature carries to one role's anchors at a time, with extension policies for this
profile (not web PKI): CAs keep the web PKI CA rules except that an extended key usage
is allowed; end entities need keyUsage digitalSignature, must not be CAs, and need no
subjectAltName or serverAuth.

The CA profile every root and intermediate must meet (the chain builder refuses the
rest; `ca_profile_problems` says why in words): a critical basicConstraints with cA
true, keyUsage with keyCertSign, subject and authority key identifiers (when present)
not critical, and an ECDSA P-256/P-384/P-521 or RSA (2048 bits or more) key, never
Ed25519.

Revocation (`SignerResult.revocation`): every certificate of the built chain below the
anchor is looked up in the role's CRLs whose issuer is its issuer and whose signature
that issuer's key verifies. A certificate is revoked if its entry dates at or before the
verification time, or, for key or CA compromise, at or before `now` (a compromised key
can claim any signing time). A CRL that is not current at `now`, a CRL naming the issuer
whose signature does not verify, or (when CRLs are required) no CRL at all makes the
revocation status "unknown" with its own code (SIG_CRL_NOT_CURRENT,
SIG_CRL_BAD_SIGNATURE, SIG_CRL_MISSING): the rules refer such a signer to a person, it
never passes silently. Delta and partitioned CRLs are not used.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from eucgate_client.dsse import Envelope, Signature

from eucgate.core.decision import SignerResult

RegistrationSource = Literal[
    "subject_serial_number", "subject_organization_identifier", "san_directory_name"
]
_VerifyKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_NAME_OVERRIDES = {NameOID.SERIAL_NUMBER: "serialNumber"}
_ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
# RFC 9336 id-kp-documentSigning: the extended key usage for signing documents.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
# PSS salt length: the SHA-256 digest length, fixed, so a signature cannot choose it.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_COMPROMISE = frozenset(
    {
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.ca_compromise,
        x509.ReasonFlags.aa_compromise,
    }
)
# What the certificate parser raises for malformed input, some of it only when a
# field (an extension, a key) is first read.
_MALFORMED = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


@dataclass(frozen=True)
class RoleTrust:
    """One signer role's trust: its anchors (self-signed CAs) and the CRLs of its CAs."""

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()

    @cached_property
    def anchors_digest(self) -> str:
        """SHA-256 over the anchors' DER digests (sorted): what a cached path depends on."""
        digests = sorted(_der_digest(c) for c in self.anchors)
        return hashlib.sha256("".join(digests).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class TrustPolicy:
    """Everything signature verification depends on besides the envelope and the times.

    `roles` maps a signer role ("end_user", "consignee", "endorser") to its trust, tried
    in mapping order: a signer's role is the first whose anchors accept its chain.
    `require_crls`: a CA in a chain without a CRL in the role makes revocation unknown.
    `registration_source`: where the leaf carries registration numbers ("SCHEME:VALUE").
    """

    roles: Mapping[str, RoleTrust]
    allow_rsa_pkcs1v15: bool = False
    require_crls: bool = False
    registration_source: RegistrationSource = "subject_serial_number"

    @classmethod
    def from_anchors(
        cls,
        anchors: Mapping[str, Sequence[x509.Certificate]],
        crls: Mapping[str, Sequence[x509.CertificateRevocationList]] | None = None,
        **options: bool | str,
    ) -> TrustPolicy:
        """A policy from anchors (and CRLs) per role; `options` are the other fields."""
        crls = crls or {}
        roles = {
            role: RoleTrust(anchors=tuple(certs), crls=tuple(crls.get(role, ())))
            for role, certs in anchors.items()
        }
        return cls(roles=roles, **options)  # type: ignore[arg-type]

    @cached_property
    def digest(self) -> str:
        """SHA-256 over everything a verification result depends on in the policy: what
        a cached verdict is keyed by, so a changed policy never reuses one."""
        h = hashlib.sha256()
        flags = (self.allow_rsa_pkcs1v15, self.require_crls, self.registration_source)
        h.update(repr(flags).encode())
        for role, trust in self.roles.items():
            h.update(f"\0{role}\0{trust.anchors_digest}".encode())
            for crl in trust.crls:
                h.update(hashlib.sha256(crl.public_bytes(serialization.Encoding.DER)).digest())
        return h.hexdigest()


class ChainCache:
    """Remembers verification results with the times they hold for: makes verification
    cheaper, never different.

    - Verdicts on a signature's certificates, keyed by (the policy's digest, the
      certificates' digest): everything `verify_signatures` concludes about them besides
      the envelope signature itself (facts, key, role, chain, revocation status), kept
      only for certificates that passed, with the window of verification times and the
      window of receive times in which no input of that conclusion changes (`_Window`).
      A hit inside both windows costs one signature check; the keyid and duplicate checks
      run as on a miss. Signers recur (an importer's certificate signs every EUC it
      sends), so this is what makes a decision cheap.
    - Verified paths of intermediates, keyed by (role, the role's anchors digest, the
      intermediate's DER digest). An entry records the path from the intermediate to the
      anchor and the window in which every certificate of that path is valid; it is
      used only for a verification time inside that window, and never for a path with
      name constraints (those bind the leaf, which a shortened path would not check).
      A hit verifies the leaf with the intermediate as the only anchor, under the same
      extension policies: it speeds up a new leaf under a known CA.
    - CRL signature checks, keyed by (CRL DER digest, issuer DER digest).

    Thread-safe; bounded (LRU).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[tuple[str, str], tuple[_Verdict, _Window, _Window]] = (
            OrderedDict()
        )
        self._paths: OrderedDict[tuple[str, str, str], _CachedPath] = OrderedDict()
        self._crl_sigs: OrderedDict[tuple[str, str], bool] = OrderedDict()

    def verdict(self, key: tuple[str, str], at: datetime, now: datetime) -> _Verdict | None:
        with self._lock:
            hit = self._verdicts.get(key)
            if hit is None or at not in hit[1] or now not in hit[2]:
                return None
            self._verdicts.move_to_end(key)
            return hit[0]

    def put_verdict(self, key: tuple[str, str], value: _Verdict, at: _Window, now: _Window) -> None:
        """Keep `value` for verification times in `at` and receive times in `now`."""
        with self._lock:
            self._verdicts[key] = (value, at, now)
            self._verdicts.move_to_end(key)
            while len(self._verdicts) > self._max:
                self._verdicts.popitem(last=False)

    def path(self, key: tuple[str, str, str]) -> _CachedPath | None:
        with self._lock:
            hit = self._paths.get(key)
            if hit is not None:
                self._paths.move_to_end(key)
            return hit

    def put_path(self, key: tuple[str, str, str], value: _CachedPath) -> None:
        with self._lock:
            self._paths[key] = value
            self._paths.move_to_end(key)
            while len(self._paths) > self._max:
                self._paths.popitem(last=False)

    def crl_signature(self, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
        key = (
            hashlib.sha256(crl.public_bytes(serialization.Encoding.DER)).hexdigest(),
            _der_digest(issuer),
        )
        with self._lock:
            known = self._crl_sigs.get(key)
        if known is not None:
            return known
        valid = _crl_signature_valid(crl, issuer)
        with self._lock:
            self._crl_sigs[key] = valid
            while len(self._crl_sigs) > self._max:
                self._crl_sigs.popitem(last=False)
        return valid


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)  # datetimes' resolution: t <= x is t < x + _TICK


@dataclass(frozen=True)
class _Window:
    """Times t with start <= t < end: between two moments at which an input changes."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, moment: datetime, changes: Iterable[datetime]) -> _Window:
        """The widest window holding `moment` that no change falls inside; a change at c
        means a result may differ between times before c and times from c on."""
        start, end = _EARLIEST, _LATEST
        for c in changes:
            if c <= moment:
                start = max(start, c)
            else:
                end = min(end, c)
        return cls(start, end)

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class _Verdict:
    """What one signature's certificates proved under one policy (kept by ChainCache
    with the windows of times for which it holds)."""

    facts: Mapping[str, Any]
    key: _VerifyKey
    spki: str
    algorithm: str
    # The SignerResult of a verified signature by these certificates, validated once;
    # each signature gets a copy with its own index, keyid hint and check time.
    verified: SignerResult


@dataclass(frozen=True)
class _CachedPath:
    chain: tuple[x509.Certificate, ...]  # intermediate ... anchor
    not_before: datetime
    not_after: datetime


class _Failure(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class _Signer:
    """Facts about one signature gathered while it is checked."""

    index: int
    sig: Signature
    leaf: x509.Certificate
    intermediates: list[x509.Certificate]
    spki: str = ""
    algorithm: str = ""
    role: str = ""
    chain: list[x509.Certificate] = field(default_factory=list)


def verify_signatures(
    envelope: Envelope,
    policy: TrustPolicy,
    at: datetime,
    *,
    now: datetime | None = None,
    cache: ChainCache | None = None,
) -> tuple[SignerResult, ...]:
    """One `SignerResult` per signature of `envelope`, in order.

    `at` is the time certificates must be valid at (the signing time the caller
    accepts); `now` (default `at`) is the receive time CRLs must be current at.
    `cache` only saves work: results are the same with or without it. Never raises for
    bad envelope content; raises ValueError only if a time is naive.
    """
    now = at if now is None else now
    for moment in (at, now):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("verification times must be timezone-aware")
    pae = envelope.pae()
    seen: set[str] = set()
    return tuple(
        _verify_one(i, sig, pae, policy, at, now, cache, seen)
        for i, sig in enumerate(envelope.signatures)
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


def ca_profile_problems(cert: x509.Certificate) -> tuple[str, ...]:
    """What keeps `cert` from acting as a root or intermediate here, in plain words
    naming each extension (empty when it meets the CA profile).

    The chain builder is as strict as `openssl verify -x509_strict`; without this, a
    root made by a plain `openssl req -x509` (no keyUsage) surfaces only as an OID
    message on every submission. Never raises for a decodable certificate.
    """
    problems: list[str] = []
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        problems.append("has no basicConstraints extension (a CA needs it critical, CA:TRUE)")
    else:
        if not bc.value.ca:
            problems.append("basicConstraints does not set CA:TRUE")
        if not bc.critical:
            problems.append("basicConstraints is not marked critical")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        problems.append("has no keyUsage extension (a CA needs keyCertSign)")
    else:
        if not usage.key_cert_sign:
            problems.append("keyUsage lacks keyCertSign")
    for kind, label in (
        (x509.SubjectKeyIdentifier, "subjectKeyIdentifier"),
        (x509.AuthorityKeyIdentifier, "authorityKeyIdentifier"),
    ):
        try:
            if cert.extensions.get_extension_for_class(kind).critical:
                problems.append(f"{label} is marked critical (it must not be)")
        except x509.ExtensionNotFound:
            pass
    try:
        key = cert.public_key()
    except UnsupportedAlgorithm:
        problems.append("its key algorithm is not supported")
    else:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1):
                problems.append(f"its ECDSA curve {key.curve.name} is not P-256, P-384 or P-521")
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                problems.append(f"its RSA key has {key.key_size} bits, under {MIN_RSA_BITS}")
        else:
            problems.append(f"its {type(key).__name__} key cannot issue: use ECDSA or RSA")
    return tuple(problems)


def load_crl_pem(pem: str) -> x509.CertificateRevocationList:
    """Parse one PEM CRL; raises ValueError if it is not one."""
    try:
        return x509.load_pem_x509_crl(pem.encode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"not a valid PEM CRL ({exc})") from exc


# --- one signature ---------------------------------------------------------------------


def _verify_one(
    index: int,
    sig: Signature,
    pae: bytes,
    policy: TrustPolicy,
    at: datetime,
    now: datetime,
    cache: ChainCache | None,
    seen: set[str],
) -> SignerResult:
    base: dict[str, Any] = {"index": index, "keyid": sig.keyid, "checked_at": at}
    if not sig.certificates:
        return SignerResult(
            **base,
            failure="SIG_NO_CERTIFICATE",
            detail="the signature carries no certificate chain",
        )
    verdict_key = None
    if cache is not None:
        verdict_key = (policy.digest, _certificates_digest(sig.certificates))
        verdict = cache.verdict(verdict_key, at, now)
        if verdict is not None:
            return _from_verdict(verdict, base, sig, pae, policy, seen)
    try:
        chain = [_load_der(der, j) for j, der in enumerate(sig.certificates)]
        leaf = chain[0]
        facts: dict[str, Any] = {
            "subject": leaf.subject.rfc4514_string(_NAME_OVERRIDES),
            "certificate_digest": _der_digest(leaf),
            "organization": _attribute(leaf.subject, NameOID.ORGANIZATION_NAME),
            "country": _attribute(leaf.subject, NameOID.COUNTRY_NAME),
            "registrations": _registrations(leaf, policy.registration_source),
        }
    except _Failure as f:
        return SignerResult(**base, failure=f.code, detail=f.detail)
    except _MALFORMED as exc:
        return SignerResult(**base, failure="SIG_BAD_CERTIFICATE", detail=str(exc))
    signer = _Signer(index=index, sig=sig, leaf=leaf, intermediates=chain[1:])
    revocation = revocation_failure = revocation_detail = ""
    try:
        key = _leaf_key(signer)
        _check_key_usage(leaf)
        _check_intermediates(signer.intermediates)
        _check_validity(leaf, at)
        _check_envelope_signature(key, signer.spki, sig, pae, policy, seen)
        if _self_signed(leaf):
            raise _Failure("SIG_SELF_SIGNED", "the leaf certificate is signed by its own key")
        _attribute_role(signer, policy, at, cache)
        revocation, revocation_failure, revocation_detail = _revocation(
            signer, policy, at, now, cache
        )
    except _Failure as f:
        return SignerResult(
            **base, **facts, key_algorithm=signer.algorithm, failure=f.code, detail=f.detail
        )
    except _MALFORMED as exc:
        return SignerResult(
            **base,
            **facts,
            key_algorithm=signer.algorithm,
            failure="SIG_BAD_CERTIFICATE",
            detail=str(exc),
        )
    verdict = _Verdict(
        facts=facts,
        key=key,
        spki=signer.spki,
        algorithm=signer.algorithm,
        verified=SignerResult(
            index=index,
            keyid="",
            **facts,
            key_algorithm=signer.algorithm,
            role=signer.role,
            verified=True,
            revocation=revocation,
            revocation_failure=revocation_failure,
            revocation_detail=revocation_detail,
        ),
    )
    # An unknown status names the receive time in its detail: not worth a window.
    if cache is not None and verdict_key is not None and revocation != "unknown":
        cache.put_verdict(
            verdict_key,
            verdict,
            _Window.around(at, _validity_changes(signer, policy)),
            _Window.around(now, _revocation_changes(signer, policy)),
        )
    return _verified(verdict, base)


def _from_verdict(
    verdict: _Verdict,
    base: dict[str, Any],
    sig: Signature,
    pae: bytes,
    policy: TrustPolicy,
    seen: set[str],
) -> SignerResult:
    """The result of a signature whose certificates were judged before (a cache hit):
    the same as `_verify_one` would give, at the cost of the envelope signature check."""
    try:
        _check_envelope_signature(verdict.key, verdict.spki, sig, pae, policy, seen)
    except _Failure as f:
        return SignerResult(
            **base,
            **verdict.facts,
            key_algorithm=verdict.algorithm,
            failure=f.code,
            detail=f.detail,
        )
    return _verified(verdict, base)


def _verified(verdict: _Verdict, base: dict[str, Any]) -> SignerResult:
    """The verdict's result for this signature, copied rather than validated again (its
    twelve clipped texts cost more than the Ed25519 check): the index and time need no
    clipping, and a verified signature's keyid hint is empty or the leaf's keyid (any
    other fails SIG_KEYID_MISMATCH), within the field's limit."""
    return verdict.verified.model_copy(update=base)


def _check_envelope_signature(
    key: _VerifyKey,
    spki: str,
    sig: Signature,
    pae: bytes,
    policy: TrustPolicy,
    seen: set[str],
) -> None:
    """The checks of a signature that depend on the envelope, not on its certificates."""
    _check_signature(key, sig.sig, pae, policy.allow_rsa_pkcs1v15)
    if sig.keyid and sig.keyid != spki:
        raise _Failure(
            "SIG_KEYID_MISMATCH",
            f"keyid hint {sig.keyid[:80]!r} does not name the leaf key {spki}",
        )
    if spki in seen:
        raise _Failure("SIG_DUPLICATE", f"an earlier signature is by the same key {spki}")
    seen.add(spki)


def _certificates_digest(certificates: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for der in certificates:
        h.update(len(der).to_bytes(4, "big"))
        h.update(der)
    return h.hexdigest()


def _validity_changes(signer: _Signer, policy: TrustPolicy) -> list[datetime]:
    """Every verification time at which some input of the verdict may change: each
    certificate the chain builder could use (the signature's, every role's anchors)
    becomes valid or expires, and each CRL entry of a chain certificate takes effect."""
    certs = [signer.leaf, *signer.intermediates, *signer.chain]
    certs.extend(a for trust in policy.roles.values() for a in trust.anchors)
    changes = [c.not_valid_before_utc for c in certs]
    changes.extend(c.not_valid_after_utc + _TICK for c in certs)
    changes.extend(_entry_dates(signer, policy))
    return changes


def _revocation_changes(signer: _Signer, policy: TrustPolicy) -> list[datetime]:
    """Every receive time at which the revocation status may change: a CRL of the
    signer's role becomes current or stops being current, a compromise entry counts."""
    changes: list[datetime] = []
    for crl in policy.roles[signer.role].crls:
        changes.append(crl.last_update_utc)
        if crl.next_update_utc is not None:
            changes.append(crl.next_update_utc + _TICK)
    changes.extend(_entry_dates(signer, policy))
    return changes


def _entry_dates(signer: _Signer, policy: TrustPolicy) -> list[datetime]:
    return [
        entry.revocation_date_utc
        for crl in policy.roles[signer.role].crls
        for cert in signer.chain
        if (entry := crl.get_revoked_certificate_by_serial_number(cert.serial_number)) is not None
    ]


def _load_der(der: bytes, j: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise _Failure("SIG_BAD_CERTIFICATE", f"certificate {j} is not X.509 DER: {exc}") from exc


def _der_digest(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    return _text(attrs[0].value) if attrs else ""


def _registrations(leaf: x509.Certificate, source: RegistrationSource) -> tuple[str, ...]:
    if source == "subject_serial_number":
        names = [leaf.subject]
        oid = NameOID.SERIAL_NUMBER
    elif source == "subject_organization_identifier":
        names = [leaf.subject]
        oid = _ORGANIZATION_IDENTIFIER
    else:
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return ()
        names = list(san.get_values_for_type(x509.DirectoryName))
        oid = NameOID.SERIAL_NUMBER
    return tuple(_text(a.value) for name in names for a in name.get_attributes_for_oid(oid))


def _leaf_key(signer: _Signer) -> _VerifyKey:
    try:
        key = signer.leaf.public_key()
    except UnsupportedAlgorithm as exc:
        raise _Failure("SIG_KEY_NOT_ALLOWED", f"unsupported leaf key: {exc}") from exc
    signer.spki = keyid(key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        signer.algorithm = "ed25519"
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
            signer.algorithm = f"ecdsa-p{key.curve.key_size}"
            return key
        if key.curve.key_size < 256:
            raise _Failure("SIG_KEY_TOO_WEAK", f"ECDSA curve {key.curve.name} is too weak")
        raise _Failure("SIG_KEY_NOT_ALLOWED", f"ECDSA curve {key.curve.name} is not allowed")
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _Failure(
                "SIG_KEY_TOO_WEAK",
                f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are required",
            )
        if key.key_size > MAX_RSA_BITS:
            raise _Failure(
                "SIG_KEY_NOT_ALLOWED",
                f"RSA key of {key.key_size} bits; at most {MAX_RSA_BITS} are accepted",
            )
        signer.algorithm = f"rsa-{key.key_size}"
        return key
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
        constraints = None
    if constraints is not None and constraints.ca:
        raise _Failure("SIG_KEY_USAGE", "leaf is a CA certificate, not an end entity")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if DOCUMENT_SIGNING not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        raise _Failure(
            "SIG_KEY_USAGE",
            "leaf extended key usage allows neither documentSigning nor anyExtendedKeyUsage",
        )


def _check_intermediates(intermediates: Sequence[x509.Certificate]) -> None:
    for j, cert in enumerate(intermediates, start=1):
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise _Failure(
                "SIG_INTERMEDIATE_NOT_CA",
                f"certificate {j} ({cert.subject.rfc4514_string()}) is not a CA "
                "(basicConstraints cA is not set)",
            )


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


def _check_signature(key: _VerifyKey, signature: bytes, pae: bytes, pkcs1v15: bool) -> None:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, pae)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            digest = hashes.SHA256() if isinstance(key.curve, ec.SECP256R1) else hashes.SHA384()
            key.verify(signature, pae, ec.ECDSA(digest))
        else:
            _check_rsa(key, signature, pae, pkcs1v15)
    except (InvalidSignature, ValueError) as exc:
        hint = ""
        if isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 2 * (
            (key.curve.key_size + 7) // 8
        ):
            hint = (
                f"; it is {len(signature)} bytes, the size of a raw r||s pair: ECDSA "
                "signatures must be DER (a SEQUENCE of the INTEGERs r and s)"
            )
        raise _Failure("SIG_INVALID", f"signature does not verify over the envelope{hint}") from exc


def _check_rsa(key: rsa.RSAPublicKey, signature: bytes, pae: bytes, pkcs1v15: bool) -> None:
    try:
        key.verify(signature, pae, _PSS, hashes.SHA256())
    except InvalidSignature:
        if not pkcs1v15:
            raise
        key.verify(signature, pae, padding.PKCS1v15(), hashes.SHA256())


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


# --- chains ----------------------------------------------------------------------------


def _ee_key_usage(
    policy: verification.Policy, cert: x509.Certificate, usage: x509.KeyUsage
) -> None:
    if not usage.digital_signature:
        raise ValueError("key usage lacks digitalSignature")


def _ee_not_ca(
    policy: verification.Policy, cert: x509.Certificate, bc: x509.BasicConstraints | None
) -> None:
    if bc is not None and bc.ca:
        raise ValueError("an end entity must not be a CA")


_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, None
)
_EE_POLICY = (
    verification.ExtensionPolicy.permit_all()
    .require_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _ee_key_usage)
    .may_be_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, _ee_not_ca)
)


def _verifier(anchors: Sequence[x509.Certificate], at: datetime) -> verification.ClientVerifier:
    # A client verifier, since a signer has no server name to match; the extension
    # policies replace the web PKI end-entity rules (SAN, EKU) with this profile's.
    return (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(at)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )


def _attribute_role(
    signer: _Signer, policy: TrustPolicy, at: datetime, cache: ChainCache | None
) -> None:
    errors: list[str] = []
    for role, trust in policy.roles.items():
        if not trust.anchors:
            continue
        try:
            signer.chain = _build_chain(signer, role, trust, at, cache)
        except verification.VerificationError as exc:
            errors.append(f"{role}: {_profile_failure(signer, trust) or exc}")
            continue
        signer.role = role
        return
    detail = "; ".join(errors) if errors else "no trust anchors are configured"
    raise _Failure("SIG_UNTRUSTED_CHAIN", detail)


def _profile_failure(signer: _Signer, trust: RoleTrust) -> str:
    """Why the chain failed in words, when a CA on the way to one of the role's anchors
    (followed by issuer name from the leaf) breaks the CA profile; else ""."""
    by_subject = {a.subject: a for a in trust.anchors}
    spare = list(signer.intermediates)
    cert = signer.leaf
    on_path: list[tuple[str, x509.Certificate]] = []
    while True:
        anchor = by_subject.get(cert.issuer)
        if anchor is not None:
            on_path.append(("trust anchor", anchor))
            break
        nxt = next((c for c in spare if c.subject == cert.issuer), None)
        if nxt is None:
            return ""  # the names do not reach this role's anchors: not a profile matter
        spare.remove(nxt)
        on_path.append(("intermediate", nxt))
        cert = nxt
    for kind, ca in on_path:
        problems = ca_profile_problems(ca)
        if problems:
            who = ca.subject.rfc4514_string(_NAME_OVERRIDES)
            return f"{kind} {who!r} cannot act as a CA: {'; '.join(problems)}"
    return ""


def _build_chain(
    signer: _Signer, role: str, trust: RoleTrust, at: datetime, cache: ChainCache | None
) -> list[x509.Certificate]:
    if cache is not None:
        for candidate in signer.intermediates:
            if candidate.subject != signer.leaf.issuer:
                continue
            hit = cache.path((role, trust.anchors_digest, _der_digest(candidate)))
            if hit is None or not hit.not_before <= at <= hit.not_after:
                continue
            if any(c not in signer.intermediates for c in hit.chain[1:-1]):
                continue  # the path needs a CA this signature does not carry
            try:
                _verifier([candidate], at).verify(signer.leaf, [])
            except verification.VerificationError:
                continue
            return [signer.leaf, *hit.chain]
    chain = list(_verifier(trust.anchors, at).verify(signer.leaf, signer.intermediates).chain)
    if cache is not None:
        _remember(cache, role, trust, chain)
    return chain


def _remember(
    cache: ChainCache, role: str, trust: RoleTrust, chain: list[x509.Certificate]
) -> None:
    path = chain[1:]  # from the leaf's issuer up to the anchor
    if len(path) < 2:  # the leaf's issuer is the anchor: nothing to save
        return
    for cert in path:
        try:
            cert.extensions.get_extension_for_class(x509.NameConstraints)
        except x509.ExtensionNotFound:
            continue
        return
    cache.put_path(
        (role, trust.anchors_digest, _der_digest(path[0])),
        _CachedPath(
            chain=tuple(path),
            not_before=max(c.not_valid_before_utc for c in path),
            not_after=min(c.not_valid_after_utc for c in path),
        ),
    )


# --- revocation ------------------------------------------------------------------------


def _revocation(
    signer: _Signer,
    policy: TrustPolicy,
    at: datetime,
    now: datetime,
    cache: ChainCache | None,
) -> tuple[str, str, str]:
    """("good" | "unknown" | "not_checked", code, detail); raises _Failure if revoked."""
    trust = policy.roles[signer.role]
    unknown: tuple[str, str] | None = None
    unchecked = False
    for cert, issuer in zip(signer.chain, signer.chain[1:], strict=False):
        status = _status(cert, issuer, trust.crls, at, now, cache)
        if status is None:
            if policy.require_crls:
                unknown = unknown or (
                    "SIG_CRL_MISSING",
                    f"no CRL of {issuer.subject.rfc4514_string()} for role {signer.role}",
                )
            else:
                unchecked = True
        elif status[0] == "SIG_CERT_REVOKED":
            raise _Failure(*status)
        elif status[0]:
            unknown = unknown or status
    if unknown is not None:
        return ("unknown", *unknown)
    return ("not_checked", "", "") if unchecked else ("good", "", "")


def _status(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
    now: datetime,
    cache: ChainCache | None,
) -> tuple[str, str] | None:
    """None: no CRL names the issuer. ("", "") good; else (code, detail)."""
    named = [c for c in crls if c.issuer == issuer.subject and not _partial(c)]
    if not named:
        return None
    signed = [
        c
        for c in named
        if (cache.crl_signature(c, issuer) if cache else _crl_signature_valid(c, issuer))
    ]
    who = issuer.subject.rfc4514_string()
    if not signed:
        return ("SIG_CRL_BAD_SIGNATURE", f"the CRL naming {who} is not signed by its key")
    current = [
        c
        for c in signed
        if c.last_update_utc <= now and c.next_update_utc is not None and now <= c.next_update_utc
    ]
    if not current:
        return ("SIG_CRL_NOT_CURRENT", f"no CRL of {who} is current at {now.isoformat()}")
    for crl in current:
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is None:
            continue
        reason = _reason(entry)
        if reason is x509.ReasonFlags.remove_from_crl:
            continue
        when = entry.revocation_date_utc
        if when <= at or (reason in _COMPROMISE and when <= now):
            return (
                "SIG_CERT_REVOKED",
                f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x}) was revoked "
                f"at {when.isoformat()}" + (f" ({reason.value})" if reason else ""),
            )
    return ("", "")


def _partial(crl: x509.CertificateRevocationList) -> bool:
    for kind in (x509.DeltaCRLIndicator, x509.IssuingDistributionPoint):
        try:
            crl.extensions.get_extension_for_class(kind)
        except x509.ExtensionNotFound:
            continue
        return True
    return False


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _crl_signature_valid(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        key = issuer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            return False
        return crl.is_signature_valid(key)
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return False
