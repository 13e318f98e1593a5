"""Submission: limits first, then the certificate; holding one means it decoded."""

from __future__ import annotations

import hashlib

import pytest
from eucgate.core.model import PAYLOAD_TYPE_JSON, PAYLOAD_TYPE_PROTO, encode_certificate
from eucgate.core.submission import Submission
from eucgate.errors import InvalidSubmission
from eucgate_client.dsse import Envelope, Signature

from tests.factories import valid_certificate

SIG = Signature(sig=b"\x01", keyid="k")


def _envelope(payload: bytes, count: int = 1, payload_type: str = PAYLOAD_TYPE_PROTO) -> Envelope:
    return Envelope(payload_type=payload_type, payload=payload, signatures=(SIG,) * count)


def _refused(envelope: Envelope, *, max_payload_bytes: int = 4096) -> InvalidSubmission:
    with pytest.raises(InvalidSubmission) as info:
        Submission.from_envelope(envelope, max_payload_bytes=max_payload_bytes, max_signatures=2)
    return info.value


def test_builds_with_digests_of_what_was_received() -> None:
    payload = encode_certificate(valid_certificate(), PAYLOAD_TYPE_JSON)
    envelope = _envelope(payload, payload_type=PAYLOAD_TYPE_JSON)
    sub = Submission.from_envelope(envelope, max_payload_bytes=4096, max_signatures=2)
    assert sub.certificate == valid_certificate()
    assert sub.euc_digest == hashlib.sha256(payload).hexdigest()
    assert sub.envelope_digest == hashlib.sha256(envelope.digest_input()).hexdigest()
    assert sub.envelope is envelope


def test_cannot_be_built_directly() -> None:
    with pytest.raises(TypeError):
        Submission(
            envelope=_envelope(b"x"),
            certificate=valid_certificate(),
            euc_digest="",
            envelope_digest="",
        )


@pytest.mark.parametrize(("count", "reason"), [(0, "SIGNATURES_EMPTY"), (3, "SIGNATURES_TOO_MANY")])
def test_signature_count_limits(count: int, reason: str) -> None:
    err = _refused(_envelope(encode_certificate(valid_certificate()), count))
    assert (err.reason, err.field) == (reason, "signatures")


def test_empty_payload() -> None:
    err = _refused(_envelope(b""))
    assert (err.reason, err.field) == ("PAYLOAD_EMPTY", "payload")


def test_payload_over_the_limit_is_refused_before_decoding() -> None:
    payload = encode_certificate(valid_certificate())
    err = _refused(_envelope(payload), max_payload_bytes=len(payload) - 1)
    assert (err.reason, err.field) == ("PAYLOAD_TOO_LARGE", "payload")
    Submission.from_envelope(_envelope(payload), max_payload_bytes=len(payload), max_signatures=1)


def test_signature_limits_come_before_payload_checks() -> None:
    assert _refused(_envelope(b"", 0)).reason == "SIGNATURES_EMPTY"


def test_certificate_errors_pass_through() -> None:
    err = _refused(_envelope(b"\xff\xff", payload_type=PAYLOAD_TYPE_PROTO))
    assert err.reason == "PAYLOAD_INVALID_PROTOBUF"
    err = _refused(_envelope(b"{}", payload_type="text/plain"))
    assert (err.reason, err.field) == ("PAYLOAD_TYPE_UNSUPPORTED", "envelope.payload_type")
