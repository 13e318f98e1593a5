"""Access control over real gRPC with mutual TLS, on SQLite and on PostgreSQL.

One server per store, with a PKI of role certificates made by `eucgate.tlsfiles`: two
importers' ERP systems (Jay-Ushin, Kaveri), a gateway, an auditor, two reviewers, a
policy admin, an operator, an identity that is both an importer and a reviewer, and a
certificate under the client CA that the access file does not map. Every role is tried
on every RPC; the expected table is written out here, independently of the server's.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from eucgate import samples
from eucgate.api.access import RPC_ROLES, Role
from eucgate.api.server import RunningServer, start_server
from eucgate.tlsfiles import LocalAccess, add_client, issue_client, make_local_access
from eucgate_client.client import api_error, open_channel
from eucgate_client.v1 import (
    audit_service_pb2,
    certificate_pb2,
    certificate_service_pb2,
    decision_pb2,
    licence_service_pb2,
    policy_service_pb2,
    review_service_pb2,
)
from google.protobuf.message import Message

from tests.pgdb import fresh_schema

from .conftest import Env

JAY = [f"{s}:{v}" for s, v in samples.JAY_USHIN.registrations]
KAVERI = [f"{s}:{v}" for s, v in samples.UNLICENSED.registrations]
JAY_LICENCE = "MOFCOM-EL-2025-000417"
UNMAPPED = "stranger"
TIMEOUT = 20

# Who may call what, as the access-control issue states it: written out here so a wrong
# server table fails the test rather than being read back from itself.
ALL = {"importer", "gateway", "auditor", "reviewer", "policy-admin", "operator"}
EXPECTED: dict[str, set[str]] = {
    "/eucgate.v1.CertificateService/SubmitCertificate": {"importer"},
    "/eucgate.v1.CertificateService/GetDecision": {"importer", "gateway", "auditor", "reviewer"},
    "/eucgate.v1.CertificateService/ListDecisions": {
        "importer",
        "gateway",
        "auditor",
        "reviewer",
    },
    "/eucgate.v1.LicenceService/GetLicenceBalance": {"importer", "gateway", "auditor"},
    "/eucgate.v1.LicenceService/RecordShipment": {"gateway"},
    "/eucgate.v1.ReviewService/ListReferrals": {"reviewer", "auditor"},
    "/eucgate.v1.ReviewService/ResolveReferral": {"reviewer"},
    "/eucgate.v1.PolicyService/GetBundle": {"policy-admin", "auditor", "operator"},
    "/eucgate.v1.PolicyService/ReloadBundle": {"policy-admin"},
    "/eucgate.v1.AuditService/GetCheckpoint": ALL,
    "/eucgate.v1.AuditService/GetInclusionProof": {"auditor", "gateway", "importer"},
    "/eucgate.v1.AuditService/GetConsistencyProof": {"auditor", "gateway", "importer"},
    "/eucgate.v1.AuditService/StreamEntries": {"auditor"},
    "/eucgate.v1.AuditService/Replay": {"auditor"},
}
# Identities: (name, roles, importers). The role callers are named after their role.
EXTRA = (
    ("kaveri-erp", ("importer",), KAVERI),
    ("reviewer-2", ("reviewer",), ()),
    ("jay-reviewer", ("importer", "reviewer"), JAY),
)


@dataclass
class Setup:
    running: RunningServer
    tls: LocalAccess
    env: Env
    target: str
    approved: str = ""  # Jay-Ushin's approved decision
    referred: str = ""  # Jay-Ushin's referred decision
    kaveri: str = ""  # Kaveri's (rejected) decision
    serial: int = 0

    def channel(self, name: str) -> grpc.Channel:
        cert, key = self.tls.client(name)
        return open_channel(
            self.target,
            ca=self.tls.server_ca.read_bytes(),
            cert=cert.read_bytes(),
            key=key.read_bytes(),
        )

    def next_number(self) -> str:
        self.serial += 1
        return f"JUL-EUC-2026-9{self.serial:03d}"


def _submit(channel: grpc.Channel, envelope: Any, request_id: str) -> Any:
    request = certificate_service_pb2.SubmitCertificateRequest(request_id=request_id)
    request.envelope.CopyFrom(envelope.to_proto())
    return _unary(channel, "/eucgate.v1.CertificateService/SubmitCertificate", request)


def _unary(channel: grpc.Channel, method: str, request: Message) -> Any:
    response_type = _RESPONSES[method]
    call = channel.unary_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    return call(request, timeout=TIMEOUT)


def _stream_first(channel: grpc.Channel, method: str, request: Message) -> Any:
    call = channel.unary_stream(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=_RESPONSES[method].FromString,
    )
    return next(iter(call(request, timeout=TIMEOUT)))


_RESPONSES: dict[str, Any] = {
    "/eucgate.v1.CertificateService/SubmitCertificate": (
        certificate_service_pb2.SubmitCertificateResponse
    ),
    "/eucgate.v1.CertificateService/GetDecision": certificate_service_pb2.GetDecisionResponse,
    "/eucgate.v1.CertificateService/ListDecisions": certificate_service_pb2.ListDecisionsResponse,
    "/eucgate.v1.LicenceService/GetLicenceBalance": licence_service_pb2.GetLicenceBalanceResponse,
    "/eucgate.v1.LicenceService/RecordShipment": licence_service_pb2.RecordShipmentResponse,
    "/eucgate.v1.ReviewService/ListReferrals": review_service_pb2.ListReferralsResponse,
    "/eucgate.v1.ReviewService/ResolveReferral": review_service_pb2.ResolveReferralResponse,
    "/eucgate.v1.PolicyService/GetBundle": policy_service_pb2.GetBundleResponse,
    "/eucgate.v1.PolicyService/ReloadBundle": policy_service_pb2.ReloadBundleResponse,
    "/eucgate.v1.AuditService/GetCheckpoint": audit_service_pb2.GetCheckpointResponse,
    "/eucgate.v1.AuditService/GetInclusionProof": audit_service_pb2.GetInclusionProofResponse,
    "/eucgate.v1.AuditService/GetConsistencyProof": (audit_service_pb2.GetConsistencyProofResponse),
    "/eucgate.v1.AuditService/StreamEntries": audit_service_pb2.StreamEntriesResponse,
    "/eucgate.v1.AuditService/Replay": audit_service_pb2.ReplayResponse,
}


def _refusal(action: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    """(code, ErrorInfo reason) of a call; (OK, "") when it succeeded."""
    try:
        action()
    except grpc.RpcError as exc:
        error = api_error(exc)
        return error.code, error.reason
    return grpc.StatusCode.OK, ""


def _jay_euc(setup: Setup, *, referred: bool = False) -> Any:
    cert = samples.certificate(datetime.now(UTC), number=setup.next_number())
    cert.items[0].quantity.value = "1"
    if referred:  # a watch-listed trader refers it (PTY-003)
        cert.intermediaries.add(
            party=certificate_pb2.Party(
                legal_name="Example Magnetics Trading Pvt. Ltd.", country_code="IN"
            ),
            role=certificate_pb2.INTERMEDIARY_ROLE_TRADER,
        )
    return setup.env.sign(cert)


def _kaveri_euc(setup: Setup) -> Any:
    return setup.env.sign(
        samples.unlicensed_importer(datetime.now(UTC)), signer=setup.env.unlicensed_signer
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, env: Env, tmp_path_factory: Any) -> Iterator[Setup]:
    directory: Path = tmp_path_factory.mktemp(f"access-{request.param}")
    now = datetime.now(UTC)
    tls = make_local_access(directory / "tls", now=now, importers=JAY)
    for name, roles, importers in EXTRA:
        add_client(tls, name, roles, importers, now=now)
    issue_client(tls, UNMAPPED, now=now)
    with _store(request.param) as store:
        settings = env.settings(
            directory / "store",
            tls_cert_path=tls.server_cert,
            tls_key_path=tls.server_key,
            access_path=tls.access_file,
            **({"store": store} if store else {}),
        )
        running = start_server(settings)
        try:
            made = Setup(running, tls, env, f"localhost:{running.port}")
            with made.channel("importer") as jay:
                made.approved = _submit(jay, _jay_euc(made), "a").decision.decision_id
                made.referred = _submit(
                    jay, _jay_euc(made, referred=True), "r"
                ).decision.decision_id
            with made.channel("kaveri-erp") as kav:
                made.kaveri = _submit(kav, _kaveri_euc(made), "k").decision.decision_id
            yield made
        finally:
            running.stop(grace=1)


def _store(kind: str) -> Any:
    return nullcontext("") if kind == "sqlite" else fresh_schema()


def _request(setup: Setup, method: str) -> Message:
    """A well-formed request for `method` about Jay-Ushin's decisions."""
    requests: dict[str, Callable[[], Message]] = {
        "/eucgate.v1.CertificateService/GetDecision": lambda: (
            certificate_service_pb2.GetDecisionRequest(decision_id=setup.approved)
        ),
        "/eucgate.v1.CertificateService/ListDecisions": (
            certificate_service_pb2.ListDecisionsRequest
        ),
        "/eucgate.v1.LicenceService/GetLicenceBalance": lambda: (
            licence_service_pb2.GetLicenceBalanceRequest(licence_number=JAY_LICENCE)
        ),
        "/eucgate.v1.LicenceService/RecordShipment": lambda: (
            licence_service_pb2.RecordShipmentRequest(
                gateway_reference=f"BOE-{setup.next_number()}",
                decision_id=setup.approved,
                control_code="1C904",
                quantity=certificate_pb2.Quantity(value="0.5", unit="kg"),
            )
        ),
        "/eucgate.v1.ReviewService/ListReferrals": review_service_pb2.ListReferralsRequest,
        "/eucgate.v1.ReviewService/ResolveReferral": lambda: (
            review_service_pb2.ResolveReferralRequest(
                decision_id=setup.referred,
                verdict=review_service_pb2.VERDICT_REJECT,
                reason="checked by a second person",
            )
        ),
        "/eucgate.v1.PolicyService/GetBundle": policy_service_pb2.GetBundleRequest,
        "/eucgate.v1.PolicyService/ReloadBundle": policy_service_pb2.ReloadBundleRequest,
        "/eucgate.v1.AuditService/GetCheckpoint": audit_service_pb2.GetCheckpointRequest,
        "/eucgate.v1.AuditService/GetInclusionProof": lambda: (
            audit_service_pb2.GetInclusionProofRequest(decision_id=setup.approved)
        ),
        "/eucgate.v1.AuditService/GetConsistencyProof": lambda: (
            audit_service_pb2.GetConsistencyProofRequest(first_size=1)
        ),
        "/eucgate.v1.AuditService/StreamEntries": lambda: audit_service_pb2.StreamEntriesRequest(
            limit=1
        ),
        "/eucgate.v1.AuditService/Replay": lambda: audit_service_pb2.ReplayRequest(limit=1),
    }
    return requests[method]()


