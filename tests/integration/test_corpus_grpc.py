"""A sample of the forgery corpus through a real server, over gRPC.

The server reads its own clock, so the corpus is generated afresh relative to now
(tests.corpus.generate.build), and its trust anchors and CRLs go into the bundle the
server loads. Decided cases must come back with the manifest's outcome, rule ids and
per-signer verification; undecodable ones with the manifest's ErrorInfo reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import write_bundle_with_trust, write_signed_bundle
from eucgate.config import load_settings
from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.v1 import decision_pb2

from tests.corpus import generate
from tests.integration.conftest import Env

SAMPLE = [
    "control_ed25519",
    "control_rsa2048",
    "control_json_with_consignee",
    "flipped_payload_byte",
    "signature_without_pae",
    "payload_type_swapped",
    "chain_to_unconfigured_root",
    "revoked_leaf",
    "crl_not_signed_by_issuer",
    "homoglyph_organisation",
    "rsa_1024_key",
    "duplicate_signature",
    "endorsement_missing",
    "invalid_base64_payload",
    "duplicate_payload_key",
    "deeply_nested_envelope",
    "empty_payload",
]


@pytest.fixture(scope="module")
def corpus() -> generate.Corpus:
    return generate.build(datetime.now(UTC))


@pytest.fixture(scope="module")
def server(
    corpus: generate.Corpus, env: Env, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("corpus-server")
    bundle = write_bundle_with_trust(
        directory / "policy.yaml",
        {role: t["anchors"] for role, t in corpus.trust.items()},
        {role: t["crls"] for role, t in corpus.trust.items()},
    )
    running = start_server(
        load_settings(
            listen="127.0.0.1:0",
            data_dir=directory / "store",
            bundle_path=write_signed_bundle(bundle, env.admin_key),
            policy_admin_keys=[env.admin_public_key],
            service_key_path=env.pki.service_key,
            insecure=True,
            init_store=True,
        )
    )
    yield running
    running.stop(grace=1)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[CertificateClient]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield CertificateClient(channel, timeout=30)


@pytest.mark.parametrize("name", SAMPLE)
def test_case_over_grpc(name: str, corpus: generate.Corpus, client: CertificateClient) -> None:
    (case,) = [c for c in corpus.cases if c.name == name]
    if case.error:
        with pytest.raises(ApiError) as refused:
            client.submit(envelope_json=case.data, request_id=str(uuid.uuid4()))
        assert (refused.value.code, refused.value.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            case.error,
        )
        return
    decision = client.submit(envelope_json=case.data, request_id=str(uuid.uuid4())).decision
    assert decision_pb2.Outcome.Name(decision.outcome) == f"OUTCOME_{case.outcome}"
    assert list(dict.fromkeys(r.rule_id for r in decision.reasons)) == list(case.rules)
    # The API carries whether each signature verified; the code is in the SIG messages.
    assert [s.verified for s in decision.signers] == [
        code == "" or code.startswith("SIG_CRL_") for code in case.signers
    ]
    for code in case.signers:
        if code:
            assert any(code in r.message for r in decision.reasons), code


def test_a_16_mib_payload_is_refused_by_the_transport(client: CertificateClient) -> None:
    (case,) = generate.large_cases(datetime.now(UTC))
    with pytest.raises(ApiError) as refused:
        client.submit(envelope_json=case.data, request_id=str(uuid.uuid4()))
    assert refused.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_corpus_files_are_modest() -> None:
    total = sum(p.stat().st_size for p in Path(generate.HERE).rglob("*.json"))
    assert total < 512 * 1024
