"""Typed wrappers around the eucgate.v1 service stubs (certificates, audit, licences,
review).

It adds what every caller otherwise writes by hand: a request id per submission that
stays the same across retries (AIP-155), deadlines on every call, paging, and errors
that carry the service's reason code.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from eucgate_client.dsse import Envelope
from eucgate_client.v1 import audit_service_pb2 as audit_pb2
from eucgate_client.v1 import audit_service_pb2_grpc as audit_grpc
from eucgate_client.v1 import certificate_pb2, decision_pb2
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2
from eucgate_client.v1 import certificate_service_pb2_grpc as svc_grpc
from eucgate_client.v1 import licence_service_pb2 as licence_pb2
from eucgate_client.v1 import licence_service_pb2_grpc as licence_grpc
from eucgate_client.v1 import policy_service_pb2 as policy_pb2
from eucgate_client.v1 import policy_service_pb2_grpc as policy_grpc
from eucgate_client.v1 import review_service_pb2 as review_pb2
from eucgate_client.v1 import review_service_pb2_grpc as review_grpc

DEFAULT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 3

# Failures after which the same request may or may not have been recorded: retried with
# the same request id, so a recorded decision comes back as it was (replayed) and is
# never made twice. Everything else is the service's answer and is not retried.
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass
class ApiError(Exception):
    """A call the service refused: gRPC code, stable reason code, message, bad fields."""

    code: grpc.StatusCode
    reason: str
    message: str
    field_violations: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}: {self.message}"


def api_error(exc: grpc.RpcError) -> ApiError:
    """Read ErrorInfo and BadRequest out of a failed call's status details."""
    call: grpc.Call = exc  # type: ignore[assignment]
    reason, violations = "", {}
    status = rpc_status.from_call(call)
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(bad.DESCRIPTOR):
            detail.Unpack(bad)
            violations = {v.field: v.description for v in bad.field_violations}
    return ApiError(call.code(), reason, call.details() or "", violations)


def open_channel(
    target: str,
    *,
    ca: bytes | None = None,
    cert: bytes | None = None,
    key: bytes | None = None,
    insecure: bool = False,
    server_name: str | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to an eucgate API port: mutual TLS by default, plaintext only when asked.

    `ca` is the PEM of the CA(s) that issued the server's certificate (None: the system
    roots); `cert` and `key` are this client's certificate chain and private key (PEM),
    which the server maps to a caller and its roles. `server_name` overrides the name
    checked in the server certificate (e.g. when dialling an address it does not list).
    `insecure` dials plaintext, for a server run with `insecure` on a local machine.
    Raises ValueError when the TLS material is incomplete.
    """
    if insecure:
        if ca is not None or cert is not None or key is not None:
            raise ValueError("insecure means plaintext: give no CA, certificate or key")
        return grpc.insecure_channel(target, options=list(options))
    if (cert is None) != (key is None):
        raise ValueError("a client certificate and its key go together")
    if cert is None:
        raise ValueError(
            "eucgate needs a client certificate and key (mutual TLS), or insecure for a "
            "local plaintext server"
        )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    overrides = [] if server_name is None else [("grpc.ssl_target_name_override", server_name)]
    return grpc.secure_channel(target, credentials, options=[*options, *overrides])


T = TypeVar("T")


def _call(invoke: Callable[[], T]) -> T:
    """Run one RPC; a failed call becomes ApiError with the service's reason code."""
    try:
        return invoke()
    except grpc.RpcError as exc:
        raise api_error(exc) from None


def _stream(invoke: Callable[[], Iterable[T]]) -> Iterator[T]:
    """A streaming RPC's messages; a failure, before or during, becomes ApiError."""
    try:
        yield from invoke()
    except grpc.RpcError as exc:
        raise api_error(exc) from None


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def envelope_request_id(envelope: Envelope | None = None, envelope_json: bytes = b"") -> str:
    """The default request id of a submission: "env-" and the SHA-256 of the envelope.

    The same envelope always gets the same id, so sending it again (a retry, a re-run
    of a script) returns the first decision instead of making a second one. A JSON
    envelope that does not parse is hashed as its bytes (the service will refuse it).
    """
    if envelope is None and envelope_json:
        try:
            envelope = Envelope.from_json(envelope_json)
        except ValueError:
            return "env-" + hashlib.sha256(envelope_json).hexdigest()
    data = envelope.digest_input() if envelope is not None else b""
    return "env-" + hashlib.sha256(data).hexdigest()


