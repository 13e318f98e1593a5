"""Mutual-TLS material for local use: a server CA and certificate, a client CA, one
client certificate per role, and the access file that maps them (`eucgate keygen`,
`eucgate access add`, the demo and the tests).

Production deployments bring their own CAs; the access file then names those (see
docs/access.md). Everything here is P-256 ECDSA, which every gRPC TLS stack accepts.

Layout of a directory made by `make_local_access`:

    server-ca.pem                      the CA a client trusts for the server (`--ca`)
    server.pem, server.key.pem         the API port's certificate chain and key
    clients-ca.pem, clients-ca.key.pem the client CA (its key issues more clients)
    clients/NAME.pem, NAME.key.pem     one client identity per caller
    access.yaml                        the access file (`access_path`)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eucgate.signing import (
    Issuer,
    end_entity_builder,
    issue_ca,
    load_certificates,
    load_private_key,
    write_pem_cert,
)
from eucgate.signing import write_pem_key as _write_key

VALIDITY = timedelta(days=365)
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
# One caller per role, named after it; the importer one is bound to the importers given.
ROLE_CALLERS = ("importer", "gateway", "auditor", "reviewer", "policy-admin", "operator")
ACCESS_HEADER = """\
# eucgate access file: who may call the API (see docs/access.md).
# client_cas: the CAs whose client certificates the API port accepts, by name (PEM paths
# relative to this file). callers: each maps one certificate identity (its subject, or
# one subject alternative name) under a named CA to roles; an importer caller is bound
# to the registrations (SCHEME:VALUE) of the importers it acts for.
"""


@dataclass(frozen=True)
class LocalAccess:
    """The files `make_local_access` wrote."""

    directory: Path  # the tls/ directory

    @property
    def server_ca(self) -> Path:
        return self.directory / "server-ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key.pem"

    @property
    def access_file(self) -> Path:
        return self.directory / "access.yaml"

    def client(self, name: str) -> tuple[Path, Path]:
        """(certificate, key) of the client identity `name`."""
        return (
            self.directory / "clients" / f"{name}.pem",
            self.directory / "clients" / f"{name}.key.pem",
        )


def make_local_access(
    directory: Path,
    *,
    now: datetime,
    importers: Sequence[str],
    server_names: Sequence[str] = SERVER_NAMES,
) -> LocalAccess:
    """Write server and client CAs, the server certificate, one client per role and the
    access file into `directory` (created). Raises OSError, ValueError."""
    files = LocalAccess(directory)
    (directory / "clients").mkdir(parents=True, exist_ok=True)
    start, end = now - timedelta(minutes=5), now + VALIDITY
    server_ca = issue_ca("eucgate local server CA", not_before=start, not_after=end)
    server_key, server_cert = _issue_leaf(
        server_ca,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_names[0])]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [_general_name(n) for n in server_names],
        start,
        end,
    )
    write_pem_cert(files.server_ca, server_ca[1])
    write_pem_cert(files.server_cert, [server_cert, server_ca[1]])
    _write_key(files.server_key, server_key)
    client_ca = issue_ca("eucgate local client CA", not_before=start, not_after=end)
    write_pem_cert(directory / "clients-ca.pem", client_ca[1])
    _write_key(directory / "clients-ca.key.pem", client_ca[0])
    document: dict[str, Any] = {"client_cas": {"local": "clients-ca.pem"}, "callers": []}
    _write_access(files.access_file, document)
    for role in ROLE_CALLERS:
        add_client(files, role, (role,), importers if role == "importer" else (), now=now)
    return files


def add_client(
    files: LocalAccess,
    name: str,
    roles: Sequence[str],
    importers: Sequence[str] = (),
    *,
    now: datetime,
) -> tuple[Path, Path]:
    """Issue a client certificate `CN=name` under the local client CA and map it in the
    access file. Raises ValueError if `name` is already a caller, OSError."""
    document = yaml.safe_load(files.access_file.read_text(encoding="utf-8"))
    if any(c.get("name") == name for c in document["callers"]):
        raise ValueError(f"{files.access_file} already has a caller named {name}")
    cert_path, key_path, subject = issue_client(files, name, now=now)
    entry: dict[str, Any] = {
        "name": name,
        "client_ca": "local",
        "subject": subject.rfc4514_string(),
        "roles": list(roles),
    }
    if importers:
        entry["importers"] = list(importers)
    document["callers"].append(entry)
    _write_access(files.access_file, document)
    return cert_path, key_path


def issue_client(files: LocalAccess, name: str, *, now: datetime) -> tuple[Path, Path, x509.Name]:
    """Issue a client certificate `CN=name` under the local client CA without mapping it
    (`add_client` maps it). Raises ValueError, OSError."""
    ca_cert = load_certificates(files.directory / "clients-ca.pem")[0]
    ca_key = load_private_key(files.directory / "clients-ca.key.pem")
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the local client CA key must be ECDSA")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    key, cert = _issue_leaf(
        (ca_key, ca_cert),
        subject,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
        now - timedelta(minutes=5),
        now + VALIDITY,
    )
    cert_path, key_path = files.client(name)
    write_pem_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path, subject


def _write_access(path: Path, document: dict[str, Any]) -> None:
    path.write_text(ACCESS_HEADER + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _issue_leaf(
    issuer: Issuer,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName],
    not_before: datetime,
    not_after: datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = end_entity_builder(
        issuer, subject, key.public_key(), not_before, not_after
    ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(issuer[0], hashes.SHA256())