def _call(setup: Setup, channel: grpc.Channel, method: str) -> tuple[grpc.StatusCode, str]:
    if method == "/eucgate.v1.CertificateService/SubmitCertificate":
        envelope = _jay_euc(setup)
        return _refusal(lambda: _submit(channel, envelope, setup.next_number()))
    request = _request(setup, method)
    if method.endswith(("/StreamEntries", "/Replay")):
        return _refusal(lambda: _stream_first(channel, method, request))
    return _refusal(lambda: _unary(channel, method, request))


def _log_size(setup: Setup) -> int:
    with setup.channel("auditor") as channel:
        response = _unary(
            channel,
            "/eucgate.v1.AuditService/GetCheckpoint",
            audit_service_pb2.GetCheckpointRequest(),
        )
    return int(response.tree_size)


def test_the_server_table_is_the_one_the_issue_asks_for() -> None:
    assert {m: {r.value for r in rule.roles} for m, rule in RPC_ROLES.items()} == {
        **EXPECTED,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": ALL,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": ALL,
    }


IDENTITIES = ["importer", "gateway", "auditor", "reviewer", "policy-admin", "operator", UNMAPPED]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_every_role_on_every_rpc_gets_what_the_table_says(setup: Setup, identity: str) -> None:
    roles = {identity} & ALL
    before = _log_size(setup)
    writes = 0
    with setup.channel(identity) as channel:
        for method, allowed_roles in EXPECTED.items():
            code, reason = _call(setup, channel, method)
            if identity == UNMAPPED:
                assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "CALLER_UNKNOWN"), method
            elif roles & allowed_roles:
                assert code not in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.PERMISSION_DENIED,
                ), (identity, method, code, reason)
                assert code in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION), (
                    identity,
                    method,
                    code,
                    reason,
                )
                writes += method.endswith(
                    ("/SubmitCertificate", "/RecordShipment", "/ResolveReferral")
                ) and (code == grpc.StatusCode.OK)
            else:
                assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"), (
                    identity,
                    method,
                )
    # A refused call records nothing: the log grew only by the calls that were allowed.
    assert _log_size(setup) == before + writes


