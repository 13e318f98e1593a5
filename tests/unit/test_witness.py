"""The witness (C2SP tlog-witness) and cosignatures (C2SP tlog-cosignature): what it
cosigns, what it refuses and with which HTTP status, what it keeps, and how a client
counts cosignatures."""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.merkle import consistency_ranges, mth
from eucgate.log.witness import (
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    Cosigner,
    Witness,
    WitnessRefusal,
    WitnessState,
    start_witness,
)
from eucgate_client.tlog import (
    CheckpointError,
    WitnessVerifier,
    cosignature_key_id,
    open_checkpoint,
    parse_witness_keys,
    verify_cosignatures,
)

ORIGIN = "eucgate.example/log"
NOW = 1_764_547_200


def _leaves(n: int, tag: str = "") -> list[bytes]:
    return [bytes([i % 256]) * 31 + tag.encode()[:1].rjust(1, b"x") for i in range(n)]


class Log:
    """A log of `n` leaves, signed by `signer`, with proofs computed from the leaves."""

    def __init__(self, signer: CheckpointSigner, leaves: list[bytes]) -> None:
        self.signer = signer
        self.leaves = leaves

    def note(self, size: int) -> str:
        return self.signer.sign(size, mth(self.leaves[:size]))

    def proof(self, first: int, second: int) -> tuple[bytes, ...]:
        return tuple(mth(self.leaves[a:b]) for a, b in consistency_ranges(first, second))

    def request(self, old: int, size: int) -> AddCheckpoint:
        return AddCheckpoint(old, self.proof(old, size) if old else (), self.note(size))


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def cosigner() -> Cosigner:
    return Cosigner("customs.example/witness", Ed25519PrivateKey.generate())


@pytest.fixture
def witness(tmp_path: Path, signer: CheckpointSigner, cosigner: Cosigner) -> Iterator[Witness]:
    state = WitnessState(tmp_path / "witness.db")
    yield Witness(cosigner, {ORIGIN: [signer.verifier]}, state, clock=lambda: NOW)
    state.close()


def _refused(witness: Witness, request: AddCheckpoint) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as caught:
        witness.add_checkpoint(request)
    return caught.value


def test_verifier_key_is_signature_type_4_with_its_key_id(cosigner: Cosigner) -> None:
    text = str(cosigner.verifier)
    name, key_id, encoded = text.split("+", 2)
    raw = base64.b64decode(encoded)
    assert name == "customs.example/witness"
    assert raw[0] == 0x04
    assert len(raw) == 33
    assert bytes.fromhex(key_id) == cosignature_key_id(name, raw[1:])
    assert WitnessVerifier.parse(text) == cosigner.verifier
    # A log (0x01) key is not a cosigner key, and a wrong key id is refused.
    for bad in (
        text.replace(encoded, base64.b64encode(b"\x01" + raw[1:]).decode()),
        text.replace(key_id, "00000000"),
    ):
        with pytest.raises(CheckpointError) as caught:
            WitnessVerifier.parse(bad)
        assert caught.value.reason == "CHECKPOINT_WITNESS_KEY_INVALID"


def test_cosigns_a_growing_log_and_keeps_the_size(
    witness: Witness, signer: CheckpointSigner, cosigner: Cosigner, tmp_path: Path
) -> None:
    log = Log(signer, _leaves(20))
    first = witness.add_checkpoint(log.request(0, 5))
    note = log.note(5) + first
    checkpoint = open_checkpoint(note, signer.verifier)
    assert cosigner.verifier.cosigned_at(note) == NOW
    assert verify_cosignatures(checkpoint, [cosigner.verifier], 1) == (cosigner.name,)
    witness.add_checkpoint(log.request(5, 13))
    witness.add_checkpoint(log.request(13, 13))  # the same tree again: cosigned again
    # Durable: a new state object on the same file holds 13.
    again = WitnessState(tmp_path / "witness.db")
    assert again.size(ORIGIN) == 13
    again.close()


def test_wrong_old_size_is_409_with_the_size_held(
    witness: Witness, signer: CheckpointSigner
) -> None:
    log = Log(signer, _leaves(20))
    witness.add_checkpoint(log.request(0, 7))
    refusal = _refused(witness, log.request(0, 9))
    assert (refusal.status, refusal.size) == (HTTPStatus.CONFLICT, 7)
    refusal = _refused(witness, log.request(3, 9))
    assert (refusal.status, refusal.size) == (HTTPStatus.CONFLICT, 7)


