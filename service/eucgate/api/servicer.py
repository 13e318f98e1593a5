"""eucgate.v1.CertificateService: request checks and protobuf mapping around `Gate`.

Every handler runs under `_rpc`, which binds the log context and turns errors into
google.rpc.Status: an EucgateError into its documented code, anything else into a
plain INTERNAL with a reference id (never a stack trace, never UNKNOWN).
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import TypeVar, cast

import grpc
import structlog
from eucgate_client.dsse import Envelope, EnvelopeError
from eucgate_client.v1 import (
    certificate_service_pb2 as svc_pb2,
)
from eucgate_client.v1 import (
    certificate_service_pb2_grpc as svc_grpc,
)
from eucgate_client.v1 import (
    decision_pb2,
    envelope_pb2,
)

from eucgate.api.convert import decision_to_proto, outcome_from_proto
from eucgate.api.status import build_status, status_for
from eucgate.errors import DeadlineExceeded, EucgateError, InvalidSubmission, NotFound
from eucgate.gate import Gate, decision_of
from eucgate.ids import is_decision_id
from eucgate.store.base import DecisionFilter, DecisionRecord

log = structlog.get_logger("eucgate.api")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[["CertificateServicer", Req, grpc.ServicerContext], Resp]


def _rpc(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    @functools.wraps(method)
    def wrapper(self: CertificateServicer, request: Req, context: grpc.ServicerContext) -> Resp:
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
            ref = uuid.uuid4().hex[:12]
            log.exception("rpc_failed", error_ref=ref)
            context.abort_with_status(
                build_status(
                    grpc.StatusCode.INTERNAL,
                    "INTERNAL",
                    f"internal error, reference {ref}",
                    metadata={"error_ref": ref},
                )
            )
        raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover

    return wrapper


def caller_of(context: grpc.ServicerContext) -> str:
    """The authenticated caller: the client certificate's CN under mTLS, else anonymous."""
    names = cast(list[bytes], context.auth_context().get("x509_common_name") or [])
    return f"cn:{names[0].decode()}" if names else "anonymous"


def _response_parts(record: DecisionRecord) -> tuple[decision_pb2.Decision, decision_pb2.Receipt]:
    decision = decision_to_proto(record.decision_id, record.request_id, decision_of(record))
    receipt = decision_pb2.Receipt(envelope=envelope_pb2.Envelope.FromString(record.receipt))
    return decision, receipt


class CertificateServicer(svc_grpc.CertificateServiceServicer):
    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    @_rpc
    def SubmitCertificate(
        self, request: svc_pb2.SubmitCertificateRequest, context: grpc.ServicerContext
    ) -> svc_pb2.SubmitCertificateResponse:
        if not REQUEST_ID.fullmatch(request.request_id):
            raise InvalidSubmission(
                "request_id must be 1 to 128 characters from [A-Za-z0-9._:-]",
                reason="REQUEST_ID_INVALID",
                field="request_id",
            )
        envelope = _envelope_of(request)
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            # Nothing recorded yet: the caller has given up, so do not decide.
            raise DeadlineExceeded("deadline exceeded before deciding; nothing was recorded")
        result = self._gate.submit(caller_of(context), request.request_id, envelope)
        structlog.contextvars.bind_contextvars(decision_id=result.record.decision_id)
        log.info("decision", outcome=result.record.outcome, replayed=result.replayed)
        decision, receipt = _response_parts(result.record)
        return svc_pb2.SubmitCertificateResponse(
            decision=decision, receipt=receipt, replayed=result.replayed
        )

    @_rpc
    def GetDecision(
        self, request: svc_pb2.GetDecisionRequest, context: grpc.ServicerContext
    ) -> svc_pb2.GetDecisionResponse:
        if not is_decision_id(request.decision_id):
            raise InvalidSubmission(
                "decision_id must look like dec_ followed by 26 base32 characters",
                reason="DECISION_ID_INVALID",
                field="decision_id",
            )
        record = self._gate.store.get(request.decision_id)
        if record is None:
            raise NotFound(f"no decision {request.decision_id}", reason="DECISION_NOT_FOUND")
        decision, receipt = _response_parts(record)
        return svc_pb2.GetDecisionResponse(decision=decision, receipt=receipt)

    @_rpc
    def ListDecisions(
        self, request: svc_pb2.ListDecisionsRequest, context: grpc.ServicerContext
    ) -> svc_pb2.ListDecisionsResponse:
        if request.page_size < 0:
            raise InvalidSubmission(
                "page_size must not be negative", reason="PAGE_SIZE_INVALID", field="page_size"
            )
        if request.outcome not in decision_pb2.Outcome.values():
            raise InvalidSubmission(
                "outcome is not a known value", reason="OUTCOME_INVALID", field="outcome"
            )
        flt = DecisionFilter(
            importer_registration=request.importer_registration,
            outcome=outcome_from_proto(request.outcome),
            decided_after=(
                request.decided_after.ToDatetime(tzinfo=UTC)
                if request.HasField("decided_after")
                else None
            ),
            decided_before=(
                request.decided_before.ToDatetime(tzinfo=UTC)
                if request.HasField("decided_before")
                else None
            ),
        )
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = self._gate.store.list(flt, size, request.page_token)
        return svc_pb2.ListDecisionsResponse(
            decisions=[_response_parts(r)[0] for r in page.records],
            next_page_token=page.next_page_token,
        )


def _envelope_of(request: svc_pb2.SubmitCertificateRequest) -> Envelope:
    which = request.WhichOneof("signed_certificate")
    try:
        if which == "envelope":
            return Envelope.from_proto(request.envelope)
        if which == "envelope_json":
            return Envelope.from_json(request.envelope_json)
    except EnvelopeError as exc:
        prefix = "envelope" if which == "envelope" else "envelope_json"
        field = f"{prefix}.{exc.field}" if exc.field else prefix
        raise InvalidSubmission(str(exc), reason=exc.reason, field=field) from exc
    raise InvalidSubmission(
        "one of envelope or envelope_json is required",
        reason="ENVELOPE_MISSING",
        field="signed_certificate",
    )
