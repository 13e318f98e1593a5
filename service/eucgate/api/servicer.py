"""eucgate.v1.CertificateService: request checks and protobuf mapping around `Gate`.

Every handler runs under `status.rpc_handler`, which turns errors into google.rpc.Status.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
from google.protobuf import timestamp_pb2

from eucgate.api.access import Access, visible_record
from eucgate.api.audit import attach_log_proof
from eucgate.api.convert import decision_to_proto, outcome_from_proto
from eucgate.api.status import rpc_handler
from eucgate.core.decision import Decision
from eucgate.core.model import text_problem
from eucgate.errors import DeadlineExceeded, InvalidSubmission
from eucgate.gate import Gate, decision_of
from eucgate.ids import is_decision_id
from eucgate.store.base import AppendResult, AuditLog, DecisionFilter, DecisionRecord, Decisions

log = structlog.get_logger("eucgate.api")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A token this service issues is about 200 URL-safe base64 characters; anything longer,
# or in another alphabet, is refused before it is decoded (a deeply nested one broke
# the JSON decoder's recursion limit).
MAX_PAGE_TOKEN = 512
PAGE_TOKEN = re.compile(r"^[A-Za-z0-9_-]*$")
MAX_REGISTRATION_BYTES = 128
# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799


def response_parts(
    log: AuditLog,
    record: DecisionRecord,
    appended: AppendResult | None = None,
    decided: Decision | None = None,
) -> tuple[decision_pb2.Decision, decision_pb2.Receipt]:
    """The decision and its receipt with log proof: against the checkpoint of the commit
    that recorded it when `appended` carries one, else against the latest checkpoint.

    `decided` is the record's Decision when the caller holds it (a submission just
    decided), which saves parsing the record's bytes back; else they are parsed.
    """
    held = decided if decided is not None else decision_of(record)
    decision = decision_to_proto(record.decision_id, record.request_id, held)
    receipt = decision_pb2.Receipt(envelope=envelope_pb2.Envelope.FromString(record.receipt))
    attach_log_proof(
        receipt,
        log,
        record.decision_id,
        leaf_index=None if appended is None else appended.leaf_index,
        checkpoint=None if appended is None else appended.checkpoint,
    )
    return decision, receipt


class CertificateServicer(svc_grpc.CertificateServiceServicer):
    def __init__(self, gate: Gate, decisions: Decisions, log: AuditLog, access: Access) -> None:
        self._gate = gate
        self._decisions = decisions
        self._log = log
        self._access = access

    @rpc_handler
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
        caller = self._access.require(context)
        recorded = self._gate.decide_and_record(
            caller.name, request.request_id, envelope, importers=caller.importers
        )
        result = recorded.result
        structlog.contextvars.bind_contextvars(decision_id=result.record.decision_id)
        log.info("decision", outcome=result.record.outcome, replayed=result.replayed)
        decision, receipt = response_parts(self._log, result.record, result, recorded.decision)
        return svc_pb2.SubmitCertificateResponse(
            decision=decision, receipt=receipt, replayed=result.replayed
        )

    @rpc_handler
    def GetDecision(
        self, request: svc_pb2.GetDecisionRequest, context: grpc.ServicerContext
    ) -> svc_pb2.GetDecisionResponse:
        if not is_decision_id(request.decision_id):
            raise InvalidSubmission(
                "decision_id must look like dec_ followed by 26 base32 characters",
                reason="DECISION_ID_INVALID",
                field="decision_id",
            )
        caller = self._access.require(context)
        record = visible_record(self._decisions, caller, request.decision_id)
        decision, receipt = response_parts(self._log, record)
        return svc_pb2.GetDecisionResponse(decision=decision, receipt=receipt)

    @rpc_handler
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
        _check_list_request(request)
        flt = DecisionFilter(
            importer_registration=request.importer_registration,
            outcome=outcome_from_proto(request.outcome),
            decided_after=_time_of(request, "decided_after"),
            decided_before=_time_of(request, "decided_before"),
            parties=self._access.require(context).scope(),
        )
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = self._decisions.list(flt, size, request.page_token)
        return svc_pb2.ListDecisionsResponse(
            decisions=[
                decision_to_proto(r.decision_id, r.request_id, decision_of(r)) for r in page.records
            ],
            next_page_token=page.next_page_token,
        )


def _check_list_request(request: svc_pb2.ListDecisionsRequest) -> None:
    """Refuse, as INVALID_ARGUMENT, filters that no store should see: an oversized or
    foreign page token, a registration holding control characters (PostgreSQL refuses
    a NUL where SQLite would look it up), a timestamp outside Timestamp's range."""
    token = request.page_token
    if len(token) > MAX_PAGE_TOKEN or not PAGE_TOKEN.fullmatch(token):
        raise InvalidSubmission(
            "page_token is not a token this service issued",
            reason="PAGE_TOKEN_INVALID",
            field="page_token",
        )
    problem = text_problem(request.importer_registration, MAX_REGISTRATION_BYTES)
    if problem:
        raise InvalidSubmission(
            f"importer_registration {problem}",
            reason="IMPORTER_REGISTRATION_INVALID",
            field="importer_registration",
        )
    for name in ("decided_after", "decided_before"):
        stamp: timestamp_pb2.Timestamp = getattr(request, name)
        if request.HasField(name) and not (
            MIN_SECONDS <= stamp.seconds <= MAX_SECONDS and 0 <= stamp.nanos <= 999_999_999
        ):
            raise InvalidSubmission(
                f"{name} is outside 0001-01-01 to 9999-12-31 or has invalid nanos",
                reason="DECISION_TIME_INVALID",
                field=name,
            )


def _time_of(request: svc_pb2.ListDecisionsRequest, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(request, name)
    return stamp.ToDatetime(tzinfo=UTC)


def _envelope_of(request: svc_pb2.SubmitCertificateRequest) -> Envelope:
    which = request.WhichOneof("signed_certificate")
    try:
        if which == "envelope":
            return Envelope.from_proto(request.envelope)
        if which == "envelope_json":
            return Envelope.from_json(request.envelope_json)
    except EnvelopeError as exc:
        # One path style for every BadRequest: the request's proto field names, snake
        # case, whichever form the envelope came in ("payloadType" -> "payload_type").
        prefix = "envelope" if which == "envelope" else "envelope_json"
        field = f"{prefix}.{_snake(exc.field)}" if exc.field else prefix
        raise InvalidSubmission(str(exc), reason=exc.reason, field=field) from exc
    raise InvalidSubmission(
        "one of envelope or envelope_json is required",
        reason="ENVELOPE_MISSING",
        field="envelope",
    )


def _snake(path: str) -> str:
    """A DSSE JSON path in the proto's field names: "payloadType" -> "payload_type"."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), path)
