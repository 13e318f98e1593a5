"""The log entry: the canonical bytes of one recorded decision, hashed as a Merkle leaf.

An entry holds everything the decision depended on, so replay and
audit need nothing else: the envelope as recorded and its digest, the decision bytes, the
bundle digest, the clock reading and the ledger balances read. Version 1 is canonical
JSON (`core.canonical`: keys sorted, no white space, UTF-8) of

    {"bundle_digest": hex, "caller": str, "decided_at": int (microseconds since 1970 UTC),
     "decision": base64(decision bytes), "decision_id": str,
     "envelope": base64(DSSE envelope, deterministic protobuf), "envelope_digest": hex,
     "kind": "decision", "ledger_reads": [{"control_code": str, "licence_number": str,
     "remaining": decimal string or null}, ...], "request_id": str, "v": 1}

Byte strings travel as standard base64 so the decision and envelope bytes stay exactly as
recorded (never re-serialised). `decode_entry` refuses any other byte form of the same
content, so one entry has one leaf hash.

Two more kinds share the version 1 envelope. A referral resolution (kind "resolution")
has exactly the keys of a decision entry: its decision bytes carry `review` (the
referred decision, the reviewer, the note) and its envelope is the referred one; it is a
person's decision, so replay does not recompute it. A shipment debit (kind "shipment")
is a ledger change:

    {"caller": str, "control_code": str, "decision_id": str, "gateway_reference": str,
     "kind": "shipment", "licence_number": str, "quantity": decimal string,
     "recorded_at": int (microseconds), "shipment_id": str, "unit": str, "v": 1}

`decode_entry` reads decision entries only; `decode_resolution` and `decode_shipment`
read the others, and `check_any_entry` checks an entry of any kind.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eucgate_client.dsse import Envelope, EnvelopeError
from eucgate_client.v1 import envelope_pb2
from google.protobuf.message import DecodeError

from eucgate.core.canonical import canonical_json
from eucgate.ids import is_decision_id

ENTRY_VERSION = 1
KIND_DECISION = "decision"
KIND_RESOLUTION = "resolution"
KIND_SHIPMENT = "shipment"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEYS = frozenset(
    {
        "bundle_digest",
        "caller",
        "decided_at",
        "decision",
        "decision_id",
        "envelope",
        "envelope_digest",
        "kind",
        "ledger_reads",
        "request_id",
        "v",
    }
)
_DECIMAL = re.compile(r"[0-9]{1,24}(?:\.[0-9]{1,12})?")
_READ_KEYS = frozenset({"control_code", "licence_number", "remaining"})
_SHIPMENT_KEYS = frozenset(
    {
        "caller",
        "control_code",
        "decision_id",
        "gateway_reference",
        "kind",
        "licence_number",
        "quantity",
        "recorded_at",
        "shipment_id",
        "unit",
        "v",
    }
)


class EntryError(Exception):
    """An entry that is not what it claims; `reason` is LOG_ENTRY_MALFORMED (not a
    canonical version 1 entry) or LOG_ENTRY_DIGEST_MISMATCH (its digests disagree)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EntrySource(Protocol):
    """What an entry is made from: the fields of a store's DecisionRecord."""

    @property
    def decision_id(self) -> str: ...
    @property
    def caller(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    @property
    def envelope_digest(self) -> str: ...
    @property
    def envelope(self) -> bytes: ...
    @property
    def decision(self) -> bytes: ...
    @property
    def bundle_digest(self) -> str: ...
    @property
    def decided_at(self) -> datetime: ...


@dataclass(frozen=True)
class LedgerRead:
    """One balance the decision read: remaining quota under a licence, None if unkept."""

    licence_number: str
    control_code: str
    remaining: str | None


@dataclass(frozen=True)
class LogEntry:
    """A decoded entry; `raw` is the exact bytes it was decoded from (the leaf)."""

    kind: str
    decision_id: str
    caller: str
    request_id: str
    envelope_digest: str
    envelope: bytes
    decision: bytes
    bundle_digest: str
    decided_at_micros: int
    ledger_reads: tuple[LedgerRead, ...]
    raw: bytes


def _micros(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("decided_at must be timezone-aware")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_entry(
    source: EntrySource, ledger_reads: Sequence[LedgerRead] = (), *, kind: str = KIND_DECISION
) -> bytes:
    """The canonical version 1 entry of a decision (or, with `kind` KIND_RESOLUTION, a
    referral resolution) record. Pure; raises ValueError if `decided_at` is naive or the
    kind is neither."""
    if kind not in (KIND_DECISION, KIND_RESOLUTION):
        raise ValueError(f"not a decision kind: {kind!r}")
    body: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "kind": kind,
        "decision_id": source.decision_id,
        "caller": source.caller,
        "request_id": source.request_id,
        "envelope_digest": source.envelope_digest,
        "envelope": base64.b64encode(source.envelope).decode(),
        "decision": base64.b64encode(source.decision).decode(),
        "bundle_digest": source.bundle_digest,
        "decided_at": _micros(source.decided_at),
        "ledger_reads": [
            {
                "licence_number": r.licence_number,
                "control_code": r.control_code,
                "remaining": r.remaining,
            }
            for r in ledger_reads
        ],
    }
    return canonical_json(body)


def _malformed(message: str) -> EntryError:
    return EntryError("LOG_ENTRY_MALFORMED", message)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _malformed("an entry repeats a key")
    return result


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise _malformed(f"{name} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:  # binascii.Error, or a character outside ASCII
        raise _malformed(f"{name} is not base64") from exc


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, EntryError):
            raise
        raise _malformed(f"not UTF-8 JSON: {exc}") from exc


def _canonical(body: Any) -> bytes | None:
    """The canonical bytes of a decoded body; None when it has none (a "\\ud800"
    escape decodes to a lone surrogate, which UTF-8 cannot carry)."""
    try:
        return canonical_json(body)
    except UnicodeEncodeError:
        return None


def decode_entry(raw: bytes) -> LogEntry:
    """Decode a version 1 decision entry; raises EntryError(LOG_ENTRY_MALFORMED) for
    anything that is not one (another kind included), or a non-canonical byte form."""
    return _decode_decision(raw, KIND_DECISION)


def decode_resolution(raw: bytes) -> LogEntry:
    """Decode a version 1 referral-resolution entry; raises EntryError as decode_entry."""
    return _decode_decision(raw, KIND_RESOLUTION)


def _decode_decision(raw: bytes, kind: str) -> LogEntry:
    return _decision_from(raw, _json_body(raw), kind)


def _decision_from(raw: bytes, body: Any, kind: str) -> LogEntry:
    """The entry `body` (parsed from `raw`) holds; raises EntryError as decode_entry."""
    if not isinstance(body, dict) or set(body) != _KEYS:
        raise _malformed("not a version 1 entry (wrong keys)")
    if body["v"] != ENTRY_VERSION or body["kind"] != kind:
        raise _malformed(f"unknown version or kind: {body['v']!r}, {body['kind']!r}")
    strings = ("decision_id", "caller", "request_id", "envelope_digest", "bundle_digest")
    if any(not isinstance(body[k], str) for k in strings):
        raise _malformed("a text field is not a string")
    if type(body["decided_at"]) is not int or not isinstance(body["ledger_reads"], list):
        raise _malformed("decided_at is not an integer or ledger_reads not a list")
    reads = []
    for item in body["ledger_reads"]:
        if not isinstance(item, dict) or set(item) != _READ_KEYS:
            raise _malformed("a ledger read has the wrong keys")
        if not isinstance(item["licence_number"], str) or not isinstance(item["control_code"], str):
            raise _malformed("a ledger read names no licence or control code")
        if item["remaining"] is not None and not isinstance(item["remaining"], str):
            raise _malformed("a ledger balance is neither a decimal string nor null")
        reads.append(LedgerRead(item["licence_number"], item["control_code"], item["remaining"]))
    entry = LogEntry(
        kind=body["kind"],
        decision_id=body["decision_id"],
        caller=body["caller"],
        request_id=body["request_id"],
        envelope_digest=body["envelope_digest"],
        envelope=_b64(body["envelope"], "envelope"),
        decision=_b64(body["decision"], "decision"),
        bundle_digest=body["bundle_digest"],
        decided_at_micros=body["decided_at"],
        ledger_reads=tuple(reads),
        raw=raw,
    )
    if (
        _canonical(body) != raw
        or base64.b64encode(entry.envelope).decode() != body["envelope"]
        or base64.b64encode(entry.decision).decode() != body["decision"]
    ):
        raise _malformed("not the canonical byte form of its content")
    return entry


def check_entry(entry: LogEntry) -> None:
    """Check an entry's internal digests and cross-references.

    The envelope hashes to envelope_digest and is a DSSE envelope; the decision bytes are
    a decision whose euc_digest is the SHA-256 of that envelope's payload, whose
    bundle_digest and decided_at are the entry's; the decision id is well-formed.
    Raises EntryError(LOG_ENTRY_DIGEST_MISMATCH) naming the first thing that disagrees.
    """

    def mismatch(message: str) -> EntryError:
        return EntryError("LOG_ENTRY_DIGEST_MISMATCH", message)

    if not is_decision_id(entry.decision_id):
        raise mismatch(f"decision id {entry.decision_id!r} is malformed")
    if hashlib.sha256(entry.envelope).hexdigest() != entry.envelope_digest:
        raise mismatch("the envelope does not hash to envelope_digest")
    try:
        envelope = Envelope.from_proto(envelope_pb2.Envelope.FromString(entry.envelope))
    except (DecodeError, EnvelopeError) as exc:
        raise mismatch(f"the envelope is not a DSSE envelope: {exc}") from exc
    try:
        decision = json.loads(entry.decision)
        euc_digest, bundle_digest = decision["euc_digest"], decision["bundle_digest"]
        decided_at = datetime.fromisoformat(decision["decided_at"])
        decided_micros = _micros(decided_at)
    except (ValueError, TypeError, KeyError) as exc:
        raise mismatch(f"the decision bytes are not a decision: {exc}") from exc
    if hashlib.sha256(envelope.payload).hexdigest() != euc_digest:
        raise mismatch("the decision's euc_digest is not the digest of the envelope payload")
    if bundle_digest != entry.bundle_digest:
        raise mismatch("the decision's bundle_digest is not the entry's")
    if decided_micros != entry.decided_at_micros:
        raise mismatch("the decision's decided_at is not the entry's clock reading")


@dataclass(frozen=True)
class ShipmentEntry:
    """A decoded shipment debit: `quantity` (a decimal string, in `unit`) shipped under
    `decision_id`'s approval, reported by `caller` with its `gateway_reference`."""

    shipment_id: str
    decision_id: str
    caller: str
    gateway_reference: str
    licence_number: str
    control_code: str
    quantity: str
    unit: str
    recorded_at_micros: int
    raw: bytes


def encode_shipment(
    *,
    shipment_id: str,
    decision_id: str,
    caller: str,
    gateway_reference: str,
    licence_number: str,
    control_code: str,
    quantity: str,
    unit: str,
    recorded_at: datetime,
) -> bytes:
    """The canonical version 1 entry of a shipment debit. Pure; raises ValueError if
    `recorded_at` is naive."""
    body: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "kind": KIND_SHIPMENT,
        "shipment_id": shipment_id,
        "decision_id": decision_id,
        "caller": caller,
        "gateway_reference": gateway_reference,
        "licence_number": licence_number,
        "control_code": control_code,
        "quantity": quantity,
        "unit": unit,
        "recorded_at": _micros(recorded_at),
    }
    return canonical_json(body)


