"""Replaying one log entry: rebuild the inputs it records, call decide(), compare.

Exact replay loads the bundle the entry names by digest, rebuilds the submission from the
envelope bytes, the clock from `decided_at`, the ledger from `ledger_reads` and the
registry of decided EUCs from the decision's `registry_reads`, calls the same
`core.decide.decide` the server calls, and compares the canonical decision bytes
with the recorded ones: any difference is a finding with a field-level diff. What-if
replay decides the same inputs under a candidate bundle instead and compares outcome and
reasons (rule id, outcome, field), since the bundle digest differs by construction.

Nothing here reads the clock, the network or a file: bundles come from the caller's
`BundleSource`. One `Replayer` per process; it keeps the bundles it parsed and, unless
told not to, a `ChainCache` (which saves work and never changes a decision).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from eucgate_client.dsse import Envelope, EnvelopeError
from eucgate_client.tlog import leaf_hash
from eucgate_client.v1 import envelope_pb2
from google.protobuf.message import DecodeError

from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.canonical import canonical_json
from eucgate.core.decide import decide
from eucgate.core.model import Item, ItemForm, Quantity
from eucgate.core.pki import ChainCache
from eucgate.core.quota import QuotaUnitError, convert
from eucgate.core.registry import RegistryRead, SnapshotRegistry
from eucgate.core.submission import Submission
from eucgate.errors import EucgateError
from eucgate.log.entry import (
    KIND_DECISION,
    KIND_RESOLUTION,
    EntryError,
    LedgerRead,
    LogEntry,
    decode_entry,
    decode_resolution,
)
from eucgate.store.base import from_micros

BundleSource = Callable[[str], bytes | None]
"""The canonical bytes of the bundle with a digest, or None when it is not known."""

MAX_DIFFS = 50  # field differences kept per entry; the count says how many there were
QuotaKey = tuple[str, str, str]  # (licence number, control code or "", unit)


class Status(StrEnum):
    MATCH = "MATCH"  # exact replay: the same decision bytes
    DIFFERENT = "DIFFERENT"  # exact replay: other bytes (a finding)
    UNCHANGED = "UNCHANGED"  # what-if: same outcome and reasons
    CHANGED = "CHANGED"  # what-if: outcome or reasons change
    SKIPPED = "SKIPPED"  # another kind of entry, or outside the filters
    ERROR = "ERROR"  # could not be replayed; `reason` says why


@dataclass(frozen=True)
class Brief:
    """What a decision says that replay reports on: outcome, reasons, quantities taken.

    `reasons` are (rule id, rule outcome, field); `taken` the approved quantities as
    (licence number, control code or "", unit, decimal string).
    """

    outcome: str
    reasons: tuple[tuple[str, str, str], ...]
    taken: tuple[tuple[str, str, str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": [list(r) for r in self.reasons],
            "taken": [list(t) for t in self.taken],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Brief:
        return cls(
            outcome=str(data["outcome"]),
            reasons=tuple((str(a), str(b), str(c)) for a, b, c in data["reasons"]),
            taken=tuple((str(a), str(b), str(c), str(d)) for a, b, c, d in data["taken"]),
        )


@dataclass(frozen=True)
class EntryResult:
    """The replay of one entry. `diffs` are (path, recorded JSON, replayed JSON)."""

    index: int
    status: Status
    reason: str = ""
    message: str = ""
    kind: str = ""
    decision_id: str = ""
    decided_at: str = ""  # ISO 8601 UTC, as recorded
    leaf_hash: str = ""  # hex, of the entry bytes replayed
    certificate_number: str = ""
    licence_number: str = ""
    recorded: Brief | None = None
    replayed: Brief | None = None
    diffs: tuple[tuple[str, str, str], ...] = ()
    diff_count: int = 0
    ledger_reads: tuple[tuple[str, str, str | None], ...] = ()
    bundle_digest: str = ""  # the bundle the entry was decided under, as recorded

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "kind": self.kind,
            "decision_id": self.decision_id,
            "decided_at": self.decided_at,
            "leaf_hash": self.leaf_hash,
            "certificate_number": self.certificate_number,
            "licence_number": self.licence_number,
            "recorded": None if self.recorded is None else self.recorded.to_json(),
            "replayed": None if self.replayed is None else self.replayed.to_json(),
            "diffs": [list(d) for d in self.diffs],
            "diff_count": self.diff_count,
            "ledger_reads": [list(r) for r in self.ledger_reads],
            "bundle_digest": self.bundle_digest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntryResult:
        """Raises KeyError, TypeError or ValueError for a document that is not a result."""
        return cls(
            index=int(data["index"]),
            status=Status(data["status"]),
            reason=str(data["reason"]),
            message=str(data["message"]),
            kind=str(data["kind"]),
            decision_id=str(data["decision_id"]),
            decided_at=str(data["decided_at"]),
            leaf_hash=str(data["leaf_hash"]),
            certificate_number=str(data["certificate_number"]),
            licence_number=str(data["licence_number"]),
            recorded=None if data["recorded"] is None else Brief.from_json(data["recorded"]),
            replayed=None if data["replayed"] is None else Brief.from_json(data["replayed"]),
            diffs=tuple((str(p), str(a), str(b)) for p, a, b in data["diffs"]),
            bundle_digest=str(data.get("bundle_digest", "")),  # absent from older servers
            diff_count=int(data["diff_count"]),
            ledger_reads=tuple(
                (str(lic), str(code), None if rem is None else str(rem))
                for lic, code, rem in data["ledger_reads"]
            ),
        )


@dataclass(frozen=True)
class EntryFilter:
    """Which decisions to replay; empty fields do not filter. The time window is
    half-open, in microseconds since 1970 UTC: after <= decided_at < before."""

    importer: str = ""  # a registration value of the importer
    licence: str = ""
    after_micros: int | None = None
    before_micros: int | None = None

    def admits(self, entry: LogEntry, recorded: Mapping[str, Any]) -> bool:
        if self.after_micros is not None and entry.decided_at_micros < self.after_micros:
            return False
        if self.before_micros is not None and entry.decided_at_micros >= self.before_micros:
            return False
        if self.licence and recorded.get("licence_number") != self.licence:
            return False
        if self.importer:
            importer = recorded.get("importer") or {}
            values = {pair[1] for pair in importer.get("registrations", ()) if len(pair) == 2}
            if self.importer not in values:
                return False
        return True


# What a what-if replay took beyond the record, per (licence, control code): amounts by
# the unit they were taken in. They are converted only where a balance is read, into the
# unit of the quota deciding it: recorded balances, candidate quotas and approved items
# may each be in g, kg or t.
Shift = Mapping[tuple[str, str], Mapping[str, Decimal]]


class RecordedLedger:
    """The balances an entry recorded, as `decide()` reads them; in a what-if replay,
    less what the candidate took beyond the record before it (`shift`).

    A balance the entry does not name reads as None (nothing recorded against it), as
    the server's own ledger snapshot reads it; a decision that reads differently from
    the record shows up in the comparison, since the decision keeps what it read. With a
    shift, a balance is read in the unit of `deciding`'s quota: the recorded balance is
    converted from `recorded`'s quota unit, and one recorded as None starts from
    `deciding`'s whole quota.
    """

    def __init__(
        self,
        reads: Iterable[LedgerRead],
        shift: Shift | None = None,
        *,
        recorded: Bundle | None = None,
        deciding: Bundle | None = None,
    ) -> None:
        self._reads = {(r.licence_number, r.control_code): r.remaining for r in reads}
        self._shift = shift or {}
        self._recorded = recorded
        self._deciding = deciding

    def remaining(self, licence_number: str, control_code: str) -> Decimal | None:
        key = (licence_number, control_code)
        text = self._reads.get(key)
        as_recorded = None if text is None else Decimal(text)
        moved = {unit: amount for unit, amount in self._shift.get(key, {}).items() if amount}
        quota = None if self._deciding is None else _quota(self._deciding, *key)
        if not moved or quota is None:
            return as_recorded
        whole, unit = quota
        try:
            if as_recorded is None:
                balance = whole
            else:
                was = None if self._recorded is None else _quota(self._recorded, *key)
                balance = as_recorded if was is None else convert(as_recorded, was[1], unit)
            return balance - sum((convert(a, u, unit) for u, a in moved.items()), Decimal(0))
        except QuotaUnitError:
            return as_recorded  # units that do not compare: QTY-001 refers such a decision


def _quota(bundle: Bundle, licence_number: str, control_code: str) -> tuple[Decimal, str] | None:
    """(quantity, unit) of a licence's quota for a control code in `bundle`, or None."""
    for licensee in bundle.licensed_importers:
        if licensee.licence_number == licence_number:
            quota = licensee.quota_for(control_code)
            return None if quota is None else (quota.quantity, quota.unit)
    return None


