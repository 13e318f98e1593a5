"""A real eucgate server on a free loopback port, with a fresh PKI and store."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import policy_admin_key, write_signed_bundle, write_trusting_bundle
from eucgate.config import Settings, load_settings
from eucgate.core.model import PAYLOAD_TYPE_JSON, PAYLOAD_TYPE_PROTO
from eucgate.signing import (
    DemoPki,
    PrivateKey,
    issue_signer,
    load_certificates,
    load_private_key,
    make_demo_pki,
    sign_envelope,
)
from eucgate.tlsfiles import LocalAccess, make_local_access
from eucgate_client.client import CertificateClient, open_channel
from eucgate_client.dsse import Envelope
from eucgate_client.v1 import certificate_pb2
from google.protobuf import json_format


@dataclass(frozen=True)
class Env:
    """Keys and files a test server runs with, and helpers to sign as its end users."""

    directory: Path
    pki: DemoPki
    bundle: Path  # the YAML bundle trusting `pki`
    signed_bundle: Path  # the same, signed by `admin_key`: what the server loads
    admin_key: Path
    admin_public_key: Path
    signer: tuple[PrivateKey, list[object]]
    unlicensed_signer: tuple[PrivateKey, list[object]]
    tls: LocalAccess  # mTLS: server certificate, one client per role, the access file

    def secure_settings(self, data_dir: Path, **overrides: Any) -> Settings:
        """Mutual TLS with the role clients of `tls` (the importer acts for Jay-Ushin)."""
        return self.settings(
            data_dir,
            tls_cert_path=self.tls.server_cert,
            tls_key_path=self.tls.server_key,
            access_path=self.tls.access_file,
            **overrides,
        )

    def client_env(self, name: str) -> dict[str, str]:
        """EUCGATE_* variables that make the CLI call as client `name` of `tls`."""
        cert, key = self.tls.client(name)
        return {
            "EUCGATE_CA": str(self.tls.server_ca),
            "EUCGATE_CERT": str(cert),
            "EUCGATE_KEY": str(key),
        }

    def channel(self, port: int, name: str) -> grpc.Channel:
        """A mutual-TLS channel to a `secure_settings` server, as client `name`."""
        cert, key = self.tls.client(name)
        return open_channel(
            f"localhost:{port}",
            ca=self.tls.server_ca.read_bytes(),
            cert=cert.read_bytes(),
            key=key.read_bytes(),
        )

    def settings(self, data_dir: Path, **overrides: Any) -> Settings:
        """Plaintext and anonymous (`insecure`) unless the overrides give an access file."""
        return load_settings(
            listen="127.0.0.1:0",
            data_dir=data_dir,
            **{
                "bundle_path": self.signed_bundle,
                "policy_admin_keys": [self.admin_public_key],
                "service_key_path": self.pki.service_key,
                "insecure": "access_path" not in overrides,
                "init_store": True,  # every test server starts on a fresh store
                **overrides,
            },
        )

    def sign(
        self,
        euc: certificate_pb2.EndUserCertificate,
        *,
        proto: bool = False,
        signer: tuple[PrivateKey, list[object]] | None = None,
    ) -> Envelope:
        key, chain = signer or self.signer
        if proto:
            payload_type, payload = PAYLOAD_TYPE_PROTO, euc.SerializeToString(deterministic=True)
        else:
            payload_type, payload = PAYLOAD_TYPE_JSON, json_format.MessageToJson(euc).encode()
        return sign_envelope(payload_type, payload, [(key, chain)])  # type: ignore[list-item]


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    directory = tmp_path_factory.mktemp("env")
    now = datetime.now(UTC)
    pki = make_demo_pki(
        directory / "pki",
        now=now,
        organization=samples.JAY_USHIN.legal_name,
        registrations=samples.JAY_USHIN.registrations,
    )
    issuer_key = load_private_key(pki.intermediate_key)
    issuer_cert = load_certificates(pki.intermediate_cert)[0]
    kaveri_key, kaveri_cert = issue_signer(
        (issuer_key, issuer_cert),  # type: ignore[arg-type]
        organization=samples.UNLICENSED.legal_name,
        registrations=samples.UNLICENSED.registrations,
        common_name="Kaveri EUC signing",
        country="IN",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )
    bundle = write_trusting_bundle(directory / "policy.yaml", pki.root_cert, pki.crls)
    admin_key, admin_public_key = policy_admin_key(directory / "policy-admin")
    return Env(
        directory=directory,
        pki=pki,
        bundle=bundle,
        signed_bundle=write_signed_bundle(bundle, admin_key),
        admin_key=admin_key,
        admin_public_key=admin_public_key,
        signer=(load_private_key(pki.signer_key), list(load_certificates(pki.signer_chain))),
        unlicensed_signer=(kaveri_key, [kaveri_cert, issuer_cert]),
        tls=make_local_access(
            directory / "tls",
            now=now,
            importers=[f"{scheme}:{value}" for scheme, value in samples.JAY_USHIN.registrations],
        ),
    )


@pytest.fixture
def server(env: Env, tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(env.settings(tmp_path / "store"))
    yield running
    running.stop(grace=1)


@pytest.fixture
def secure_server(env: Env, tmp_path: Path) -> Iterator[RunningServer]:
    """A server on mutual TLS only, with the role clients of `env.tls`."""
    running = start_server(env.secure_settings(tmp_path / "store"))
    yield running
    running.stop(grace=1)


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture
def client(channel: grpc.Channel) -> CertificateClient:
    return CertificateClient(channel, timeout=20)


def node_for(package: Path) -> str:
    """The `node` executable, with `package`'s npm dependencies installed (npm ci from its
    lock). Without node and npm: a failure in CI, a skip that says so elsewhere."""
    found, npm = shutil.which("node"), shutil.which("npm")
    if found is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI")
        pytest.skip("node/npm not installed: the Node.js tests need them")
    if not (package / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=package,
            check=True,
            timeout=300,
            capture_output=True,
        )
    return found