def decode_shipment(raw: bytes) -> ShipmentEntry:
    """Decode a version 1 shipment entry; raises EntryError(LOG_ENTRY_MALFORMED)."""
    return _shipment_from(raw, _json_body(raw))


def _shipment_from(raw: bytes, body: Any) -> ShipmentEntry:
    if not isinstance(body, dict) or set(body) != _SHIPMENT_KEYS:
        raise _malformed("not a version 1 shipment entry (wrong keys)")
    if body["v"] != ENTRY_VERSION or body["kind"] != KIND_SHIPMENT:
        raise _malformed(f"unknown version or kind: {body['v']!r}, {body['kind']!r}")
    texts = ("shipment_id", "decision_id", "caller", "gateway_reference", "licence_number")
    if any(not isinstance(body[k], str) for k in (*texts, "control_code", "quantity", "unit")):
        raise _malformed("a text field is not a string")
    if type(body["recorded_at"]) is not int:
        raise _malformed("recorded_at is not an integer")
    entry = ShipmentEntry(
        shipment_id=body["shipment_id"],
        decision_id=body["decision_id"],
        caller=body["caller"],
        gateway_reference=body["gateway_reference"],
        licence_number=body["licence_number"],
        control_code=body["control_code"],
        quantity=body["quantity"],
        unit=body["unit"],
        recorded_at_micros=body["recorded_at"],
        raw=raw,
    )
    if _canonical(body) != raw:
        raise _malformed("not the canonical byte form of its content")
    return entry


