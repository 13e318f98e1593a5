"""Bad input is INVALID_ARGUMENT with a documented reason, never INTERNAL or UNKNOWN.

Over real gRPC, on SQLite and PostgreSQL: request bodies that are not protobuf (random,
truncated, a request_id that is not UTF-8) on unary, server-streaming and bidirectional
methods; a page token of 100,000 nested brackets; timestamps outside Timestamp's range
in ListDecisions filters; a NUL in a registration, in an EUC and in a filter, which
must get the same answer from both stores; control characters in a what-if Replay's
candidate bundle.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.tlsfiles import issue_client
from eucgate_client.client import ApiError, CertificateClient, LicenceClient, api_error
from eucgate_client.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    certificate_pb2,
    certificate_service_pb2,
    certificate_service_pb2_grpc,
)
from google.protobuf import message

from tests.pgdb import fresh_schema

from .conftest import Env

TIMEOUT = 20
SUBMIT = "/eucgate.v1.CertificateService/SubmitCertificate"
UNDECODABLE: dict[str, bytes] = {
    "random": random.Random(14).randbytes(512),
    # field 1 (request_id) says 255 bytes follow; 3 do
    "truncated": b"\x0a\xff\x01abc",
    # field 1 (request_id) holds bytes that are not UTF-8
    "request_id not UTF-8": b"\x0a\x04\xff\xfe\xfd\xfc",
}
# One method of each kind: unary, server-streaming, bidirectional (reflection), and the
# health check that answers any peer.
METHODS = {
    SUBMIT: "unary_unary",
    "/eucgate.v1.CertificateService/ListDecisions": "unary_unary",
    "/eucgate.v1.AuditService/Replay": "unary_stream",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "stream_stream",
    "/grpc.health.v1.Health/Check": "unary_unary",
}

# Methods whose request's field 1 is a string (request_id, service, host).
STRING_FIELD_1 = {
    SUBMIT,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.health.v1.Health/Check",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, env: Env, tmp_path: Path) -> Iterator[RunningServer]:
    """A server on each store."""
    if request.param == "sqlite":
        running = start_server(env.settings(tmp_path / "store"))
        yield running
        running.stop(grace=1)
        return
    with fresh_schema() as url:
        running = start_server(env.settings(tmp_path / "unused", store=url))
        yield running
        running.stop(grace=1)


@pytest.fixture
def channel(any_store: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{any_store.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


def call_raw(channel: grpc.Channel, method: str, body: bytes) -> ApiError:
    """Send `body` as the request bytes of `method`; the error it must get."""
    kind = METHODS[method]
    try:
        if kind == "unary_unary":
            channel.unary_unary(method, None, None)(body, timeout=TIMEOUT)
        elif kind == "unary_stream":
            list(channel.unary_stream(method, None, None)(body, timeout=TIMEOUT))
        else:
            list(channel.stream_stream(method, None, None)(iter([body]), timeout=TIMEOUT))
    except grpc.RpcError as exc:
        return api_error(exc)
    raise AssertionError(f"{method} accepted an undecodable body")


def test_the_bodies_really_do_not_decode() -> None:
    # The premise of the next test: each body fails protobuf's own parser.
    for body in UNDECODABLE.values():
        with pytest.raises(message.DecodeError):
            certificate_service_pb2.SubmitCertificateRequest.FromString(body)


# Where field 1 is a number, non-UTF-8 bytes in it are an unknown field, not an error.
CASES = [
    (method, name)
    for method in sorted(METHODS)
    for name in sorted(UNDECODABLE)
    if name != "request_id not UTF-8" or method in STRING_FIELD_1
]


@pytest.mark.parametrize(("method", "name"), CASES)
def test_undecodable_bodies_are_invalid_argument(
    channel: grpc.Channel, any_store: RunningServer, method: str, name: str
) -> None:
    # Before: INTERNAL "Exception deserializing request!", from gRPC, before our code.
    error = call_raw(channel, method, UNDECODABLE[name])
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_UNDECODABLE",
    ), error
    assert any_store.store.tree_state().size == 0  # nothing recorded


def test_undecodable_body_from_an_unmapped_peer_is_unauthenticated_first(
    env: Env, tmp_path: Path
) -> None:
    # The caller is checked before the body: a stranger learns nothing from decoding.
    running = start_server(env.secure_settings(tmp_path / "store"))
    try:
        # Issued by the client CA the server trusts, but mapped to no caller.
        cert, key, _ = issue_client(env.tls, "stranger-14", now=datetime.now(UTC))
        with grpc.secure_channel(
            f"localhost:{running.port}",
            grpc.ssl_channel_credentials(
                env.tls.server_ca.read_bytes(), key.read_bytes(), cert.read_bytes()
            ),
        ) as stranger:
            error = call_raw(stranger, SUBMIT, UNDECODABLE["truncated"])
        assert (error.code, error.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "CALLER_UNKNOWN",
        )
        with env.channel(running.port, "importer") as importer:
            error = call_raw(importer, SUBMIT, UNDECODABLE["truncated"])
        assert (error.code, error.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "REQUEST_UNDECODABLE",
        )
    finally:
        running.stop(grace=1)


def _list(channel: grpc.Channel, **fields: Any) -> ApiError:
    stub = certificate_service_pb2_grpc.CertificateServiceStub(channel)
    try:
        stub.ListDecisions(certificate_service_pb2.ListDecisionsRequest(**fields), timeout=TIMEOUT)
    except grpc.RpcError as exc:
        return api_error(exc)
    raise AssertionError(f"ListDecisions accepted {fields}")


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("="),  # before: INTERNAL
        "[" * 100_000,
        base64.urlsafe_b64encode(b"[" * 300).decode().rstrip("="),  # short, still nested
        "not a token",
    ],
    ids=["100k-nested-base64", "100k-brackets", "300-nested-base64", "spaces"],
)
def test_a_garbled_page_token_is_invalid_argument(channel: grpc.Channel, token: str) -> None:
    error = _list(channel, page_token=token)
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID")
    assert "page_token" in error.field_violations


@pytest.mark.parametrize(
    ("field", "seconds", "nanos"),
    [
        ("decided_after", 10**12, 0),  # year 33658: before, INTERNAL
        ("decided_before", -(10**12), 0),
        ("decided_after", 253_402_300_800, 0),  # one second past 9999-12-31
        ("decided_before", 0, -1),
        ("decided_after", 0, 1_000_000_000),
    ],
)
def test_timestamps_out_of_range_are_invalid_argument(
    channel: grpc.Channel, field: str, seconds: int, nanos: int
) -> None:
    stamp = {"seconds": seconds, "nanos": nanos}
    error = _list(channel, **{field: stamp})
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DECISION_TIME_INVALID")
    assert field in error.field_violations


def test_timestamps_at_the_edges_of_the_range_are_accepted(channel: grpc.Channel) -> None:
    stub = certificate_service_pb2_grpc.CertificateServiceStub(channel)
    reply = stub.ListDecisions(
        certificate_service_pb2.ListDecisionsRequest(
            decided_after={"seconds": -62_135_596_800},
            decided_before={"seconds": 253_402_300_799, "nanos": 999_999_999},
        ),
        timeout=TIMEOUT,
    )
    assert list(reply.decisions) == []


def _with_nul_registration(now: datetime) -> certificate_pb2.EndUserCertificate:
    euc = samples.certificate(now, number="JUL-EUC-2026-NUL")
    gstin = euc.end_user.registrations[1]
    gstin.value = gstin.value + "\x00"
    return euc


@pytest.mark.parametrize("proto", [False, True], ids=["json", "protobuf"])
def test_a_nul_in_a_registration_gets_the_same_answer_on_both_stores(
    env: Env, channel: grpc.Channel, any_store: RunningServer, proto: bool
) -> None:
    # Before: APPROVED on SQLite, retryable STORE_UNAVAILABLE on PostgreSQL.
    client = CertificateClient(channel, timeout=TIMEOUT)
    envelope = env.sign(_with_nul_registration(datetime.now(UTC)), proto=proto)
    with pytest.raises(ApiError) as refused:
        client.submit(envelope, request_id="nul-1")
    assert (refused.value.code, refused.value.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "PAYLOAD_INVALID_FIELD",
    )
    assert (
        "control character U+0000"
        in refused.value.field_violations["end_user.registrations[1].value"]
    )
    assert any_store.store.tree_state().size == 0


def test_a_nul_in_a_registration_filter_gets_the_same_answer_on_both_stores(
    channel: grpc.Channel,
) -> None:
    error = _list(channel, importer_registration="0588012345\x00")
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "IMPORTER_REGISTRATION_INVALID",
    )
    assert "importer_registration" in error.field_violations


def test_a_control_character_in_a_candidate_bundle_is_invalid_argument(
    env: Env, channel: grpc.Channel
) -> None:
    # Before: UNKNOWN (a yaml.ReaderError escaping the Replay stream).
    client = CertificateClient(channel, timeout=TIMEOUT)
    client.submit(env.sign(samples.certificate(datetime.now(UTC))), request_id="one")
    stub = audit_service_pb2_grpc.AuditServiceStub(channel)
    for candidate in (b"rules: \x01", b"\x00", b"\xff\xfe not UTF-8"):
        replay = stub.Replay(
            audit_service_pb2.ReplayRequest(candidate_bundle=candidate), timeout=TIMEOUT
        )
        with pytest.raises(grpc.RpcError) as refused:
            list(replay)
        error = api_error(refused.value)
        assert (error.code, error.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "REPLAY_CANDIDATE_INVALID",
        ), candidate


@pytest.mark.parametrize("number", ["MOFCOM\x00X", "MOFCOM\x7fX", "MOFCOM X"])
def test_a_control_character_in_a_licence_number_gets_the_same_answer_on_both_stores(
    channel: grpc.Channel, number: str
) -> None:
    with pytest.raises(ApiError) as refused:
        LicenceClient(channel).balance(number)
    assert (refused.value.code, refused.value.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "LICENCE_NUMBER_INVALID",
    )
