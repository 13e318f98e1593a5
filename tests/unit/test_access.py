"""The access file, identity mapping and the role table (the gRPC matrix is in
tests/integration/test_access.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from eucgate.api.access import (
    ANONYMOUS,
    PUBLIC,
    RPC_ROLES,
    AccessMap,
    Caller,
    Role,
    markdown_table,
)
from eucgate.errors import ConfigError
from eucgate.signing import load_certificates, load_private_key
from eucgate.tlsfiles import LocalAccess, _issue_leaf, add_client, issue_client, make_local_access
from eucgate_client.v1 import (
    audit_service_pb2,
    certificate_service_pb2,
    licence_service_pb2,
    policy_service_pb2,
    review_service_pb2,
)
from grpc_health.v1 import health_pb2

DOCS = Path(__file__).resolve().parents[2] / "docs" / "access.md"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LocalAccess:
    made = make_local_access(tmp_path_factory.mktemp("tls"), now=NOW, importers=["IEC:0588012345"])
    issue_client(made, "stranger", now=NOW)
    return made


def test_the_docs_print_the_table_the_server_enforces() -> None:
    text = DOCS.read_text()
    found = re.search(r"<!-- role-table:start -->\n(.*)<!-- role-table:end -->", text, re.S)
    assert found is not None
    assert found.group(1) == markdown_table(), "regenerate with `eucgate access table`"


def test_every_served_method_has_a_row() -> None:
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in (
            certificate_service_pb2,
            audit_service_pb2,
            policy_service_pb2,
            licence_service_pb2,
            review_service_pb2,
            health_pb2,
        )
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods <= set(RPC_ROLES) | PUBLIC
    assert not set(RPC_ROLES) & PUBLIC


def _pem(path: Path) -> bytes:
    return path.read_bytes().split(b"-----END CERTIFICATE-----")[0] + (
        b"-----END CERTIFICATE-----\n"
    )


def test_role_certificates_map_to_their_callers(tls: LocalAccess) -> None:
    mapped = AccessMap.load(tls.access_file)
    importer = mapped.identify(_pem(tls.client("importer")[0]))
    assert importer == Caller("importer", frozenset({Role.IMPORTER}), frozenset({"IEC:0588012345"}))
    auditor = mapped.identify(_pem(tls.client("auditor")[0]))
    assert auditor is not None
    assert auditor.roles == {Role.AUDITOR}
    assert auditor.scope() is None
    assert mapped.identify(_pem(tls.client("stranger")[0])) is None
    assert mapped.identify(b"not a certificate") is None


def test_a_same_named_certificate_from_another_ca_maps_to_nothing(
    tls: LocalAccess, tmp_path: Path
) -> None:
    other = make_local_access(tmp_path / "other", now=NOW, importers=["IEC:0588012345"])
    mapped = AccessMap.load(tls.access_file)
    # Subject CN=auditor, as in `tls`, but issued by another client CA.
    assert mapped.identify(_pem(other.client("auditor")[0])) is None


def test_subject_alternative_names_map(tls: LocalAccess, tmp_path: Path) -> None:
    ca_key = load_private_key(tls.directory / "clients-ca.key.pem")
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # the local CA is ECDSA
    _, cert = _issue_leaf(
        (ca_key, load_certificates(tls.directory / "clients-ca.pem")[0]),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw-01")]),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [x509.DNSName("gateway.customs.example")],
        NOW,
        NOW.replace(year=NOW.year + 1),
    )
    doc = yaml.safe_load(tls.access_file.read_text())
    doc["client_cas"]["local"] = str(tls.directory / "clients-ca.pem")
    doc["callers"] = [
        {
            "name": "customs",
            "client_ca": "local",
            "san": "dns:gateway.customs.example",
            "roles": ["gateway"],
        }
    ]
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(doc))
    mapped = AccessMap.load(path)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    found = mapped.identify(pem)
    assert found is not None
    assert found.name == "customs"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["callers"][0].update(client_ca="nope"), "no client CA named"),
        (lambda d: d["callers"][0].update(subject="not a name"), "RFC 4514"),
        (lambda d: d["callers"][0].pop("importers"), "importer role needs importers"),
        (lambda d: d["callers"][1].update(importers=["IEC:1"]), "importers need it"),
        (lambda d: d["callers"][0].update(importers=["IEC0588"]), "SCHEME:VALUE"),
        (lambda d: d["callers"][0].update(roles=["admin"]), "roles"),
        (lambda d: d["callers"][1].update(name="importer"), "listed twice"),
        (
            lambda d: d["callers"][1].update(subject=d["callers"][0]["subject"]),
            "another caller's",
        ),
        (lambda d: d["callers"][0].update(san="dns:x"), "exactly one of subject or san"),
        (lambda d: d["client_cas"].update(local="missing.pem"), "is not PEM"),
        (lambda d: d.update(extra=1), "extra"),
    ],
)
def test_an_unusable_access_file_stops_the_start(
    tls: LocalAccess, tmp_path: Path, change: object, message: str
) -> None:
    doc = yaml.safe_load(tls.access_file.read_text())
    doc["client_cas"]["local"] = str(tls.directory / doc["client_cas"]["local"])
    change(doc)  # type: ignore[operator]
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=message):
        AccessMap.load(path)


def test_a_leaf_certificate_is_no_client_ca(tls: LocalAccess, tmp_path: Path) -> None:
    doc = yaml.safe_load(tls.access_file.read_text())
    doc["client_cas"]["local"] = str(tls.client("importer")[0])
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="not a CA certificate"):
        AccessMap.load(path)


def test_adding_a_caller_twice_is_refused(tls: LocalAccess) -> None:
    add_client(tls, "second-reviewer", ("reviewer",), now=NOW)
    with pytest.raises(ValueError, match="already has a caller"):
        add_client(tls, "second-reviewer", ("reviewer",), now=NOW)


def test_scopes() -> None:
    importer = Caller("erp", frozenset({Role.IMPORTER}), frozenset({"IEC:1"}))
    assert importer.scope() == frozenset({"IEC:1"})
    assert importer.may_submit_for({"IEC:1", "GSTIN:2"})
    assert not importer.may_submit_for({"IEC:2"})
    both = Caller("x", frozenset({Role.IMPORTER, Role.AUDITOR}), frozenset({"IEC:1"}))
    assert both.scope() is None  # an auditor reads everything
    assert not both.may_submit_for({"IEC:2"})  # but submits only for its importers
    assert ANONYMOUS.scope() is None
    assert ANONYMOUS.may_submit_for(())
    assert ANONYMOUS.anonymous
