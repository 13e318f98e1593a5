"""The one base of every check this library makes offline: a reason code and a message.

`ReceiptError`, `CheckpointError`, `ProofError` and `EnvelopeError` derive from it, so a
caller that only needs to know "did it verify, and if not why" catches one class and
reads `reason` (the stable codes are listed in docs/reason-codes.md).
"""

from __future__ import annotations


class VerificationError(Exception):
    """Something did not verify; `reason` is a stable code, the message says what."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
