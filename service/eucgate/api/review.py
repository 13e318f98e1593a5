"""eucgate.v1.ReviewService: list REFERRED decisions and resolve them (see eucgate.review)."""

from __future__ import annotations

import grpc
import structlog
from eucgate_client.v1 import review_service_pb2 as pb2
from eucgate_client.v1 import review_service_pb2_grpc as pb2_grpc

from eucgate import review
from eucgate.api.access import Access
from eucgate.api.convert import decision_to_proto
from eucgate.api.servicer import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, response_parts
from eucgate.api.status import rpc_handler
from eucgate.errors import InvalidSubmission
from eucgate.gate import Gate, decision_of
from eucgate.ids import is_decision_id
from eucgate.store.base import AuditLog, DecisionFilter

log = structlog.get_logger("eucgate.api")


class ReviewServicer(pb2_grpc.ReviewServiceServicer):
    def __init__(
        self, gate: Gate, store: review.ReviewStore, log: AuditLog, access: Access
    ) -> None:
        self._gate = gate
        self._store = store
        self._log = log
        self._access = access

    @rpc_handler
    def ListReferrals(
        self, request: pb2.ListReferralsRequest, context: grpc.ServicerContext
    ) -> pb2.ListReferralsResponse:
        if request.page_size < 0:
            raise InvalidSubmission(
                "page_size must not be negative", reason="PAGE_SIZE_INVALID", field="page_size"
            )
        store = self._store
        flt = DecisionFilter(outcome="REFERRED", unresolved=not request.include_resolved)
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        page = store.list(flt, size, request.page_token)
        return pb2.ListReferralsResponse(
            referrals=[
                pb2.Referral(
                    decision=decision_to_proto(r.decision_id, r.request_id, decision_of(r)),
                    resolution_decision_id=store.resolution_of(r.decision_id) or "",
                )
                for r in page.records
            ],
            next_page_token=page.next_page_token,
        )

    @rpc_handler
    def ResolveReferral(
        self, request: pb2.ResolveReferralRequest, context: grpc.ServicerContext
    ) -> pb2.ResolveReferralResponse:
        if not is_decision_id(request.decision_id):
            raise InvalidSubmission(
                "decision_id must look like dec_ followed by 26 base32 characters",
                reason="DECISION_ID_INVALID",
                field="decision_id",
            )
        if request.verdict not in (pb2.VERDICT_APPROVE, pb2.VERDICT_REJECT):
            raise InvalidSubmission(
                "verdict must be VERDICT_APPROVE or VERDICT_REJECT",
                reason="REVIEW_VERDICT_MISSING",
                field="verdict",
            )
        note = request.reason.strip()
        if not note or len(request.reason) > review.MAX_NOTE_CHARS:
            raise InvalidSubmission(
                f"reason must say why, in 1 to {review.MAX_NOTE_CHARS} characters",
                reason="REVIEW_REASON_INVALID",
                field="reason",
            )
        caller = self._access.require(context)
        result = review.resolve(
            self._gate,
            self._store,
            caller.name,
            request.decision_id,
            request.verdict == pb2.VERDICT_APPROVE,
            note,
            reviewer_importers=caller.importers,
            four_eyes=not caller.anonymous,
        )
        structlog.contextvars.bind_contextvars(decision_id=result.record.decision_id)
        log.info("referral_resolved", resolves=request.decision_id, outcome=result.record.outcome)
        decision, receipt = response_parts(self._log, result.record, result)
        return pb2.ResolveReferralResponse(decision=decision, receipt=receipt)
