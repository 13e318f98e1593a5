"""Fuzz targets: each feeds bytes to one decoder or checker of untrusted input and lets
only the errors that code documents come out; anything else is a crash.

A target is a function of one `bytes` argument (what atheris calls TestOneInput) and a
list of seed inputs. `run.py` fuzzes one with atheris; `test_fuzz.py` replays every
corpus file through each target and runs each for a bounded number of inputs in CI.

- envelope: `Envelope.from_json` raises only EnvelopeError; protobuf envelopes only
  DecodeError or EnvelopeError; a parsed envelope survives its own JSON round trip.
- model: `certificate_from_payload` raises only InvalidSubmission with a PAYLOAD_ code;
  a certificate it returns encodes and decodes to itself within the model's bounds; a
  JSON payload reads the same through the fast reader as through protobuf alone.
- bundle: `parse_bundle` (YAML or JSON text) and `unverified_bundle` (a signed bundle
  envelope) raise only BundleError.
- tlog: proof verification raises only ProofError and accepts only the true proof;
  signed notes raise only CheckpointError.
- decide: any certificate that decodes, signed by the end user plus fuzzed signatures,
  gets a decision: `decide()` never raises, and the decision is within its bounds,
  consistent and the same when made again.
- export: any file of a tlog-tiles export replaced by other bytes: `verify_export`
  never raises, and a changed tile or entry bundle never passes.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.core import model
from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.canonical import canonical_json
from eucgate.core.decide import decide
from eucgate.core.decision import MAX_DECISION_BYTES, MAX_REASONS, outcome_of
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import (
    PAYLOAD_TYPE_JSON,
    PAYLOAD_TYPE_PROTO,
    certificate_from_payload,
    encode_certificate,
)
from eucgate.core.signedbundle import unverified_bundle
from eucgate.core.submission import Submission
from eucgate.errors import BundleError, InvalidSubmission
from eucgate.log.entry import encode_entry
from eucgate.log.export import verify_export, write_export
from eucgate.policyfiles import load_bundle
from eucgate.signing import issue_ca, issue_crl, issue_signer, sign_envelope
from eucgate_client.dsse import Envelope, EnvelopeError, Signature
from eucgate_client.tlog import (
    CheckpointError,
    CompactRange,
    NoteVerifier,
    ProofError,
    checkpoint_body,
    leaf_hash,
    open_checkpoint,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from eucgate_client.v1 import envelope_pb2
from google.protobuf.message import DecodeError

from tests.factories import SAMPLE_BUNDLE_PATH, sample_bundle_with, valid_certificate
from tests.logdata import make_record

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    name: str
    one_input: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


def _documented(reason: str, *codes: str) -> None:
    """A documented error carries one of its documented reason codes (or prefixes)."""
    if not reason.startswith(codes):
        raise AssertionError(f"undocumented reason code {reason!r}")


# --- envelope -----------------------------------------------------------------------


def envelope_input(data: bytes) -> None:
    try:
        envelope = Envelope.from_json(data)
    except EnvelopeError as exc:
        _documented(exc.reason, "ENVELOPE_")
    else:
        assert Envelope.from_json(envelope.to_json()) == envelope
        assert envelope.pae().startswith(b"DSSEv1 ")
    try:
        parsed = Envelope.from_proto(envelope_pb2.Envelope.FromString(data))
    except (DecodeError, EnvelopeError):
        return
    assert Envelope.from_proto(parsed.to_proto()) == parsed


def envelope_seeds() -> list[bytes]:
    envelope = Envelope(
        PAYLOAD_TYPE_PROTO,
        encode_certificate(valid_certificate()),
        (Signature(sig=b"\x01" * 64, keyid="ab" * 32, certificates=(b"\x30\x03\x02\x01\x00",)),),
    )
    return [envelope.to_json(), envelope.digest_input(), b'{"payload":"","payloadType":""}']


# --- model ------------------------------------------------------------------------


def model_input(data: bytes) -> None:
    for payload_type in (PAYLOAD_TYPE_PROTO, PAYLOAD_TYPE_JSON):
        try:
            certificate = certificate_from_payload(payload_type, data)
        except InvalidSubmission as exc:
            _documented(exc.reason, "PAYLOAD_")
            continue
        for encoding in (PAYLOAD_TYPE_PROTO, PAYLOAD_TYPE_JSON):
            again = certificate_from_payload(encoding, encode_certificate(certificate, encoding))
            assert again == certificate
    assert _json_reading(data, fast=True) == _json_reading(data, fast=False)


def _json_reading(data: bytes, *, fast: bool) -> object:
    """A JSON payload's certificate or refusal, by the served path (the core.eucjson
    reader first) or by protobuf's JSON mapping alone (the reference)."""
    try:
        if fast:
            result = certificate_from_payload(PAYLOAD_TYPE_JSON, data)
        else:
            doc = model._json_document(data)
            result = model.certificate_from_proto(model._parse_json(doc))
    except InvalidSubmission as exc:
        return (exc.reason, str(exc), exc.field, exc.violations)
    return result.model_dump(mode="json")


