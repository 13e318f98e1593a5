"""The audit log through the real gRPC server: receipts with proof, AuditService."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate.log.entry import check_entry, decode_entry
from eucgate.signing import load_private_key
from eucgate_client.client import ApiError, AuditClient, CertificateClient
from eucgate_client.receipt import ReceiptError
from eucgate_client.tlog import (
    CheckpointError,
    NoteVerifier,
    ProofError,
    leaf_hash,
    open_checkpoint,
    root_of,
    verify_consistency,
    verify_inclusion,
    verify_logged_receipt,
)
from eucgate_client.v1 import decision_pb2

from tests.integration.conftest import Env

ORIGIN = "eucgate.example/log"


@pytest.fixture
def verifier(env: Env) -> NoteVerifier:
    """The log's verifier key, derived from the published service key (pinned offline)."""
    key = load_private_key(env.pki.service_key)
    return NoteVerifier.from_key(ORIGIN, key.public_key())  # type: ignore[arg-type]


@pytest.fixture
def service_public_key(env: Env) -> bytes:
    return env.pki.service_public_key.read_bytes()


@pytest.fixture
def audit(channel: grpc.Channel) -> AuditClient:
    return AuditClient(channel, timeout=20)


def _submit(client: CertificateClient, env: Env, number: str) -> decision_pb2.Receipt:
    euc = samples.certificate(datetime.now(UTC), number=number)
    return client.submit(env.sign(euc)).receipt


def test_a_receipt_verifies_offline_with_its_proof(
    client: CertificateClient, env: Env, verifier: NoteVerifier, service_public_key: bytes
) -> None:
    receipts = [_submit(client, env, f"AUD-{i}") for i in range(3)]
    for i, receipt in enumerate(receipts):
        logged = verify_logged_receipt(receipt, service_public_key, verifier)
        assert logged.leaf_index == i
        assert logged.checkpoint.size == i + 1
        assert logged.statement["decision_id"]


