"""Offline verification of eucgate's signed receipts, with the service's published key.

A receipt is a DSSE envelope of payload type `application/vnd.eucgate.receipt.v1+json`
with exactly one Ed25519 signature by the service key over PAE(payloadType, payload);
its payload is the receipt statement as canonical JSON. Nothing here calls the server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import json_format

from eucgate_client.dsse import Envelope, EnvelopeError
from eucgate_client.errors import VerificationError
from eucgate_client.v1 import decision_pb2, envelope_pb2

ReceiptLike = decision_pb2.Receipt | Envelope | Mapping[str, Any]

RECEIPT_PAYLOAD_TYPE = "application/vnd.eucgate.receipt.v1+json"
RECEIPT_VERSION = 1


class ReceiptError(VerificationError):
    """A receipt that does not verify; `reason` is a stable code.

    RECEIPT_KEY_INVALID (the service key is not an Ed25519 public key),
    RECEIPT_ENVELOPE_INVALID (no envelope, or not well-formed DSSE),
    RECEIPT_PAYLOAD_TYPE, RECEIPT_SIGNATURE_COUNT (not exactly one signature),
    RECEIPT_KEYID_MISMATCH (signed by another key), RECEIPT_SIGNATURE_INVALID,
    RECEIPT_PAYLOAD_INVALID (not a JSON object of a known version),
    RECEIPT_KEY_RETIRED (signed by a key whose validity ended before the decision),
    RECEIPT_KEY_NOT_YET_VALID (signed by a key whose validity began after it).
    """


def load_service_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse the service's published key (SubjectPublicKeyInfo PEM).

    Raises ReceiptError(RECEIPT_KEY_INVALID) if it is not an Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ReceiptError("RECEIPT_KEY_INVALID", f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptError("RECEIPT_KEY_INVALID", "the service key must be Ed25519")
    return key


@dataclass(frozen=True)
class ServiceKey:
    """One published receipt-verification key and the period it may sign in.

    After a rotation the service publishes its earlier keys with `valid_until`, so
    receipts they signed before then keep verifying; a receipt whose `decided_at` falls
    outside a key's period is refused (RECEIPT_KEY_RETIRED, RECEIPT_KEY_NOT_YET_VALID).
    None leaves that end of the period open. Times must be timezone-aware.
    """

    public_key: Ed25519PublicKey
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def keyid(self) -> str:
        """The DSSE keyid receipts carry: hex SHA-256 of the key's SubjectPublicKeyInfo."""
        return _keyid(self.public_key)


ServiceKeys = Ed25519PublicKey | bytes | Sequence[ServiceKey]


def _service_keys(keys: ServiceKeys) -> tuple[ServiceKey, ...]:
    if isinstance(keys, bytes):
        return (ServiceKey(load_service_public_key(keys)),)
    if isinstance(keys, Ed25519PublicKey):
        return (ServiceKey(keys),)
    return tuple(keys)


def _check_period(key: ServiceKey, statement: Mapping[str, Any]) -> None:
    if key.valid_from is None and key.valid_until is None:
        return
    try:
        decided = datetime.fromisoformat(str(statement["decided_at"]))
    except (KeyError, ValueError) as exc:
        raise ReceiptError("RECEIPT_PAYLOAD_INVALID", "the statement has no decided_at") from exc
    if decided.tzinfo is None:
        raise ReceiptError("RECEIPT_PAYLOAD_INVALID", "decided_at has no time zone")
    if key.valid_until is not None and decided > key.valid_until:
        raise ReceiptError(
            "RECEIPT_KEY_RETIRED",
            f"signed by key {key.keyid[:16]}… at {decided.isoformat()}, after it was retired "
            f"on {key.valid_until.isoformat()}",
        )
    if key.valid_from is not None and decided < key.valid_from:
        raise ReceiptError(
            "RECEIPT_KEY_NOT_YET_VALID",
            f"signed by key {key.keyid[:16]}… at {decided.isoformat()}, before its validity "
            f"began on {key.valid_from.isoformat()}",
        )


def receipt_from_json(doc: Mapping[str, Any]) -> decision_pb2.Receipt:
    """A receipt kept as JSON: the protobuf JSON mapping of `Receipt` (what
    `eucgate submit --json` prints under "receipt"; proto or lowerCamel field names),
    or a bare DSSE envelope (then it carries no log position).

    Raises ReceiptError(RECEIPT_ENVELOPE_INVALID) when it is neither.
    """
    try:
        if "envelope" in doc:
            return json_format.ParseDict(dict(doc), decision_pb2.Receipt())
        envelope = json_format.ParseDict(dict(doc), envelope_pb2.Envelope())
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise ReceiptError("RECEIPT_ENVELOPE_INVALID", f"not a receipt: {exc}") from exc
    return decision_pb2.Receipt(envelope=envelope)


def verify_receipt(receipt: ReceiptLike, public_key: ServiceKeys) -> dict[str, Any]:
    """Check a receipt against the service key and return its statement.

    `receipt` is the message, its envelope, or its JSON (`receipt_from_json`).
    `public_key` is the key itself, its PEM, or the published key set (`ServiceKey`s,
    after rotations): the receipt's keyid picks the key, and the decision time must lie
    in that key's period. Raises ReceiptError (see its reasons); returns only when the
    one signature verifies and the statement is version 1.
    """
    keys = _service_keys(public_key)
    envelope = _envelope(receipt)
    if envelope.payload_type != RECEIPT_PAYLOAD_TYPE:
        raise ReceiptError(
            "RECEIPT_PAYLOAD_TYPE",
            f"payload type {envelope.payload_type!r} is not {RECEIPT_PAYLOAD_TYPE}",
        )
    if len(envelope.signatures) != 1:
        raise ReceiptError(
            "RECEIPT_SIGNATURE_COUNT",
            f"a receipt has exactly one signature, this one {len(envelope.signatures)}",
        )
    signature = envelope.signatures[0]
    chosen = next((k for k in keys if k.keyid == signature.keyid), None)
    if chosen is None:
        raise ReceiptError(
            "RECEIPT_KEYID_MISMATCH", "the receipt was not signed by the given service key"
        )
    key = chosen.public_key
    try:
        key.verify(signature.sig, envelope.pae())
    except InvalidSignature as exc:
        raise ReceiptError("RECEIPT_SIGNATURE_INVALID", "receipt signature is invalid") from exc
    try:
        statement = json.loads(envelope.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReceiptError("RECEIPT_PAYLOAD_INVALID", f"payload is not JSON: {exc}") from exc
    if not isinstance(statement, dict) or statement.get("version") != RECEIPT_VERSION:
        raise ReceiptError(
            "RECEIPT_PAYLOAD_INVALID", f"payload is not a version {RECEIPT_VERSION} statement"
        )
    _check_period(chosen, statement)
    return statement


def _envelope(receipt: ReceiptLike) -> Envelope:
    if isinstance(receipt, Envelope):
        return receipt
    if isinstance(receipt, Mapping):
        receipt = receipt_from_json(receipt)
    if not receipt.HasField("envelope"):
        raise ReceiptError("RECEIPT_ENVELOPE_INVALID", "the receipt holds no envelope")
    try:
        return Envelope.from_proto(receipt.envelope)
    except EnvelopeError as exc:
        raise ReceiptError("RECEIPT_ENVELOPE_INVALID", str(exc)) from exc


def _keyid(key: Ed25519PublicKey) -> str:
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()
