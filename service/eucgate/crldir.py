"""CRLs dropped into a directory (setting `crl_dir`): revocation news without a new
signed bundle.

Read by `policysource.PolicySource` at start and on every reload (SIGHUP or
PolicyService.ReloadBundle). A CRL is used only when the key of a CA the bundle trusts
signed it: a role's trust anchor, or a CA certificate dropped into the same directory
that an anchor (or another such CA) directly issued and that meets the CA profile. Per
role and issuer the newest CRL wins (highest cRLNumber, then latest thisUpdate); one
not newer than a CRL the bundle already holds for that issuer adds nothing. Anything
else (not a CRL, an unknown issuer, a bad signature, a delta or partitioned CRL) is
refused with a log line and ignored; the bundle's own CRLs always apply.

The accepted CRLs are added to the bundle's `crls`, which gives the bundle the server
decides with a digest of its own. The gate stores that bundle by digest like any other
and every decision names it, so replay loads exactly the CRLs a decision used; an
empty directory leaves the signed bundle (and its digest) as it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eucgate.core.bundle import Bundle
from eucgate.core.pki import ca_profile_problems, load_crl_pem
from eucgate.errors import ConfigError

log = structlog.get_logger("eucgate.crl")

# Bounds on what one scan reads: a directory is an input like any other.
MAX_FILES = 1000
MAX_FILE_BYTES = 8 * 1024 * 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


@dataclass(frozen=True)
class DirectoryCrl:
    """A CRL the directory supplies for one role, and where it came from."""

    role: str
    file: str
    crl: x509.CertificateRevocationList

    @property
    def pem(self) -> str:
        return self.crl.public_bytes(serialization.Encoding.PEM).decode("ascii")


def with_directory_crls(bundle: Bundle, directory: Path) -> Bundle:
    """`bundle` with the CRLs of `directory` that pass (see the module docstring) added
    to its roles' CRLs; `bundle` itself when none adds anything.

    Raises ConfigError (BUNDLE_CRL_DIR_UNREADABLE) when the directory cannot be listed.
    """
    found = scan(directory, bundle)
    if not found:
        return bundle
    crls: dict[str, list[str]] = {role: list(pems) for role, pems in bundle.crls.items()}
    for entry in found:
        crls.setdefault(entry.role, []).append(entry.pem)
    anchors: dict[str, list[str]] = {
        role: list(pems) for role, pems in bundle.trust_anchors.items()
    }
    effective = bundle.with_trust_anchors(anchors, crls)
    log.info(
        "crl_dir_applied",
        directory=str(directory),
        crls=len(found),
        signed_digest=bundle.digest,
        bundle_digest=effective.digest,
    )
    return effective


def scan(directory: Path, bundle: Bundle) -> tuple[DirectoryCrl, ...]:
    """The directory's CRLs that a CA of `bundle` signed, newest per role and issuer,
    in a fixed order (so an unchanged directory gives the same bundle digest).

    Raises ConfigError (BUNDLE_CRL_DIR_UNREADABLE) when the directory cannot be listed.
    """
    try:
        files = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CRL directory {directory}: {exc.strerror or exc}",
            reason="BUNDLE_CRL_DIR_UNREADABLE",
        ) from None
    if len(files) > MAX_FILES:
        log.warning("crl_dir_too_many_files", directory=str(directory), read=MAX_FILES)
        files = files[:MAX_FILES]
    certificates: list[x509.Certificate] = []
    crls: list[tuple[str, x509.CertificateRevocationList]] = []
    for path in files:
        if path.name.startswith("."):
            continue
        try:
            certs, file_crls = _read(path)
        except ValueError as exc:
            _refuse(path, str(exc))
            continue
        certificates.extend(certs)
        crls.extend((path.name, crl) for crl in file_crls)
    known = _known_cas(bundle.anchors, certificates)
    newest: dict[tuple[str, str], DirectoryCrl] = {}
    for name, crl in crls:
        roles = _verified_roles(crl, known)
        if isinstance(roles, str):
            _refuse(directory / name, roles)
            continue
        for role in roles:
            key = (role, _issuer_key(crl))
            held = newest.get(key)
            if held is None or _age(crl) > _age(held.crl):
                newest[key] = DirectoryCrl(role=role, file=name, crl=crl)
    accepted = []
    for key in sorted(newest):
        entry = newest[key]
        if _bundle_holds_as_new(bundle, entry):
            continue
        log.info(
            "crl_accepted",
            file=entry.file,
            role=entry.role,
            issuer=entry.crl.issuer.rfc4514_string(),
            crl_number=_number(entry.crl),
            next_update=_iso(entry.crl),
        )
        accepted.append(entry)
    return tuple(accepted)


def _refuse(path: Path, why: str) -> None:
    log.warning("crl_refused", file=str(path), reason=why)


def _read(path: Path) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    """Certificates and CRLs of one PEM file (any number of blocks) or DER file (one CRL
    or certificate); ValueError saying why when it holds neither."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    certs: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    blocks = list(_PEM_BLOCK.finditer(raw))
    if not blocks:
        try:
            return [], [x509.load_der_x509_crl(raw)]
        except ValueError:
            pass
        try:
            return [x509.load_der_x509_certificate(raw)], []
        except ValueError:
            raise ValueError("holds no PEM block and is not a DER CRL or certificate") from None
    for block in blocks:
        label = block.group(1)
        try:
            if label == b"X509 CRL":
                crls.append(load_crl_pem(block.group(0).decode("ascii")))
            elif label == b"CERTIFICATE":
                certs.append(x509.load_pem_x509_certificate(block.group(0)))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"a {label.decode('ascii', 'replace')} block is invalid: {exc}"
            ) from None
    if not certs and not crls:
        raise ValueError("holds no CRL or certificate")
    return certs, crls


