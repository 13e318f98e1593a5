"""An invalid EUC's error as a client receives it: google.rpc.Status with ErrorInfo and a
BadRequest holding one field violation per problem, each with its own reason, small
enough for gRPC's default 8 KiB metadata limit."""

from __future__ import annotations

import grpc
import pytest
from eucgate.api.status import build_status, status_for
from eucgate.core import model
from eucgate.core.model import PAYLOAD_TYPE_PROTO, certificate_from_payload, certificate_to_proto
from eucgate.errors import InvalidSubmission, NotFound
from google.rpc import error_details_pb2, status_pb2

from tests.factories import valid_certificate

GRPC_METADATA_SOFT_LIMIT = 8192


def _decode(status: grpc.Status) -> tuple[status_pb2.Status, list[tuple[str, str, str]], str]:
    """The google.rpc.Status, its (field, description, reason) violations, ErrorInfo reason."""
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    decoded = status_pb2.Status.FromString(value)
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    bad = error_details_pb2.BadRequest()
    violations = []
    if len(decoded.details) > 1:
        assert decoded.details[1].Unpack(bad)
        violations = [(v.field, v.description, v.reason) for v in bad.field_violations]
    return decoded, violations, info.reason


def _refused(**clear: bool) -> InvalidSubmission:
    msg = certificate_to_proto(valid_certificate())
    for name in clear:
        msg.ClearField(name)
    msg.items[0].hs_code = "85-05"
    with pytest.raises(InvalidSubmission) as info:
        certificate_from_payload(PAYLOAD_TYPE_PROTO, msg.SerializeToString())
    return info.value


def test_every_problem_is_a_field_violation_with_its_own_reason() -> None:
    err = _refused(issued_at=True, signatory=True)
    decoded, violations, reason = _decode(status_for(err))
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert reason == "PAYLOAD_MISSING_FIELD"
    assert violations == [
        ("issued_at", "is required", "PAYLOAD_MISSING_FIELD"),
        (
            "items[0].hs_code",
            "must be a Harmonized System code such as '8505.11' or '2846.90'",
            "PAYLOAD_INVALID_FIELD",
        ),
        ("signatory", "is required", "PAYLOAD_MISSING_FIELD"),
    ]
    assert decoded.message.startswith("the certificate has 3 problems")


def test_an_error_naming_one_field_gives_one_violation_without_the_path_twice() -> None:
    err = NotFound(
        "decision_id: no decision dec_1", reason="DECISION_NOT_FOUND", field="decision_id"
    )
    _, violations, reason = _decode(status_for(err))
    assert reason == "DECISION_NOT_FOUND"
    assert violations == [("decision_id", "no decision dec_1", "DECISION_NOT_FOUND")]


def test_a_mapping_of_violations_still_builds() -> None:
    status = build_status(grpc.StatusCode.INVALID_ARGUMENT, "R", "m", {"a": "x", "b": "y"})
    assert _decode(status)[1] == [("a", "x", "R"), ("b", "y", "R")]


def test_the_largest_answer_fits_the_grpc_metadata_limit() -> None:
    msg = certificate_to_proto(valid_certificate())
    for name in ("certificate_number", "issued_at", "validity", "importer", "end_user"):
        msg.ClearField(name)
    first = msg.items[0]
    for _ in range(model.MAX_ITEMS - 1):
        msg.items.add().CopyFrom(first)
    for item in msg.items:
        item.hs_code = "Ж" * 20  # non-ASCII, quoted nowhere but counted in bytes
        item.elements[:] = ["Qq"] * model.MAX_ELEMENTS
    with pytest.raises(InvalidSubmission) as info:
        certificate_from_payload(PAYLOAD_TYPE_PROTO, msg.SerializeToString())
    status = status_for(info.value)
    ((_, details),) = status.trailing_metadata
    encoded = len(details) * 4 // 3 + 4  # base64 on the wire
    message = len(status.details.encode())
    assert encoded + message < GRPC_METADATA_SOFT_LIMIT - 512  # room for the other headers
    assert len(_decode(status)[1]) == len(info.value.violations) >= 20
