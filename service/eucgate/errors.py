"""The error tree. Each error carries the stable reason code the API returns in ErrorInfo.

Reason codes are documented in docs/reason-codes.md; a code, once published, never
changes meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path, what is wrong (without repeating the path)
    and its own reason code; the API returns each as a google.rpc.BadRequest violation."""

    field: str
    description: str
    reason: str


# At most this many field violations in one error, and at most VIOLATION_BYTES of them:
# enough to fix a request in one round, small enough for the whole status to fit the
# 8 KiB of metadata a gRPC client accepts by default (the BadRequest travels base64 in
# the trailers; a client refuses a larger status with RESOURCE_EXHAUSTED).
MAX_FIELD_VIOLATIONS = 50
VIOLATION_BYTES = 3584


def fit_violations(violations: Sequence[FieldViolation]) -> tuple[FieldViolation, ...]:
    """The leading violations within both caps (the first is always kept)."""
    kept: list[FieldViolation] = []
    size = 0
    for v in violations[:MAX_FIELD_VIOLATIONS]:
        # An upper bound of the violation's protobuf encoding (tags and lengths included).
        size += len(v.field.encode()) + len(v.description.encode()) + len(v.reason) + 12
        if kept and size > VIOLATION_BYTES:
            break
        kept.append(v)
    return tuple(kept)


class EucgateError(Exception):
    """Base of every error eucgate raises on purpose.

    `all_violations` lists every bad field the error knows of (by default the one
    `field`, with the message less a leading "field: " as its description);
    `violations` the leading ones within the caps of `fit_violations`, which the API
    returns.
    """

    reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field: str = "",
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.field = field
        if not violations and field:
            violations = (FieldViolation(field, message.removeprefix(f"{field}: "), self.reason),)
        self.all_violations = tuple(violations)
        self.violations = fit_violations(self.all_violations)


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


class PermissionDenied(EucgateError):
    """The caller is identified but its role or importers do not allow this request
    (PERMISSION_DENIED). Nothing is recorded."""

    reason = "PERMISSION_DENIED"