def _known_cas(
    anchors: Mapping[str, Sequence[x509.Certificate]], candidates: Sequence[x509.Certificate]
) -> dict[str, list[x509.Certificate]]:
    """Per role: its anchors, then every candidate CA (meeting the CA profile) that a
    known CA of the role directly issued, repeated until nothing more joins."""
    known = {role: list(certs) for role, certs in anchors.items()}
    for role, cas in known.items():
        pending = [c for c in candidates if not ca_profile_problems(c)]
        grew = True
        while grew and pending:
            grew = False
            for cert in list(pending):
                if any(_issued_by(cert, ca) for ca in cas):
                    cas.append(cert)
                    pending.remove(cert)
                    grew = True
        known[role] = cas
    return known


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _verified_roles(
    crl: x509.CertificateRevocationList, known: Mapping[str, Sequence[x509.Certificate]]
) -> list[str] | str:
    """The roles one of whose known CAs signed `crl`, or why none did."""
    for kind, what in (
        (x509.DeltaCRLIndicator, "a delta CRL"),
        (x509.IssuingDistributionPoint, "a partitioned CRL (issuingDistributionPoint)"),
    ):
        try:
            crl.extensions.get_extension_for_class(kind)
        except x509.ExtensionNotFound:
            continue
        return f"{what}: only complete CRLs are used"
    if crl.next_update_utc is None:
        return "it has no nextUpdate, so it can never be current"
    issuer = crl.issuer.rfc4514_string()
    named = False
    roles = []
    for role, cas in known.items():
        for ca in cas:
            if ca.subject != crl.issuer:
                continue
            named = True
            if _signed_by(crl, ca):
                roles.append(role)
                break
    if roles:
        return roles
    if named:
        return f"its signature does not verify with the key of {issuer}"
    return f"its issuer {issuer} is no trust anchor or known CA of the bundle"


def _signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        key = ca.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            return False
        return crl.is_signature_valid(key)
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return False


def _issuer_key(crl: x509.CertificateRevocationList) -> str:
    return hashlib.sha256(crl.issuer.public_bytes()).hexdigest()


def _number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _age(crl: x509.CertificateRevocationList) -> tuple[int, float]:
    """Orders CRLs of one issuer: a higher cRLNumber is newer, then a later thisUpdate."""
    number = _number(crl)
    return (-1 if number is None else number, crl.last_update_utc.timestamp())


def _iso(crl: x509.CertificateRevocationList) -> str:
    return crl.next_update_utc.isoformat() if crl.next_update_utc else ""


def _bundle_holds_as_new(bundle: Bundle, entry: DirectoryCrl) -> bool:
    """Whether the bundle already holds, for the role, a CRL of the same issuer at least
    as new as `entry` (then the directory's adds nothing)."""
    held = {str(role): pems for role, pems in bundle.crls.items()}
    for pem in held.get(entry.role, ()):
        crl = load_crl_pem(pem)
        if crl.issuer == entry.crl.issuer and _age(crl) >= _age(entry.crl):
            return True
    return False
