"""Licence quotas, shipment debits and referral review through the real server.

Each test runs its own server on loopback with a bundle whose Jay-Ushin quota under 1C904
is small, signed by the test policy-admin key, and a fresh SQLite store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
import yaml
from eucgate import samples
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import write_signed_bundle
from eucgate.log.entry import KIND_RESOLUTION, KIND_SHIPMENT, check_any_entry, entry_kind
from eucgate_client.client import (
    ApiError,
    AuditClient,
    CertificateClient,
    LicenceClient,
    ReviewClient,
)
from eucgate_client.receipt import verify_receipt
from eucgate_client.v1 import certificate_pb2, decision_pb2

from .conftest import Env

LICENCE = "MOFCOM-EL-2025-000417"  # Jay-Ushin's licence in the sample bundle
QUOTA_KG = 100


def small_quota_bundle(env: Env, directory: Path, quota: str) -> Path:
    """The env's bundle with Jay-Ushin's 1C904 quota set to `quota` kg, signed."""
    doc = yaml.safe_load(env.bundle.read_text())
    jay = next(li for li in doc["licensed_importers"] if li["licence_number"] == LICENCE)
    jay["quotas"] = [{"control_code": "1C904", "quantity": quota, "unit": "kg"}]
    path = directory / "small-quota.json"
    path.write_text(json.dumps(doc, default=str))
    return write_signed_bundle(path, env.admin_key)


@pytest.fixture
def quota_server(env: Env, tmp_path: Path) -> Iterator[RunningServer]:
    bundle = small_quota_bundle(env, tmp_path, str(QUOTA_KG))
    running = start_server(env.settings(tmp_path / "store", bundle_path=bundle, max_workers=32))
    yield running
    running.stop(grace=1)


@pytest.fixture
def quota_channel(quota_server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{quota_server.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


def log_entries(channel: grpc.Channel) -> list[bytes]:
    """Every entry of the server's audit log, as the exact leaf bytes."""
    return [e for page in AuditClient(channel).stream_entries(timeout=30) for e in page.entries]


def euc(kg: str, number: str = "JUL-EUC-2026-0042") -> certificate_pb2.EndUserCertificate:
    cert = samples.certificate(datetime.now(UTC), number=number)
    cert.items[0].quantity.value = kg
    return cert


def test_concurrent_submissions_never_approve_past_the_quota(
    env: Env, quota_channel: grpc.Channel
) -> None:
    client = CertificateClient(quota_channel, timeout=60)
    # 3 kg each: 33 fit in 100 kg, 34 do not. Each its own EUC (one EUC, one use).
    envelopes = [env.sign(euc("3", number=f"JUL-RACE-{n:03d}")) for n in range(200)]
    start = threading.Barrier(32)

    def submit(n: int) -> decision_pb2.Decision:
        if n < 32:
            start.wait(timeout=30)  # the first wave leaves together
        return client.submit(envelopes[n], request_id=f"race-{n}").decision

    with ThreadPoolExecutor(max_workers=32) as pool:
        decisions = list(pool.map(submit, range(200)))
    approved = [d for d in decisions if d.outcome == decision_pb2.OUTCOME_APPROVED]
    rejected = [d for d in decisions if d.outcome == decision_pb2.OUTCOME_REJECTED]
    assert len(approved) + len(rejected) == 200
    assert sum(Decimal(d.approved_items[0].quantity.value) for d in approved) <= QUOTA_KG
    assert len(approved) == 33  # everything that fits was approved, nothing more
    assert all([r.rule_id for r in d.reasons] == ["QTY-001"] for d in rejected)
    # Every decision recorded the balance it was decided on; approvals read enough.
    for d in approved:
        (read,) = d.ledger_reads
        assert (read.licence_number, read.control_code) == (LICENCE, "1C904")
        assert Decimal(read.remaining or QUOTA_KG) >= 3
    for d in rejected:
        assert Decimal(d.ledger_reads[0].remaining) < 3
    (balance,) = LicenceClient(quota_channel).balance(LICENCE).balances
    assert (balance.quota, balance.approved, balance.remaining) == ("100", "99", "1")


