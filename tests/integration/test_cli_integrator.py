"""What an ERP integrator, a customs gateway and an auditor meet first, over mutual TLS:
kept receipts verified later, retries that never decide twice, keys never overwritten,
one JSON convention with errors as JSON, ids that survive an 80-column terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import structlog.testing
from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate_client.client import CertificateClient
from eucgate_client.receipt import verify_receipt
from eucgate_client.tlog import NoteVerifier, verify_logged_receipt
from eucgate_client.v1 import certificate_pb2, decision_pb2
from google.protobuf import json_format

from .conftest import Env
from .test_cli import eucgate


def _envelope(tmp_path: Path, env: Env, number: str, *, trader: bool = False) -> Path:
    cert = samples.certificate(datetime.now(UTC), number=number)
    if trader:  # an intermediary trader: REFERRED by EUS-003
        cert.intermediaries.add(
            party=certificate_pb2.Party(
                legal_name="Example Magnetics Trading Pvt. Ltd.", country_code="IN"
            ),
            role=certificate_pb2.INTERMEDIARY_ROLE_TRADER,
        )
    path = tmp_path / f"{number}.dsse.json"
    path.write_bytes(env.sign(cert).to_json())
    return path


def test_a_kept_receipt_verifies_later_with_its_log_proof(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    address = f"localhost:{secure_server.port}"
    log_key = secure_server.log_signer.verifier_key
    envelope = _envelope(tmp_path, env, "INT-RCPT-1")
    submitted = eucgate(
        "submit", str(envelope), "-s", address, "--json", env=env.client_env("importer")
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    body = json.loads(submitted.stdout)
    receipt = body["receipt"]
    assert isinstance(receipt["leaf_index"], int)
    assert receipt["checkpoint"].count("\n") >= 3
    assert isinstance(receipt["inclusion_proof"], list)
    kept = tmp_path / "submitted.json"
    kept.write_text(submitted.stdout)

    # The library takes the JSON as it was kept, signature and log proof alike.
    public = env.pki.service_public_key.read_bytes()
    assert verify_receipt(receipt, public)["decision_id"] == body["decision"]["decision_id"]
    logged = verify_logged_receipt(receipt, public, NoteVerifier.parse(log_key))
    assert logged.leaf_index == receipt["leaf_index"]

    later = eucgate(
        "receipt", "verify", str(kept), "--service-public-key", str(env.pki.service_public_key),
        "--log-key", log_key,
    )  # fmt: skip
    assert later.returncode == 0, later.stdout + later.stderr
    assert "in the log: leaf" in later.stdout
    as_json = eucgate(
        "receipt", "verify", str(kept), "--service-public-key", str(env.pki.service_public_key),
        "--log-key", log_key, "--json",
    )  # fmt: skip
    assert json.loads(as_json.stdout)["log_verified"] is True

    # Without a log key it says what it would not check instead of passing quietly.
    unchecked = eucgate(
        "receipt", "verify", str(kept), "--service-public-key", str(env.pki.service_public_key)
    )
    assert unchecked.returncode == 2
    assert "--log-key" in unchecked.stderr
    # One source of keys: neither, or both, is a usage error.
    keyless = eucgate("receipt", "verify", str(kept), "--log-key", log_key)
    assert keyless.returncode == 2
    assert "--service-public-key or --keys" in keyless.stderr
    # A changed leaf index no longer proves inclusion: exit 6.
    tampered = json.loads(kept.read_text())
    tampered["receipt"]["leaf_index"] += 1
    kept.write_text(json.dumps(tampered))
    moved = eucgate(
        "receipt", "verify", str(kept), "--service-public-key", str(env.pki.service_public_key),
        "--log-key", log_key,
    )  # fmt: skip
    assert moved.returncode == 6, moved.stdout + moved.stderr


def test_sending_an_envelope_again_returns_the_first_decision(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    address = f"localhost:{secure_server.port}"
    importer = env.client_env("importer")
    envelope = _envelope(tmp_path, env, "INT-AGAIN-1")
    first = eucgate("submit", str(envelope), "-s", address, "--json", env=importer)
    again = eucgate("submit", str(envelope), "-s", address, env=importer)
    assert first.returncode == 0, first.stdout + first.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    decision_id = json.loads(first.stdout)["decision"]["decision_id"]
    assert decision_id in again.stdout
    assert "replayed" in again.stdout
    assert "nothing new recorded" in again.stdout
    # which quota the approval debits, and what it leaves
    assert "debits 500 kg of 1C904" in again.stdout
    assert "left after it" in again.stdout


class _LoseFirstAnswer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """The network losing the first answer after the service recorded it."""

    def __init__(self) -> None:
        self.request_ids: list[str] = []

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        self.request_ids.append(request.request_id)
        outcome = continuation(details, request)
        if len(self.request_ids) == 1:
            outcome.result()  # the service has answered: it recorded the decision
            raise _Unavailable()
        return outcome


class _Unavailable(grpc.RpcError, grpc.Call):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection reset"

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


def test_the_client_retries_with_one_request_id(secure_server: RunningServer, env: Env) -> None:
    lost = _LoseFirstAnswer()
    with env.channel(secure_server.port, "importer") as channel:
        client = CertificateClient(grpc.intercept_channel(channel, lost), backoff=0.01)
        response = client.submit(
            env.sign(samples.certificate(datetime.now(UTC), number="INT-RETRY-1"))
        )
    assert len(lost.request_ids) == 2
    assert lost.request_ids[0] == lost.request_ids[1]
    assert response.replayed  # the first attempt's decision, not a second one


def test_keygen_never_overwrites_keys_without_force(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert eucgate("keygen", str(keys)).returncode == 0
    service_key = (keys / "service.key.pem").read_bytes()
    root = (keys / "root.pem").read_bytes()
    again = eucgate("keygen", str(keys))
    assert again.returncode == 3
    assert "--force" in again.stderr
    assert "service.key.pem" in again.stderr
    assert (keys / "service.key.pem").read_bytes() == service_key
    assert (keys / "root.pem").read_bytes() == root
    forced = eucgate("keygen", str(keys), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    listed = json.loads(forced.stdout)
    assert {"what": "service key", "path": str(keys / "service.key.pem")} in listed["files"]
    assert (keys / "service.key.pem").read_bytes() != service_key


def test_errors_are_json_under_json(tmp_path: Path, server: RunningServer) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = eucgate(
        "submit", str(bad), "--server", f"127.0.0.1:{server.port}", "--insecure", "--json"
    )
    assert refused.returncode == 3
    error = json.loads(refused.stdout)["error"]
    assert (error["code"], error["reason"], error["exit_code"]) == (
        "INVALID_ARGUMENT",
        "ENVELOPE_INVALID_JSON",
        3,
    )
    down = eucgate("decision", "list", "--server", "127.0.0.1:1", "--json", "--insecure")
    assert down.returncode == 4
    assert json.loads(down.stdout)["error"]["code"] == "UNAVAILABLE"
    usage = eucgate("audit", "prove", "--leaf-index", "0", "--insecure", "--json")
    assert usage.returncode == 2
    assert "--log-key" in json.loads(usage.stdout)["error"]["message"]


def test_every_command_takes_json() -> None:
    for command in (
        ["keygen"], ["sign"], ["serve"], ["policy", "sign"], ["audit", "export"],
        ["db", "migrate"], ["access", "add"], ["access", "table"], ["receipt", "verify"],
        ["policy", "export"],
    ):  # fmt: skip
        shown = eucgate(*command, "--help")
        assert "--json" in shown.stdout, command


def test_ids_are_whole_at_80_columns(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    address = f"localhost:{secure_server.port}"
    envelope = _envelope(tmp_path, env, "INT-WIDE-1", trader=True)
    submitted = eucgate(
        "submit", str(envelope), "-s", address, "--json", env=env.client_env("importer")
    )
    decision_id = json.loads(submitted.stdout)["decision"]["decision_id"]
    narrow = {**env.client_env("reviewer"), "COLUMNS": "80"}
    listed = eucgate("decision", "list", "-s", address, env=narrow)
    assert listed.returncode == 0, listed.stderr
    assert decision_id in listed.stdout
    waiting = eucgate("review", "list", "-s", address, env=narrow)
    assert decision_id in waiting.stdout
    row = next(line for line in waiting.stdout.splitlines() if decision_id in line)
    assert row.count("EUS-003") <= 1
    subprocess.run(  # resolve it so nothing waits
        [sys.executable, "-m", "eucgate", "review", "resolve", decision_id, "--reject",
         "--reason", "test", "-s", address],
        env={"PATH": os.environ["PATH"], **env.client_env("reviewer")},
        check=True, capture_output=True,
    )  # fmt: skip
    empty = eucgate("review", "list", "-s", address, env=narrow)
    assert "no referrals wait" in empty.stdout


def test_json_names_outcomes_as_the_flags_do(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    address = f"localhost:{secure_server.port}"
    importer = env.client_env("importer")
    envelope = _envelope(tmp_path, env, "INT-NAMES-1", trader=True)
    eucgate("submit", str(envelope), "-s", address, env=importer)
    listed = eucgate("decision", "list", "-s", address, "--outcome", "REFERRED", "--json",
                     env=importer)  # fmt: skip
    decisions = json.loads(listed.stdout)["decisions"]
    assert decisions
    assert {d["outcome"] for d in decisions} == {"REFERRED"}
    reason = decisions[0]["reasons"][0]
    assert reason["outcome"] == "REFER"
    assert not reason["family"].startswith("RULE_FAMILY")
    # and the JSON still parses back into the message the other languages see
    got = eucgate("decision", "get", decisions[0]["decision_id"], "-s", address, "--json",
                  env=importer)  # fmt: skip
    receipt = json.loads(got.stdout)["receipt"]
    json_format.ParseDict(receipt, decision_pb2.Receipt())


def test_shipment_log_events_name_the_decision_and_reference(
    tmp_path: Path, secure_server: RunningServer, env: Env
) -> None:
    with env.channel(secure_server.port, "importer") as channel:
        approved = CertificateClient(channel).submit(
            env.sign(samples.certificate(datetime.now(UTC), number="INT-SHIP-1"))
        )
    decision_id = approved.decision.decision_id
    with structlog.testing.capture_logs() as events:
        shipped = eucgate(
            "licence", "ship", decision_id, "1C904", "250.0", "kg", "--reference", "BOE-LOG-1",
            "-s", f"localhost:{secure_server.port}", env=env.client_env("gateway"),
        )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    (event,) = [e for e in events if e["event"] == "shipment"]
    assert event["decision_id"] == decision_id
    assert event["gateway_reference"] == "BOE-LOG-1"
    assert event["control_code"] == "1C904"
    # and the gateway reads what it shipped, and what is left, in plain numbers
    assert "250 kg under 1C904" in shipped.stdout
    assert "250 shipped" in shipped.stdout