def test_split_view_same_size_other_root_is_refused(
    witness: Witness, signer: CheckpointSigner
) -> None:
    """The log key signs two different trees of one size: the witness cosigns one only."""
    honest = Log(signer, _leaves(10))
    forked = Log(signer, _leaves(10)[:6] + _leaves(4, "f"))
    witness.add_checkpoint(honest.request(0, 10))
    refusal = _refused(witness, forked.request(10, 10))
    assert refusal.status == HTTPStatus.CONFLICT
    # And a larger forked tree does not extend what the witness holds.
    bigger = Log(signer, _leaves(10)[:6] + _leaves(8, "f"))
    refusal = _refused(witness, AddCheckpoint(10, honest.proof(10, 12), bigger.note(12)))
    assert refusal.status == HTTPStatus.UNPROCESSABLE_ENTITY


def test_refusals_by_status(witness: Witness, signer: CheckpointSigner) -> None:
    log = Log(signer, _leaves(8))
    other_key = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    assert (
        _refused(witness, Log(other_key, log.leaves).request(0, 4)).status == HTTPStatus.FORBIDDEN
    )
    stranger = CheckpointSigner("other.example/log", Ed25519PrivateKey.generate())
    assert _refused(witness, Log(stranger, log.leaves).request(0, 4)).status == HTTPStatus.NOT_FOUND
    assert _refused(witness, AddCheckpoint(6, (), log.note(4))).status == HTTPStatus.BAD_REQUEST
    with pytest.raises(WitnessRefusal) as caught:
        AddCheckpoint.parse(b"old 01\n\n" + log.note(4).encode())
    assert caught.value.status == HTTPStatus.BAD_REQUEST


def test_a_client_counts_k_of_n_and_refuses_a_forged_line(
    witness: Witness, signer: CheckpointSigner, cosigner: Cosigner
) -> None:
    log = Log(signer, _leaves(4))
    line = witness.add_checkpoint(log.request(0, 4))
    other = Cosigner("auditor.example/witness", Ed25519PrivateKey.generate())
    keys = [cosigner.verifier, other.verifier]
    checkpoint = open_checkpoint(log.note(4) + line, signer.verifier)
    assert verify_cosignatures(checkpoint, keys, 1) == (cosigner.name,)
    with pytest.raises(CheckpointError) as caught:
        verify_cosignatures(checkpoint, keys, 2)
    assert caught.value.reason == "CHECKPOINT_NOT_WITNESSED"
    with pytest.raises(CheckpointError) as caught:
        verify_cosignatures(checkpoint, keys, 3)
    assert caught.value.reason == "CHECKPOINT_WITNESS_THRESHOLD_INVALID"
    # A cosignature moved onto another checkpoint does not verify.
    moved = open_checkpoint(log.note(3) + line, signer.verifier)
    with pytest.raises(CheckpointError) as caught:
        verify_cosignatures(moved, keys, 1)
    assert caught.value.reason == "CHECKPOINT_COSIGNATURE_INVALID"
    with pytest.raises(CheckpointError) as caught:
        parse_witness_keys([str(cosigner.verifier), str(cosigner.verifier)])
    assert caught.value.reason == "CHECKPOINT_WITNESS_KEY_INVALID"


def test_http_add_checkpoint(
    witness: Witness, signer: CheckpointSigner, cosigner: Cosigner
) -> None:
    log = Log(signer, _leaves(6))
    httpd, thread = start_witness(("127.0.0.1", 0), witness)
    url = f"http://127.0.0.1:{httpd.port}/add-checkpoint"
    try:
        answer = urllib.request.urlopen(
            urllib.request.Request(url, data=log.request(0, 6).body(), method="POST"), timeout=5
        )
        line = answer.read().decode()
        assert cosigner.verifier.cosigned_at(log.note(6) + line) == NOW
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(
                urllib.request.Request(url, data=log.request(0, 6).body(), method="POST"),
                timeout=5,
            )
        assert caught.value.code == 409
        assert caught.value.headers["Content-Type"].startswith(SIZE_CONTENT_TYPE)
        assert caught.value.read() == b"6\n"
    finally:
        threading.Thread(target=httpd.shutdown).start()
        thread.join(5)
        httpd.server_close()