def test_plaintext_and_unknown_ca_clients_cannot_call(setup: Setup, tmp_path: Path) -> None:
    with grpc.insecure_channel(setup.target) as plain:
        code, _ = _refusal(
            lambda: _unary(
                plain,
                "/eucgate.v1.AuditService/GetCheckpoint",
                audit_service_pb2.GetCheckpointRequest(),
            )
        )
    assert code == grpc.StatusCode.UNAVAILABLE
    # A client certificate from a CA the access file does not name fails the handshake.
    other = make_local_access(tmp_path / "other", now=datetime.now(UTC), importers=JAY)
    cert, key = other.client("auditor")
    with open_channel(
        setup.target,
        ca=setup.tls.server_ca.read_bytes(),
        cert=cert.read_bytes(),
        key=key.read_bytes(),
    ) as channel:
        code, _ = _refusal(
            lambda: _unary(
                channel,
                "/eucgate.v1.AuditService/GetCheckpoint",
                audit_service_pb2.GetCheckpointRequest(),
            )
        )
    assert code == grpc.StatusCode.UNAVAILABLE


def _listed(channel: grpc.Channel, **filters: Any) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        page = _unary(
            channel,
            "/eucgate.v1.CertificateService/ListDecisions",
            certificate_service_pb2.ListDecisionsRequest(page_token=token, page_size=2, **filters),
        )
        ids |= {d.decision_id for d in page.decisions}
        token = page.next_page_token
        if not token:
            return ids


