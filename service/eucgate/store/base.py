"""The store interface: what every durable decision store (SQLite, PostgreSQL) promises.

The store is the system of record: an append that returned is
committed and fsync'd, and is never dropped or reordered. Idempotency follows AIP-155:
a (caller, request_id) pair is stored once; the same envelope again is a replay, another
envelope is a conflict.

The page-token codec lives here so every store issues and accepts the same tokens.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Protocol

from eucgate.core.decision import Outcome
from eucgate.core.registry import RegistryEntry, RegistryRead, issuer_keys
from eucgate.errors import FailedPrecondition, InvalidSubmission
from eucgate.log.entry import KIND_DECISION, KIND_RESOLUTION, LedgerRead, encode_entry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OUTCOMES = frozenset(o.value for o in Outcome)
_TOKEN_VERSION = 1
PAGE_TOKEN_INVALID = "PAGE_TOKEN_INVALID"  # noqa: S105 (a reason code, not a secret)


def to_micros(when: datetime) -> int:
    """Microseconds since the Unix epoch; `when` must be timezone-aware."""
    return (when - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime `micros` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def _aware_utc(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(UTC)


@dataclass(frozen=True)
class Reservation:
    """What an approval takes from one licence quota, in the quota's unit. `quota` is the
    cap of the bundle the decision was made under: the store never lets the approved
    total under (licence, control code) pass it."""

    licence_number: str
    control_code: str
    quantity: Decimal
    unit: str
    quota: Decimal


@dataclass(frozen=True)
class DecisionRecord:
    """One recorded decision with everything replay needs.

    `ledger_reads` (the balances the decision read) and `resolves` (the REFERRED decision
    a review resolves, "" otherwise) mirror what the decision bytes hold; a record read
    back from a store takes them from there. `reservations` are what an approval takes
    from quotas at append; they are kept by the store, not read back here.
    Raises ValueError on construction if `outcome` is unknown or `decided_at` is naive
    (an aware non-UTC time is normalised to UTC).
    """

    decision_id: str  # server-assigned, time-sortable ("dec_01JD...")
    caller: str  # authenticated caller identity ("anonymous" without mTLS)
    request_id: str  # the client's idempotency key
    envelope_digest: str  # hex SHA-256 identifying the envelope as received
    envelope: bytes  # DSSE envelope, deterministic protobuf serialization
    decision: bytes  # canonical JSON of the core Decision
    receipt: bytes  # the signed receipt envelope, protobuf serialization
    outcome: str  # "APPROVED" | "REJECTED" | "REFERRED"
    decided_at: datetime  # aware UTC
    bundle_digest: str  # the policy bundle the decision was made under
    importer_registrations: tuple[str, ...]  # values the importer filter matches
    ledger_reads: tuple[LedgerRead, ...] = ()
    resolves: str = ""
    reservations: tuple[Reservation, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(_OUTCOMES)}, got {self.outcome!r}")
        object.__setattr__(self, "decided_at", _aware_utc(self.decided_at, "decided_at"))
        object.__setattr__(self, "importer_registrations", tuple(self.importer_registrations))

    @property
    def kind(self) -> str:
        """The log entry kind: a referral resolution or a decision."""
        return KIND_RESOLUTION if self.resolves else KIND_DECISION

    # What follows is derived from the record's bytes, worked out once per record
    # (cached on the instance; the fields are frozen) rather than at every use.

    @cached_property
    def log_entry(self) -> bytes:
        """The canonical bytes the audit log keeps for this record (log.entry)."""
        return encode_entry(self, self.ledger_reads, kind=self.kind)

    @cached_property
    def _registry(self) -> tuple[tuple[RegistryRead, ...], RegistryClaim | None]:
        return recorded_registry(self.decision, self.decision_id)

    @property
    def registry_reads(self) -> tuple[RegistryRead, ...]:
        """The registry entries the signed decision read (core.registry)."""
        return self._registry[0]

    @property
    def registry_claim(self) -> RegistryClaim | None:
        """What this decision writes into the registry of decided EUCs; None for a
        referral's resolution (its referral already holds the EUC) or bytes that are not
        a decision."""
        return None if self.resolves else self._registry[1]

    @cached_property
    def parties(self) -> frozenset[str]:
        """The registrations ("SCHEME:VALUE") of the importer and end user the signed
        decision names: whose decision this is, for importer-scoped reads."""
        return recorded_parties(self.decision)

    def with_receipt(self, receipt: bytes) -> DecisionRecord:
        """This record with `receipt`, keeping what was derived from it already: none of
        it covers the receipt (the receipt signs the log entry's leaf hash)."""
        signed = dataclasses.replace(self, receipt=receipt)
        signed.__dict__.update((k, v) for k, v in self.__dict__.items() if k in _DERIVED)
        return signed

    def derive(self) -> DecisionRecord:
        """Work out now what the store's writer derives from this record (its log entry,
        registry rows, parties), so that it is done on the caller's thread rather than
        by the one writer thread inside its open transaction. Returns the record."""
        _ = self.log_entry, self._registry, self.parties
        return self


# The cached_property values of a DecisionRecord.
_DERIVED = frozenset({"log_entry", "_registry", "parties"})


def recorded_extras(decision: bytes) -> tuple[tuple[LedgerRead, ...], str]:
    """(ledger_reads, resolves) as the decision bytes hold them; empty for bytes that
    carry neither (or are not a decision document)."""
    try:
        body: Any = json.loads(decision)
    except ValueError:
        return (), ""
    if not isinstance(body, dict):
        return (), ""
    reads = tuple(
        LedgerRead(str(r["licence_number"]), str(r["control_code"]), r["remaining"])
        for r in body.get("ledger_reads", ())
    )
    review = body.get("review")
    return reads, str(review["resolves"]) if isinstance(review, dict) else ""


@dataclass(frozen=True)
class RegistryClaim:
    """The registry rows a decision writes: under each issuer key, its certificate
    number used by this decision."""

    issuers: tuple[str, ...]
    certificate_number: str
    entry: RegistryEntry


def recorded_registry(
    decision: bytes, decision_id: str = ""
) -> tuple[tuple[RegistryRead, ...], RegistryClaim | None]:
    """(registry reads, registry claim of decision `decision_id`) as the decision bytes
    hold them."""
    try:
        body: Any = json.loads(decision)
    except ValueError:
        return (), None
    if not isinstance(body, dict):
        return (), None
    reads = tuple(RegistryRead.model_validate(r) for r in body.get("registry_reads", ()))
    end_user, number = body.get("end_user"), body.get("certificate_number")
    if not isinstance(end_user, dict) or not number:
        return reads, None
    issuers = issuer_keys(
        (tuple(r) for r in end_user.get("registrations", ())),
        str(end_user.get("country_code", "")),
        str(end_user.get("legal_name", "")),
    )
    entry = RegistryEntry(
        euc_digest=str(body.get("euc_digest", "")),
        decision_id=decision_id,
        outcome=str(body.get("outcome", "")),
    )
    return reads, RegistryClaim(issuers, str(number), entry)


def recorded_parties(decision: bytes) -> frozenset[str]:
    """The importer and end-user registrations ("SCHEME:VALUE") the decision bytes hold;
    empty for bytes that name none (or are not a decision document)."""
    try:
        body: Any = json.loads(decision)
    except ValueError:
        return frozenset()
    if not isinstance(body, dict):
        return frozenset()
    found: set[str] = set()
    for role in ("importer", "end_user"):
        party = body.get(role)
        if isinstance(party, dict):
            found.update(f"{scheme}:{value}" for scheme, value in party.get("registrations", ()))
    return frozenset(found)


class RegistryChanged(FailedPrecondition):
    """A decision that read the registry of decided EUCs, which concurrent decisions
    changed since: `entries` holds what the store holds now under the keys it read; the
    gate decides again on them, outside the store's transaction."""

    reason = "REGISTRY_CHANGED"

    def __init__(
        self, message: str, *, entries: Mapping[tuple[str, str], RegistryEntry | None]
    ) -> None:
        super().__init__(message)
        self.entries = dict(entries)


class QuotaTaken(FailedPrecondition):
    """An approval whose reservations no longer fit: concurrent approvals took the
    quota after it was decided. `approved` holds the approved totals the store saw per
    (licence, control code), in the reservations' units; the gate decides again on
    them, outside the store's transaction."""

    reason = "QUOTA_EXHAUSTED"

    def __init__(self, message: str, *, approved: Mapping[tuple[str, str], Decimal]) -> None:
        super().__init__(message)
        self.approved = dict(approved)


@dataclass(frozen=True)
class LicenceBalance:
    """What the ledger holds under one (licence, control code): totals approved and
    shipped, decimals in `unit` (the unit the first approval was reserved in)."""

    licence_number: str
    control_code: str
    unit: str
    approved: Decimal
    shipped: Decimal


@dataclass(frozen=True)
class Shipment:
    """A customs gateway's debit of what shipped under an approval. `shipment_id` is
    assigned by the service; `gateway_reference` is the gateway's idempotency key."""

    shipment_id: str
    decision_id: str
    caller: str
    gateway_reference: str
    control_code: str
    quantity: Decimal
    unit: str
    recorded_at: datetime
    licence_number: str = ""  # filled in by the store from the approval

    def same_request(self, other: Shipment) -> bool:
        """Whether `other` asks for the same debit (a retry), ignoring ids and times."""
        return (self.decision_id, self.control_code, self.quantity, self.unit) == (
            other.decision_id,
            other.control_code,
            other.quantity,
            other.unit,
        )


@dataclass(frozen=True)
class ShipmentResult:
    """What `Store.record_shipment` stored, or the earlier debit when `replayed`."""

    shipment: Shipment
    replayed: bool
    leaf_index: int | None = None


@dataclass(frozen=True)
class AppendResult:
    """What `Store.append` stored: the earlier record when `replayed` is true.

    `leaf_index` is the record's position in the audit log. `checkpoint` is the signed
    checkpoint of the commit that answered this append (the store signs one after each
    batch), or None when the store has no checkpoint signer.
    """

    record: DecisionRecord
    replayed: bool
    leaf_index: int | None = None
    checkpoint: StoredCheckpoint | None = None


@dataclass(frozen=True)
class StoreStats:
    """Counters since open: how a store's writer is doing (for metrics and tests)."""

    commits: int  # transactions committed (one per batch)
    appended: int  # records newly stored
    replayed: int  # appends answered with an earlier record
    failed_batches: int  # transactions that did not commit; their callers got StoreError
    queued: int  # writes waiting for the writer right now
    pending: int  # writes submitted and not yet answered (queued or being committed)


@dataclass(frozen=True)
class TreeState:
    """The integrated audit-log tree: its size and RFC 9162 root (not a checkpoint)."""

    size: int
    root: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint (C2SP signed note) and the tree size it commits to."""

    size: int
    note: str


def check_log_index(index: int, size: int, *, field: str = "leaf_index") -> None:
    """Raises InvalidSubmission (LOG_INDEX_INVALID, LOG_INDEX_BEYOND_SIZE) unless
    0 <= index < size."""
    if index < 0:
        raise InvalidSubmission(
            f"{field} must not be negative, got {index}", reason="LOG_INDEX_INVALID", field=field
        )
    if index >= size:
        raise InvalidSubmission(
            f"{field} {index} is not below the tree size {size}",
            reason="LOG_INDEX_BEYOND_SIZE",
            field=field,
        )


def check_log_size(size: int, integrated: int, *, field: str = "tree_size") -> None:
    """Raises InvalidSubmission (LOG_SIZE_INVALID, LOG_SIZE_BEYOND_TREE) unless
    0 <= size <= integrated."""
    if size < 0:
        raise InvalidSubmission(
            f"{field} must not be negative, got {size}", reason="LOG_SIZE_INVALID", field=field
        )
    if size > integrated:
        raise InvalidSubmission(
            f"{field} {size} is past the log's size {integrated}",
            reason="LOG_SIZE_BEYOND_TREE",
            field=field,
        )


@dataclass(frozen=True)
class DecisionFilter:
    """Filters for `Store.list`; an empty field does not filter.

    The time window is half-open: decided_after <= decided_at < decided_before.
    Raises InvalidSubmission (with the offending field) for an unknown outcome or a
    naive datetime, so an invalid filter can never reach a store.
    """

    importer_registration: str = ""
    outcome: str = ""
    decided_after: datetime | None = None
    decided_before: datetime | None = None
    unresolved: bool = False  # only decisions no review has resolved yet
    # Only decisions naming one of these importer/end-user registrations ("SCHEME:VALUE"):
    # an importer caller's scope. None: every decision. Applied in the store's query.
    parties: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.outcome and self.outcome not in _OUTCOMES:
            raise InvalidSubmission(
                f"outcome filter must be one of {sorted(_OUTCOMES)}, got {self.outcome!r}",
                reason="OUTCOME_INVALID",
                field="outcome",
            )
        for name in ("decided_after", "decided_before"):
            when: datetime | None = getattr(self, name)
            if when is None:
                continue
            try:
                object.__setattr__(self, name, _aware_utc(when, name))
            except ValueError as exc:
                raise InvalidSubmission(str(exc), field=name) from exc

    def fingerprint(self) -> str:
        """A short digest of the filter, binding page tokens to the query that made them."""
        window = [
            None if self.decided_after is None else to_micros(self.decided_after),
            None if self.decided_before is None else to_micros(self.decided_before),
        ]
        fields: list[Any] = [self.importer_registration, self.outcome, *window]
        if self.unresolved:  # appended only when set: earlier tokens stay valid
            fields.append("unresolved")
        if self.parties is not None:
            fields.append(sorted(self.parties))
        text = json.dumps(fields)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PageCursor:
    """Keyset position: the last record of the previous page (newest-first order)."""

    decided_at: datetime
    decision_id: str


@dataclass(frozen=True)
class Page:
    """One page of `Store.list`; `next_page_token` is "" on the last page."""

    records: tuple[DecisionRecord, ...]
    next_page_token: str


def encode_page_token(flt: DecisionFilter, cursor: PageCursor) -> str:
    """An opaque token for the page after `cursor`, valid only with the same filter."""
    body = {
        "v": _TOKEN_VERSION,
        "f": flt.fingerprint(),
        "t": to_micros(cursor.decided_at),
        "i": cursor.decision_id,
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(flt: DecisionFilter, token: str) -> PageCursor | None:
    """The cursor in `token`, or None for "" (the first page).

    Raises InvalidSubmission (reason PAGE_TOKEN_INVALID, field page_token) if the token
    is garbled or was issued for other filters.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise _bad_token("page_token is not a token this service issued") from exc
    if not isinstance(body, dict) or body.get("v") != _TOKEN_VERSION:
        raise _bad_token("page_token is not a token this service issued")
    micros, decision_id, fingerprint = body.get("t"), body.get("i"), body.get("f")
    if (
        type(micros) is not int
        or not isinstance(decision_id, str)
        or not isinstance(fingerprint, str)
    ):
        raise _bad_token("page_token is not a token this service issued")
    if fingerprint != flt.fingerprint():
        raise _bad_token("page_token was issued for a request with other filters")
    try:
        decided_at = from_micros(micros)
    except OverflowError as exc:
        raise _bad_token("page_token is not a token this service issued") from exc
    return PageCursor(decided_at=decided_at, decision_id=decision_id)


def _bad_token(message: str) -> InvalidSubmission:
    return InvalidSubmission(message, reason=PAGE_TOKEN_INVALID, field="page_token")


class Decisions(Protocol):
    """Recorded decisions, read back. Every method raises StoreError when the storage
    fails or the store is closed (a client should retry those)."""

    def find_request(self, caller: str, request_id: str) -> DecisionRecord | None:
        """The committed record for (caller, request_id), or None."""
        ...

    def get(self, decision_id: str) -> DecisionRecord | None:
        """The committed record with `decision_id`, or None."""
        ...

    def list(self, flt: DecisionFilter, page_size: int, page_token: str) -> Page:
        """Committed records matching `flt`, newest first (decided_at, then decision_id).

        `page_size` (>= 1) is taken as given: the caller caps it. Raises
        InvalidSubmission (PAGE_TOKEN_INVALID, field page_token) for a garbled token or
        one issued for other filters, and (PAGE_SIZE_INVALID, field page_size) for
        page_size < 1.
        """
        ...

    def resolution_of(self, decision_id: str) -> str | None:
        """The id of the decision that resolved referral `decision_id`, or None."""
        ...


class Recorder(Protocol):
    """The writes, each committed durably (and fsync'd) before it returns, with its
    audit-log leaf in the same transaction (store.sequencer says what each checks)."""

    def append(self, record: DecisionRecord) -> AppendResult:
        """Store `record`.

        If (caller, request_id) is already stored with the same envelope_digest, returns
        the earlier record with replayed=True and stores nothing. Raises RequestConflict
        (REQUEST_ID_REUSED) if it is stored with another digest. Concurrent duplicates
        resolve the same way: exactly one is stored. The record's `reservations` are
        taken from the quota ledger in the same transaction; if one no longer fits (a
        concurrent approval took the balance) raises QuotaTaken with the totals seen,
        and stores nothing. The registry entries the decision read must still be what
        the store holds, else RegistryChanged with what it holds now; a decision (not
        a resolution) then takes its EUC in the registry (store.sequencer says when).
        A record that `resolves` a referral already resolved raises FailedPrecondition
        (REFERRAL_ALREADY_RESOLVED).
        """
        ...

    def record_shipment(self, shipment: Shipment) -> ShipmentResult:
        """Debit a shipment against the approval it names, with its own log entry.

        The same gateway_reference with the same request returns the earlier debit
        (replayed); with another request raises RequestConflict
        (SHIPMENT_REFERENCE_REUSED). Raises NotFound (DECISION_NOT_FOUND), and
        FailedPrecondition: SHIPMENT_NOT_APPROVED (the decision reserved nothing under
        that control code), SHIPMENT_EXCEEDS_APPROVAL (more than approved, with earlier
        debits), QUOTA_UNIT_MISMATCH (a unit that does not convert).
        """
        ...


class Registry(Protocol):
    """The registry of decided EUCs (core.registry), as committed."""

    def registry_entry(self, issuer: str, certificate_number: str) -> RegistryEntry | None:
        """The decision that used (issuer, certificate number), or None."""
        ...


class Ledger(Protocol):
    """The quota ledger's committed totals."""

    def balances(self, licence_number: str) -> builtins.list[LicenceBalance]:
        """The committed ledger rows of a licence, by control code."""
        ...


class Bundles(Protocol):
    """Every policy bundle ever used, by digest (replay loads them)."""

    def put_bundle(self, digest: str, canonical: bytes) -> None:
        """Keep a policy bundle's canonical bytes under its digest, durably; idempotent.

        Raises BundleError if `digest` is already stored with other bytes.
        """
        ...

    def get_bundle(self, digest: str) -> bytes | None:
        """The canonical bytes stored under `digest`, or None."""
        ...


class AuditLog(Protocol):
    """The audit log: one leaf per recorded decision, shipment or resolution."""

    def tree_state(self) -> TreeState:
        """The committed tree: size and root."""
        ...

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The latest signed checkpoint, or None before the first one."""
        ...

    def leaf_index(self, record_id: str) -> int | None:
        """The log position of a committed decision or shipment, or None."""
        ...

    def inclusion_proof(self, index: int, size: int) -> tuple[bytes, builtins.list[bytes]]:
        """(leaf hash, RFC 9162 inclusion proof) of leaf `index` in the tree of `size`.

        O(log n) reads. Raises InvalidSubmission: LOG_SIZE_INVALID / LOG_SIZE_BEYOND_TREE
        (field tree_size), LOG_INDEX_INVALID / LOG_INDEX_BEYOND_SIZE (field leaf_index).
        """
        ...

    def consistency_proof(self, first: int, second: int) -> builtins.list[bytes]:
        """RFC 9162 consistency proof from the tree of `first` leaves to that of `second`.

        O(log n) reads. Raises InvalidSubmission: LOG_SIZE_INVALID / LOG_SIZE_BEYOND_TREE
        (fields first_size, second_size), PROOF_SIZES_INVALID when first > second.
        """
        ...

    def entries(self, start: int, count: int) -> builtins.list[bytes]:
        """Up to `count` log entries from index `start`, as the exact leaf bytes."""
        ...

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint the log signed for tree size `size` (every one is kept), or
        None if it signed none at that size."""
        ...

    def cosignatures(self, size: int) -> builtins.list[str]:
        """The witnesses' cosignature lines (C2SP tlog-cosignature) kept for the
        checkpoint of `size`, by witness name."""
        ...


class Witnessed(Protocol):
    """Where the log keeps what its witnesses cosigned."""

    def add_cosignature(self, size: int, witness: str, signature: str) -> None:
        """Keep `witness`'s cosignature line of the checkpoint of `size`; idempotent."""
        ...


class Store(Decisions, Recorder, Ledger, Registry, Bundles, AuditLog, Witnessed, Protocol):
    """A whole store, as the server opens it; its parts go to whoever uses them."""

    def ping(self) -> None:
        """Return when the storage answers a trivial query; raise StoreError when it does
        not (readiness checks call this)."""
        ...

    def stats(self) -> StoreStats:
        """A snapshot of the writer's counters."""
        ...

    def observe_writes(self, observer: WriteObserver | None) -> None:
        """Tell `observer` of every batch the writer commits (None stops it)."""
        ...

    def close(self) -> None:
        """Finish pending writes, then release the storage; later calls raise StoreError."""
        ...


class WriteObserver(Protocol):
    """Told of the writer's work; called on the writer thread, so it must be quick."""

    def batch_committed(self, size: int, seconds: float) -> None:
        """A batch of `size` jobs went through the driver (committed or failed)."""

    def decision_recorded(self, outcome: str) -> None:
        """A commit recorded a new decision (not a replayed one) with `outcome`."""
