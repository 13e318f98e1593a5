"""What a decision is: outcome, reasons, and the facts a customs gateway needs.

These are the domain types `decide()` returns; the API edge maps them to eucgate.v1
messages. They are frozen: a Decision is never edited after it is made.

A decision is bounded whatever it is fed: the text it takes from outside the bundle
(reason messages, what signer certificates say) is clipped to a number of canonical-JSON
bytes (`clip`), signer registrations and reasons are counted (`bounded_reasons`), and the
certificate fields it copies are bounded by the model. So its canonical JSON stays under
MAX_DECISION_BYTES, and its audit-log entry under the 65,535 bytes of a tlog-tiles entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from eucgate.core.ledger import LedgerRead
from eucgate.core.registry import RegistryRead

# Canonical-JSON bytes (escapes counted) of one reason's message and cited field path.
MAX_REASON_MESSAGE_BYTES = 512
MAX_REASON_FIELD_BYTES = 64
# The messages of one decision share this many bytes; once it is spent, each further
# message keeps MIN_REASON_MESSAGE_BYTES. (The sample bundle's messages are 400 bytes
# at most, and an ordinary decision has a few.)
MAX_REASON_TEXT_BYTES = 4096
MIN_REASON_MESSAGE_BYTES = 96
# Reasons one rule keeps for one decision: with more findings, the first ones and one
# reason counting the rest.
MAX_REASONS_PER_RULE = 6
# Reasons of one decision; past it, one last reason names the rules left out.
MAX_REASONS = 20
# What the verifier concludes about a signature, as a decision keeps it: the text a
# signer's certificate supplies, and the engine's own codes. The organisation and each
# registration keep room for the party names and registrations the model accepts (a
# clipped value ends in "…"), so clipping does not make a signer look like a party.
MAX_SIGNER_TEXT_BYTES = 80
MAX_SIGNER_CODE_BYTES = 32
MAX_SIGNER_KEYID_BYTES = 68  # a DSSE keyid is 64 hex digits
MAX_SIGNER_ORGANIZATION_BYTES = 160
MAX_SIGNER_REGISTRATION_BYTES = 120
MAX_SIGNER_REGISTRATIONS = 3
# A reviewer's note as a resolution keeps it, and the reviewer's identity.
MAX_REVIEW_NOTE_BYTES = 2000
MAX_REVIEWER_BYTES = 128
# The canonical JSON of any decision `decide()` or a review makes (tests hold it).
MAX_DECISION_BYTES = 26 * 1024
_ELLIPSIS = "…"


def _json_cost(ch: str) -> int:
    """Bytes `ch` takes in canonical JSON (core.canonical: UTF-8, minimal escapes)."""
    code = ord(ch)
    if ch in '"\\\b\f\n\r\t':
        return 2
    if code < 0x20:
        return 6  # \u00XX
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


# Characters canonical JSON escapes: in two bytes (\" \\ \b \f \n \r \t) or six (\u00XX).
_TWO_BYTE_ESCAPES = re.compile('["\\\\\x08\x0c\n\r\t]')
_SIX_BYTE_ESCAPES = re.compile("[\x00-\x07\x0b\x0e-\x1f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of canonical JSON, ending in "…" when cut.

    Lone surrogates, which UTF-8 cannot carry, become U+FFFD. Every reason message
    passes here, so text that fits is measured at C speed and returned whole; only
    text that must be cut is walked character by character.
    """
    text = _SURROGATES.sub("\ufffd", text)
    if json_cost(text) <= limit:
        return text
    room = limit - len(_ELLIPSIS.encode())  # what the text keeps when it is cut
    used = 0
    cut = 0
    for i, ch in enumerate(text):
        cost = _json_cost(ch)
        if used + cost <= room:
            cut = i + 1
        used += cost
        if used > limit:
            return text[:cut] + _ELLIPSIS
    return text


