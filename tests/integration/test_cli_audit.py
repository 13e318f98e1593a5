"""`eucgate audit` against a real server: keep a checkpoint, prove, export, verify."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate_client.client import CertificateClient

from .conftest import Env
from .test_cli import eucgate


def _submit(client: CertificateClient, env: Env, count: int, tag: str) -> None:
    for i in range(count):
        client.submit(env.sign(samples.certificate(datetime.now(UTC), number=f"{tag}-{i}")))


def test_audit_checkpoint_prove_export_verify(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    """As an auditor over mutual TLS, with decisions an importer submitted."""
    server = secure_server
    address = f"localhost:{server.port}"
    log_key = server.log_signer.verifier_key
    auditor = env.client_env("auditor")
    channel = env.channel(server.port, "importer")
    client = CertificateClient(channel)
    _submit(client, env, 3, "CLI-A")  # closed at the end

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        return eucgate("audit", *args, env=auditor)

    kept = tmp_path / "kept-checkpoint"
    shown = audit("checkpoint", "-s", address, "--log-key", log_key, "--out", str(kept))
    assert shown.returncode == 0, shown.stderr
    assert "verified" in shown.stdout
    assert kept.read_text().split("\n")[1] == "3"

    _submit(client, env, 4, "CLI-B")
    inclusion = audit("prove", "-s", address, "--log-key", log_key, "--leaf-index", "5", "--json")
    assert inclusion.returncode == 0, inclusion.stderr
    body = json.loads(inclusion.stdout)
    assert (body["kind"], body["leaf_index"], body["tree_size"], body["verified"]) == (
        "inclusion",
        5,
        7,
        True,
    )
    consistency = audit(
        "prove", "-s", address, "--log-key", log_key, "--since", str(kept), "--json"
    )
    assert consistency.returncode == 0, consistency.stderr
    assert json.loads(consistency.stdout)["verified"] is True
    refused = audit("prove", "-s", address, "--log-key", log_key, "--leaf-index", "-1")
    assert refused.returncode == 3
    # An unchecked proof is never printed as a result: the key is required (exit 2).
    unkeyed = audit("prove", "-s", address, "--leaf-index", "5")
    assert unkeyed.returncode == 2
    assert "verified" not in unkeyed.stdout
    assert "LOG_INDEX_INVALID" in refused.stderr

    exported = tmp_path / "export"
    done = audit("export", str(exported), "-s", address, "--log-key", log_key)
    assert done.returncode == 0, done.stderr
    assert (exported / "tile/entries/000.p/7").is_file()

    verified = audit("verify", str(exported), "--log-key", log_key, "--since", str(kept))
    assert verified.returncode == 0, verified.stderr
    assert "verified 7 entries" in verified.stdout

    bundle = exported / "tile/entries/000.p/7"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x20
    bundle.write_bytes(bytes(data))
    failed = audit("verify", str(exported), "--log-key", log_key, "--json")
    assert failed.returncode == 6
    finding = json.loads(failed.stdout)["finding"]
    assert 0 <= finding["index"] < 7
    assert finding["reason"].startswith("LOG_")

    no_key = audit("verify", str(exported))
    assert no_key.returncode == 2
    channel.close()