def test_any_changed_byte_fails_the_logged_receipt(
    client: CertificateClient, env: Env, verifier: NoteVerifier, service_public_key: bytes
) -> None:
    _submit(client, env, "AUD-A")
    receipt = _submit(client, env, "AUD-B")
    verify_logged_receipt(receipt, service_public_key, verifier)
    errors = (ReceiptError, CheckpointError, ProofError)
    # the signed statement
    payload = receipt.envelope.payload
    for i in range(0, len(payload), max(1, len(payload) // 40)):
        bad = decision_pb2.Receipt()
        bad.CopyFrom(receipt)
        bad.envelope.payload = payload[:i] + bytes([payload[i] ^ 1]) + payload[i + 1 :]
        with pytest.raises(errors):
            verify_logged_receipt(bad, service_public_key, verifier)
    # every byte of the checkpoint
    note = receipt.checkpoint.encode()
    for i in range(len(note)):
        bad = decision_pb2.Receipt()
        bad.CopyFrom(receipt)
        try:
            bad.checkpoint = (note[:i] + bytes([note[i] ^ 1]) + note[i + 1 :]).decode()
        except UnicodeDecodeError:
            continue  # not representable in the string field: cannot reach a verifier
        with pytest.raises(errors):
            verify_logged_receipt(bad, service_public_key, verifier)
    # every byte of the proof, and the index
    for h in range(len(receipt.inclusion_proof)):
        for i in range(32):
            bad = decision_pb2.Receipt()
            bad.CopyFrom(receipt)
            hashes = list(bad.inclusion_proof)
            hashes[h] = hashes[h][:i] + bytes([hashes[h][i] ^ 1]) + hashes[h][i + 1 :]
            del bad.inclusion_proof[:]
            bad.inclusion_proof.extend(hashes)
            with pytest.raises(errors):
                verify_logged_receipt(bad, service_public_key, verifier)
    bad = decision_pb2.Receipt()
    bad.CopyFrom(receipt)
    bad.leaf_index = 0
    with pytest.raises(ProofError):
        verify_logged_receipt(bad, service_public_key, verifier)
    # a checkpoint signed by another key, or named for another log
    for other in (
        NoteVerifier.from_key(ORIGIN, Ed25519PrivateKey.generate().public_key()),
        NoteVerifier("other.example/log", verifier.public_key),
    ):
        with pytest.raises(CheckpointError):
            verify_logged_receipt(receipt, service_public_key, other)


def test_concurrent_submissions_each_get_a_provable_receipt(
    client: CertificateClient,
    env: Env,
    verifier: NoteVerifier,
    service_public_key: bytes,
    server: RunningServer,
) -> None:
    with ThreadPoolExecutor(12) as pool:
        receipts = list(pool.map(lambda i: _submit(client, env, f"AUD-C{i}"), range(24)))
    indices = sorted(
        verify_logged_receipt(r, service_public_key, verifier).leaf_index for r in receipts
    )
    assert indices == list(range(24))
    assert server.store.stats().commits < 24 + 2  # batches, not one commit per request


def test_get_decision_proves_against_the_latest_checkpoint(
    client: CertificateClient, env: Env, verifier: NoteVerifier, service_public_key: bytes
) -> None:
    first = _submit(client, env, "AUD-G1")
    decision_id = verify_logged_receipt(first, service_public_key, verifier).statement[
        "decision_id"
    ]
    _submit(client, env, "AUD-G2")
    later = client.get_decision(decision_id).receipt
    logged = verify_logged_receipt(later, service_public_key, verifier)
    assert (logged.leaf_index, logged.checkpoint.size) == (0, 2)


def test_audit_service_checkpoint_proofs_and_entries(
    client: CertificateClient, env: Env, audit: AuditClient, verifier: NoteVerifier
) -> None:
    _submit(client, env, "AUD-S0")
    kept = open_checkpoint(audit.get_checkpoint().checkpoint, verifier)  # an auditor keeps it
    receipts = [_submit(client, env, f"AUD-S{i}") for i in range(1, 6)]
    response = audit.get_checkpoint()
    assert response.verifier_key == str(verifier)
    latest = open_checkpoint(response.checkpoint, verifier)
    assert latest.size == response.tree_size == 6

    consistency = audit.consistency_proof(kept.size)
    assert consistency.second_size == latest.size
    verify_consistency(kept.size, latest.size, kept.root, latest.root, list(consistency.hashes))

    by_index = audit.inclusion_proof(leaf_index=3)
    verify_inclusion(3, latest.size, by_index.leaf_hash, list(by_index.hashes), latest.root)
    assert by_index.checkpoint == latest.note
    statement_leaf = receipts[2].envelope.payload  # AUD-S3 is leaf 3
    assert by_index.leaf_hash.hex().encode() in statement_leaf
    decision_id = json.loads(receipts[0].envelope.payload)["decision_id"]  # leaf 1
    by_id = audit.inclusion_proof(decision_id=decision_id, tree_size=2)
    assert (by_id.leaf_index, by_id.tree_size) == (1, 2)
    # Every checkpoint is kept: the proof at an older size comes with that size's.
    older = open_checkpoint(by_id.checkpoint, verifier)
    assert older.size == 2
    verify_inclusion(1, 2, by_id.leaf_hash, list(by_id.hashes), older.root)

    pages = list(audit.stream_entries(0, page_size=4))
    assert [p.start_index for p in pages] == [0, 4]
    entries = [e for p in pages for e in p.entries]
    assert len(entries) == 6
    assert root_of(leaf_hash(e) for e in entries) == latest.root
    for entry in entries:
        check_entry(decode_entry(entry))
    assert [len(p.entries) for p in audit.stream_entries(2, limit=3)] == [3]
    assert list(audit.stream_entries(6)) == []


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda a: a.inclusion_proof(leaf_index=-1), "LOG_INDEX_INVALID"),
        (lambda a: a.inclusion_proof(leaf_index=2), "LOG_INDEX_BEYOND_SIZE"),
        (lambda a: a.inclusion_proof(leaf_index=1, tree_size=1), "LOG_INDEX_BEYOND_SIZE"),
        (lambda a: a.inclusion_proof(leaf_index=0, tree_size=5), "LOG_SIZE_BEYOND_TREE"),
        (lambda a: a.inclusion_proof(leaf_index=0, tree_size=-2), "LOG_SIZE_INVALID"),
        (lambda a: a.inclusion_proof(), "LOG_LEAF_MISSING"),
        (lambda a: a.inclusion_proof(decision_id="nope"), "DECISION_ID_INVALID"),
        (lambda a: a.consistency_proof(2, 1), "PROOF_SIZES_INVALID"),
        (lambda a: a.consistency_proof(-1), "LOG_SIZE_INVALID"),
        (lambda a: a.consistency_proof(1, 9), "LOG_SIZE_BEYOND_TREE"),
        (lambda a: list(a.stream_entries(-1)), "LOG_INDEX_INVALID"),
        (lambda a: list(a.stream_entries(3)), "LOG_INDEX_BEYOND_SIZE"),
        (lambda a: list(a.stream_entries(0, limit=-1)), "LOG_LIMIT_INVALID"),
        (lambda a: list(a.stream_entries(0, page_size=-1)), "PAGE_SIZE_INVALID"),
    ],
)
def test_bad_audit_requests_are_invalid_arguments(
    client: CertificateClient, env: Env, audit: AuditClient, call: object, reason: str
) -> None:
    _submit(client, env, "AUD-E0")
    _submit(client, env, "AUD-E1")
    with pytest.raises(ApiError) as info:
        call(audit)  # type: ignore[operator]
    assert info.value.reason == reason
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_decision_is_not_found(audit: AuditClient) -> None:
    with pytest.raises(ApiError) as info:
        audit.inclusion_proof(decision_id="dec_" + "0" * 26)
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_checkpoint_text_is_the_c2sp_layout(audit: AuditClient, verifier: NoteVerifier) -> None:
    note = audit.get_checkpoint().checkpoint
    body, _, signature = note.partition("\n\n")
    assert body.split("\n") == [ORIGIN, "0", base64.b64encode(root_of([])).decode()]
    assert signature.startswith(f"\u2014 {ORIGIN} ")
    assert base64.b64decode(signature.split(" ")[2])[:4] == verifier.key_id
