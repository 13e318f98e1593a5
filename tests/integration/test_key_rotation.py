"""Rotating the receipt and log keys on a running deployment: stop, switch the active
keys, keep the earlier ones published, start again on the same store.

Receipts and checkpoints made before the rotation still verify after it (and records
signed by the earlier key still pass the server's own authenticity check); a receipt
dated after its key's end fails with RECEIPT_KEY_RETIRED; a witness that trusts both log
keys keeps cosigning across the rotation; `eucgate keys` prints the whole set.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate import samples
from eucgate.api.server import start_server
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.witness import Cosigner, Witness, WitnessState, start_witness
from eucgate.signing import load_private_key, write_pem_key, write_pem_public_key
from eucgate_client.client import AuditClient, CertificateClient
from eucgate_client.receipt import ReceiptError, ServiceKey
from eucgate_client.tlog import PublishedKeys, verify_logged_receipt
from eucgate_client.v1 import decision_pb2
from google.protobuf import json_format

from tests.integration.conftest import Env
from tests.integration.test_cli import eucgate

ORIGIN = "eucgate.example/log"


def _decide(address: str, env: Env, number: str) -> tuple[str, decision_pb2.Receipt]:
    with grpc.insecure_channel(address) as channel:
        client = CertificateClient(channel, timeout=20)
        euc = samples.certificate(datetime.now(UTC), number=number)
        response = client.submit(env.sign(euc))
        return response.decision.decision_id, response.receipt


def _lookup(address: str, decision_id: str) -> decision_pb2.Receipt:
    with grpc.insecure_channel(address) as channel:
        return CertificateClient(channel, timeout=20).get_decision(decision_id).receipt


def _witnessed(address: str, size: int) -> None:
    deadline = time.monotonic() + 20
    with grpc.insecure_channel(address) as channel:
        audit = AuditClient(channel, timeout=20)
        while audit.get_checkpoint().witnessed_tree_size != size:
            if time.monotonic() > deadline:
                pytest.fail(f"size {size} was not witnessed")
            time.sleep(0.05)


def test_rotation_keeps_old_receipts_valid(tmp_path: Path, env: Env) -> None:
    old_key = load_private_key(env.pki.service_key)
    assert isinstance(old_key, Ed25519PrivateKey)
    old_log = CheckpointSigner(ORIGIN, old_key)
    new_key, new_log_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    write_pem_key(tmp_path / "service-2.key.pem", new_key)
    write_pem_key(tmp_path / "log-2.key.pem", new_log_key)
    write_pem_public_key(tmp_path / "service-1.pub.pem", old_key.public_key())
    new_log = CheckpointSigner(ORIGIN, new_log_key)

    state = WitnessState(tmp_path / "witness" / "witness.db")
    cosigner = Cosigner("customs.example/witness", Ed25519PrivateKey.generate())
    witness = Witness(cosigner, {ORIGIN: [old_log.verifier, new_log.verifier]}, state)
    httpd, thread = start_witness(("127.0.0.1", 0), witness)
    witnesses = [{"url": f"http://127.0.0.1:{httpd.port}", "verifier_key": str(cosigner.verifier)}]
    store = tmp_path / "store"
    try:
        first = start_server(
            env.settings(store, witnesses=witnesses, witness_interval_seconds=0.05)
        )
        address = f"127.0.0.1:{first.port}"
        try:
            before_id, _ = _decide(address, env, "EUC-ROT-1")
            _witnessed(address, 1)
            before = _lookup(address, before_id)
        finally:
            first.stop(grace=1)
        rotated_at = datetime.now(UTC)

        config = {
            "service_key_path": str(tmp_path / "service-2.key.pem"),
            "log_key_path": str(tmp_path / "log-2.key.pem"),
            "service_verification_keys": [
                {
                    "public_key_path": str(tmp_path / "service-1.pub.pem"),
                    "valid_until": rotated_at.isoformat(),
                }
            ],
            "log_verification_keys": [old_log.verifier_key],
            "witnesses": witnesses,
        }
        config_file = tmp_path / "eucgate.yaml"
        config_file.write_text(yaml.safe_dump(config))
        overrides = {k: v for k, v in config.items() if k != "service_verification_keys"}
        second = start_server(
            env.settings(
                store,
                **overrides,
                service_verification_keys=config["service_verification_keys"],
                witness_interval_seconds=0.05,
                init_store=False,
            )
        )
        address = f"127.0.0.1:{second.port}"
        try:
            after_id, _ = _decide(address, env, "EUC-ROT-2")
            _witnessed(address, 2)
            # The server still accepts its records signed by the earlier key.
            again = _lookup(address, before_id)
            after = _lookup(address, after_id)
        finally:
            second.stop(grace=1)
    finally:
        httpd.shutdown()
        thread.join(5)
        httpd.server_close()
        state.close()

    shown = eucgate(
        "keys",
        "--config",
        str(config_file),
        "--json",
        env={"EUCGATE_INSECURE": "true", "EUCGATE_BUNDLE_PATH": str(env.signed_bundle)},
    )
    assert shown.returncode == 0, shown.stderr
    published = PublishedKeys.from_json(json.loads(shown.stdout))
    assert published.log_keys == (new_log.verifier, old_log.verifier)
    assert [k.keyid for k in published.service_keys] == [
        ServiceKey(new_key.public_key()).keyid,
        ServiceKey(old_key.public_key()).keyid,
    ]
    keys, logs = published.service_keys, published.log_keys
    witness_keys = published.witnesses
    assert witness_keys == (cosigner.verifier,)
    # Before the rotation: old receipt key, old log key; both still verify, witnessed.
    for receipt in (before, again, after):
        verify_logged_receipt(receipt, keys, logs, witnesses=witness_keys, threshold=1)
    assert verify_logged_receipt(before, keys, logs).checkpoint.size == 1
    assert verify_logged_receipt(after, keys, logs).checkpoint.size == 2
    # Had the earlier key been retired before that decision, its receipt would fail.
    too_early = [
        keys[0],
        ServiceKey(keys[1].public_key, valid_until=rotated_at - timedelta(days=1)),
    ]
    with pytest.raises(ReceiptError) as caught:
        verify_logged_receipt(before, too_early, logs)
    assert caught.value.reason == "RECEIPT_KEY_RETIRED"

    # The CLI takes the published set as printed: the receipt key by its key id, every
    # log key, and the witnesses with their quorum.
    key_set = tmp_path / "keys.json"
    key_set.write_text(shown.stdout)
    kept = tmp_path / "before.json"
    kept.write_text(json.dumps({"receipt": json_format.MessageToDict(before)}))
    checked = eucgate("receipt", "verify", str(kept), "--keys", str(key_set), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout)
    assert (result["log_verified"], result["witnesses_required"]) == (True, 1)
    # A witness the receipt's checkpoint does not carry: not witnessed, exit 6.
    stranger = Cosigner("witness.example/stranger", Ed25519PrivateKey.generate())
    unwitnessed = eucgate(
        "receipt", "verify", str(kept), "--keys", str(key_set),
        "--witness-key", str(stranger.verifier), "--json",
    )  # fmt: skip
    assert unwitnessed.returncode == 6, unwitnessed.stdout + unwitnessed.stderr
    assert json.loads(unwitnessed.stdout)["error"]["reason"] == "CHECKPOINT_NOT_WITNESSED"
    # The same set with the earlier receipt key retired before that decision: exit 5.
    doc = json.loads(shown.stdout)
    doc["service_keys"][1]["valid_until"] = (rotated_at - timedelta(days=1)).isoformat()
    key_set.write_text(json.dumps(doc))
    retired = eucgate("receipt", "verify", str(kept), "--keys", str(key_set), "--json")
    assert retired.returncode == 5, retired.stdout + retired.stderr
    assert json.loads(retired.stdout)["error"]["reason"] == "RECEIPT_KEY_RETIRED"
