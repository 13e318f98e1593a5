"""`eucgate review list|resolve` and `eucgate licence balance|ship` against a real server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate_client.client import CertificateClient
from eucgate_client.v1 import certificate_pb2, decision_pb2

from .conftest import Env
from .test_cli import eucgate

LICENCE = "MOFCOM-EL-2025-000417"


def test_review_and_licence_commands(secure_server: RunningServer, env: Env) -> None:
    """Each command as the role that does it in practice, over mutual TLS."""
    address = f"localhost:{secure_server.port}"
    reviewer, gateway = env.client_env("reviewer"), env.client_env("gateway")
    cert = samples.certificate(datetime.now(UTC))
    cert.intermediaries.add(
        party=certificate_pb2.Party(
            legal_name="Example Magnetics Trading Pvt. Ltd.", country_code="IN"
        ),
        role=certificate_pb2.INTERMEDIARY_ROLE_TRADER,
    )
    with env.channel(secure_server.port, "importer") as channel:
        referred = CertificateClient(channel).submit(env.sign(cert)).decision
    assert referred.outcome == decision_pb2.OUTCOME_REFERRED

    listed = eucgate("review", "list", "--server", address, "--json", env=reviewer)
    assert listed.returncode == 0, listed.stderr
    assert [r["decision"]["decision_id"] for r in json.loads(listed.stdout)["referrals"]] == [
        referred.decision_id
    ]
    resolved = eucgate(
        "review", "resolve", referred.decision_id, "--approve", "--reason", "known trader",
        "--server", address, "--json", env=reviewer,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    decision = json.loads(resolved.stdout)["decision"]
    assert decision["outcome"] == "APPROVED"
    assert decision["review"]["resolves_decision_id"] == referred.decision_id
    again = eucgate(
        "review", "resolve", referred.decision_id, "--reject", "--reason", "no",
        "--server", address, env=reviewer,
    )  # fmt: skip
    assert again.returncode == 3
    assert "REFERRAL_ALREADY_RESOLVED" in again.stderr
    left = eucgate("review", "list", "--server", address, "--json", env=reviewer)
    assert json.loads(left.stdout) == {"referrals": []}

    shipped = eucgate(
        "licence", "ship", decision["decision_id"], "1C904", "200", "kg",
        "--reference", "BOE-1", "--server", address, env=gateway,
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    assert "200 kg under 1C904" in shipped.stdout
    balance = eucgate("licence", "balance", LICENCE, "--server", address, "--json", env=gateway)
    assert balance.returncode == 0, balance.stderr
    (row,) = json.loads(balance.stdout)["balances"]
    assert (row["approved"], row["shipped"], row["remaining"]) == ("500", "200", "39500")
