"""What the decision core may read of the quota ledger: a snapshot, never the store.

The server hands `decide()` a view taken inside the transaction that will record the
decision; replay hands it the balances recorded with the original decision. Either way
the core sees plain values and performs no I/O.
"""

from __future__ import annotations

from typing import Protocol

from eucgate.core.model import Quantity


class LedgerView(Protocol):
    """Remaining quota per licence and controlled item, as of one instant."""

    def remaining(self, licence_number: str, control_code: str) -> Quantity | None:
        """The balance left under a licence for a control code; None when no quota is kept."""
        ...


class EmptyLedger:
    """A ledger that keeps no quotas: every balance is unknown (None)."""

    def remaining(self, licence_number: str, control_code: str) -> Quantity | None:
        return None
