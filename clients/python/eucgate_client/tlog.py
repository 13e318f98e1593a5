"""Offline verification of eucgate's audit log: Merkle proofs, checkpoints, logged receipts.

Everything a customs gateway or an auditor needs to check the log without the server:

- RFC 9162 (Certificate Transparency 2.0) section 2.1 hashing: a leaf hashes as
  SHA-256(0x00 || entry), an interior node as SHA-256(0x01 || left || right).
- Inclusion and consistency proof verification, following the algorithms of RFC 9162
  sections 2.1.3.2 and 2.1.4.2 step by step.
- C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys and C2SP checkpoints
  (https://c2sp.org/tlog-checkpoint).
- C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature) `cosignature/v1` Ed25519
  cosignatures by witnesses, and a k-of-n check of them (`verify_cosignatures`).
- `verify_logged_receipt`: receipt signature, then checkpoint signature, then the
  witnesses' cosignatures when asked for, then inclusion.

A verifier here takes a tree size and root only from a checkpoint whose signature it
checked: `open_checkpoint` is the one way to get a `Checkpoint`, and every function that
checks a proof against a tree takes one. Nothing here reads the clock or the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from eucgate_client.errors import VerificationError
from eucgate_client.receipt import (
    ReceiptError,
    ServiceKey,
    ServiceKeys,
    load_service_public_key,
    receipt_from_json,
    verify_receipt,
)
from eucgate_client.v1 import decision_pb2

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# MTH({}) = SHA-256 of the empty string (RFC 9162 section 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
# C2SP signed-note: the signature-type byte of a plain Ed25519 key.
ED25519_ALGORITHM = 0x01
# C2SP tlog-cosignature: the signature-type byte of an Ed25519 cosigner key.
COSIGNATURE_ALGORITHM = 0x04
COSIGNATURE_HEADER = "cosignature/v1\n"
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space start each signature line
MAX_SIGNATURES = 100  # signed-note: verifiers may refuse notes with more
# The receipt statement key that binds a receipt to its log entry.
RECEIPT_LEAF_HASH_KEY = "log_leaf_hash"


class ProofError(VerificationError):
    """A proof that does not verify; `reason` is a stable code.

    PROOF_MALFORMED (a hash is not 32 bytes, or sizes/index out of range),
    PROOF_INCLUSION_INVALID, PROOF_CONSISTENCY_INVALID.
    """


class CheckpointError(VerificationError):
    """A checkpoint or signed note that cannot be trusted; `reason` is a stable code.

    CHECKPOINT_KEY_INVALID (the verifier key string is malformed),
    CHECKPOINT_MALFORMED (not a signed note, or its body is not a checkpoint),
    CHECKPOINT_UNSIGNED (no signature by the verifier's key),
    CHECKPOINT_SIGNATURE_INVALID (a signature by that key does not verify),
    CHECKPOINT_ORIGIN_MISMATCH (the origin line is not the key's name),
    CHECKPOINT_WITNESS_KEY_INVALID (a witness verifier key string is malformed),
    CHECKPOINT_WITNESS_THRESHOLD_INVALID (the k of k-of-n is below 1 or above n),
    CHECKPOINT_COSIGNATURE_INVALID (a pinned witness's cosignature does not verify),
    CHECKPOINT_NOT_WITNESSED (fewer than k pinned witnesses cosigned the checkpoint).
    """


# --- RFC 9162 hashing ---------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry as a leaf."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class CompactRange:
    """The root of a growing tree in O(log n) memory: append leaf hashes, read `root()`.

    Holds the hashes of the perfect subtrees that make up the tree (one per set bit of
    the size), which is all MTH needs. `append` returns the interior nodes it completed,
    as (level, index, hash), for callers that store them.
    """

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        """Resume a tree of `size` leaves from its peaks (largest subtree first).

        Raises ValueError if the number of peaks does not match the size.
        """
        if size < 0 or len(peaks) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} peaks")
        self._size = size
        self._peaks = list(peaks)

    @property
    def size(self) -> int:
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        return tuple(self._peaks)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the interior nodes this completed, lowest first."""
        index = self._size
        node, level, completed = leaf, 0, []
        while (index >> level) & 1:
            node = node_hash(self._peaks.pop(), node)
            level += 1
            completed.append((level, index >> level, node))
        self._peaks.append(node)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the leaves so far (RFC 9162 section 2.1.1)."""
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._peaks)


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over `leaf_hashes`, streaming: memory stays O(log n)."""
    tree = CompactRange()
    for leaf in leaf_hashes:
        tree.append(leaf)
    return tree.root()


# --- RFC 9162 proof verification ----------------------------------------------------


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError("PROOF_MALFORMED", f"proof hash {i} is {len(h)} bytes, not 32")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 section 2.1.3.2, steps 1 to 5).

    Raises ProofError(PROOF_MALFORMED) if index/size are out of range or a hash is not
    32 bytes, and ProofError(PROOF_INCLUSION_INVALID) if the proof has the wrong length.
    """
    if not 0 <= index < size:
        raise ProofError("PROOF_MALFORMED", f"leaf index {index} is not below tree size {size}")
    _check_hashes([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("PROOF_INCLUSION_INVALID", "inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("PROOF_INCLUSION_INVALID", "inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` is at `index` in the tree of `size` leaves with `root`.

    Raises ProofError (see `root_from_inclusion_proof`; PROOF_INCLUSION_INVALID when the
    proof leads to another root).
    """
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("PROOF_INCLUSION_INVALID", f"leaf {index} is not in this tree")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of `second` leaves extends the tree of `first` leaves.

    RFC 9162 section 2.1.4.2 for 0 < first < second. The edge cases the RFC leaves to
    the caller: first == second needs an empty proof and equal roots; first == 0 needs
    an empty proof (every tree extends the empty one). Raises ProofError
    (PROOF_MALFORMED for sizes out of order or bad hash lengths, otherwise
    PROOF_CONSISTENCY_INVALID).
    """
    if not 0 <= first <= second:
        raise ProofError("PROOF_MALFORMED", f"sizes must satisfy 0 <= {first} <= {second}")
    _check_hashes([first_root, second_root, *proof])
    if first in (0, second):
        if proof:
            raise ProofError("PROOF_CONSISTENCY_INVALID", "this proof must be empty")
        if first == second and first_root != second_root:
            raise ProofError("PROOF_CONSISTENCY_INVALID", "same size, different roots")
        return
    # Step 1.
    if not proof:
        raise ProofError("PROOF_CONSISTENCY_INVALID", "consistency proof is empty")
    path = list(proof)
    # Step 2: a power-of-two first tree is a node of the second; its root starts the path.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # Steps 3 and 4.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Steps 5 and 6.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("PROOF_CONSISTENCY_INVALID", "consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofError(
            "PROOF_CONSISTENCY_INVALID", f"tree of {second} does not extend tree of {first}"
        )


# --- C2SP signed notes and checkpoints ----------------------------------------------


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALGORITHM]) + public_key).digest()[
        :4
    ]


def _valid_key_name(name: str) -> bool:
    return bool(name) and name.isprintable() and not any(c.isspace() or c == "+" for c in name)


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 signed-note verifier: a key name and its public key.

    Parse the published string with `NoteVerifier.parse`; `str()` gives it back.
    """

    name: str
    public_key: bytes  # the raw 32-byte Ed25519 key

    def __post_init__(self) -> None:
        if not _valid_key_name(self.name):
            raise CheckpointError("CHECKPOINT_KEY_INVALID", f"bad key name {self.name!r}")
        if len(self.public_key) != 32:
            raise CheckpointError("CHECKPOINT_KEY_INVALID", "an Ed25519 key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Parse "name+hex(keyid)+base64(0x01 || key)".

        Raises CheckpointError(CHECKPOINT_KEY_INVALID) if it is malformed, not Ed25519,
        or its key id does not match the name and key.
        """
        name, sep1, rest = text.strip().partition("+")
        hex_id, sep2, encoded = rest.partition("+")
        if not (sep1 and sep2) or len(hex_id) != 8:
            raise CheckpointError("CHECKPOINT_KEY_INVALID", "expected name+keyid+key")
        try:
            raw = base64.b64decode(encoded, validate=True)
            wanted = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise CheckpointError("CHECKPOINT_KEY_INVALID", f"bad verifier key: {exc}") from exc
        if (
            len(raw) != 33
            or raw[0] != ED25519_ALGORITHM
            or base64.b64encode(raw).decode() != encoded
        ):
            raise CheckpointError("CHECKPOINT_KEY_INVALID", "not an Ed25519 verifier key")
        verifier = cls(name, raw[1:])
        if verifier.key_id != wanted:
            raise CheckpointError("CHECKPOINT_KEY_INVALID", "key id does not match the key")
        return verifier

    @classmethod
    def from_key(cls, name: str, key: Ed25519PublicKey) -> NoteVerifier:
        return cls(
            name, key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ED25519_ALGORITHM]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def open(self, note: str) -> str:
        """The text of `note` if a signature by this key verifies over it.

        Signatures by other keys are ignored, as the spec requires. Raises CheckpointError:
        CHECKPOINT_MALFORMED, CHECKPOINT_UNSIGNED, CHECKPOINT_SIGNATURE_INVALID.
        """
        text, signatures = _split_note(note)
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        for name, blob in signatures:
            if name != self.name or blob[:4] != self.key_id:
                continue
            try:
                key.verify(blob[4:], text.encode())
            except InvalidSignature as exc:
                raise CheckpointError(
                    "CHECKPOINT_SIGNATURE_INVALID", f"signature by {name} does not verify"
                ) from exc
            return text
        raise CheckpointError("CHECKPOINT_UNSIGNED", f"no signature by {self.name}")


def _parse_vkey(text: str, algorithm: int, reason: str) -> tuple[str, bytes]:
    """(name, raw key) of "name+hex(keyid)+base64(algorithm || key)"; key id unchecked."""
    name, sep1, rest = text.strip().partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not (sep1 and sep2) or len(hex_id) != 8:
        raise CheckpointError(reason, "expected name+keyid+key")
    try:
        raw = base64.b64decode(encoded, validate=True)
        bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(reason, f"bad verifier key: {exc}") from exc
    if len(raw) != 33 or raw[0] != algorithm or base64.b64encode(raw).decode() != encoded:
        raise CheckpointError(reason, f"not a key of signature type 0x{algorithm:02x}")
    if hex_id != hex_id.lower():
        raise CheckpointError(reason, "the key id is lower-case hex")
    return name, raw[1:]


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """tlog-cosignature key ID: SHA-256(name || 0x0A || 0x04 || Ed25519 key)[:4]."""
    material = name.encode() + b"\n" + bytes([COSIGNATURE_ALGORITHM]) + public_key
    return hashlib.sha256(material).digest()[:4]


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a `cosignature/v1` Ed25519 signature covers: the header line, the time line
    and the checkpoint's note text (with its final newline, without signatures)."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class WitnessVerifier:
    """A witness's Ed25519 cosigner key (C2SP tlog-cosignature, signature type 0x04).

    Parse the published string "name+hex(keyid)+base64(0x04 || key)" with
    `WitnessVerifier.parse`; `str()` gives it back.
    """

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not _valid_key_name(self.name):
            raise CheckpointError(
                "CHECKPOINT_WITNESS_KEY_INVALID", f"bad witness name {self.name!r}"
            )
        if len(self.public_key) != 32:
            raise CheckpointError("CHECKPOINT_WITNESS_KEY_INVALID", "an Ed25519 key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return cosignature_key_id(self.name, self.public_key)

    @classmethod
    def parse(cls, text: str) -> WitnessVerifier:
        """Parse a witness verifier key; CheckpointError(CHECKPOINT_WITNESS_KEY_INVALID) if bad."""
        name, raw = _parse_vkey(text, COSIGNATURE_ALGORITHM, "CHECKPOINT_WITNESS_KEY_INVALID")
        verifier = cls(name, raw)
        if verifier.key_id.hex() != text.strip().split("+")[1]:
            raise CheckpointError("CHECKPOINT_WITNESS_KEY_INVALID", "key id does not match the key")
        return verifier

    @classmethod
    def from_key(cls, name: str, key: Ed25519PublicKey) -> WitnessVerifier:
        return cls(
            name, key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([COSIGNATURE_ALGORITHM]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def cosigned_at(self, note: str) -> int | None:
        """The timestamp of this witness's cosignature on `note`, or None if it holds
        none (lines of other names or key ids are ignored, as signed-note requires).

        Raises CheckpointError: CHECKPOINT_MALFORMED, or CHECKPOINT_COSIGNATURE_INVALID
        when a line of this witness does not verify over the note's text.
        """
        text, signatures = _split_note(note)
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        for name, blob in signatures:
            if name != self.name or blob[:4] != self.key_id:
                continue
            if len(blob) != 4 + 8 + 64:
                raise CheckpointError(
                    "CHECKPOINT_COSIGNATURE_INVALID", f"cosignature by {name} is malformed"
                )
            timestamp = int.from_bytes(blob[4:12], "big")
            if timestamp >= 1 << 63:
                raise CheckpointError(
                    "CHECKPOINT_COSIGNATURE_INVALID", "cosignature time is out of range"
                )
            try:
                key.verify(blob[12:], cosigned_message(text, timestamp))
            except InvalidSignature as exc:
                raise CheckpointError(
                    "CHECKPOINT_COSIGNATURE_INVALID", f"cosignature by {name} does not verify"
                ) from exc
            return timestamp
        return None


def parse_witness_keys(keys: Iterable[str]) -> tuple[WitnessVerifier, ...]:
    """Parse witness verifier keys; CheckpointError(CHECKPOINT_WITNESS_KEY_INVALID) if one is bad or
    two share a name (one witness, one vote)."""
    verifiers = tuple(WitnessVerifier.parse(k) for k in keys)
    if len({v.name for v in verifiers}) != len(verifiers):
        raise CheckpointError("CHECKPOINT_WITNESS_KEY_INVALID", "two witness keys share a name")
    return verifiers


def verify_cosignatures(
    checkpoint: Checkpoint, witnesses: Sequence[WitnessVerifier], threshold: int
) -> tuple[str, ...]:
    """Check that at least `threshold` of `witnesses` cosigned `checkpoint` (already
    opened with the log key); returns the names of those that did.

    Raises CheckpointError: CHECKPOINT_WITNESS_THRESHOLD_INVALID (threshold below 1 or
    above the number of witnesses), CHECKPOINT_COSIGNATURE_INVALID,
    CHECKPOINT_NOT_WITNESSED.
    """
    if not 1 <= threshold <= len(witnesses):
        raise CheckpointError(
            "CHECKPOINT_WITNESS_THRESHOLD_INVALID",
            f"need 1 <= threshold <= {len(witnesses)} witnesses, got {threshold}",
        )
    names = tuple(w.name for w in witnesses if w.cosigned_at(checkpoint.note) is not None)
    if len(names) < threshold:
        raise CheckpointError(
            "CHECKPOINT_NOT_WITNESSED",
            f"checkpoint of size {checkpoint.size} has {len(names)} of the {threshold} "
            "witness cosignatures required",
        )
    return names


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text (with final newline) and its signatures."""
    if any(ord(c) < 0x20 and c != "\n" for c in note) or "\x7f" in note:
        raise CheckpointError("CHECKPOINT_MALFORMED", "a note holds no control characters")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointError("CHECKPOINT_MALFORMED", "no blank line before the signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    lines = block.split("\n")[:-1]
    if not lines or len(lines) > MAX_SIGNATURES:
        raise CheckpointError("CHECKPOINT_MALFORMED", f"{len(lines)} signature lines")
    signatures = []
    for line in lines:
        name, sep, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_PREFIX) or not sep or not _valid_key_name(name):
            raise CheckpointError("CHECKPOINT_MALFORMED", f"bad signature line {line!r}")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or a character outside ASCII
            raise CheckpointError("CHECKPOINT_MALFORMED", "signature is not base64") from exc
        if len(blob) < 5 or base64.b64encode(blob).decode() != encoded:
            # Canonical base64 only: one signed note, one byte form.
            raise CheckpointError("CHECKPOINT_MALFORMED", "signature is not canonical base64")
        signatures.append((name, blob))
    return text, signatures


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature was checked: origin, tree size and root hash.

    Obtain one from `open_checkpoint`; `note` is the signed note it came from.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]
    note: str


def checkpoint_body(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """The C2SP tlog-checkpoint text: origin, decimal size, base64 root, extension lines.

    Raises ValueError for an empty or multi-line origin or extension, a negative size,
    or a root that is not 32 bytes.
    """
    if size < 0 or len(root) != HASH_SIZE:
        raise ValueError("a checkpoint has a size >= 0 and a 32-byte root")
    for line in (origin, *extensions):
        if not line or "\n" in line or not line.isprintable():
            raise ValueError(f"bad checkpoint line {line!r}")
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    return "".join(f"{line}\n" for line in lines)


def parse_checkpoint_body(text: str) -> tuple[str, int, bytes, tuple[str, ...]]:
    """(origin, size, root, extensions) of a checkpoint text; CheckpointError if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise CheckpointError("CHECKPOINT_MALFORMED", "a checkpoint has at least 3 lines")
    origin, size_text, root_text, *extensions = lines[:-1]
    # A tree size is a uint64: at most 20 digits (and int() refuses over 4300).
    if (
        not size_text.isascii()
        or not size_text.isdigit()
        or len(size_text) > 20
        or size_text != str(int(size_text))
    ):
        raise CheckpointError("CHECKPOINT_MALFORMED", f"bad tree size {size_text[:40]!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        raise CheckpointError("CHECKPOINT_MALFORMED", "root hash is not base64") from exc
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise CheckpointError("CHECKPOINT_MALFORMED", "root hash is not 32 bytes of base64")
    return origin, int(size_text), root, tuple(extensions)


def open_checkpoint(note: str | bytes, verifier: NoteVerifier) -> Checkpoint:
    """Verify a signed checkpoint and return its contents.

    The origin line must equal the verifier's key name (one key, one log). Raises
    CheckpointError (see its reasons); returns only when the signature verified.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("CHECKPOINT_MALFORMED", "a note is UTF-8") from exc
    text = verifier.open(note)
    origin, size, root, extensions = parse_checkpoint_body(text)
    if origin != verifier.name:
        raise CheckpointError(
            "CHECKPOINT_ORIGIN_MISMATCH", f"origin {origin!r} is not {verifier.name!r}"
        )
    return Checkpoint(origin, size, root, extensions, note)


def open_checkpoint_with(
    note: str | bytes, verifiers: NoteVerifier | Sequence[NoteVerifier]
) -> Checkpoint:
    """`open_checkpoint` with the first of the log's published keys (a log's current
    and earlier keys, after rotations) that signed the note.

    Raises CheckpointError as `open_checkpoint` does; CHECKPOINT_UNSIGNED when no key
    of `verifiers` signed it.
    """
    if isinstance(verifiers, NoteVerifier):
        return open_checkpoint(note, verifiers)
    problem: CheckpointError | None = None
    for verifier in verifiers:
        try:
            return open_checkpoint(note, verifier)
        except CheckpointError as exc:
            if exc.reason != "CHECKPOINT_UNSIGNED":
                raise
            problem = exc
    raise problem or CheckpointError("CHECKPOINT_UNSIGNED", "no log key given")


@dataclass(frozen=True)
class PublishedKeys:
    """The verification keys a service publishes (`eucgate keys --json`): receipt keys
    with their periods, the log's verifier keys (current first), and the witnesses the
    log asks with the quorum it counts. Pin it from a trusted source, never from the API.
    """

    service_keys: tuple[ServiceKey, ...]
    log_keys: tuple[NoteVerifier, ...]
    witnesses: tuple[WitnessVerifier, ...]
    witness_quorum: int

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PublishedKeys:
        """Parse the key set; raises ReceiptError (RECEIPT_KEY_INVALID) or CheckpointError
        (CHECKPOINT_KEY_INVALID, CHECKPOINT_WITNESS_KEY_INVALID) for a bad key."""
        try:
            service = tuple(
                ServiceKey(
                    load_service_public_key(str(k["public_key"]).encode()),
                    _optional_time(k.get("valid_from")),
                    _optional_time(k.get("valid_until")),
                )
                for k in doc["service_keys"]
            )
            logs = tuple(NoteVerifier.parse(str(k["verifier_key"])) for k in doc["log_keys"])
            witnesses = parse_witness_keys(str(w["verifier_key"]) for w in doc.get("witnesses", ()))
            quorum = int(doc.get("witness_quorum", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReceiptError("RECEIPT_KEY_INVALID", f"not a published key set: {exc}") from exc
        return cls(service, logs, witnesses, quorum)


def _optional_time(value: object) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone")
    return moment


def verify_consistent_checkpoints(
    older: Checkpoint, newer: Checkpoint, proof: Sequence[bytes]
) -> None:
    """Check that `newer` extends `older` (both already opened). Raises ProofError."""
    verify_consistency(older.size, newer.size, older.root, newer.root, proof)


# --- receipts with proof ------------------------------------------------------------


@dataclass(frozen=True)
class LoggedReceipt:
    """A receipt that verified offline: its statement, leaf and the checkpoint it is in."""

    statement: dict[str, Any]
    leaf_index: int
    leaf_hash: bytes
    checkpoint: Checkpoint


def verify_logged_receipt(
    receipt: decision_pb2.Receipt | Mapping[str, Any],
    service_key: ServiceKeys,
    log_verifier: NoteVerifier | Sequence[NoteVerifier],
    *,
    witnesses: Sequence[WitnessVerifier] = (),
    threshold: int = 0,
) -> LoggedReceipt:
    """Verify a receipt (the message or its JSON), its checkpoint and its inclusion in
    the log, all offline.

    1. The receipt's DSSE signature by the service key (`verify_receipt`; a sequence
       of `ServiceKey`s after rotations, each with its period).
    2. The checkpoint's signature by the log key (or one of the log's published keys);
       size and root come only from it.
    3. With `threshold` > 0: at least `threshold` of `witnesses` cosigned that
       checkpoint (`verify_cosignatures`), so the log cannot show this tree to us and
       another to someone else unless that many witnesses collude.
    4. The statement's leaf hash is at `leaf_index` under that root (RFC 9162 proof).

    Raises ReceiptError (signature, or RECEIPT_NOT_LOGGED when the receipt carries no
    leaf hash or no checkpoint), CheckpointError (CHECKPOINT_NOT_WITNESSED among them),
    or ProofError.
    """
    if isinstance(receipt, Mapping):
        receipt = receipt_from_json(receipt)
    statement = verify_receipt(receipt, service_key)
    try:
        leaf = bytes.fromhex(statement[RECEIPT_LEAF_HASH_KEY])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptError("RECEIPT_NOT_LOGGED", "the statement names no log leaf") from exc
    if not receipt.checkpoint:
        raise ReceiptError("RECEIPT_NOT_LOGGED", "the receipt carries no checkpoint")
    checkpoint = open_checkpoint_with(receipt.checkpoint, log_verifier)
    if threshold or witnesses:
        verify_cosignatures(checkpoint, witnesses, threshold)
    verify_inclusion(
        receipt.leaf_index, checkpoint.size, leaf, list(receipt.inclusion_proof), checkpoint.root
    )
    return LoggedReceipt(statement, receipt.leaf_index, leaf, checkpoint)
