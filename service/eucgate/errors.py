"""The error tree. Each error carries the stable reason code the API returns in ErrorInfo.

Reason codes are documented in docs/reason-codes.md; a code, once published, never
changes meaning.
"""

from __future__ import annotations


class EucgateError(Exception):
    """Base of every error eucgate raises on purpose."""

    reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, field: str = "") -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.field = field


class InvalidSubmission(EucgateError):
    """Input that cannot be decoded or is over the limits (INVALID_ARGUMENT); nothing recorded."""

    reason = "INVALID_SUBMISSION"


class RequestConflict(EucgateError):
    """The request_id was used before with another envelope (ALREADY_EXISTS)."""

    reason = "REQUEST_ID_REUSED"


class NotFound(EucgateError):
    """No such resource (NOT_FOUND)."""

    reason = "NOT_FOUND"


class BundleError(EucgateError):
    """A policy bundle that fails validation; the message names file, path and line."""

    reason = "BUNDLE_INVALID"


class ConfigError(EucgateError):
    """Service configuration that fails validation at start."""

    reason = "CONFIG_INVALID"


class DeadlineExceeded(EucgateError):
    """The caller's deadline passed before the work began (DEADLINE_EXCEEDED)."""

    reason = "DEADLINE_EXCEEDED"


class StoreError(EucgateError):
    """The store could not do what was asked (UNAVAILABLE to a client: retry)."""

    reason = "STORE_UNAVAILABLE"


class FailedPrecondition(EucgateError):
    """The request is well-formed but the state does not allow it (FAILED_PRECONDITION):
    a quota that cannot cover an approval, a referral already resolved, a shipment past
    what was approved. Nothing is recorded; retrying unchanged will fail again."""

    reason = "FAILED_PRECONDITION"
