"""The Node.js client (clients/node) against the real server over mutual TLS: it signs
an EUC with node:crypto, submits it as the importer, verifies the receipt and its
inclusion proof against the pinned log key, and records a shipment as the gateway. It
also checks, k of n, the cosignatures eucgate's witness code puts on a checkpoint."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.witness import Cosigner
from eucgate_client.tlog import leaf_hash
from google.protobuf import json_format

from .conftest import Env, node_for

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


@pytest.fixture(scope="module")
def node() -> str:
    return node_for(CLIENT)


def test_node_client_against_the_server(
    node: str, secure_server: RunningServer, env: Env, tmp_path: Path
) -> None:
    # A checkpoint our witness code cosigned, for the Node client's own cosignature check.
    log = CheckpointSigner("eucgate.example/log", Ed25519PrivateKey.generate())
    witness = Cosigner("customs.example/witness", Ed25519PrivateKey.generate())
    stranger = Cosigner("auditor.example/witness", Ed25519PrivateKey.generate())
    signed_note = log.sign(5, leaf_hash(b"five"))
    cosigned_at = 1_790_000_000
    cosigned = tmp_path / "cosigned.note"
    cosigned.write_text(
        signed_note + witness.cosign(signed_note[: signed_note.rfind("\n\n") + 1], cosigned_at)
    )
    euc = tmp_path / "euc.json"
    euc.write_text(json_format.MessageToJson(samples.certificate(datetime.now(UTC))))
    importer_cert, importer_key = env.tls.client("importer")
    gateway_cert, gateway_key = env.tls.client("gateway")
    variables = {
        "EUCGATE_TEST_ADDRESS": f"localhost:{secure_server.port}",
        "EUCGATE_TEST_CA": str(env.tls.server_ca),
        "EUCGATE_TEST_IMPORTER_CERT": str(importer_cert),
        "EUCGATE_TEST_IMPORTER_KEY": str(importer_key),
        "EUCGATE_TEST_GATEWAY_CERT": str(gateway_cert),
        "EUCGATE_TEST_GATEWAY_KEY": str(gateway_key),
        "EUCGATE_TEST_EUC": str(euc),
        "EUCGATE_TEST_SIGNER_KEY": str(env.pki.signer_key),
        "EUCGATE_TEST_SIGNER_CHAIN": str(env.pki.signer_chain),
        "EUCGATE_TEST_SERVICE_KEY": str(env.pki.service_public_key),
        "EUCGATE_TEST_LOG_KEY": str(secure_server.log_signer.verifier_key),
        "EUCGATE_TEST_COSIGNED_NOTE": str(cosigned),
        "EUCGATE_TEST_COSIGNED_LOG_KEY": str(log.verifier),
        "EUCGATE_TEST_WITNESS_KEY": str(witness.verifier),
        "EUCGATE_TEST_STRANGER_WITNESS_KEY": str(stranger.verifier),
        "EUCGATE_TEST_COSIGNATURE_TIME": str(cosigned_at),
    }
    done = subprocess.run(
        [node, "--test", "test/"],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **variables},
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    counts = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", report, re.MULTILINE))
    assert counts == {"pass": "8", "fail": "0", "skipped": "0", "cancelled": "0"}, report