def model_seeds() -> list[bytes]:
    cert = valid_certificate()
    return [encode_certificate(cert), encode_certificate(cert, PAYLOAD_TYPE_JSON)]


# --- bundle -----------------------------------------------------------------------


def bundle_input(data: bytes) -> None:
    with contextlib.suppress(BundleError):
        parse_bundle(data.decode("utf-8", "replace"), "fuzz.yaml")
    with contextlib.suppress(BundleError):
        unverified_bundle(data, "fuzz.dsse.json")


def bundle_seeds() -> list[bytes]:
    bundle = load_bundle(SAMPLE_BUNDLE_PATH)
    signed = Envelope(
        "application/vnd.eucgate.policy-bundle.v1+json",
        bundle.canonical(),
        (Signature(sig=b"\x00" * 64, keyid="k"),),
    )
    return [
        SAMPLE_BUNDLE_PATH.read_bytes(),
        bundle.canonical(),
        signed.to_json(),
        b"version: 1\nname: x\nrules: []\n",
    ]


# --- tlog ------------------------------------------------------------------------

_TREE_SIZE = 37
_LEAVES = [leaf_hash(b"entry %d" % i) for i in range(_TREE_SIZE)]


@cache
def _roots() -> list[bytes]:
    """roots[n] is the root of the first n leaves."""
    tree, roots = CompactRange(), [CompactRange().root()]
    for leaf in _LEAVES:
        tree.append(leaf)
        roots.append(tree.root())
    return roots


def _hashes(data: bytes) -> list[bytes]:
    return [data[i : i + 32] for i in range(0, len(data), 32)]


@cache
def _note_key() -> tuple[ed25519.Ed25519PrivateKey, NoteVerifier]:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz").digest())
    return key, NoteVerifier.from_key("fuzz.example/log", key.public_key())


def tlog_input(data: bytes) -> None:
    if len(data) < 3:
        return
    index, size, rest = data[0], data[1] % (_TREE_SIZE + 1), data[2:]
    proof = _hashes(rest)
    leaf = _LEAVES[index % _TREE_SIZE]
    try:
        verify_inclusion(index, size, leaf, proof, _roots()[size])
    except ProofError as exc:
        _documented(exc.reason, "PROOF_")
    else:
        # Only the true proof of a leaf that is in the tree is accepted.
        assert index < size
        assert leaf == _LEAVES[index]
        assert root_from_inclusion_proof(index, size, leaf, proof) == _roots()[size]
    first = index % (_TREE_SIZE + 1)
    try:
        verify_consistency(first, size, _roots()[first], _roots()[size], proof)
    except ProofError as exc:
        _documented(exc.reason, "PROOF_")
    else:
        assert first <= size
    _, verifier = _note_key()
    for note in (rest, rest.decode("utf-8", "replace")):
        try:
            checkpoint = open_checkpoint(note, verifier)
        except CheckpointError as exc:
            _documented(exc.reason, "CHECKPOINT_")
        else:
            assert checkpoint.origin == "fuzz.example/log"
    try:
        NoteVerifier.parse(rest.decode("utf-8", "replace"))
    except CheckpointError as exc:
        _documented(exc.reason, "CHECKPOINT_KEY_INVALID")


def tlog_seeds() -> list[bytes]:
    key, verifier = _note_key()
    body = checkpoint_body("fuzz.example/log", _TREE_SIZE, _roots()[_TREE_SIZE])
    signature = key.sign(body.encode())
    note = f"{body}\n— fuzz.example/log {base64.b64encode(verifier.key_id + signature).decode()}\n"
    seeds = [bytes([5, _TREE_SIZE]) + note.encode(), str(verifier).encode()]
    for index, size in ((0, 1), (5, 37), (36, 37), (16, 32)):
        proof = _inclusion_proof(index, size)
        seeds.append(bytes([index, size]) + b"".join(proof))
    return seeds


