"""A submission's answer is built from the Decision the gate holds, not by parsing the
record's bytes back; these tests hold that the bytes are the same either way: the
SubmitCertificate response equals what GetDecision reads back from the stored record,
and the record's decision bytes are the canonical JSON of the Decision returned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.api.access import Access
from eucgate.api.servicer import CertificateServicer, response_parts
from eucgate.core.canonical import canonical_json
from eucgate.core.decision import Outcome
from eucgate.core.model import Certificate
from eucgate.gate import Gate, decision_of
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.store.sqlite import SqliteStore
from eucgate_client.receipt import ServiceKey, verify_receipt
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2
from eucgate_client.v1 import decision_pb2

from tests.conftest import NOW, Pki
from tests.factories import (
    MAX_PAYLOAD_BYTES,
    MAX_SIGNATURES,
    envelope_for,
    magnet_item,
    sample_bundle,
    valid_certificate,
)


class _Context:
    """The part of grpc.ServicerContext the servicer uses on the insecure path."""

    def time_remaining(self) -> float | None:
        return None

    def abort_with_status(self, status: Any) -> None:
        raise AssertionError(f"the call was refused: {status}")


@pytest.fixture
def store(tmp_path: Path, service_key: ed25519.Ed25519PrivateKey) -> Iterator[SqliteStore]:
    opened = SqliteStore.open(
        tmp_path / "decisions.db", CheckpointSigner("eucgate.example/log", service_key)
    )
    yield opened
    opened.close()


@pytest.fixture
def gate(store: SqliteStore, pki: Pki, service_key: ed25519.Ed25519PrivateKey) -> Gate:
    return Gate(
        store,
        sample_bundle(pki),
        service_key,
        max_payload_bytes=MAX_PAYLOAD_BYTES,
        max_signatures=MAX_SIGNATURES,
        clock=lambda: NOW,
    )


def _request(request_id: str, cert: Certificate, pki: Pki) -> svc_pb2.SubmitCertificateRequest:
    envelope = envelope_for(cert, [(pki.end_user_key, pki.end_user_chain)])
    return svc_pb2.SubmitCertificateRequest(request_id=request_id, envelope=envelope.to_proto())


def test_a_submission_answers_with_the_bytes_getdecision_reads_back(
    gate: Gate, store: SqliteStore, pki: Pki
) -> None:
    servicer = CertificateServicer(gate, store, store, Access(None))
    referred = valid_certificate(
        certificate_number="JUL/EUC/2026/0143",
        items=(magnet_item(), magnet_item(elements=("Nd",))),
    )
    requests = [
        _request("r-approved", valid_certificate(), pki),
        # The same EUC again: the registry of decided EUCs rejects it.
        _request("r-rejected", valid_certificate(), pki),
        _request("r-referred", referred, pki),
    ]
    outcomes = []
    for request in requests:
        submitted = servicer.SubmitCertificate(request, _Context())  # type: ignore[arg-type]
        assert not submitted.replayed
        read = servicer.GetDecision(
            svc_pb2.GetDecisionRequest(decision_id=submitted.decision.decision_id),
            _Context(),  # type: ignore[arg-type]
        )
        # Nothing was appended in between: the latest checkpoint is the commit's.
        assert submitted.decision.SerializeToString(
            deterministic=True
        ) == read.decision.SerializeToString(deterministic=True)
        assert submitted.receipt.SerializeToString(
            deterministic=True
        ) == read.receipt.SerializeToString(deterministic=True)
        outcomes.append(submitted.decision.outcome)
    assert [decision_pb2.Outcome.Name(o) for o in outcomes] == [
        "OUTCOME_APPROVED",
        "OUTCOME_REJECTED",
        "OUTCOME_REFERRED",
    ]


def test_the_decision_returned_is_the_one_recorded(
    gate: Gate, store: SqliteStore, pki: Pki, service_key: ed25519.Ed25519PrivateKey
) -> None:
    envelope = envelope_for(valid_certificate(), [(pki.end_user_key, pki.end_user_chain)])
    recorded = gate.decide_and_record("caller", "r-1", envelope)
    record = recorded.result.record
    assert recorded.decision.outcome is Outcome.APPROVED
    assert record.decision == canonical_json(recorded.decision.model_dump(mode="json"))
    assert recorded.decision == decision_of(record)
    statement = verify_receipt(
        response_parts(store, record, recorded.result, recorded.decision)[1],
        [ServiceKey(service_key.public_key())],
    )
    assert statement["decision_id"] == record.decision_id
    held, _ = response_parts(store, record, recorded.result, recorded.decision)
    parsed, _ = response_parts(store, record, recorded.result)
    assert held.SerializeToString(deterministic=True) == parsed.SerializeToString(
        deterministic=True
    )


def test_a_replayed_request_answers_with_the_earlier_record(gate: Gate, pki: Pki) -> None:
    envelope = envelope_for(valid_certificate(), [(pki.end_user_key, pki.end_user_chain)])
    first = gate.decide_and_record("caller", "r-1", envelope)
    again = gate.decide_and_record("caller", "r-1", envelope)
    assert again.result.replayed
    assert again.result.record.decision_id == first.result.record.decision_id
    assert again.decision == first.decision
