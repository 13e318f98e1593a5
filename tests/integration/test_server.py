"""The server over real gRPC on loopback: decisions, receipts, errors, idempotency."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate import samples
from eucgate.api.server import RunningServer
from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.dsse import Envelope
from eucgate_client.receipt import ReceiptError, verify_receipt
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2
from eucgate_client.v1 import certificate_service_pb2_grpc as svc_grpc
from eucgate_client.v1 import decision_pb2, envelope_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .conftest import Env


def now() -> datetime:
    return datetime.now(UTC)


def rule_ids(decision: decision_pb2.Decision) -> set[str]:
    return {r.rule_id for r in decision.reasons}


def families(decision: decision_pb2.Decision) -> set[str]:
    return {
        decision_pb2.RuleFamily.Name(r.family).removeprefix("RULE_FAMILY_")
        for r in decision.reasons
    }


def public_key(env: Env) -> bytes:
    return env.pki.service_public_key.read_bytes()


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "eucgate.v1.CertificateService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {"eucgate.v1.CertificateService", "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize("proto", [False, True], ids=["json-payload", "protobuf-payload"])
def test_approved_with_verifiable_receipt(client: CertificateClient, env: Env, proto: bool) -> None:
    response = client.submit(env.sign(samples.certificate(now()), proto=proto))
    d = response.decision
    assert d.outcome == decision_pb2.OUTCOME_APPROVED, [r.message for r in d.reasons]
    assert not d.reasons
    assert not response.replayed
    assert d.decision_id.startswith("dec_")
    assert len(d.euc_digest) == 64
    assert d.end_user.legal_name == "Jay-Ushin Limited"
    assert [i.quantity.value for i in d.approved_items] == ["500"]
    assert d.licence_number
    assert d.signers[0].verified
    assert d.signers[0].role == "end_user"
    assert d.signers[0].failure == ""
    assert d.signers[0].revocation == "good"
    assert d.signers[0].HasField("checked_at")
    statement = verify_receipt(response.receipt, public_key(env))
    assert statement["decision_id"] == d.decision_id
    assert statement["outcome"] == "APPROVED"
    assert statement["euc_digest"] == d.euc_digest
    assert statement["bundle_digest"] == d.bundle_digest
    (balance,) = statement["licence_balances"]
    assert balance["licence_number"] == d.licence_number
    assert balance["control_code"] == "1C904"
    assert balance["approved"] == "500"
    before, after = Decimal(balance["remaining_before"]), Decimal(balance["remaining_after"])
    assert before - after == Decimal(500)


def test_tampered_receipt_fails(client: CertificateClient, env: Env) -> None:
    receipt = client.submit(env.sign(samples.certificate(now()))).receipt
    statement = json.loads(receipt.envelope.payload)
    statement["outcome"] = "REJECTED" if statement["outcome"] == "APPROVED" else "APPROVED"
    forged = envelope_pb2.Envelope()
    forged.CopyFrom(receipt.envelope)
    forged.payload = json.dumps(statement).encode()
    with pytest.raises(ReceiptError):
        verify_receipt(decision_pb2.Receipt(envelope=forged), public_key(env))
    with pytest.raises(ReceiptError):
        verify_receipt(receipt, Ed25519PrivateKey.generate().public_key())
    verify_receipt(receipt, public_key(env))  # the untouched receipt still verifies


@pytest.mark.parametrize(
    ("make", "family"),
    [
        (samples.military_end_use, "EUS"),
        (samples.reexport_to_us, "DST"),
    ],
    ids=["military-end-use", "destination-us"],
)
def test_rule_rejections(client: CertificateClient, env: Env, make: object, family: str) -> None:
    euc = make(now())  # type: ignore[operator]
    response = client.submit(env.sign(euc))
    assert response.decision.outcome == decision_pb2.OUTCOME_REJECTED
    assert family in families(response.decision)
    verify_receipt(response.receipt, public_key(env))


def test_unlicensed_importer_rejected(client: CertificateClient, env: Env) -> None:
    response = client.submit(
        env.sign(samples.unlicensed_importer(now()), signer=env.unlicensed_signer)
    )
    assert response.decision.outcome == decision_pb2.OUTCOME_REJECTED
    assert families(response.decision) == {"PTY"}, [r.message for r in response.decision.reasons]


def test_tampered_signature_is_a_recorded_rejection(client: CertificateClient, env: Env) -> None:
    good = env.sign(samples.certificate(now()))
    doc = json.loads(good.payload)
    doc["items"][0]["quantity"]["value"] = "5000"
    tampered = Envelope(good.payload_type, json.dumps(doc).encode(), good.signatures)
    response = client.submit(tampered)
    assert response.decision.outcome == decision_pb2.OUTCOME_REJECTED
    assert "SIG" in families(response.decision)
    assert [s.failure for s in response.decision.signers] == ["SIG_INVALID"]
    assert client.get_decision(response.decision.decision_id).decision == response.decision


def _status(exc: ApiError) -> tuple[grpc.StatusCode, str]:
    return exc.code, exc.reason


def _count(client: CertificateClient) -> int:
    return sum(1 for _ in client.list_decisions(page_size=500))


@pytest.mark.parametrize(
    ("kwargs", "reason", "field"),
    [
        ({"envelope_json": b"{not json"}, "ENVELOPE_INVALID_JSON", "envelope_json"),
        (
            {"envelope_json": b'{"payload":"e30=","payload":"e30=","payloadType":"x"}'},
            "ENVELOPE_DUPLICATE_KEY",
            "envelope_json.payload",
        ),
        (
            {"envelope_json": b'{"payload":"%%%","payloadType":"x","signatures":[]}'},
            "ENVELOPE_INVALID_BASE64",
            "envelope_json.payload",
        ),
        (
            {"envelope_json": b'{"payload":""}'},
            "ENVELOPE_MISSING_FIELD",
            "envelope_json.payload_type",
        ),
        ({}, "ENVELOPE_MISSING", "envelope"),
    ],
    ids=["not-json", "duplicate-key", "bad-base64", "no-payload-type", "no-envelope"],
)
def test_undecodable_envelopes(
    client: CertificateClient, kwargs: dict[str, bytes], reason: str, field: str
) -> None:
    before = _count(client)
    with pytest.raises(ApiError) as info:
        client.submit(**kwargs)  # type: ignore[arg-type]
    assert _status(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert field in info.value.field_violations
    assert "Traceback" not in info.value.message
    assert _count(client) == before


def test_payload_errors(client: CertificateClient, env: Env) -> None:
    good = env.sign(samples.certificate(now()))
    cases = {
        "PAYLOAD_TYPE_UNSUPPORTED": Envelope("application/json", good.payload, good.signatures),
        "SIGNATURES_EMPTY": Envelope(good.payload_type, good.payload, ()),
        "PAYLOAD_INVALID_JSON": Envelope(good.payload_type, b"{]", good.signatures),
        "PAYLOAD_TOO_LARGE": Envelope(good.payload_type, b" " * (2 * 1024 * 1024), good.signatures),
    }
    before = _count(client)
    fields = {  # one path style: the request's proto field names
        "PAYLOAD_TYPE_UNSUPPORTED": "envelope.payload_type",
        "PAYLOAD_INVALID_JSON": "envelope.payload",
    }
    for reason, envelope in cases.items():
        with pytest.raises(ApiError) as info:
            client.submit(envelope)
        assert _status(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
        if reason in fields:
            assert list(info.value.field_violations) == [fields[reason]]
    missing = samples.certificate(now())
    missing.ClearField("end_user")
    with pytest.raises(ApiError) as info:
        client.submit(env.sign(missing))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.reason == "PAYLOAD_MISSING_FIELD"
    assert any(f.startswith("envelope") or "end_user" in f for f in info.value.field_violations)
    assert _count(client) == before


def test_message_over_transport_limit(channel: grpc.Channel) -> None:
    stub = svc_grpc.CertificateServiceStub(channel)
    request = svc_pb2.SubmitCertificateRequest(request_id="big", envelope_json=b"x" * (5 << 20))
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitCertificate(request, timeout=20)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_bad_request_id(client: CertificateClient, env: Env) -> None:
    with pytest.raises(ApiError) as info:
        client.submit(env.sign(samples.certificate(now())), request_id="has spaces")
    assert _status(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_INVALID")


def test_idempotency(client: CertificateClient, env: Env) -> None:
    envelope = env.sign(samples.certificate(now()))
    first = client.submit(envelope, request_id="po-4500123987-1")
    again = client.submit(envelope, request_id="po-4500123987-1")
    assert again.replayed
    assert again.decision == first.decision
    assert again.receipt == first.receipt
    as_json = client.submit(envelope_json=envelope.to_json(), request_id="po-4500123987-1")
    assert as_json.replayed
    assert as_json.decision.decision_id == first.decision.decision_id
    other = env.sign(samples.certificate(now(), number="JUL-EUC-2026-0099"))
    with pytest.raises(ApiError) as info:
        client.submit(other, request_id="po-4500123987-1")
    assert _status(info.value) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")


def test_concurrent_duplicates_get_one_decision(client: CertificateClient, env: Env) -> None:
    envelope = env.sign(samples.certificate(now()))
    ids: list[str] = []
    errors: list[Exception] = []

    def go() -> None:
        try:
            ids.append(client.submit(envelope, request_id="dup-1").decision.decision_id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(ids) == 12
    assert len(set(ids)) == 1
    assert sum(1 for d in client.list_decisions() if d.request_id == "dup-1") == 1


def test_get_decision_errors(client: CertificateClient) -> None:
    with pytest.raises(ApiError) as info:
        client.get_decision("nope")
    assert _status(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "DECISION_ID_INVALID")
    with pytest.raises(ApiError) as info:
        client.get_decision("dec_" + "0" * 26)
    assert _status(info.value) == (grpc.StatusCode.NOT_FOUND, "DECISION_NOT_FOUND")


def test_list_filters_and_paging(client: CertificateClient, env: Env) -> None:
    t0 = now() - timedelta(seconds=1)
    approved = [
        client.submit(env.sign(samples.certificate(now(), number=f"JUL-LIST-{n}")))
        for n in range(3)
    ]
    rejected = client.submit(env.sign(samples.military_end_use(now())))
    unlicensed = client.submit(
        env.sign(samples.unlicensed_importer(now()), signer=env.unlicensed_signer)
    )
    listed = list(client.list_decisions(page_size=2))
    assert [d.decision_id for d in listed] == [
        unlicensed.decision.decision_id,
        rejected.decision.decision_id,
        *[a.decision.decision_id for a in reversed(approved)],
    ]
    only_rejected = list(client.list_decisions(outcome=decision_pb2.OUTCOME_REJECTED))
    assert {d.decision_id for d in only_rejected} == {
        rejected.decision.decision_id,
        unlicensed.decision.decision_id,
    }
    kaveri = list(client.list_decisions(importer_registration="0716054321"))
    assert [d.decision_id for d in kaveri] == [unlicensed.decision.decision_id]
    assert list(client.list_decisions(decided_before=t0)) == []
    assert len(list(client.list_decisions(decided_after=t0))) == 5
    with pytest.raises(ApiError) as info:
        next(iter(client.list_decisions(page_size=-1)))
    assert _status(info.value) == (grpc.StatusCode.INVALID_ARGUMENT, "PAGE_SIZE_INVALID")


def test_expired_deadline_is_not_unknown(channel: grpc.Channel, env: Env) -> None:
    stub = svc_grpc.CertificateServiceStub(channel)
    request = svc_pb2.SubmitCertificateRequest(
        request_id="late", envelope=env.sign(samples.certificate(now())).to_proto()
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitCertificate(request, timeout=0.000001)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_server_stop_reports_not_serving(server: RunningServer, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    server.health.enter_graceful_shutdown()
    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
