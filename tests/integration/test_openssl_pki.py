"""A PKI made by the openssl command line, end to end: bundle, `eucgate sign`, gRPC.

An ECDSA root, an RSA-2048 intermediate, Ed25519 and RSA signer leaves, and CRLs made
by `openssl ca -gencrl` (one revoking a leaf for key compromise), with the commands and
configuration docs/pki.md gives; the bundle names them as PEM files and is signed with
`eucgate policy sign`. A root made the quick way (no keyUsage) is refused by
`eucgate policy check`; an intermediate without a critical basicConstraints is named in
the rejection; a CRL dropped into the CRL directory revokes after a reload. Nothing
here is made by eucgate's own certificate helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import yaml
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import write_trusting_bundle
from eucgate.cli.main import app
from eucgate.config import Settings, load_settings
from eucgate.log.export import write_export
from eucgate.replay.engine import Status
from eucgate.replay.offline import replay_export
from eucgate.replay.run import ReplayJob
from eucgate.replay.summary import ReplaySummary
from eucgate_client.client import CertificateClient, PolicyClient
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
[v3_loose_int]
basicConstraints = CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
[v3_stock_ca]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
basicConstraints = critical,CA:true
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


def _leaf(
    work: Path, name: str, algorithm: list[str], serial: str, ca: str = "int"
) -> tuple[Path, Path]:
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
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
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
    chain.write_bytes((work / f"{name}.pem").read_bytes() + (work / f"{ca}.pem").read_bytes())
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


def _bundle_naming(work: Path, name: str, root: str, crls: list[str]) -> Path:
    """The sample bundle trusting `root` for end users, anchor and CRLs named as files."""
    path = write_trusting_bundle(work / name, work / root, [])
    doc = yaml.safe_load(path.read_text())
    doc["trust_anchors"]["end_user"] = [{"file": root}]
    doc["crls"]["end_user"] = [{"file": crl} for crl in crls]
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def signed_bundle(openssl_pki: Path, env: Env) -> Path:
    """policy.yaml names root.pem, root.crl and int.crl; `eucgate policy sign` inlines them."""
    bundle = _bundle_naming(openssl_pki, "policy.yaml", "root.pem", ["root.crl", "int.crl"])
    out = openssl_pki / "policy.dsse.json"
    code, output = _cli(
        "policy", "sign", str(bundle), "--key", str(env.admin_key), "--out", str(out)
    )
    assert code == 0, output
    return out


def _settings(work: Path, env: Env, signed: Path, store: str, **extra: Path) -> Settings:
    return load_settings(
        listen="127.0.0.1:0",
        data_dir=work / store,
        bundle_path=signed,
        policy_admin_keys=[env.admin_public_key],
        service_key_path=env.pki.service_key,
        insecure=True,
        init_store=True,
        **extra,
    )


@pytest.fixture(scope="module")
def server(openssl_pki: Path, env: Env, signed_bundle: Path) -> Iterator[RunningServer]:
    running = start_server(_settings(openssl_pki, env, signed_bundle, "store"))
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


def test_a_root_made_the_quick_way_is_refused_by_policy_check_and_sign(
    openssl_pki: Path, env: Env
) -> None:
    # `openssl req -x509 -new` with openssl's stock v3_ca extensions: no keyUsage.
    _openssl(
        openssl_pki,
        "req",
        "-x509",
        "-new",
        "-config",
        "root/ca.cnf",
        "-extensions",
        "v3_stock_ca",
        "-key",
        "root.key",
        "-days",
        "3650",
        "-subj",
        "/CN=quick openssl root",
        "-out",
        "quick-root.pem",
    )
    bundle = _bundle_naming(openssl_pki, "quick.yaml", "quick-root.pem", [])
    line = next(
        i
        for i, row in enumerate(bundle.read_text().splitlines(), 1)
        if row.strip() == "- file: quick-root.pem"
    )
    for command in (
        ("policy", "check", str(bundle)),
        ("policy", "sign", str(bundle), "--key", str(env.admin_key)),
    ):
        code, output = _cli(*command)
        assert code == 1, output
        flat = " ".join(output.split())
        assert f"quick.yaml:{line}: trust_anchors.end_user[0]:" in flat
        assert "'CN=quick openssl root' cannot act as a CA" in flat
        assert "has no keyUsage extension" in flat


def test_an_intermediate_without_critical_basic_constraints_is_named(
    openssl_pki: Path, client: CertificateClient
) -> None:
    _openssl(
        openssl_pki,
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "loose.key",
    )
    _openssl(
        openssl_pki,
        "req",
        "-new",
        "-config",
        "int/ca.cnf",
        "-key",
        "loose.key",
        "-subj",
        "/CN=loose issuing CA",
        "-out",
        "loose.csr",
    )
    _openssl(
        openssl_pki,
        "x509",
        "-req",
        "-in",
        "loose.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-extfile",
        "root/ca.cnf",
        "-extensions",
        "v3_loose_int",
        "-days",
        "365",
        "-set_serial",
        "3",
        "-out",
        "loose.pem",
    )
    _leaf(openssl_pki, "loosely", ["-algorithm", "ED25519"], "110", ca="loose")
    decision = client.submit(envelope_json=_sign(openssl_pki, "loosely")).decision
    assert decision.outcome == decision_pb2.OUTCOME_REJECTED
    message = decision.reasons[0].message
    assert "SIG_UNTRUSTED_CHAIN" in message
    assert "intermediate 'CN=loose issuing CA' cannot act as a CA" in message
    assert "basicConstraints is not marked critical" in message
    assert "2.5.29.19" not in message


def test_a_crl_dropped_in_the_crl_directory_revokes_after_a_reload(
    openssl_pki: Path, env: Env, signed_bundle: Path
) -> None:
    crl_dir = openssl_pki / "crl-dir"
    crl_dir.mkdir()
    _leaf(openssl_pki, "late", ["-algorithm", "ED25519"], "103")
    running = start_server(
        _settings(openssl_pki, env, signed_bundle, "store-crl-dir", crl_dir=crl_dir)
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            submissions = CertificateClient(channel, timeout=30)
            before = submissions.submit(envelope_json=_sign(openssl_pki, "late")).decision
            assert before.outcome == decision_pb2.OUTCOME_APPROVED, before.reasons
            int_dir = openssl_pki / "int"
            ca = ("ca", "-config", "ca.cnf", "-keyfile", "../int.key", "-cert", "../int.pem")
            _openssl(int_dir, *ca, "-revoke", "../late.pem", "-crl_reason", "keyCompromise")
            _openssl(int_dir, *ca, "-gencrl", "-out", str(crl_dir / "int.crl"))
            shutil.copy(openssl_pki / "int.pem", crl_dir / "int.pem")
            (crl_dir / "junk.crl").write_bytes(b"not a CRL")
            PolicyClient(channel, timeout=30).reload()
            after = submissions.submit(envelope_json=_sign(openssl_pki, "late")).decision
            assert after.outcome == decision_pb2.OUTCOME_REJECTED
            assert "SIG_CERT_REVOKED" in after.reasons[0].message
            assert after.bundle_digest != before.bundle_digest
            # The bundle that decision names is stored with the CRL inside: replayable.
            stored = PolicyClient(channel, timeout=30).bundle(
                after.bundle_digest, include_content=True
            )
            new_crl = (crl_dir / "int.crl").read_text().strip()
            assert new_crl in json.loads(stored.canonical_bundle)["crls"]["end_user"][-1]
        # Exact replay of both decisions from the store's bundles: the same answers.
        store = running.store
        checkpoint = store.latest_checkpoint()
        assert checkpoint is not None
        export = openssl_pki / "crl-dir-export"
        write_export(export, store.entries(0, 10), checkpoint.note)
        digests = {before.bundle_digest, after.bundle_digest}
        bundles = {d: store.get_bundle(d) for d in digests}
        job = ReplayJob(bundles={d: b for d, b in bundles.items() if b is not None})
        summary = replay_export(
            export, running.log_signer.verifier, job, ReplaySummary(mode="exact")
        )
        assert summary.statuses == {Status.MATCH: 2}, [f.diffs for f in summary.findings]
        assert summary.outcomes_before == {"APPROVED": 1, "REJECTED": 1}
    finally:
        running.stop(grace=1)
