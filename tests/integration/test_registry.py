"""One EUC, one use, through the real server on SQLite and PostgreSQL.

A signed EUC that was approved (or referred) is not decided again under another request
id: it is REJECTED (DOC-006) and takes no quota. Other content under a used certificate
number is REJECTED (DOC-005). A rejected EUC may be sent again. Concurrent submissions of
one EUC give one approval. Exact replay reproduces every one of these decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate_client.client import AuditClient, CertificateClient, LicenceClient
from eucgate_client.v1 import audit_service_pb2, certificate_pb2, decision_pb2

from tests.pgdb import fresh_schema

from .conftest import Env
from .test_quota import LICENCE, small_quota_bundle

APPROVED = decision_pb2.OUTCOME_APPROVED
REJECTED = decision_pb2.OUTCOME_REJECTED


@pytest.fixture(params=["sqlite", "postgresql"])
def running(request: pytest.FixtureRequest, env: Env, tmp_path: Path) -> Iterator[RunningServer]:
    bundle = small_quota_bundle(env, tmp_path, "1000")
    with nullcontext("") if request.param == "sqlite" else fresh_schema() as store:
        server = start_server(
            env.settings(
                tmp_path / "store",
                bundle_path=bundle,
                max_workers=16,
                **({"store": store} if store else {}),
            )
        )
        try:
            yield server
        finally:
            server.stop(grace=1)


@pytest.fixture
def channel(running: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield ch


def euc(number: str, kg: str = "10") -> certificate_pb2.EndUserCertificate:
    cert = samples.certificate(datetime.now(UTC), number=number)
    cert.items[0].quantity.value = kg
    return cert


def rules(decision: decision_pb2.Decision) -> list[str]:
    return sorted({r.rule_id for r in decision.reasons})


def approved_kg(channel: grpc.Channel) -> Decimal:
    (row,) = LicenceClient(channel).balance(LICENCE, "1C904").balances
    return Decimal(row.approved)


def test_an_approved_euc_sent_again_is_rejected_and_takes_no_quota(
    env: Env, channel: grpc.Channel
) -> None:
    client = CertificateClient(channel, timeout=30)
    envelope = env.sign(euc("REG-0001"))
    first = client.submit(envelope, request_id="first").decision
    assert first.outcome == APPROVED
    again = client.submit(envelope, request_id="second").decision
    assert again.outcome == REJECTED
    assert rules(again) == ["DOC-006"]
    assert first.decision_id in again.reasons[0].message
    # The same request id still answers with the first decision (AIP-155).
    retry = client.submit(envelope, request_id="first")
    assert retry.replayed
    assert retry.decision.decision_id == first.decision_id
    assert approved_kg(channel) == Decimal(10)


def test_other_content_under_a_used_number_is_rejected(env: Env, channel: grpc.Channel) -> None:
    client = CertificateClient(channel, timeout=30)
    first = client.submit(env.sign(euc("REG-0002", "10")), request_id="ten").decision
    assert first.outcome == APPROVED
    changed = client.submit(env.sign(euc("REG-0002", "20")), request_id="twenty").decision
    assert changed.outcome == REJECTED
    assert "DOC-005" in rules(changed)
    assert approved_kg(channel) == Decimal(10)


def test_a_rejected_euc_may_be_sent_again(env: Env, channel: grpc.Channel) -> None:
    client = CertificateClient(channel, timeout=30)
    cert = euc("REG-0003")
    wrong = env.sign(cert, signer=env.unlicensed_signer)  # signed by another party
    right = env.sign(cert)
    assert wrong.payload == right.payload  # one EUC, two signatures
    first = client.submit(wrong, request_id="wrong").decision
    assert first.outcome == REJECTED
    assert "DOC-006" not in rules(first)
    fixed = client.submit(right, request_id="right").decision
    assert fixed.outcome == APPROVED, rules(fixed)
    assert rules(client.submit(right, request_id="right-again").decision) == ["DOC-006"]


def test_concurrent_submissions_of_one_euc_give_one_approval(
    env: Env, channel: grpc.Channel
) -> None:
    client = CertificateClient(channel, timeout=60)
    envelope = env.sign(euc("REG-0004"))

    def submit(n: int) -> Any:
        return client.submit(envelope, request_id=f"race-{n}").decision

    with ThreadPoolExecutor(max_workers=12) as pool:
        decisions = list(pool.map(submit, range(12)))
    outcomes = [d.outcome for d in decisions]
    assert outcomes.count(APPROVED) == 1
    assert all(rules(d) == ["DOC-006"] for d in decisions if d.outcome != APPROVED)
    assert approved_kg(channel) == Decimal(10)
    # Every decision, including those decided again after losing the race, replays
    # exactly from what its record holds.
    results = [
        m.result
        for m in AuditClient(channel).replay(timeout=120)
        if m.WhichOneof("item") == "result"
    ]
    assert results
    assert {r.status for r in results} == {audit_service_pb2.REPLAY_STATUS_MATCH}