def test_an_importer_never_sees_another_importers_decisions(setup: Setup) -> None:
    with setup.channel("kaveri-erp") as kav, setup.channel("importer") as jay:
        mine, theirs = _listed(kav), _listed(jay)
        assert setup.kaveri in mine
        assert setup.approved not in mine
        assert setup.referred not in mine
        assert {setup.approved, setup.referred} <= theirs
        assert setup.kaveri not in theirs
        # A filter naming the other importer finds nothing, not a hint of it.
        assert _listed(kav, importer_registration=JAY[0].split(":")[1]) == set()
        for request, method in (
            (
                certificate_service_pb2.GetDecisionRequest(decision_id=setup.approved),
                "/eucgate.v1.CertificateService/GetDecision",
            ),
            (
                audit_service_pb2.GetInclusionProofRequest(decision_id=setup.approved),
                "/eucgate.v1.AuditService/GetInclusionProof",
            ),
            (
                licence_service_pb2.GetLicenceBalanceRequest(licence_number=JAY_LICENCE),
                "/eucgate.v1.LicenceService/GetLicenceBalance",
            ),
        ):
            code, _ = _refusal(lambda r=request, m=method: _unary(kav, m, r))  # type: ignore[misc]
            assert code == grpc.StatusCode.NOT_FOUND, method
        # The same answer as for a decision that does not exist.
        code, reason = _refusal(
            lambda: _unary(
                kav,
                "/eucgate.v1.CertificateService/GetDecision",
                certificate_service_pb2.GetDecisionRequest(decision_id="dec_" + "0" * 26),
            )
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "DECISION_NOT_FOUND")
        # Proofs by leaf index would reach other importers' entries.
        code, reason = _refusal(
            lambda: _unary(
                kav,
                "/eucgate.v1.AuditService/GetInclusionProof",
                audit_service_pb2.GetInclusionProofRequest(leaf_index=0),
            )
        )
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "LEAF_INDEX_NOT_ALLOWED")
        # Its own decision it can read and prove.
        own = _unary(
            kav,
            "/eucgate.v1.AuditService/GetInclusionProof",
            audit_service_pb2.GetInclusionProofRequest(decision_id=setup.kaveri),
        )
        assert own.leaf_hash