class CertificateClient:
    """Client for eucgate.v1.CertificateService over an open channel; raises ApiError.

    `attempts` bounds how often `submit` sends one request when the service cannot be
    reached or answers UNAVAILABLE/DEADLINE_EXCEEDED; every attempt carries the same
    request id, with `backoff` seconds doubling between attempts.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = 0.25,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._stub = svc_grpc.CertificateServiceStub(channel)
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff

    def submit(
        self,
        envelope: Envelope | None = None,
        *,
        envelope_json: bytes | None = None,
        request_id: str | None = None,
    ) -> svc_pb2.SubmitCertificateResponse:
        """Submit one signed EUC and return the decision with its receipt.

        Without `request_id` the id is derived from the envelope
        (`envelope_request_id`). Transient failures are retried with that same id;
        the response's `replayed` says the decision had been recorded before (by an
        earlier attempt or an earlier run). Raises ApiError with the last failure.
        """
        rid = request_id or envelope_request_id(envelope, envelope_json or b"")
        request = svc_pb2.SubmitCertificateRequest(request_id=rid)
        if envelope is not None:
            request.envelope.CopyFrom(envelope.to_proto())
        if envelope_json is not None:
            request.envelope_json = envelope_json
        for attempt in range(self._attempts):
            try:
                response: svc_pb2.SubmitCertificateResponse = self._stub.SubmitCertificate(
                    request, timeout=self._timeout
                )
            except grpc.RpcError as exc:
                error = api_error(exc)
                if error.code not in _RETRYABLE or attempt + 1 == self._attempts:
                    raise error from None
                time.sleep(self._backoff * 2**attempt)
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def get_decision(self, decision_id: str) -> svc_pb2.GetDecisionResponse:
        response: svc_pb2.GetDecisionResponse = _call(
            lambda: self._stub.GetDecision(
                svc_pb2.GetDecisionRequest(decision_id=decision_id), timeout=self._timeout
            )
        )
        return response

    def list_decisions(
        self,
        *,
        importer_registration: str = "",
        outcome: int = decision_pb2.OUTCOME_UNSPECIFIED,
        decided_after: datetime | None = None,
        decided_before: datetime | None = None,
        page_size: int = 0,
        limit: int | None = None,
    ) -> Iterator[decision_pb2.Decision]:
        """Yield decisions newest first, fetching pages as needed, at most `limit`."""
        request = svc_pb2.ListDecisionsRequest(
            importer_registration=importer_registration,
            outcome=outcome,  # type: ignore[arg-type]  # the pyi types enums as their class
            decided_after=_ts(decided_after),
            decided_before=_ts(decided_before),
            page_size=page_size,
        )
        seen = 0
        while True:
            page: svc_pb2.ListDecisionsResponse = _call(
                lambda: self._stub.ListDecisions(request, timeout=self._timeout)
            )
            for decision in page.decisions:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield decision
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token


class AuditClient:
    """Client for eucgate.v1.AuditService over an open channel; raises ApiError.

    What it returns is unverified: check checkpoints and proofs with `eucgate_client.tlog`.
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = audit_grpc.AuditServiceStub(channel)
        self._timeout = timeout

    def get_checkpoint(self) -> audit_pb2.GetCheckpointResponse:
        response: audit_pb2.GetCheckpointResponse = _call(
            lambda: self._stub.GetCheckpoint(
                audit_pb2.GetCheckpointRequest(), timeout=self._timeout
            )
        )
        return response

    def inclusion_proof(
        self,
        *,
        decision_id: str | None = None,
        leaf_index: int | None = None,
        tree_size: int = 0,
    ) -> audit_pb2.GetInclusionProofResponse:
        """The proof for one leaf, named by decision id or index; tree_size 0 = latest."""
        request = audit_pb2.GetInclusionProofRequest(tree_size=tree_size)
        if decision_id is not None:
            request.decision_id = decision_id
        if leaf_index is not None:
            request.leaf_index = leaf_index
        response: audit_pb2.GetInclusionProofResponse = _call(
            lambda: self._stub.GetInclusionProof(request, timeout=self._timeout)
        )
        return response

    def consistency_proof(
        self, first_size: int, second_size: int = 0
    ) -> audit_pb2.GetConsistencyProofResponse:
        """The proof that the tree of second_size (0 = latest) extends first_size's."""
        response: audit_pb2.GetConsistencyProofResponse = _call(
            lambda: self._stub.GetConsistencyProof(
                audit_pb2.GetConsistencyProofRequest(
                    first_size=first_size, second_size=second_size
                ),
                timeout=self._timeout,
            )
        )
        return response

    def stream_entries(
        self,
        start_index: int = 0,
        *,
        limit: int = 0,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[audit_pb2.StreamEntriesResponse]:
        """Pages of entries from `start_index`; `timeout` bounds the whole stream (None: none)."""
        request = audit_pb2.StreamEntriesRequest(
            start_index=start_index, limit=limit, page_size=page_size
        )
        yield from _stream(lambda: self._stub.StreamEntries(request, timeout=timeout))

    def replay(
        self,
        *,
        start_index: int = 0,
        limit: int = 0,
        candidate_bundle: bytes = b"",
        keep_going: bool = False,
        timeout: float | None = None,
    ) -> Iterator[audit_pb2.ReplayResponse]:
        """The replay stream of a range: a ReplayRange, then one ReplayResult per entry.

        `candidate_bundle` (bundle text) asks for a what-if replay. The range is
        unverified until checked against the checkpoint (`eucgate replay` does this).
        `timeout` bounds the whole stream (None: none).
        """
        request = audit_pb2.ReplayRequest(
            start_index=start_index,
            limit=limit,
            candidate_bundle=candidate_bundle,
            keep_going=keep_going,
        )
        yield from _stream(lambda: self._stub.Replay(request, timeout=timeout))


class LicenceClient:
    """Client for eucgate.v1.LicenceService over an open channel; raises ApiError.

    Quantities are decimal strings ("250.5"), never floats.
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = licence_grpc.LicenceServiceStub(channel)
        self._timeout = timeout

    def balance(
        self, licence_number: str, control_code: str = ""
    ) -> licence_pb2.GetLicenceBalanceResponse:
        response: licence_pb2.GetLicenceBalanceResponse = _call(
            lambda: self._stub.GetLicenceBalance(
                licence_pb2.GetLicenceBalanceRequest(
                    licence_number=licence_number, control_code=control_code
                ),
                timeout=self._timeout,
            )
        )
        return response

    def record_shipment(
        self,
        gateway_reference: str,
        decision_id: str,
        control_code: str,
        quantity: str,
        unit: str,
    ) -> licence_pb2.RecordShipmentResponse:
        """Debit a shipment; retry with the same `gateway_reference` after any failure."""
        request = licence_pb2.RecordShipmentRequest(
            gateway_reference=gateway_reference,
            decision_id=decision_id,
            control_code=control_code,
            quantity=certificate_pb2.Quantity(value=quantity, unit=unit),
        )
        response: licence_pb2.RecordShipmentResponse = _call(
            lambda: self._stub.RecordShipment(request, timeout=self._timeout)
        )
        return response


class PolicyClient:
    """Client for eucgate.v1.PolicyService over an open channel; raises ApiError."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = policy_grpc.PolicyServiceStub(channel)
        self._timeout = timeout

    def active(self) -> policy_pb2.GetBundleResponse:
        """The bundle new decisions are made under (digest, name, when it was loaded)."""
        response: policy_pb2.GetBundleResponse = _call(
            lambda: self._stub.GetBundle(policy_pb2.GetBundleRequest(), timeout=self._timeout)
        )
        return response

    def bundle(
        self, digest: str = "", *, include_content: bool = False
    ) -> policy_pb2.GetBundleResponse:
        """A bundle the service has used, by digest ("" for the active one); with
        `include_content`, its canonical JSON and (when held) signed envelope. The
        bytes are unverified: check that SHA-256(canonical_bundle) is the digest."""
        response: policy_pb2.GetBundleResponse = _call(
            lambda: self._stub.GetBundle(
                policy_pb2.GetBundleRequest(digest=digest, include_content=include_content),
                timeout=self._timeout,
            )
        )
        return response

    def reload(self) -> policy_pb2.ReloadBundleResponse:
        """Make the service re-read its configured bundle file (policy-admin role)."""
        response: policy_pb2.ReloadBundleResponse = _call(
            lambda: self._stub.ReloadBundle(policy_pb2.ReloadBundleRequest(), timeout=self._timeout)
        )
        return response


class ReviewClient:
    """Client for eucgate.v1.ReviewService over an open channel; raises ApiError."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = review_grpc.ReviewServiceStub(channel)
        self._timeout = timeout

    def referrals(
        self, *, include_resolved: bool = False, page_size: int = 0, limit: int | None = None
    ) -> Iterator[review_pb2.Referral]:
        """Yield REFERRED decisions newest first (open ones only unless asked)."""
        request = review_pb2.ListReferralsRequest(
            include_resolved=include_resolved, page_size=page_size
        )
        seen = 0
        while True:
            page: review_pb2.ListReferralsResponse = _call(
                lambda: self._stub.ListReferrals(request, timeout=self._timeout)
            )
            for referral in page.referrals:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield referral
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def resolve(
        self, decision_id: str, *, approve: bool, reason: str
    ) -> review_pb2.ResolveReferralResponse:
        """Approve or reject a referral; the answer is the new, signed decision."""
        request = review_pb2.ResolveReferralRequest(
            decision_id=decision_id,
            verdict=review_pb2.VERDICT_APPROVE if approve else review_pb2.VERDICT_REJECT,
            reason=reason,
        )
        response: review_pb2.ResolveReferralResponse = _call(
            lambda: self._stub.ResolveReferral(request, timeout=self._timeout)
        )
        return response
