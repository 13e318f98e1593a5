"""What a decision is: outcome, reasons, and the facts a customs gateway needs.

These are the domain types `decide()` returns; the API edge maps them to eucgate.v1
messages. They are frozen: a Decision is never edited after it is made.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from eucgate.core.ledger import LedgerRead


class Outcome(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    REFERRED = "REFERRED"


class RuleOutcome(StrEnum):
    REJECT = "REJECT"
    REFER = "REFER"


class Family(StrEnum):
    """Rule families of DOMAIN.md's catalogue; ENG is the engine failing closed."""

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
    message: str
    field: str = ""


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
    keyid: str
    role: str = ""
    subject: str = ""
    certificate_digest: str = ""
    organization: str = ""
    country: str = ""
    registrations: tuple[str, ...] = ()
    key_algorithm: str = ""
    checked_at: datetime | None = None
    verified: bool = False
    failure: str = ""
    detail: str = ""
    revocation: str = ""
    revocation_failure: str = ""
    revocation_detail: str = ""


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
    reviewer: str  # the caller identity that resolved it
    note: str  # the reviewer's reason, as given


class Decision(_Frozen):
    """The result of `decide()`; identity (decision id, request id) is added by the edge.

    `ledger_reads` are the quota balances the rules read; `review` is set only on the
    decision that resolves a referral. Both are left out of the dump when empty, so
    decisions that have neither keep the bytes they always had.
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
    review: Review | None = None

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.ledger_reads:
            data.pop("ledger_reads", None)
        if self.review is None:
            data.pop("review", None)
        return data


_RANK = {RuleOutcome.REJECT: 2, RuleOutcome.REFER: 1}


def outcome_of(reasons: tuple[Reason, ...] | list[Reason]) -> Outcome:
    """Precedence REJECT > REFER > APPROVE; no reasons means APPROVED."""
    worst = max((_RANK[r.outcome] for r in reasons), default=0)
    return {2: Outcome.REJECTED, 1: Outcome.REFERRED, 0: Outcome.APPROVED}[worst]
