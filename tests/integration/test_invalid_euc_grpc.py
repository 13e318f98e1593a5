"""An EUC with several problems, signed and submitted over real gRPC: the client gets
every problem as its own google.rpc.BadRequest field violation, and nothing is recorded."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from eucgate import samples
from eucgate_client.v1 import certificate_service_pb2 as svc_pb2
from eucgate_client.v1 import certificate_service_pb2_grpc as svc_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from .conftest import Env

# The eight top-level fields an integrator once found one submit round at a time.
MISSING = [
    "certificate_number",
    "issued_at",
    "validity",
    "importer",
    "end_user",
    "end_use",
    "final_destination_country",
    "signatory",
]


def test_every_problem_of_an_invalid_euc_is_a_field_violation(
    channel: grpc.Channel, env: Env
) -> None:
    euc = samples.certificate(datetime.now(UTC))
    for name in MISSING:
        euc.ClearField(name)
    euc.items[0].hs_code = "85-05"
    envelope = env.sign(euc).to_json()
    stub = svc_grpc.CertificateServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitCertificate(
            svc_pb2.SubmitCertificateRequest(request_id="many-problems", envelope_json=envelope),
            timeout=20,
        )
    call: grpc.Call = info.value  # type: ignore[assignment]
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(call)
    assert status is not None
    reasons, violations = [], []
    for detail in status.details:
        errinfo, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(errinfo):
            reasons.append(errinfo.reason)
        elif detail.Unpack(bad):
            violations = [(v.field, v.description, v.reason) for v in bad.field_violations]
    assert reasons == ["PAYLOAD_MISSING_FIELD"]
    expected = [(name, "is required", "PAYLOAD_MISSING_FIELD") for name in MISSING]
    hs = (
        "items[0].hs_code",
        "must be a Harmonized System code such as '8505.11' or '2846.90'",
        "PAYLOAD_INVALID_FIELD",
    )
    expected.insert(MISSING.index("end_use"), hs)  # field order: items before end_use
    assert violations == expected
    assert call.details().startswith("the certificate has 9 problems")
    # Refused input is never recorded.
    listed = stub.ListDecisions(svc_pb2.ListDecisionsRequest(), timeout=20)
    assert len(listed.decisions) == 0
