"""Rotated keys: receipts verify with the published key set within each key's period,
checkpoints with any of the log's published keys; the key set round-trips as JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.config import load_settings
from eucgate.core.receipt import rfc3339, sign_receipt
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.keyset import published_keys
from eucgate.signing import write_pem_public_key
from eucgate_client.receipt import ReceiptError, ServiceKey, verify_receipt
from eucgate_client.tlog import (
    CheckpointError,
    PublishedKeys,
    leaf_hash,
    open_checkpoint_with,
)
from eucgate_client.v1 import decision_pb2

ROTATED = datetime(2026, 6, 1, tzinfo=UTC)
ORIGIN = "eucgate.example/log"


def _receipt(key: Ed25519PrivateKey, decided_at: datetime) -> decision_pb2.Receipt:
    statement = {"version": 1, "decision_id": "dec_x", "decided_at": rfc3339(decided_at)}
    return decision_pb2.Receipt(envelope=sign_receipt(statement, key).to_proto())


def _reason(call: Callable[[], object]) -> str:
    with pytest.raises((ReceiptError, CheckpointError)) as caught:
        call()
    error = caught.value
    assert isinstance(error, ReceiptError | CheckpointError)
    return error.reason


def test_a_retired_key_verifies_receipts_of_its_period_only() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = [
        ServiceKey(new.public_key(), valid_from=ROTATED),
        ServiceKey(old.public_key(), valid_until=ROTATED),
    ]
    before = _receipt(old, ROTATED - timedelta(days=30))
    assert verify_receipt(before, keys)["decision_id"] == "dec_x"
    assert verify_receipt(_receipt(new, ROTATED + timedelta(days=1)), keys)
    after = _receipt(old, ROTATED + timedelta(seconds=1))
    assert _reason(lambda: verify_receipt(after, keys)) == "RECEIPT_KEY_RETIRED"
    early = _receipt(new, ROTATED - timedelta(seconds=1))
    assert _reason(lambda: verify_receipt(early, keys)) == "RECEIPT_KEY_NOT_YET_VALID"
    assert _reason(lambda: verify_receipt(before, keys[:1])) == "RECEIPT_KEYID_MISMATCH"
    # One bare key still works as before, with no period.
    assert verify_receipt(after, old.public_key())


def test_checkpoints_of_an_earlier_log_key_still_open() -> None:
    old = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    new = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    note = old.sign(3, leaf_hash(b"r"))
    assert open_checkpoint_with(note, [new.verifier, old.verifier]).size == 3
    assert _reason(lambda: open_checkpoint_with(note, [new.verifier])) == "CHECKPOINT_UNSIGNED"


def test_published_key_set_round_trips(tmp_path: Path) -> None:
    active, old = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old_log = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    write_pem_public_key(tmp_path / "old.pub.pem", old.public_key())
    settings = load_settings(
        insecure=True,
        service_verification_keys=[
            {"public_key_path": tmp_path / "old.pub.pem", "valid_until": ROTATED}
        ],
        log_verification_keys=[old_log.verifier_key],
    )
    signer = CheckpointSigner(ORIGIN, active)
    doc = published_keys(settings, active, signer)
    keys = PublishedKeys.from_json(doc)
    assert [k.keyid for k in keys.service_keys] == [
        ServiceKey(active.public_key()).keyid,
        ServiceKey(old.public_key()).keyid,
    ]
    assert keys.service_keys[1].valid_until == ROTATED
    assert keys.log_keys == (signer.verifier, old_log.verifier)
    assert verify_receipt(_receipt(old, ROTATED - timedelta(hours=1)), keys.service_keys)
    late = _receipt(old, ROTATED + timedelta(hours=1))
    assert _reason(lambda: verify_receipt(late, keys.service_keys)) == "RECEIPT_KEY_RETIRED"
