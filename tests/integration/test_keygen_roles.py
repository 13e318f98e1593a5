"""`eucgate keygen --role` and `eucgate sign --pki/--add-to`: two roles, one envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from eucgate import samples
from eucgate.cli.main import app
from eucgate.core.decide import decide
from eucgate.core.ledger import EmptyLedger
from eucgate.core.submission import Submission
from eucgate.policyfiles import load_bundle
from eucgate_client.dsse import Envelope
from eucgate_client.v1 import certificate_pb2 as pb
from google.protobuf import json_format
from typer.testing import CliRunner

CONSIGNEE = "Sona Magnet Assemblies Private Limited"


def _run(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


def test_end_user_and_consignee_sign_one_envelope(tmp_path: Path) -> None:
    bundle = tmp_path / "policy.yaml"
    _run("keygen", str(tmp_path / "end_user"), "--bundle", str(bundle))
    _run(
        "keygen",
        str(tmp_path / "consignee"),
        "--role",
        "consignee",
        "--organization",
        CONSIGNEE,
        "--registration",
        "IEC:0512077777",
        "--key-type",
        "p384",
        "--bundle",
        str(bundle),
    )
    now = datetime.now(UTC)
    euc = samples.certificate(now)
    euc.consignee.CopyFrom(
        pb.Party(
            legal_name=CONSIGNEE,
            country_code="IN",
            registrations=[pb.Registration(scheme="IEC", value="0512077777")],
        )
    )
    source = tmp_path / "euc.json"
    source.write_text(json_format.MessageToJson(euc))
    first, both = tmp_path / "signed.json", tmp_path / "cosigned.json"
    _run("sign", str(source), "--pki", str(tmp_path / "end_user"), "--out", str(first))
    _run("sign", "--add-to", str(first), "--pki", str(tmp_path / "consignee"), "--out", str(both))
    submission = Submission.from_envelope(
        Envelope.from_json(both.read_bytes()), max_payload_bytes=1 << 20, max_signatures=8
    )
    decision = decide(submission, load_bundle(bundle), EmptyLedger(), now)
    assert decision.outcome.value == "APPROVED", decision.reasons
    assert [(s.role, s.key_algorithm, s.revocation) for s in decision.signers] == [
        ("end_user", "ed25519", "good"),
        ("consignee", "ecdsa-p384", "good"),
    ]


def test_sign_needs_one_way_to_name_the_signer(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sign", "x.json"])
    assert result.exit_code == 2
    assert "--pki" in result.output
