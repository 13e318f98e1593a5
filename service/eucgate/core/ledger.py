"""What the decision core may read of the quota ledger: a snapshot, never the store.

The server hands `decide()` balances it read before deciding; the store re-checks them in
the transaction that records the decision (see `eucgate.licences`). Replay hands it the
balances recorded with the original decision. Either way the core sees plain values and
performs no I/O. Every balance `decide()` reads is kept in `Decision.ledger_reads`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class LedgerView(Protocol):
    """Remaining quota per licence and control code, as of one instant."""

    def remaining(self, licence_number: str, control_code: str) -> Decimal | None:
        """The balance left under a licence's quota for a control code, in the unit the
        bundle keeps that quota in; None when the ledger has recorded nothing against it
        (the bundle's whole quota remains)."""
        ...


class LedgerRead(BaseModel):
    """One balance a decision read: `remaining` is a decimal string, or None (nothing
    recorded, the whole quota remains)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    licence_number: str
    control_code: str
    remaining: str | None


class EmptyLedger:
    """A ledger that has recorded nothing: every quota remains whole (policy tests)."""

    def remaining(self, licence_number: str, control_code: str) -> Decimal | None:
        return None


class SnapshotLedger:
    """Balances read at one instant, keyed by (licence number, control code); a key that
    is absent reads as None."""

    def __init__(self, balances: Mapping[tuple[str, str], Decimal]) -> None:
        self._balances = dict(balances)

    def remaining(self, licence_number: str, control_code: str) -> Decimal | None:
        return self._balances.get((licence_number, control_code))


class RecordingLedger:
    """Wraps a view and keeps every distinct read, in order, for the decision record."""

    def __init__(self, view: LedgerView) -> None:
        self._view = view
        self._reads: dict[tuple[str, str], Decimal | None] = {}

    def remaining(self, licence_number: str, control_code: str) -> Decimal | None:
        key = (licence_number, control_code)
        if key not in self._reads:
            self._reads[key] = self._view.remaining(licence_number, control_code)
        return self._reads[key]

    @property
    def reads(self) -> tuple[LedgerRead, ...]:
        return tuple(
            LedgerRead(
                licence_number=licence,
                control_code=code,
                remaining=None if value is None else format(value, "f"),
            )
            for (licence, code), value in self._reads.items()
        )