def test_balances_and_shipments(env: Env, quota_channel: grpc.Channel) -> None:
    certificates = CertificateClient(quota_channel)
    licences = LicenceClient(quota_channel)
    fresh = licences.balance(LICENCE, "1C904").balances[0]
    assert (fresh.unit, fresh.quota, fresh.approved, fresh.shipped, fresh.remaining) == (
        "kg",
        "100",
        "0",
        "0",
        "100",
    )
    approval = certificates.submit(env.sign(euc("60"))).decision
    assert approval.outcome == decision_pb2.OUTCOME_APPROVED
    first = licences.record_shipment("BOE-0001", approval.decision_id, "1C904", "0.025", "t")
    assert not first.replayed
    assert first.shipment.licence_number == LICENCE
    assert first.shipment.shipment_id.startswith("shp_")
    retry = licences.record_shipment("BOE-0001", approval.decision_id, "1C904", "0.025", "t")
    assert retry.replayed
    assert retry.shipment.shipment_id == first.shipment.shipment_id
    with pytest.raises(ApiError) as reused:
        licences.record_shipment("BOE-0001", approval.decision_id, "1C904", "26", "kg")
    assert (reused.value.code, reused.value.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "SHIPMENT_REFERENCE_REUSED",
    )
    with pytest.raises(ApiError) as over:
        licences.record_shipment("BOE-0002", approval.decision_id, "1C904", "35.5", "kg")
    assert (over.value.code, over.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SHIPMENT_EXCEEDS_APPROVAL",
    )
    licences.record_shipment("BOE-0003", approval.decision_id, "1C904", "35", "kg")
    balance = licences.balance(LICENCE).balances[0]
    assert (balance.approved, balance.shipped, balance.remaining) == ("60", "60.000", "40")

    refused = certificates.submit(env.sign(euc("41", number="JUL-EUC-2026-0043"))).decision
    assert [r.rule_id for r in refused.reasons] == ["QTY-001"]
    with pytest.raises(ApiError) as not_approved:
        licences.record_shipment("BOE-0004", refused.decision_id, "1C904", "1", "kg")
    assert not_approved.value.reason == "SHIPMENT_NOT_APPROVED"
    with pytest.raises(ApiError) as bad:
        licences.record_shipment("BOE-0005", approval.decision_id, "1C904", "1e3", "kg")
    assert (bad.value.code, bad.value.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "SHIPMENT_QUANTITY_INVALID",
    )
    with pytest.raises(ApiError) as unknown:
        licences.balance("MOFCOM-EL-1999-000001")
    assert unknown.value.reason == "LICENCE_NOT_FOUND"

    # Each debit is its own entry of the audit log, and the log still verifies.
    entries = log_entries(quota_channel)
    kinds = [entry_kind(e) for e in entries]
    assert kinds.count(KIND_SHIPMENT) == 2
    assert first.leaf_index == kinds.index(KIND_SHIPMENT)
    for raw in entries:
        check_any_entry(raw)


def test_referrals_are_resolved_once_and_approvals_take_quota(
    env: Env, quota_channel: grpc.Channel
) -> None:
    certificates = CertificateClient(quota_channel)
    review = ReviewClient(quota_channel)
    referred = []
    for n in range(3):  # a watch-listed trader refers each (PTY-003)
        cert = euc("45", number=f"JUL-EUC-2026-01{n}")
        cert.intermediaries.add(
            party=certificate_pb2.Party(
                legal_name="Example Magnetics Trading Pvt. Ltd.", country_code="IN"
            ),
            role=certificate_pb2.INTERMEDIARY_ROLE_TRADER,
        )
        decision = certificates.submit(env.sign(cert)).decision
        assert decision.outcome == decision_pb2.OUTCOME_REFERRED, decision.reasons
        referred.append(decision)
    listed = [r.decision.decision_id for r in review.referrals()]
    assert listed == [d.decision_id for d in reversed(referred)]

    first = review.resolve(referred[0].decision_id, approve=True, reason="trader known to us")
    d = first.decision
    assert d.outcome == decision_pb2.OUTCOME_APPROVED
    assert d.review.resolves_decision_id == referred[0].decision_id
    assert d.review.reviewer == "anonymous"
    assert d.review.note == "trader known to us"
    assert d.decision_id != referred[0].decision_id
    assert [(r.licence_number, r.remaining) for r in d.ledger_reads] == [(LICENCE, "100")]
    statement = verify_receipt(first.receipt, env.pki.service_public_key.read_bytes())
    assert statement["decision_id"] == d.decision_id
    assert LicenceClient(quota_channel).balance(LICENCE).balances[0].approved == "45"

    with pytest.raises(ApiError) as twice:
        review.resolve(referred[0].decision_id, approve=False, reason="second thoughts")
    assert (twice.value.code, twice.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REFERRAL_ALREADY_RESOLVED",
    )
    review.resolve(referred[1].decision_id, approve=True, reason="fits")  # 90 of 100 kg
    with pytest.raises(ApiError) as short:
        review.resolve(referred[2].decision_id, approve=True, reason="no room")
    assert (short.value.code, short.value.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "QUOTA_EXHAUSTED",
    )
    rejected = review.resolve(referred[2].decision_id, approve=False, reason="quota used up")
    assert [(r.rule_id, r.outcome) for r in rejected.decision.reasons] == [
        ("REV-001", decision_pb2.RULE_OUTCOME_REJECT)
    ]
    assert list(review.referrals()) == []
    everything = list(review.referrals(include_resolved=True))
    assert all(r.resolution_decision_id for r in everything)
    with pytest.raises(ApiError) as not_referred:
        review.resolve(d.decision_id, approve=False, reason="not a referral")
    assert not_referred.value.reason == "REFERRAL_NOT_REFERRED"

    assert [entry_kind(e) for e in log_entries(quota_channel)].count(KIND_RESOLUTION) == 3


def test_resolve_rejects_bad_input(quota_channel: grpc.Channel) -> None:
    review = ReviewClient(quota_channel)
    with pytest.raises(ApiError) as blank:
        review.resolve("dec_" + "0" * 26, approve=True, reason="  ")
    assert blank.value.reason == "REVIEW_REASON_INVALID"
    with pytest.raises(ApiError) as missing:
        review.resolve("dec_" + "0" * 26, approve=True, reason="fine")
    assert (missing.value.code, missing.value.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "DECISION_NOT_FOUND",
    )
