"""The largest input the service accepts, through the real server: every read path
returns what it recorded (GetDecision, StreamEntries, Replay, `audit export` and
`audit verify`), where an oversized EUC once broke all of them for the whole log."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate.core.decision import MAX_DECISION_BYTES
from eucgate.core.model import PAYLOAD_TYPE_PROTO, encode_certificate
from eucgate.core.submission import MAX_ENVELOPE_BYTES, MAX_SIGNATURES
from eucgate.log.export import MAX_ENTRY_BYTES
from eucgate_client.client import ApiError, AuditClient, CertificateClient
from eucgate_client.dsse import Envelope
from eucgate_client.v1 import audit_service_pb2, decision_pb2
from google.protobuf import json_format

from tests import largest

from .conftest import Env
from .test_cli import eucgate


def _largest(env: Env) -> dict[str, Envelope]:
    signer = [env.signer]
    payload = encode_certificate(largest.largest_certificate())
    small = json_format.MessageToJson(samples.certificate(datetime.now(UTC), number="FAT-1"))
    return {
        "largest-payload": largest.with_signatures(
            largest.sign(payload, PAYLOAD_TYPE_PROTO, signer),
            largest.garbage_signatures(MAX_SIGNATURES - 1),
        ),
        "fattest-signers": largest.sign(
            small.encode(),
            "application/vnd.eucgate.euc.v1+json",
            [*signer, *largest.fat_signers(MAX_SIGNATURES - 1)],
        ),
    }


def test_the_largest_inputs_are_recorded_and_every_read_path_returns_them(
    server: RunningServer, channel: grpc.Channel, env: Env, tmp_path: Path
) -> None:
    client = CertificateClient(channel, timeout=30)
    audit = AuditClient(channel, timeout=30)
    envelopes = _largest(env)
    ids = []
    for name, envelope in envelopes.items():
        assert len(envelope.digest_input()) <= MAX_ENVELOPE_BYTES, name
        started = time.monotonic()
        response = client.submit(envelope)
        print(f"{name}: submitted in {(time.monotonic() - started) * 1000:.0f} ms")
        assert response.decision.outcome == decision_pb2.OUTCOME_REJECTED
        ids.append(response.decision.decision_id)
    # A usual submission after them, as the log goes on.
    usual = client.submit(env.sign(samples.certificate(datetime.now(UTC), number="AFTER-1")))
    ids.append(usual.decision.decision_id)

    for decision_id in ids:
        got = client.get_decision(decision_id)
        assert got.decision.decision_id == decision_id
        assert got.ByteSize() < 64 * 1024

    entries = [e for page in audit.stream_entries(timeout=30) for e in page.entries]
    assert len(entries) == len(ids)
    assert max(len(e) for e in entries) <= MAX_ENTRY_BYTES
    print(f"entry sizes: {[len(e) for e in entries]}; decision bound {MAX_DECISION_BYTES}")

    results = [r.result for r in audit.replay(timeout=60) if r.WhichOneof("item") == "result"]
    assert [r.status for r in results] == [audit_service_pb2.REPLAY_STATUS_MATCH] * len(ids)

    address = f"127.0.0.1:{server.port}"
    log_key = server.log_signer.verifier_key
    exported = tmp_path / "export"
    done = eucgate(
        "audit", "export", str(exported), "-s", address, "--log-key", log_key, "--insecure"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    verified = eucgate("audit", "verify", str(exported), "--log-key", log_key)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"verified {len(ids)} entries" in verified.stdout


@pytest.mark.parametrize("count", [2000, 50_000])
def test_a_flood_of_transit_countries_is_refused_and_nothing_is_recorded(
    channel: grpc.Channel, env: Env, count: int
) -> None:
    """The 8 KB (2,000) and 200 KB (50,000) cases of the issue: INVALID_ARGUMENT, and the
    log does not grow."""
    client = CertificateClient(channel, timeout=30)
    audit = AuditClient(channel, timeout=30)
    euc = samples.certificate(datetime.now(UTC), number=f"FLOOD-{count}")
    euc.transaction.transit_countries.extend(["AE"] * count)
    with pytest.raises(ApiError) as info:
        client.submit(env.sign(euc, proto=True))
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.reason in {"PAYLOAD_FIELD_TOO_LARGE", "PAYLOAD_TOO_LARGE"}
    assert audit.get_checkpoint().tree_size == 0


def test_a_control_character_in_a_candidate_bundle_is_invalid_argument(
    channel: grpc.Channel,
) -> None:
    """yaml.ReaderError escaped the bundle parser: the call ended UNKNOWN."""
    audit = AuditClient(channel, timeout=30)
    with pytest.raises(ApiError) as info:
        list(audit.replay(candidate_bundle=b'version: 1\nname: "a\x01"\nrules: []\n', timeout=30))
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "candidate_bundle:2: not valid YAML" in info.value.message
