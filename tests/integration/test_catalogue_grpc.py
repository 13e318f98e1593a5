"""Every test case the sample bundle carries, through the real server over gRPC.

`eucgate policy test` runs these cases through decide(); here each one is signed the
same way (policytest's CasePki, case_bundle, case_envelope), its bundle is signed by the
policy-admin key, and it is submitted with SubmitCertificate to a server whose clock
reads the case's `now`. Each case gets a fresh store, as decide() gets an empty ledger,
so the cases stay independent of one another; a case whose registry of decided EUCs
names an earlier decision gets that decision recorded in its store first. The recorded
decision must have the case's outcome and exactly its rule ids.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from eucgate.api.server import RunningServer, start_server
from eucgate.cli.keys import load_admin_private_key
from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.bundle import Bundle
from eucgate.core.bundletests import BundleTestCase
from eucgate.core.signedbundle import sign_bundle
from eucgate.core.submission import Submission
from eucgate.policyfiles import load_bundle
from eucgate.policytest import CasePki, case_bundle, case_envelope
from eucgate.store import DecisionRecord
from eucgate_client.client import CertificateClient
from eucgate_client.dsse import Envelope
from eucgate_client.v1 import decision_pb2

from .conftest import Env

SAMPLE = load_bundle(SAMPLE_BUNDLE)
assert SAMPLE.tests is not None, "the sample bundle must carry test cases"
CASES = SAMPLE.tests.cases


class _Clock:
    """The server's clock for one case: always the case's `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def pki() -> CasePki:
    return CasePki()


@pytest.fixture(scope="module")
def trusting(pki: CasePki) -> Bundle:
    return pki.trusting(SAMPLE)


def _signed(bundle: Bundle, env: Env, path: Path) -> Path:
    path.write_bytes(sign_bundle(bundle, load_admin_private_key(env.admin_key)).to_json())
    return path


def _seed_registry(running: RunningServer, case: BundleTestCase, envelope: Envelope) -> None:
    """Record the earlier decision a case's registry names, so the server's own registry
    holds what `eucgate policy test` hands decide() (see policytest.case_registry)."""
    assert case.registry is not None
    submission = Submission.from_envelope(envelope, max_payload_bytes=1 << 20, max_signatures=8)
    certificate = submission.certificate
    same = case.registry.content == "same"
    body = {
        "outcome": case.registry.outcome.value,
        "euc_digest": submission.euc_digest if same else "0" * 64,
        "certificate_number": certificate.certificate_number,
        "end_user": {
            "legal_name": certificate.end_user.legal_name,
            "country_code": certificate.end_user.country_code,
            "registrations": [[r.scheme, r.value] for r in certificate.end_user.registrations],
        },
    }
    running.store.append(
        DecisionRecord(
            decision_id="dec_" + "0" * 26,
            caller="earlier",
            request_id="earlier",
            envelope_digest="0" * 64,
            envelope=b"earlier",
            decision=json.dumps(body).encode(),
            receipt=b"",
            outcome=case.registry.outcome.value,
            decided_at=case.now - timedelta(days=1),
            bundle_digest="0" * 64,
            importer_registrations=(),
        )
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_through_the_server(
    case: BundleTestCase, env: Env, pki: CasePki, trusting: Bundle, tmp_path: Path
) -> None:
    assert SAMPLE.tests is not None
    bundle = case_bundle(trusting, case, pki)
    envelope = case_envelope(SAMPLE.tests, case, pki)
    settings = env.settings(
        tmp_path / "store", bundle_path=_signed(bundle, env, tmp_path / "case.dsse.json")
    )
    running = start_server(settings, clock=_Clock(case.now))
    try:
        if case.registry is not None:
            _seed_registry(running, case, envelope)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            decision = CertificateClient(channel, timeout=30).submit(envelope).decision
    finally:
        running.stop(grace=1)
    outcome = decision_pb2.Outcome.Name(decision.outcome).removeprefix("OUTCOME_")
    rules = sorted(dict.fromkeys(r.rule_id for r in decision.reasons))
    assert (outcome, rules) == (case.expect.outcome.value, sorted(case.expect.rules))
    assert decision.bundle_digest == bundle.digest
    assert decision.decided_at.ToDatetime(tzinfo=case.now.tzinfo) == case.now
