"""C2SP signed notes and checkpoints: the Go sumdb/note vector, round trips, refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.log.checkpoint import CheckpointSigner
from eucgate_client.tlog import (
    CheckpointError,
    NoteVerifier,
    leaf_hash,
    open_checkpoint,
    parse_checkpoint_body,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ORIGIN = "eucgate.example/log"
ROOT = leaf_hash(b"root")


def _go_vector() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "signed-note-go.json").read_text())
    return data


def _go_signer() -> tuple[str, ed25519.Ed25519PrivateKey]:
    """Name and key of the vector's "PRIVATE+KEY+name+id+base64(0x01 || seed)"."""
    _, _, name, _, encoded = _go_vector()["signer_key"].split("+", 4)
    raw = base64.b64decode(encoded)
    assert raw[0] == 1
    return name, ed25519.Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_go_vector_key_id_and_verifier_key() -> None:
    name, key = _go_signer()
    verifier = NoteVerifier.from_key(name, key.public_key())
    assert str(verifier) == _go_vector()["verifier_key"]
    assert verifier.key_id.hex() == "c74f20a3"
    assert NoteVerifier.parse(_go_vector()["verifier_key"]) == verifier


def test_go_vector_signs_and_opens_byte_for_byte() -> None:
    v = _go_vector()
    name, key = _go_signer()
    signer = CheckpointSigner(name, key)
    assert signer.sign_text(v["text"]) == v["note"]
    verifier = NoteVerifier.parse(v["verifier_key"])
    assert verifier.open(v["note"]) == v["text"]
    with pytest.raises(CheckpointError) as info:
        verifier.open(v["note"].replace("cryptography", "cryptographY"))
    assert info.value.reason == "CHECKPOINT_SIGNATURE_INVALID"


def test_checkpoint_round_trip(service_key: ed25519.Ed25519PrivateKey) -> None:
    signer = CheckpointSigner(ORIGIN, service_key)
    note = signer.sign(42, ROOT)
    assert note.startswith(f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n\n\u2014 {ORIGIN} ")
    checkpoint = open_checkpoint(note, NoteVerifier.parse(signer.verifier_key))
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, 42, ROOT)
    assert checkpoint.extensions == ()
    assert checkpoint.note == note
    assert open_checkpoint(note.encode(), signer.verifier).size == 42
    # Deterministic: the same state signs to the same bytes.
    assert signer.sign(42, ROOT) == note
    with_ext = signer.sign(7, ROOT, ["ext line one", "ext line two"])
    assert open_checkpoint(with_ext, signer.verifier).extensions == ("ext line one", "ext line two")


def test_other_signatures_are_ignored_and_cosigned_notes_open(
    service_key: ed25519.Ed25519PrivateKey,
) -> None:
    ours = CheckpointSigner(ORIGIN, service_key)
    witness = CheckpointSigner("witness.example", ed25519.Ed25519PrivateKey.generate())
    note = ours.sign(3, ROOT)
    cosigned = note + witness.sign_text(note[: note.index("\n\n") + 1]).split("\n\n")[1]
    assert open_checkpoint(cosigned, ours.verifier).size == 3
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(cosigned, witness.verifier)
    assert info.value.reason == "CHECKPOINT_ORIGIN_MISMATCH"


def test_every_byte_of_a_checkpoint_matters(service_key: ed25519.Ed25519PrivateKey) -> None:
    signer = CheckpointSigner(ORIGIN, service_key)
    note = signer.sign(1000, ROOT).encode()
    for i in range(len(note)):
        tampered = bytearray(note)
        tampered[i] ^= 0x01
        with pytest.raises(CheckpointError):
            open_checkpoint(bytes(tampered), signer.verifier)


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("", "CHECKPOINT_MALFORMED"),
        ("no blank line\n", "CHECKPOINT_MALFORMED"),
        ("text\n\n", "CHECKPOINT_MALFORMED"),
        ("text\n\n- name AAAAAAAA\n", "CHECKPOINT_MALFORMED"),
        ("text\n\n\u2014 name !!!\n", "CHECKPOINT_MALFORMED"),
        ("text\n\n\u2014 name AAAA\n", "CHECKPOINT_MALFORMED"),
        ("te\x00xt\n\n\u2014 name AAAAAAAA\n", "CHECKPOINT_MALFORMED"),
        ("text\n\n\u2014 someone AAAAAAAA\n", "CHECKPOINT_UNSIGNED"),
    ],
)
def test_malformed_notes(note: str, reason: str, service_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(note, CheckpointSigner(ORIGIN, service_key).verifier)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "body",
    [
        "origin\n1\n",
        "origin\n01\nAAAA\n",
        "origin\n-1\nAAAA\n",
        "origin\n1\nnot base64\n",
        f"origin\n1\n{base64.b64encode(b'short').decode()}\n",
        f"origin\n1\n{base64.b64encode(ROOT).decode()}\n\n",
        f"origin\n1\n{base64.b64encode(ROOT).decode()}",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(CheckpointError) as info:
        parse_checkpoint_body(body)
    assert info.value.reason == "CHECKPOINT_MALFORMED"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name",
        "name+c74f20a3",
        "name+zz4f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Other+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpcMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAAAAAAA",
        "PeterNeumann+c74f20a3+ARpc",
    ],
)
def test_malformed_verifier_keys(text: str) -> None:
    with pytest.raises(CheckpointError) as info:
        NoteVerifier.parse(text)
    assert info.value.reason == "CHECKPOINT_KEY_INVALID"


def test_origin_must_be_a_key_name(service_key: ed25519.Ed25519PrivateKey) -> None:
    for origin in ("", "has space", "a+b"):
        with pytest.raises(CheckpointError):
            CheckpointSigner(origin, service_key)
