"""The `eucgate` command as a person or a script uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from eucgate import samples
from eucgate.api.server import RunningServer
from google.protobuf import json_format

from .conftest import Env

TIMEOUT = 120


def eucgate(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a clean environment plus `env` (e.g. `Env.client_env(...)`)."""
    return subprocess.run(
        [sys.executable, "-m", "eucgate", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "NO_COLOR": "1", **(env or {})},
    )


def test_demo_shows_the_main_job() -> None:
    result = eucgate("demo", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    outcomes = [c["decision"]["outcome"] for c in report["cases"]]
    assert outcomes == ["APPROVED"] + ["REJECTED"] * 4
    assert all(c["as_expected"] for c in report["cases"])
    assert report["retry_returned_first_decision"] is True
    assert report["other_importer_cannot_read_it"] is True
    assert report["same_euc_again_rejected"] is True


def test_demo_human_output() -> None:
    result = eucgate("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    for text in ("APPROVED", "REJECTED", "verified offline", "Defence end use"):
        assert text in result.stdout


def test_keygen_sign_submit_get_list(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    keys = tmp_path / "keys"
    made = eucgate("keygen", str(keys))
    assert made.returncode == 0, made.stderr
    assert (keys / "policy.yaml").is_file()
    assert (keys / "service.key.pem").is_file()
    for name in ("server.pem", "server.key.pem", "server-ca.pem", "access.yaml"):
        assert (keys / "tls" / name).is_file(), name
    assert (keys / "tls" / "clients" / "importer.pem").is_file()
    server = secure_server
    importer = env.client_env("importer")

    euc = tmp_path / "euc.json"
    euc.write_text(json_format.MessageToJson(samples.certificate(datetime.now(UTC))))
    envelope = tmp_path / "euc.dsse.json"
    signed = eucgate(
        "sign",
        str(euc),
        "--key",
        str(env.pki.signer_key),
        "--chain",
        str(env.pki.signer_chain),
        "--out",
        str(envelope),
    )
    assert signed.returncode == 0, signed.stderr
    assert json.loads(envelope.read_text())["payloadType"] == "application/vnd.eucgate.euc.v1+json"

    address = f"localhost:{server.port}"
    submitted = eucgate(
        "submit",
        str(envelope),
        "--server",
        address,
        "--json",
        "--service-public-key",
        str(env.pki.service_public_key),
        env=importer,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    body = json.loads(submitted.stdout)
    assert body["decision"]["outcome"] == "APPROVED"
    assert body["receipt_verified"]
    decision_id = body["decision"]["decision_id"]

    got = eucgate("decision", "get", decision_id, "--server", address, "--json", env=importer)
    assert got.returncode == 0
    assert json.loads(got.stdout)["decision"]["decision_id"] == decision_id
    listed = eucgate("decision", "list", "--server", address, "--outcome", "approved", env=importer)
    assert listed.returncode == 0
    assert decision_id in listed.stdout

    # A receipt checked against the wrong key is exit code 5; a military end use is 10.
    wrong = eucgate(
        "submit",
        str(envelope),
        "--server",
        address,
        "--service-public-key",
        str(keys / "service.pub.pem"),
        env=importer,
    )
    assert wrong.returncode == 5
    military = tmp_path / "military.json"
    military.write_text(json_format.MessageToJson(samples.military_end_use(datetime.now(UTC))))
    eucgate(
        "sign",
        str(military),
        "--key",
        str(env.pki.signer_key),
        "--chain",
        str(env.pki.signer_chain),
        "--out",
        str(tmp_path / "m.dsse.json"),
    )
    military_submitted = eucgate(
        "submit", str(tmp_path / "m.dsse.json"), "--server", address, env=importer
    )
    assert military_submitted.returncode == 10
    # The gateway may read decisions but not submit: PERMISSION_DENIED, exit 3.
    denied = eucgate("submit", str(envelope), "--server", address, env=env.client_env("gateway"))
    assert denied.returncode == 3
    assert "ROLE_NOT_ALLOWED" in denied.stderr


def test_the_cli_needs_a_client_certificate_for_a_tls_server(
    secure_server: RunningServer,
) -> None:
    address = f"localhost:{secure_server.port}"
    bare = eucgate("decision", "list", "--server", address)
    assert bare.returncode == 2
    assert "--cert" in bare.stderr
    assert "Traceback" not in bare.stderr
    plain = eucgate("decision", "list", "--server", address, "--insecure")
    assert plain.returncode == 4  # the TLS port does not speak plaintext


def test_refused_input_and_unreachable_server(tmp_path: Path, server: RunningServer) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = eucgate("submit", str(bad), "--server", f"127.0.0.1:{server.port}", "--insecure")
    assert refused.returncode == 3
    assert "ENVELOPE_INVALID_JSON" in refused.stderr
    down = eucgate("decision", "list", "--server", "127.0.0.1:1", "--json", "--insecure")
    assert down.returncode == 4
