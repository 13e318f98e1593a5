"""A PKI made by the openssl command line, end to end: bundle, `eucgate sign`, gRPC.

An ECDSA root, an RSA-2048 intermediate, Ed25519 and RSA signer leaves, and CRLs made
by `openssl ca -gencrl` (one revoking a leaf for key compromise). Nothing here is made
by eucgate's own certificate helpers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import write_signed_bundle, write_trusting_bundle
from eucgate.cli.main import app
from eucgate.config import load_settings
from eucgate_client.client import CertificateClient
from eucgate_client.v1 import decision_pb2
from google.protobuf import json_format
from typer.testing import CliRunner

from tests.integration.conftest import Env

CONFIG = """\
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[v3_root]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
SUBJECT = "/C=IN/O=Jay-Ushin Limited/serialNumber=IEC:0588012345/CN={cn}"


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca_dir(path: Path) -> Path:
    path.mkdir()
    (path / "ca.cnf").write_text(CONFIG)
    (path / "index.txt").write_text("")
    (path / "serial").write_text("1000\n")
    (path / "crlnumber").write_text("01\n")
    return path


def _leaf(work: Path, name: str, algorithm: list[str], serial: str) -> tuple[Path, Path]:
    _openssl(work, "genpkey", *algorithm, "-out", f"{name}.key")
    _openssl(
        work,
        "req",
        "-new",
        "-config",
        "int/ca.cnf",
        "-key",
        f"{name}.key",
        "-subj",
        SUBJECT.format(cn=name),
        "-out",
        f"{name}.csr",
    )
    _openssl(
        work,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "int.pem",
        "-CAkey",
        "int.key",
        "-extfile",
        "int/ca.cnf",
        "-extensions",
        "v3_leaf",
        "-days",
        "365",
        "-set_serial",
        serial,
        "-out",
        f"{name}.pem",
    )
    chain = work / f"{name}-chain.pem"
    chain.write_bytes((work / f"{name}.pem").read_bytes() + (work / "int.pem").read_bytes())
    return work / f"{name}.key", chain


@pytest.fixture(scope="module")
def openssl_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openssl is required in CI for interoperability tests")
        pytest.skip("openssl command line not installed; interoperability test not run")
    work = tmp_path_factory.mktemp("openssl-pki")
    root_dir, int_dir = _ca_dir(work / "root"), _ca_dir(work / "int")
    _openssl(
        work,
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "root.key",
    )
    _openssl(
        work,
        "req",
        "-x509",
        "-new",
        "-config",
        "root/ca.cnf",
        "-extensions",
        "v3_root",
        "-key",
        "root.key",
        "-sha256",
        "-days",
        "3650",
        "-subj",
        "/CN=openssl EUC root",
        "-out",
        "root.pem",
    )
    _openssl(
        work, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "int.key"
    )
    _openssl(
        work,
        "req",
        "-new",
        "-config",
        "int/ca.cnf",
        "-key",
        "int.key",
        "-subj",
        "/CN=openssl EUC issuing CA",
        "-out",
        "int.csr",
    )
    _openssl(
        work,
        "x509",
        "-req",
        "-in",
        "int.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-extfile",
        "root/ca.cnf",
        "-extensions",
        "v3_int",
        "-days",
        "1825",
        "-set_serial",
        "2",
        "-out",
        "int.pem",
    )
    _leaf(work, "ed25519", ["-algorithm", "ED25519"], "100")
    _leaf(work, "rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "101")
    _leaf(work, "compromised", ["-algorithm", "ED25519"], "102")
    _openssl(
        int_dir,
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        "../int.key",
        "-cert",
        "../int.pem",
        "-revoke",
        "../compromised.pem",
        "-crl_reason",
        "keyCompromise",
    )
    _openssl(
        int_dir,
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        "../int.key",
        "-cert",
        "../int.pem",
        "-gencrl",
        "-out",
        "../int.crl",
    )
    _openssl(
        root_dir,
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        "../root.key",
        "-cert",
        "../root.pem",
        "-gencrl",
        "-out",
        "../root.crl",
    )
    return work


@pytest.fixture(scope="module")
def server(openssl_pki: Path, env: Env) -> Iterator[RunningServer]:
    bundle = write_trusting_bundle(
        openssl_pki / "policy.yaml",
        openssl_pki / "root.pem",
        [openssl_pki / "root.crl", openssl_pki / "int.crl"],
    )
    running = start_server(
        load_settings(
            listen="127.0.0.1:0",
            data_dir=openssl_pki / "store",
            bundle_path=write_signed_bundle(bundle, env.admin_key),
            policy_admin_keys=[env.admin_public_key],
            service_key_path=env.pki.service_key,
            insecure=True,
            init_store=True,
        )
    )
    yield running
    running.stop(grace=1)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[CertificateClient]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield CertificateClient(channel, timeout=30)


def _sign(work: Path, signer: str) -> bytes:
    """An EUC signed now (after openssl made the leaves) with `eucgate sign`."""
    now = datetime.now(UTC)
    euc = samples.certificate(now, number=f"OPENSSL-{signer}-{uuid.uuid4().hex[:8]}")
    euc.signatory.signed_at.FromDatetime(now)
    source = work / f"{signer}-euc.json"
    source.write_text(json_format.MessageToJson(euc))
    out = work / f"{signer}-envelope.json"
    result = CliRunner().invoke(
        app,
        [
            "sign",
            str(source),
            "--key",
            str(work / f"{signer}.key"),
            "--chain",
            str(work / f"{signer}-chain.pem"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.mark.parametrize("signer", ["ed25519", "rsa"])
def test_openssl_signers_are_approved_over_grpc(
    openssl_pki: Path, client: CertificateClient, signer: str
) -> None:
    decision = client.submit(envelope_json=_sign(openssl_pki, signer)).decision
    assert decision.outcome == decision_pb2.OUTCOME_APPROVED, decision.reasons
    assert [(s.role, s.verified) for s in decision.signers] == [("end_user", True)]


def test_a_leaf_revoked_by_an_openssl_crl_is_rejected(
    openssl_pki: Path, client: CertificateClient
) -> None:
    decision = client.submit(envelope_json=_sign(openssl_pki, "compromised")).decision
    assert decision.outcome == decision_pb2.OUTCOME_REJECTED
    assert [r.rule_id for r in decision.reasons] == ["SIG-001", "SIG-002"]
    assert "SIG_CERT_REVOKED" in decision.reasons[0].message
    assert "keyCompromise" in decision.reasons[0].message
