"""google.rpc.Status errors: a stable reason code in ErrorInfo, bad fields in BadRequest.

Clients in any language read these from the `grpc-status-details-bin` trailer. Unary
handlers run under `rpc_handler`, which binds the log context and turns errors into a
status: an EucgateError into its documented code, anything else into a plain INTERNAL
with a reference id (never a stack trace, never UNKNOWN).

Request bodies that do not decode never reach a handler as an error of gRPC's own
(INTERNAL "Exception deserializing request!"): `tolerant` wraps a method's request
deserializer so that a failure yields an `Undecodable` value, which the access
interceptor answers with INVALID_ARGUMENT REQUEST_UNDECODABLE (`undecodable_status`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from eucgate.errors import (
    BundleError,
    ConfigError,
    DeadlineExceeded,
    EucgateError,
    FailedPrecondition,
    FieldViolation,
    InvalidSubmission,
    NotFound,
    PermissionDenied,
    RequestConflict,
    StoreError,
)

DOMAIN = "eucgate.v1"

log = structlog.get_logger("eucgate.api")

_CODES: tuple[tuple[type[EucgateError], grpc.StatusCode], ...] = (
    (InvalidSubmission, grpc.StatusCode.INVALID_ARGUMENT),
    (RequestConflict, grpc.StatusCode.ALREADY_EXISTS),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    # A bundle that failed a reload: the service keeps its active one.
    (BundleError, grpc.StatusCode.FAILED_PRECONDITION),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
)


def status_for(error: EucgateError) -> grpc.Status:
    """The gRPC status a client gets for `error`; unknown kinds are INTERNAL."""
    code = next((c for kind, c in _CODES if isinstance(error, kind)), grpc.StatusCode.INTERNAL)
    return build_status(code, error.reason, str(error), error.violations)


def build_status(
    code: grpc.StatusCode,
    reason: str,
    message: str,
    field_violations: Mapping[str, str] | Sequence[FieldViolation] | None = None,
    metadata: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> grpc.Status:
    """Assemble a google.rpc.Status with ErrorInfo (and BadRequest when fields are named:
    one violation per entry, in order, each with its own reason; a mapping's entries
    take `reason`; and RetryInfo when `retry_after` seconds are given)."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))
    details = [info]
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(round(retry_after * 1000))
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    if isinstance(field_violations, Mapping):
        field_violations = [FieldViolation(f, d, reason) for f, d in field_violations.items()]
    if field_violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in field_violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(status)


Svc = TypeVar("Svc")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Svc, Req, grpc.ServicerContext], Resp]


def rpc_handler(method: Handler[Svc, Req, Resp]) -> Handler[Svc, Req, Resp]:
    """Wrap a unary handler: log context, and errors as google.rpc.Status ."""

    @functools.wraps(method)
    def wrapper(self: Svc, request: Req, context: grpc.ServicerContext) -> Resp:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            rpc=method.__name__, request_id=getattr(request, "request_id", "") or None
        )
        try:
            return method(self, request, context)
        except EucgateError as exc:
            log.info("rpc_refused", reason=exc.reason, field=exc.field or None)
            context.abort_with_status(status_for(exc))
        except Exception:
            context.abort_with_status(internal_failure())
        raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover

    return wrapper


def internal_failure(**log_fields: Any) -> grpc.Status:
    """Log the exception being handled under a fresh reference and return the INTERNAL
    status that names it: the client gets the reference, never a stack trace."""
    ref = uuid.uuid4().hex[:12]
    log.exception("rpc_failed", error_ref=ref, **log_fields)
    return build_status(
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
        f"internal error, reference {ref}",
        metadata={"error_ref": ref},
    )


# --- request bodies that do not decode -------------------------------------------------


@dataclass(frozen=True)
class Undecodable:
    """What a `tolerant` deserializer yields for bytes that are not the request message:
    never a request, only a marker for the interceptor to refuse."""

    method: str
    size: int
    problem: str


Deserializer = Callable[[bytes], Any]


def tolerant(deserializer: Deserializer | None, method: str) -> Deserializer | None:
    """`deserializer` made total: bytes it cannot parse (random or truncated protobuf, a
    string field that is not UTF-8) yield an `Undecodable` instead of raising, so that
    the call reaches the interceptor, which refuses it as INVALID_ARGUMENT, rather than
    gRPC answering INTERNAL before any of our code runs. Never raises."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf raises DecodeError, others ValueError
            return Undecodable(method, len(data), exc.__class__.__name__)

    return decode


def undecodable_status(body: Undecodable) -> grpc.Status:
    """INVALID_ARGUMENT REQUEST_UNDECODABLE for a body that did not decode."""
    log.info("rpc_undecodable", rpc=body.method, size=body.size, problem=body.problem)
    return build_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_UNDECODABLE",
        f"the request body ({body.size} bytes) is not a valid {body.method.rsplit('/', 1)[-1]} "
        "request message: protobuf that does not parse, or a string field that is not UTF-8",
    )