def entry_kind(raw: bytes) -> str:
    """The `kind` of a version 1 entry; raises EntryError(LOG_ENTRY_MALFORMED)."""
    return _kind_of(_json_body(raw))


def _kind_of(body: Any) -> str:
    if not isinstance(body, dict) or body.get("v") != ENTRY_VERSION:
        raise _malformed("not a version 1 entry")
    kind = body.get("kind")
    if kind not in (KIND_DECISION, KIND_RESOLUTION, KIND_SHIPMENT):
        raise _malformed(f"unknown kind: {kind!r}")
    return str(kind)


def check_any_entry(raw: bytes) -> None:
    """Decode and check an entry of any kind: decisions and resolutions with
    `check_entry`; a shipment's ids must be well-formed and its quantity a decimal.

    Raises EntryError (LOG_ENTRY_MALFORMED or LOG_ENTRY_DIGEST_MISMATCH).
    """
    body = _json_body(raw)  # parsed once, for its kind and its content
    kind = _kind_of(body)
    if kind in (KIND_DECISION, KIND_RESOLUTION):
        check_entry(_decision_from(raw, body, kind))
    else:
        shipment = _shipment_from(raw, body)
        if not is_decision_id(shipment.decision_id) or not shipment.shipment_id.startswith("shp_"):
            raise EntryError("LOG_ENTRY_DIGEST_MISMATCH", "a shipment names a malformed id")
        if not _DECIMAL.fullmatch(shipment.quantity):
            raise _malformed("a shipment quantity is not a decimal string")