def _inclusion_proof(index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf `index` in the first `size` leaves."""

    def subtree(lo: int, hi: int) -> bytes:
        tree = CompactRange()
        for leaf in _LEAVES[lo:hi]:
            tree.append(leaf)
        return tree.root()

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = 1 << ((n - 1).bit_length() - 1)
        if m < k:
            return [*path(m, lo, lo + k), subtree(lo + k, hi)]
        return [*path(m - k, lo + k, hi), subtree(lo, lo + k)]

    return path(index, 0, size)


# --- decide -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Trust:
    bundle: Bundle
    key: ed25519.Ed25519PrivateKey
    chain: list[object]


@cache
def _trust() -> _Trust:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    root = issue_ca("fuzz root", not_before=start, not_after=start + timedelta(days=3650))
    key, leaf = issue_signer(
        root,
        organization="Jay-Ushin Limited",
        registrations=[("IEC", "0588012345"), ("GSTIN", "06AAACJ1234F1Z5")],
        common_name="Jay-Ushin Limited EUC signing",
        country="IN",
        not_before=start,
        not_after=start + timedelta(days=365),
    )
    pem = root[1].public_bytes(serialization.Encoding.PEM).decode()
    crl = issue_crl(root, this_update=start, next_update=start + timedelta(days=365))
    crl_pem = crl.public_bytes(serialization.Encoding.PEM).decode()
    bundle = sample_bundle_with({"end_user": [pem]}, {"end_user": [crl_pem]})
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return _Trust(bundle=bundle, key=key, chain=[leaf])


def decide_input(data: bytes) -> None:
    """The first byte picks the payload type and how many fuzzed signatures follow the
    end user's; the rest is the payload, then each fuzzed signature's certificate."""
    if not data:
        return
    selector, rest = data[0], data[1:]
    payload_type = PAYLOAD_TYPE_JSON if selector & 1 else PAYLOAD_TYPE_PROTO
    extra = (selector >> 1) % 4
    cut = len(rest) - 64 * extra if extra else len(rest)
    payload, tail = rest[:cut], rest[cut:]
    try:
        certificate_from_payload(payload_type, payload)
    except InvalidSubmission:
        return
    trust = _trust()
    signed = sign_envelope(payload_type, payload, [(trust.key, trust.chain)])  # type: ignore[list-item]
    fuzzed = tuple(
        Signature(sig=tail[i : i + 32], keyid=tail[i + 32 : i + 40].hex(), certificates=(tail[i:],))
        for i in range(0, len(tail), 64)
    )
    envelope = Envelope(payload_type, payload, (*signed.signatures, *fuzzed))
    try:
        submission = Submission.from_envelope(
            envelope, max_payload_bytes=16 * 1024, max_signatures=8
        )
    except InvalidSubmission as exc:
        _documented(exc.reason, "PAYLOAD_TOO_LARGE", "ENVELOPE_TOO_LARGE")
        return
    decision = decide(submission, trust.bundle, EmptyLedger(), NOW)
    assert len(decision.reasons) <= MAX_REASONS
    assert decision.outcome is outcome_of(decision.reasons)
    recorded = canonical_json(decision.model_dump(mode="json"))
    assert len(recorded) <= MAX_DECISION_BYTES
    assert json.loads(recorded)["euc_digest"] == submission.euc_digest
    again = decide(submission, trust.bundle, EmptyLedger(), NOW)
    assert canonical_json(again.model_dump(mode="json")) == recorded, "decide() is not pure"


def decide_seeds() -> list[bytes]:
    cert = valid_certificate()
    return [
        b"\x00" + encode_certificate(cert),
        b"\x01" + encode_certificate(cert, PAYLOAD_TYPE_JSON),
        b"\x02" + encode_certificate(cert) + b"\x30" * 64,
    ]


# --- export -------------------------------------------------------------------------
# 257 entries: a full leaf tile, a partial one, a level-1 tile and two entry bundles.
_EXPORT_SIZE = 257


@cache
def _export() -> tuple[Path, NoteVerifier, dict[str, bytes]]:
    """A pristine export in a directory of its own, its verifier and its files."""
    directory = Path(tempfile.mkdtemp(prefix="eucgate-fuzz-export-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    key, verifier = _note_key()
    items = [encode_entry(make_record(n)) for n in range(_EXPORT_SIZE)]
    tree = CompactRange()
    for item in items:
        tree.append(leaf_hash(item))
    body = checkpoint_body("fuzz.example/log", _EXPORT_SIZE, tree.root())
    signature = base64.b64encode(verifier.key_id + key.sign(body.encode())).decode()
    write_export(directory, items, f"{body}\n\u2014 fuzz.example/log {signature}\n")
    files = {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    return directory, verifier, files


def export_input(data: bytes) -> None:
    """The first byte picks a file of the export, the rest replaces it: `verify_export`
    never raises, and any change to a tile or an entry bundle is found."""
    if not data:
        return
    directory, verifier, files = _export()
    names = sorted(files)
    name = names[data[0] % len(names)]
    path = directory / name
    path.write_bytes(data[1:])
    try:
        result = verify_export(directory, verifier)
    finally:
        path.write_bytes(files[name])
    if name.startswith("tile/") and data[1:] != files[name]:
        assert not result.ok, f"a changed {name} passed verification"


def export_seeds() -> list[bytes]:
    _, _, files = _export()
    names = sorted(files)
    return [bytes([i]) + files[name][:4096] for i, name in enumerate(names)]


TARGETS = {
    t.name: t
    for t in (
        Target("envelope", envelope_input, envelope_seeds),
        Target("model", model_input, model_seeds),
        Target("bundle", bundle_input, bundle_seeds),
        Target("tlog", tlog_input, tlog_seeds),
        Target("decide", decide_input, decide_seeds),
        Target("export", export_input, export_seeds),
    )
}