def json_cost(text: str) -> int:
    """Bytes `text` takes inside a canonical-JSON string (without the quotes); a lone
    surrogate counts as the U+FFFD it becomes."""
    return (
        len(text.encode("utf-8", "surrogatepass"))
        + len(_TWO_BYTE_ESCAPES.findall(text))
        + 5 * len(_SIX_BYTE_ESCAPES.findall(text))
    )


def _clipped(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: clip(value, limit))


SignerText = Annotated[str, _clipped(MAX_SIGNER_TEXT_BYTES)]
SignerCode = Annotated[str, _clipped(MAX_SIGNER_CODE_BYTES)]


class Outcome(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    REFERRED = "REFERRED"


class RuleOutcome(StrEnum):
    REJECT = "REJECT"
    REFER = "REFER"


class Family(StrEnum):
    """Rule families of the rule catalogue (docs/reason-codes.md); ENG is the engine failing
    closed."""

    SIG = "SIG"
    DOC = "DOC"
    CMT = "CMT"
    ITM = "ITM"
    EUS = "EUS"
    DST = "DST"
    PTY = "PTY"
    LIC = "LIC"
    QTY = "QTY"
    RF = "RF"
    ENG = "ENG"
    REV = "REV"  # a person's review of a referred decision


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(_Frozen):
    """One fired rule. `field` is the certificate path cited ("" for envelope-level)."""

    rule_id: str
    family: Family
    outcome: RuleOutcome
    message: Annotated[str, _clipped(MAX_REASON_MESSAGE_BYTES)]
    field: Annotated[str, _clipped(MAX_REASON_FIELD_BYTES)] = ""


class SignerResult(_Frozen):
    """What the verifier concluded about one envelope signature.

    `role` is the signer role whose trust anchors the chain reached ("" if none);
    `failure` is a stable reason code ("" when verified). `organization`, `country` and
    `registrations` ("SCHEME:VALUE") are read from the leaf for binding signer to party.
    `checked_at` is the time the certificates were checked at. `revocation` is "good",
    "unknown" (then `revocation_failure` holds the code: the rules refer it to a
    person), "not_checked" (the policy asks for no CRLs) or "" when not reached.
    """

    index: int
    keyid: Annotated[str, _clipped(MAX_SIGNER_KEYID_BYTES)]
    role: SignerCode = ""
    subject: Annotated[str, _clipped(2 * MAX_SIGNER_TEXT_BYTES)] = ""
    certificate_digest: Annotated[str, _clipped(64)] = ""
    organization: Annotated[str, _clipped(MAX_SIGNER_ORGANIZATION_BYTES)] = ""
    country: Annotated[str, _clipped(8)] = ""
    registrations: Annotated[
        tuple[Annotated[str, _clipped(MAX_SIGNER_REGISTRATION_BYTES)], ...],
        AfterValidator(lambda regs: regs[:MAX_SIGNER_REGISTRATIONS]),
    ] = ()
    key_algorithm: SignerCode = ""
    checked_at: datetime | None = None
    verified: bool = False
    failure: SignerCode = ""
    detail: Annotated[str, _clipped(2 * MAX_SIGNER_TEXT_BYTES)] = ""
    revocation: SignerCode = ""
    revocation_failure: SignerCode = ""
    revocation_detail: SignerText = ""


class PartySummary(_Frozen):
    legal_name: str
    country_code: str
    registrations: tuple[tuple[str, str], ...] = ()  # (scheme, value)


class ApprovedItem(_Frozen):
    description: str
    hs_code: str
    elements: tuple[str, ...]
    form: str  # ItemForm name without prefix, e.g. "MAGNET"
    quantity: str  # decimal string
    unit: str


class Review(_Frozen):
    """A person's resolution of a REFERRED decision: which one, by whom, and why."""

    resolves: str  # decision id of the REFERRED decision
    reviewer: Annotated[str, _clipped(MAX_REVIEWER_BYTES)]  # the caller that resolved it
    note: Annotated[str, _clipped(MAX_REVIEW_NOTE_BYTES)]  # the reviewer's reason, as given


class Decision(_Frozen):
    """The result of `decide()`; identity (decision id, request id) is added by the edge.

    `ledger_reads` are the quota balances the rules read, `registry_reads` the entries of
    the registry of decided EUCs they read; `review` is set only on the decision that
    resolves a referral. Each is left out of the dump when empty, so decisions that
    have none keep the bytes they always had.
    """

    outcome: Outcome
    reasons: tuple[Reason, ...]
    bundle_digest: str
    euc_digest: str
    decided_at: datetime
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    approved_items: tuple[ApprovedItem, ...] = ()
    certificate_number: str = ""
    importer: PartySummary | None = None
    end_user: PartySummary | None = None
    licence_number: str = ""
    signers: tuple[SignerResult, ...] = ()
    ledger_reads: tuple[LedgerRead, ...] = ()
    registry_reads: tuple[RegistryRead, ...] = ()
    review: Review | None = None

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.ledger_reads:
            data.pop("ledger_reads", None)
        if not self.registry_reads:
            data.pop("registry_reads", None)
        if self.review is None:
            data.pop("review", None)
        return data


_RANK = {RuleOutcome.REJECT: 2, RuleOutcome.REFER: 1}


def outcome_of(reasons: Sequence[Reason]) -> Outcome:
    """Precedence REJECT > REFER > APPROVE; no reasons means APPROVED."""
    worst = max((_RANK[r.outcome] for r in reasons), default=0)
    return {2: Outcome.REJECTED, 1: Outcome.REFERRED, 0: Outcome.APPROVED}[worst]


def bounded_reasons(reasons: Sequence[Reason]) -> tuple[Reason, ...]:
    """At most MAX_REASONS_PER_RULE reasons per rule (the last counting the rest), at
    most MAX_REASONS in all (the last naming the rules left out), and messages within
    MAX_REASON_TEXT_BYTES together (see there).

    The outcome never changes: a reason standing for others carries the strictest
    outcome among them, and `outcome_of` gives the same for the bounded reasons as for
    all of them. Order is kept; pure.
    """
    per_rule: dict[str, list[Reason]] = {}
    for reason in reasons:
        per_rule.setdefault(reason.rule_id, []).append(reason)
    kept: list[Reason] = []
    for rule_id, fired in per_rule.items():
        if len(fired) <= MAX_REASONS_PER_RULE:
            kept.extend(fired)
            continue
        rest = fired[MAX_REASONS_PER_RULE - 1 :]
        kept.extend(fired[: MAX_REASONS_PER_RULE - 1])
        kept.append(
            Reason(
                rule_id=rule_id,
                family=rest[0].family,
                outcome=_strictest(rest),
                message=f"{rule_id} found {len(rest)} more problems like these, first at "
                f"{rest[0].field or 'the envelope'}: {rest[0].message}",
                field=rest[0].field,
            )
        )
    if len(kept) > MAX_REASONS:
        rest = kept[MAX_REASONS - 1 :]
        rules = list(dict.fromkeys(r.rule_id for r in rest))
        last = Reason(
            rule_id=rest[0].rule_id,
            family=rest[0].family,
            outcome=_strictest(rest),
            message=f"{len(rest)} more reasons left out, of rules {', '.join(rules)}",
            field=rest[0].field,
        )
        kept = [*kept[: MAX_REASONS - 1], last]
    return tuple(_within_text_budget(kept))


def _within_text_budget(reasons: Sequence[Reason]) -> list[Reason]:
    left = MAX_REASON_TEXT_BYTES
    out = []
    for reason in reasons:
        limit = max(MIN_REASON_MESSAGE_BYTES, min(MAX_REASON_MESSAGE_BYTES, left))
        message = clip(reason.message, limit)
        left -= json_cost(message)
        out.append(
            reason
            if message == reason.message
            else Reason(
                rule_id=reason.rule_id,
                family=reason.family,
                outcome=reason.outcome,
                message=message,
                field=reason.field,
            )
        )
    return out


def _strictest(reasons: Sequence[Reason]) -> RuleOutcome:
    return max((r.outcome for r in reasons), key=_RANK.__getitem__)