def _candidate_quotas(
    entry: LogEntry, shift: Shift | None, recorded: Bundle | None, candidate: Bundle
) -> Shift:
    """What-if: a quota the candidate changes shifts each recorded balance by the
    change (a cut leaves less to approve; what was approved before stays approved).
    Needs the recorded bundle for its quotas; without it only `shift` applies."""
    shifted = {key: dict(amounts) for key, amounts in (shift or {}).items()}
    if recorded is None:
        return shifted
    for read in entry.ledger_reads:
        if read.remaining is None:
            continue  # nothing recorded against it: the candidate's whole quota is read
        key = (read.licence_number, read.control_code)
        was, now = _quota(recorded, *key), _quota(candidate, *key)
        if was is None or now is None:
            continue
        amounts = shifted.setdefault(key, {})
        amounts[was[1]] = amounts.get(was[1], Decimal(0)) + was[0]
        amounts[now[1]] = amounts.get(now[1], Decimal(0)) - now[0]
    return shifted


def _problem(index: int, reason: str, message: str, **fields: Any) -> EntryResult:
    return EntryResult(index=index, status=Status.ERROR, reason=reason, message=message, **fields)


def diff_json(recorded: Any, replayed: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Every leaf where two JSON documents differ, as (path, recorded, replayed) with the
    values in canonical JSON ("" for a side where the path is absent)."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        out: list[tuple[str, str, str]] = []
        for key in sorted(set(recorded) | set(replayed)):
            where = f"{path}.{key}" if path else key
            if key not in recorded:
                out.append((where, "", _text(replayed[key])))
            elif key not in replayed:
                out.append((where, _text(recorded[key]), ""))
            else:
                out.extend(diff_json(recorded[key], replayed[key], where))
        return out
    if isinstance(recorded, list) and isinstance(replayed, list):
        out = []
        for i in range(max(len(recorded), len(replayed))):
            where = f"{path}[{i}]"
            if i >= len(recorded):
                out.append((where, "", _text(replayed[i])))
            elif i >= len(replayed):
                out.append((where, _text(recorded[i]), ""))
            else:
                out.extend(diff_json(recorded[i], replayed[i], where))
        return out
    if recorded == replayed and type(recorded) is type(replayed):
        return []
    return [(path, _text(recorded), _text(replayed))]


def _text(value: Any) -> str:
    return canonical_json(value).decode()


def _kind_of(raw: bytes) -> str | None:
    """The kind of a version 1 entry that is not a decision, else None."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(body, dict) and body.get("v") == 1:
        kind = body.get("kind")
        if isinstance(kind, str) and kind != KIND_DECISION:
            return kind
    return None


def _covers(bundle: Bundle, item: Mapping[str, Any]) -> str:
    """The control code of the candidate bundle covering an approved item, or ""."""
    try:
        candidate = Item(
            hs_code=item["hs_code"],
            elements=tuple(item["elements"]),
            form=ItemForm(item["form"]),
            quantity=Quantity(value=item["quantity"], unit=item["unit"]),
        )
    except (KeyError, TypeError, ValueError):
        return ""
    return next((c.control_code for c in bundle.controlled_items if c.covers(candidate)), "")


def brief_of(decision: Mapping[str, Any], quota_bundle: Bundle | None) -> Brief:
    """The brief of a decision document; quantities are keyed by the control codes of
    `quota_bundle` (None: no quantities). Raises KeyError/TypeError if not a decision."""
    reasons = tuple(
        (str(r["rule_id"]), str(r["outcome"]), str(r.get("field", ""))) for r in decision["reasons"]
    )
    taken: list[tuple[str, str, str, str]] = []
    if quota_bundle is not None and decision["outcome"] == "APPROVED":
        licence = str(decision.get("licence_number", ""))
        for item in decision.get("approved_items", ()):
            code = _covers(quota_bundle, item)
            taken.append((licence, code, str(item["unit"]), str(item["quantity"])))
    return Brief(outcome=str(decision["outcome"]), reasons=reasons, taken=tuple(taken))


def quota_key(taken: tuple[str, str, str, str]) -> QuotaKey:
    return taken[0], taken[1], taken[2]


@dataclass
class Replayer:
    """Replays entries in one process. `candidate` set: what-if replay under it.

    Never raises for anything in an entry or a bundle: every problem is a result with
    status ERROR and a reason code.
    """

    bundles: BundleSource
    candidate: Bundle | None = None
    entry_filter: EntryFilter = field(default_factory=EntryFilter)
    use_chain_cache: bool = True
    _parsed: dict[str, Bundle | EntryResult] = field(default_factory=dict)
    _cache: ChainCache = field(default_factory=ChainCache)

    def replay(self, index: int, raw: bytes, shift: Shift | None = None) -> EntryResult:
        """Replay the entry at `index`; `shift` (what-if) is what the candidate took
        beyond the record before it, lowering the balances it reads."""
        hashed = leaf_hash(raw).hex()
        try:
            entry = decode_entry(raw)
        except EntryError as exc:
            kind = _kind_of(raw)
            if kind == KIND_RESOLUTION:
                return self._resolution(index, raw, hashed)
            if kind is not None:
                return EntryResult(
                    index=index,
                    status=Status.SKIPPED,
                    reason="REPLAY_KIND_SKIPPED",
                    message=f"a {kind!r} entry records no decision to recompute",
                    kind=kind,
                    leaf_hash=hashed,
                )
            return _problem(index, exc.reason, str(exc), leaf_hash=hashed)
        ident: dict[str, Any] = {
            "kind": entry.kind,
            "decision_id": entry.decision_id,
            "decided_at": from_micros(entry.decided_at_micros).isoformat(),
            "leaf_hash": hashed,
            "ledger_reads": tuple(
                (r.licence_number, r.control_code, r.remaining) for r in entry.ledger_reads
            ),
            "bundle_digest": entry.bundle_digest,
        }
        try:
            recorded = json.loads(entry.decision)
            recorded_brief = brief_of(recorded, self.candidate)
            ident["certificate_number"] = str(recorded.get("certificate_number", ""))
            ident["licence_number"] = str(recorded.get("licence_number", ""))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _problem(
                index,
                "LOG_ENTRY_DIGEST_MISMATCH",
                f"the recorded decision is not a decision: {exc}",
                **ident,
            )
        if not self.entry_filter.admits(entry, recorded):
            return EntryResult(
                index=index, status=Status.SKIPPED, reason="REPLAY_FILTERED", **ident
            )
        bundle = self.candidate if self.candidate is not None else self._bundle(index, entry)
        if isinstance(bundle, EntryResult):
            return EntryResult(
                index=index,
                status=Status.ERROR,
                reason=bundle.reason,
                message=bundle.message,
                recorded=recorded_brief,
                **ident,
            )
        try:
            envelope = Envelope.from_proto(envelope_pb2.Envelope.FromString(entry.envelope))
            submission = Submission.from_envelope(
                envelope,
                max_payload_bytes=max(1, len(envelope.payload)),
                max_signatures=max(1, len(envelope.signatures)),
            )
        except (DecodeError, EnvelopeError, EucgateError) as exc:
            return _problem(
                index,
                "REPLAY_INPUT_INVALID",
                f"the recorded envelope is no longer a submission: {exc}",
                recorded=recorded_brief,
                **ident,
            )
        now = from_micros(entry.decided_at_micros)
        ledger = RecordedLedger(entry.ledger_reads)
        if self.candidate is not None:
            found = self._bundle(index, entry)
            # Without the recorded bundle its quotas are unknown: only `shift` applies.
            recorded_bundle = found if isinstance(found, Bundle) else None
            ledger = RecordedLedger(
                entry.ledger_reads,
                _candidate_quotas(entry, shift, recorded_bundle, self.candidate),
                recorded=recorded_bundle,
                deciding=self.candidate,
            )
        decision = decide(
            submission,
            bundle,
            ledger,
            now,
            registry=SnapshotRegistry.of_reads(
                RegistryRead.model_validate(r) for r in recorded.get("registry_reads", ())
            ),
            chain_cache=self._cache if self.use_chain_cache else None,
        )
        document = decision.model_dump(mode="json")
        if self.candidate is None:
            replayed_bytes = canonical_json(document)
            if replayed_bytes == entry.decision:
                return EntryResult(
                    index=index,
                    status=Status.MATCH,
                    recorded=recorded_brief,
                    replayed=recorded_brief,
                    **ident,
                )
            diffs = diff_json(recorded, json.loads(replayed_bytes))
            return EntryResult(
                index=index,
                status=Status.DIFFERENT,
                reason="REPLAY_DECISION_DIFFERS",
                message=f"{len(diffs)} field(s) differ from the recorded decision"
                if diffs
                else "the same content in other bytes",
                recorded=recorded_brief,
                replayed=brief_of(document, None),
                diffs=tuple(diffs[:MAX_DIFFS]),
                diff_count=len(diffs),
                **ident,
            )
        replayed_brief = brief_of(document, self.candidate)
        changed = replayed_brief.outcome != recorded_brief.outcome or sorted(
            replayed_brief.reasons
        ) != sorted(recorded_brief.reasons)
        return EntryResult(
            index=index,
            status=Status.CHANGED if changed else Status.UNCHANGED,
            recorded=recorded_brief,
            replayed=replayed_brief,
            **ident,
        )

    def _resolution(self, index: int, raw: bytes, hashed: str) -> EntryResult:
        """A reviewer's resolution of a referral: a person's decision, so it is kept as
        recorded (never recomputed) and counted, its approval taking quota as recorded."""
        try:
            entry = decode_resolution(raw)
            recorded = json.loads(entry.decision)
            brief = brief_of(recorded, self.candidate)
        except (EntryError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = exc.reason if isinstance(exc, EntryError) else "LOG_ENTRY_DIGEST_MISMATCH"
            return _problem(index, reason, f"the resolution is not readable: {exc}")
        return EntryResult(
            index=index,
            status=Status.SKIPPED,
            reason="REPLAY_RESOLUTION_KEPT",
            message="a reviewer's decision: kept as recorded, not recomputed",
            kind=KIND_RESOLUTION,
            decision_id=entry.decision_id,
            decided_at=from_micros(entry.decided_at_micros).isoformat(),
            leaf_hash=hashed,
            certificate_number=str(recorded.get("certificate_number", "")),
            licence_number=str(recorded.get("licence_number", "")),
            recorded=brief,
            replayed=brief,
            bundle_digest=entry.bundle_digest,
        )

    def _bundle(self, index: int, entry: LogEntry) -> Bundle | EntryResult:
        digest = entry.bundle_digest
        known = self._parsed.get(digest)
        if known is not None:
            return known
        result: Bundle | EntryResult
        canonical = self.bundles(digest)
        if canonical is None:
            result = _problem(
                index, "REPLAY_BUNDLE_MISSING", f"no policy bundle with digest {digest}"
            )
        else:
            try:
                bundle = parse_bundle(canonical.decode("utf-8"), f"bundle {digest[:12]}")
            except (EucgateError, UnicodeDecodeError) as exc:
                result = _problem(index, "REPLAY_BUNDLE_INVALID", f"bundle {digest}: {exc}")
            else:
                result = bundle
                if bundle.digest != digest:
                    result = _problem(
                        index,
                        "REPLAY_BUNDLE_INVALID",
                        f"the bundle given for {digest} has digest {bundle.digest}",
                    )
        self._parsed[digest] = result
        return result
