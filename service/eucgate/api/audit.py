"""eucgate.v1.AuditService: checkpoints, proofs and entries of the audit log.

Every answer comes from committed state; proofs are RFC 9162 proofs read from stored
hashes in O(log n). Who may call which method is `access.RPC_ROLES`; an importer asks
for inclusion proofs of its own decisions only, by decision id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import structlog
from eucgate_client.v1 import audit_service_pb2 as audit_pb2
from eucgate_client.v1 import audit_service_pb2_grpc as audit_grpc
from eucgate_client.v1 import decision_pb2

from eucgate.api.access import Access, visible_record
from eucgate.api.status import internal_failure, rpc_handler, status_for
from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.canonical import canonical_json
from eucgate.errors import (
    BundleError,
    EucgateError,
    InvalidSubmission,
    NotFound,
    PermissionDenied,
)
from eucgate.ids import is_decision_id
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.replay.engine import Replayer, Status
from eucgate.replay.run import ReplayJob, replay_entries
from eucgate.store.base import AuditLog, Bundles, Decisions, StoredCheckpoint

log = structlog.get_logger("eucgate.api.audit")

DEFAULT_PAGE_SIZE = 256
MAX_PAGE_SIZE = 1024
# A page stops short once it holds this many entry bytes (it always holds at least one),
# well under the default 4 MiB message limit.
MAX_PAGE_BYTES = 1024 * 1024


def attach_log_proof(
    receipt: decision_pb2.Receipt,
    log: AuditLog,
    decision_id: str,
    *,
    leaf_index: int | None = None,
    checkpoint: StoredCheckpoint | None = None,
) -> None:
    """Fill a receipt's leaf index, checkpoint and inclusion proof.

    `checkpoint` is the one of the commit that recorded the decision when the caller has
    it; otherwise the latest. The checkpoint carries the witnesses' cosignatures kept
    for it so far (`cosigned_note`). Leaves the fields empty for a decision not yet
    covered by a checkpoint. Raises StoreError.
    """
    index = log.leaf_index(decision_id) if leaf_index is None else leaf_index
    signed = checkpoint if checkpoint is not None else log.latest_checkpoint()
    if index is None or signed is None or signed.size <= index:
        return
    _, proof = log.inclusion_proof(index, signed.size)
    receipt.leaf_index = index
    receipt.checkpoint = cosigned_note(log, signed)
    receipt.inclusion_proof.extend(proof)


def cosigned_note(log: AuditLog, signed: StoredCheckpoint) -> str:
    """The signed checkpoint with the witnesses' cosignature lines kept for its size
    appended (C2SP signed-note: verifiers ignore lines of keys they do not know)."""
    return signed.note + "".join(f"{line}\n" for line in log.cosignatures(signed.size))


_STATUS = {
    Status.MATCH: audit_pb2.REPLAY_STATUS_MATCH,
    Status.DIFFERENT: audit_pb2.REPLAY_STATUS_DIFFERENT,
    Status.UNCHANGED: audit_pb2.REPLAY_STATUS_UNCHANGED,
    Status.CHANGED: audit_pb2.REPLAY_STATUS_CHANGED,
    Status.SKIPPED: audit_pb2.REPLAY_STATUS_SKIPPED,
    Status.ERROR: audit_pb2.REPLAY_STATUS_ERROR,
}


def _candidate(text: bytes) -> Bundle | None:
    """The candidate bundle of a what-if replay, or None; InvalidSubmission if bad."""
    if not text:
        return None
    try:
        return parse_bundle(text.decode("utf-8"), "candidate_bundle")
    except (BundleError, UnicodeDecodeError) as exc:
        raise InvalidSubmission(
            f"the candidate bundle is not a valid bundle: {exc}",
            reason="REPLAY_CANDIDATE_INVALID",
            field="candidate_bundle",
        ) from None


def _latest(log: AuditLog) -> StoredCheckpoint:
    signed = log.latest_checkpoint()
    if signed is None:
        raise NotFound("the log has no checkpoint yet", reason="LOG_EMPTY")
    return signed


def _note_at(log: AuditLog, signed: StoredCheckpoint, size: int) -> str:
    """The checkpoint the log signed at `size` ("" if it signed none there)."""
    kept = signed if signed.size == size else log.checkpoint_at(size)
    return "" if kept is None else cosigned_note(log, kept)


class AuditServicer(audit_grpc.AuditServiceServicer):
    def __init__(
        self,
        log: AuditLog,
        decisions: Decisions,
        bundles: Bundles,
        signer: CheckpointSigner,
        access: Access,
        witnessed: Callable[[], int] | None = None,
    ) -> None:
        """`witnessed` gives the largest tree size the witness quorum cosigned (-1 for
        none), when the log has witnesses."""
        self._log = log
        self._decisions = decisions
        self._bundles = bundles
        self._signer = signer
        self._access = access
        self._witnessed = witnessed

    @rpc_handler
    def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> audit_pb2.GetCheckpointResponse:
        signed = _latest(self._log)
        response = audit_pb2.GetCheckpointResponse(
            checkpoint=cosigned_note(self._log, signed),
            tree_size=signed.size,
            verifier_key=self._signer.verifier_key,
        )
        size = -1 if self._witnessed is None else self._witnessed()
        witnessed = None if size < 0 else self._log.checkpoint_at(size)
        if witnessed is not None:
            response.witnessed_checkpoint = cosigned_note(self._log, witnessed)
            response.witnessed_tree_size = witnessed.size
        return response

    @rpc_handler
    def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.GetInclusionProofResponse:
        which = request.WhichOneof("leaf")
        scope = self._access.require(context).scope()
        if which == "decision_id":
            if not is_decision_id(request.decision_id):
                raise InvalidSubmission(
                    "decision_id must look like dec_ followed by 26 base32 characters",
                    reason="DECISION_ID_INVALID",
                    field="decision_id",
                )
            if scope is not None:
                visible_record(self._decisions, self._access.require(context), request.decision_id)
            found = self._log.leaf_index(request.decision_id)
            if found is None:
                raise NotFound(f"no decision {request.decision_id}", reason="DECISION_NOT_FOUND")
            index = found
        elif scope is not None:
            raise PermissionDenied(
                "an importer asks for inclusion proofs by decision_id, of its own decisions",
                reason="LEAF_INDEX_NOT_ALLOWED",
                field="leaf_index",
            )
        elif which == "leaf_index":
            index = request.leaf_index
        else:
            raise InvalidSubmission(
                "one of decision_id or leaf_index is required",
                reason="LOG_LEAF_MISSING",
                field="leaf",
            )
        signed = _latest(self._log)
        size = request.tree_size or signed.size
        leaf, proof = self._log.inclusion_proof(index, size)
        return audit_pb2.GetInclusionProofResponse(
            leaf_index=index,
            tree_size=size,
            hashes=proof,
            leaf_hash=leaf,
            checkpoint=_note_at(self._log, signed, size),
        )

    @rpc_handler
    def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.GetConsistencyProofResponse:
        signed = _latest(self._log)
        second = request.second_size or signed.size
        proof = self._log.consistency_proof(request.first_size, second)
        return audit_pb2.GetConsistencyProofResponse(
            first_size=request.first_size,
            second_size=second,
            hashes=proof,
            checkpoint=_note_at(self._log, signed, second),
        )

    def StreamEntries(
        self, request: audit_pb2.StreamEntriesRequest, context: grpc.ServicerContext
    ) -> Iterator[audit_pb2.StreamEntriesResponse]:
        """Pages of entries; arguments are checked before the first page is sent."""
        try:
            start, end, page_size = self._stream_bounds(request)
        except EucgateError as exc:
            log.info("rpc_refused", rpc="StreamEntries", reason=exc.reason)
            context.abort_with_status(status_for(exc))
        try:
            yield from self._pages(start, end, page_size)
        except EucgateError as exc:
            context.abort_with_status(status_for(exc))
        except Exception:
            context.abort_with_status(internal_failure(rpc="StreamEntries"))

    def Replay(
        self, request: audit_pb2.ReplayRequest, context: grpc.ServicerContext
    ) -> Iterator[audit_pb2.ReplayResponse]:
        """The range, then one result per entry; arguments are checked before anything is
        sent. Replays in this thread: a caller's stream is paced by its own reading."""
        try:
            start, end, signed = self._range(request.start_index, request.limit)
            candidate = _candidate(request.candidate_bundle)
            prefix: list[bytes] = []
            if 0 < start < signed.size:
                prefix = self._log.inclusion_proof(start, start + 1)[1]
            proof = self._log.consistency_proof(end, signed.size) if end else []
        except EucgateError as exc:
            log.info("rpc_refused", rpc="Replay", reason=exc.reason)
            context.abort_with_status(status_for(exc))
        try:
            yield audit_pb2.ReplayResponse(
                range=audit_pb2.ReplayRange(
                    checkpoint=signed.note,
                    tree_size=signed.size,
                    start_index=start,
                    end_index=end,
                    prefix_hashes=prefix,
                    consistency_proof=proof,
                    candidate_bundle_digest="" if candidate is None else candidate.digest,
                )
            )
            replayer = Replayer(bundles=self._bundles.get_bundle, candidate=candidate)
            job = ReplayJob(candidate=None if candidate is None else candidate.canonical())
            items = self._entries(start, end)
            for result in replay_entries(items, job, replayer=replayer):
                yield audit_pb2.ReplayResponse(
                    result=audit_pb2.ReplayResult(
                        leaf_index=result.index,
                        decision_id=result.decision_id,
                        leaf_hash=bytes.fromhex(result.leaf_hash),
                        status=_STATUS[result.status],
                        reason=result.reason,
                        message=result.message,
                        detail=canonical_json(result.to_json()),
                    )
                )
                if result.status is Status.ERROR and not request.keep_going:
                    return
        except EucgateError as exc:
            context.abort_with_status(status_for(exc))
        except Exception:
            context.abort_with_status(internal_failure(rpc="Replay"))

    def _range(self, start: int, limit: int) -> tuple[int, int, StoredCheckpoint]:
        if limit < 0:
            raise InvalidSubmission(
                "limit must not be negative", reason="LOG_LIMIT_INVALID", field="limit"
            )
        signed = _latest(self._log)
        if start < 0:
            raise InvalidSubmission(
                "start_index must not be negative", reason="LOG_INDEX_INVALID", field="start_index"
            )
        if start > signed.size:
            raise InvalidSubmission(
                f"start_index {start} is past the log's size {signed.size}",
                reason="LOG_INDEX_BEYOND_SIZE",
                field="start_index",
            )
        end = signed.size if not limit else min(signed.size, start + limit)
        return start, end, signed

    def _entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        index = start
        while index < end:
            batch = self._log.entries(index, min(DEFAULT_PAGE_SIZE, end - index))
            if not batch:
                return
            for entry in batch:
                yield index, entry
                index += 1

    def _stream_bounds(self, request: audit_pb2.StreamEntriesRequest) -> tuple[int, int, int]:
        if request.page_size < 0:
            raise InvalidSubmission(
                "page_size must not be negative", reason="PAGE_SIZE_INVALID", field="page_size"
            )
        if request.limit < 0:
            raise InvalidSubmission(
                "limit must not be negative", reason="LOG_LIMIT_INVALID", field="limit"
            )
        signed = _latest(self._log)
        if request.start_index < 0:
            raise InvalidSubmission(
                "start_index must not be negative",
                reason="LOG_INDEX_INVALID",
                field="start_index",
            )
        if request.start_index > signed.size:
            raise InvalidSubmission(
                f"start_index {request.start_index} is past the log's size {signed.size}",
                reason="LOG_INDEX_BEYOND_SIZE",
                field="start_index",
            )
        end = signed.size
        if request.limit:
            end = min(end, request.start_index + request.limit)
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        return request.start_index, end, page_size

    def _pages(
        self, start: int, end: int, page_size: int
    ) -> Iterator[audit_pb2.StreamEntriesResponse]:
        index = start
        tree_size = end
        while index < end:
            batch = self._log.entries(index, min(page_size, end - index))
            page: list[bytes] = []
            size = 0
            for entry in batch:
                if page and size + len(entry) > MAX_PAGE_BYTES:
                    break
                page.append(entry)
                size += len(entry)
            yield audit_pb2.StreamEntriesResponse(
                start_index=index, entries=page, tree_size=tree_size
            )
            index += len(page)