def test_an_importer_submits_only_for_its_own_importers(setup: Setup) -> None:
    before = _log_size(setup)
    with setup.channel("kaveri-erp") as kav:
        code, reason = _refusal(lambda: _submit(kav, _jay_euc(setup), "not-mine"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "IMPORTER_NOT_BOUND")
    assert _log_size(setup) == before


def test_four_eyes_a_reviewer_never_resolves_its_own_submission(setup: Setup) -> None:
    with setup.channel("jay-reviewer") as own, setup.channel("reviewer-2") as other:
        # Submitted by this very identity.
        mine = _submit(own, _jay_euc(setup, referred=True), "own-referral").decision
        assert mine.outcome == decision_pb2.OUTCOME_REFERRED
        resolve = review_service_pb2.ResolveReferralRequest(
            decision_id=mine.decision_id,
            verdict=review_service_pb2.VERDICT_APPROVE,
            reason="looks fine to me",
        )
        method = "/eucgate.v1.ReviewService/ResolveReferral"
        assert _refusal(lambda: _unary(own, method, resolve)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "REVIEW_OWN_SUBMISSION",
        )
        # Submitted by another identity, but for an importer this reviewer acts for.
        with setup.channel("importer") as jay:
            theirs = _submit(jay, _jay_euc(setup, referred=True), "jay-referral").decision
        resolve_theirs = review_service_pb2.ResolveReferralRequest(
            decision_id=theirs.decision_id,
            verdict=review_service_pb2.VERDICT_APPROVE,
            reason="looks fine to me",
        )
        assert _refusal(lambda: _unary(own, method, resolve_theirs)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "REVIEW_OWN_SUBMISSION",
        )
        # An independent reviewer may, and is recorded by its mapped name.
        resolved = _unary(other, method, resolve).decision
        assert resolved.review.reviewer == "reviewer-2"


def test_recorded_callers_are_the_mapped_identities(setup: Setup) -> None:
    with setup.channel("auditor") as channel:
        call = channel.unary_stream(
            "/eucgate.v1.AuditService/StreamEntries",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=audit_service_pb2.StreamEntriesResponse.FromString,
        )
        callers = {
            json.loads(entry)["caller"]
            for page in call(audit_service_pb2.StreamEntriesRequest(), timeout=TIMEOUT)
            for entry in page.entries
        }
    assert "anonymous" not in callers
    assert {"importer", "kaveri-erp"} <= callers
    assert callers <= {name for name, *_ in EXTRA} | {r.value for r in Role}


@pytest.mark.parametrize(("version", "accepted"), [("-tls1_1", False), ("-tls1_2", True)])
def test_the_api_port_speaks_tls_1_2_or_newer(setup: Setup, version: str, accepted: bool) -> None:
    cert, key = setup.tls.client("auditor")
    port = setup.target.rsplit(":", 1)[1]
    shown = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version, "-alpn", "h2",
         "-cert", str(cert), "-key", str(key), "-CAfile", str(setup.tls.server_ca)],
        input=b"", capture_output=True, timeout=30, check=False,
    ).stdout.decode(errors="replace")  # fmt: skip
    assert ("Cipher is (NONE)" not in shown) == accepted, shown[-500:]
