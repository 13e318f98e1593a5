"""Whole cosignatures (C2SP tlog-cosignature, cosignature/v1) across implementations.

Both directions, with nothing of ours on the other side:

* tlog-scales, an independent Python implementation of C2SP signed notes and
  cosignatures (its own parsing, key ids and signed messages; pinned in the dev extra),
  verifies the log's Ed25519 signature and the cosignature on a checkpoint that our
  witness served over HTTP, and refuses them when the checkpoint or the cosignature is
  altered.
* Our verifier accepts a published checkpoint cosigned by four public witnesses
  (tests/vectors/cosigned-checkpoint-witnesses.json; one of them runs transparency-dev's
  Go witness), and refuses it altered. tlog-scales accepts the same note, so the vector
  itself is checked by code that is not ours.

The Node.js client checks the same vector (clients/node/test/client.test.mjs).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.merkle import consistency_ranges, mth
from eucgate.log.witness import AddCheckpoint, Cosigner, Witness, WitnessState, start_witness
from eucgate_client.tlog import (
    CheckpointError,
    NoteVerifier,
    open_checkpoint,
    parse_witness_keys,
    verify_cosignatures,
)
from tlog_scales.signing import Ed25519CosignatureVerifier, PlainEd25519Signer, Vkey, VkeySet
from tlog_scales.tlog import Checkpoint

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ORIGIN = "eucgate.example/log"
NOW = 1_764_547_200
LEAVES = [bytes([i]) * 32 for i in range(13)]


def _body(log_note: str) -> str:
    return log_note[: log_note.rfind("\n\n") + 1]


def _request(signer: CheckpointSigner, old: int, size: int) -> AddCheckpoint:
    proof = tuple(mth(LEAVES[a:b]) for a, b in consistency_ranges(old, size)) if old else ()
    return AddCheckpoint(old, proof, signer.sign(size, mth(LEAVES[:size])))


@pytest.fixture
def witness_url(tmp_path: Path) -> Iterator[tuple[str, CheckpointSigner, Cosigner]]:
    """Our witness, served over HTTP as `eucgate witness serve` serves it, for one log."""
    signer = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    cosigner = Cosigner("customs.example/witness", Ed25519PrivateKey.generate())
    state = WitnessState(tmp_path / "witness.db")
    witness = Witness(cosigner, {ORIGIN: [signer.verifier]}, state, clock=lambda: NOW)
    httpd, thread = start_witness(("127.0.0.1", 0), witness)
    try:
        yield f"http://127.0.0.1:{httpd.port}/add-checkpoint", signer, cosigner
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
        httpd.server_close()
        state.close()


def _add_checkpoint(url: str, request: AddCheckpoint) -> str:
    """The cosignature line our witness answers to one add-checkpoint request."""
    http = urllib.request.Request(url, data=request.body(), method="POST")
    with urllib.request.urlopen(http, timeout=5) as answer:
        line: str = answer.read().decode()
    return line


def _theirs(note: str, key: str) -> None:
    """tlog-scales verifies `note` with verifier key `key`; InvalidSignature if it fails."""
    Checkpoint.from_text(note).verify(Vkey.from_string(key))


def test_tlog_scales_verifies_what_our_witness_serves(
    witness_url: tuple[str, CheckpointSigner, Cosigner],
) -> None:
    url, signer, cosigner = witness_url
    _add_checkpoint(url, _request(signer, 0, 5))
    request = _request(signer, 5, 13)  # a grown tree, with its consistency proof
    cosigned = request.note + _add_checkpoint(url, request)

    for key in (str(signer.verifier), str(cosigner.verifier)):
        _theirs(cosigned, key)
    checkpoint = Checkpoint.from_text(cosigned)
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 13)
    witness_key = Vkey.from_string(str(cosigner.verifier))
    # Both signatures found by name and key id, each verified by its type's verifier.
    both = VkeySet(Vkey.from_string(str(signer.verifier)), witness_key)
    assert len(both.verify(checkpoint.signatures, checkpoint)) == 2
    # Its key id derivation (SHA-256 of name, newline, type 0x04, key) agrees with ours.
    assert Vkey(cosigner.name, None, 4, witness_key.pubkey).key_id == witness_key.key_id
    cosignature = next(s for s in checkpoint.signatures if witness_key.match(s))
    assert Ed25519CosignatureVerifier.get_timestamp(cosignature.payload) == NOW


def test_tlog_scales_refuses_an_altered_cosigned_checkpoint(
    witness_url: tuple[str, CheckpointSigner, Cosigner],
) -> None:
    url, signer, cosigner = witness_url
    request = _request(signer, 0, 13)
    line = _add_checkpoint(url, request)
    root = base64.b64encode(mth(LEAVES)).decode()
    other = base64.b64encode(mth(LEAVES[:12])).decode()
    # Another root under the same signature lines: neither the log's nor the witness's holds.
    forged = (request.note + line).replace(root, other)
    for key in (str(signer.verifier), str(cosigner.verifier)):
        with pytest.raises(InvalidSignature):
            _theirs(forged, key)
    # The cosignature claims another time than the one it signed.
    blob = bytearray(base64.b64decode(line.split(" ")[-1]))
    blob[11] ^= 1
    retimed = line.rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(blob)).decode() + "\n"
    with pytest.raises(InvalidSignature):
        _theirs(request.note + retimed, str(cosigner.verifier))
    # A cosignature moved onto another checkpoint of the same log, validly signed by it.
    moved = signer.sign(12, mth(LEAVES[:12])) + line
    _theirs(moved, str(signer.verifier))
    with pytest.raises(InvalidSignature):
        _theirs(moved, str(cosigner.verifier))


def test_our_witness_cosigns_a_checkpoint_that_tlog_scales_signed(tmp_path: Path) -> None:
    log = PlainEd25519Signer(ORIGIN, Ed25519PrivateKey.generate())
    cosigner = Cosigner("customs.example/witness", Ed25519PrivateKey.generate())
    state = WitnessState(tmp_path / "witness.db")
    # The verifier key string as tlog-scales writes it (its serialize() is unannotated).
    log_key = NoteVerifier.parse(log.vkey.serialize())  # type: ignore[no-untyped-call]
    witness = Witness(cosigner, {ORIGIN: [log_key]}, state, clock=lambda: NOW)
    note = Checkpoint.make_signed(ORIGIN, 13, mth(LEAVES), [log]).serialize()
    try:
        cosigned = note + witness.add_checkpoint(AddCheckpoint(0, (), note))
    finally:
        state.close()
    _theirs(cosigned, str(cosigner.verifier))
    assert open_checkpoint(cosigned, log_key).size == 13
    assert cosigner.verifier.cosigned_at(cosigned) == NOW


def _public() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "cosigned-checkpoint-witnesses.json").read_text())
    return data


def test_public_witnesses_cosignatures_verify_here() -> None:
    vector = _public()
    witnesses = parse_witness_keys(vector["witness_verifier_keys"])
    checkpoint = open_checkpoint(vector["note"], NoteVerifier.parse(vector["log_verifier_key"]))
    assert checkpoint.size == vector["tree_size"]
    for witness in witnesses:
        assert witness.cosigned_at(checkpoint.note) == vector["cosignature_timestamp"]
    names = verify_cosignatures(checkpoint, witnesses, len(witnesses))
    assert set(names) == {w.name for w in witnesses}
    # The same note, checked by code that is not ours: the vector is what it says.
    for key in [vector["log_verifier_key"], *vector["witness_verifier_keys"]]:
        _theirs(vector["note"], key)


def test_public_witnesses_cosignatures_refused_when_altered() -> None:
    vector = _public()
    witnesses = parse_witness_keys(vector["witness_verifier_keys"])
    note: str = vector["note"]
    size = str(vector["tree_size"])
    grown = note.replace(f"\n{size}\n", f"\n{int(size) + 1}\n", 1)
    with pytest.raises(CheckpointError) as caught:
        open_checkpoint(grown, NoteVerifier.parse(vector["log_verifier_key"]))
    assert caught.value.reason == "CHECKPOINT_SIGNATURE_INVALID"
    for witness in witnesses:
        with pytest.raises(CheckpointError) as caught:
            witness.cosigned_at(grown)
        assert caught.value.reason == "CHECKPOINT_COSIGNATURE_INVALID"
    # One cosignature's time changed: that witness's line no longer verifies.
    first = witnesses[0]
    start = note.index(f"— {first.name} ") + len(f"— {first.name} ")
    end = note.index("\n", start)
    blob = bytearray(base64.b64decode(note[start:end]))
    blob[11] ^= 1
    retimed = note[:start] + base64.b64encode(bytes(blob)).decode() + note[end:]
    with pytest.raises(CheckpointError) as caught:
        first.cosigned_at(retimed)
    assert caught.value.reason == "CHECKPOINT_COSIGNATURE_INVALID"
    assert witnesses[1].cosigned_at(retimed) == vector["cosignature_timestamp"]
