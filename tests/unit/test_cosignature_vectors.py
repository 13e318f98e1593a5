"""Our cosignatures against another implementation of C2SP tlog-cosignature.

The Go implementation's vectors (tests/vectors/cosignature-go.json) fix the parts two
implementations must agree on byte for byte: the cosigner key id (SHA-256 over the
name, a newline, the type byte 0x04 and the key) and the layout of a cosignature
(key id, big-endian u64 timestamp, Ed25519 signature). The signature itself is plain
Ed25519 (RFC 8032) over the message the spec gives; the Go sumdb/note vector checks
the signed-note layer our cosigned checkpoints are parsed with (tests/unit/test_checkpoint.py).
Whole cosigned checkpoints are checked both ways against another implementation and
public witnesses in tests/unit/test_cosignature_interop.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.witness import Cosigner
from eucgate_client.tlog import (
    CheckpointError,
    WitnessVerifier,
    cosigned_message,
    leaf_hash,
    open_checkpoint,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _vector() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "cosignature-go.json").read_text())
    return data


def test_go_cosigner_key_parses_with_its_key_id() -> None:
    text = _vector()["verifier_key"]
    verifier = WitnessVerifier.parse(text)
    assert verifier.name == "remora.n621.de"
    assert verifier.key_id.hex() == "da77ade7"
    assert str(verifier) == text


def test_a_plain_signed_note_key_is_not_a_cosigner_key() -> None:
    with pytest.raises(CheckpointError) as caught:
        WitnessVerifier.parse(_vector()["signed_note_key_not_a_cosigner_key"])
    assert caught.value.reason == "CHECKPOINT_WITNESS_KEY_INVALID"


def test_go_cosignature_layout_matches_ours() -> None:
    vector = _vector()
    blob = base64.b64decode(vector["cosignature"])
    assert len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == vector["cosignature_timestamp"]
    # Ours: the same layout, and the signature verifies over the spec's message.
    log = CheckpointSigner("example.com/log", Ed25519PrivateKey.generate())
    note = log.sign(5, leaf_hash(b"x"))
    key = Ed25519PrivateKey.generate()
    cosigner = Cosigner("witness.example/w1", key)
    text = note[: note.rfind("\n\n") + 1]
    line = cosigner.cosign(text, vector["cosignature_timestamp"])
    ours = base64.b64decode(line.split(" ")[-1])
    assert ours[:4] == cosigner.verifier.key_id
    assert ours[4:12] == blob[4:12]
    key.public_key().verify(ours[12:], cosigned_message(text, vector["cosignature_timestamp"]))
    assert cosigned_message(text, 1).startswith(b"cosignature/v1\ntime 1\nexample.com/log\n5\n")
    # And a cosigned checkpoint is still a checkpoint to a verifier that knows only the log.
    assert open_checkpoint(note + line, log.verifier).size == 5
