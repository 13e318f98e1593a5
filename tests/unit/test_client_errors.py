"""One error base for every offline check of the client library."""

from __future__ import annotations

import pytest
from eucgate_client import VerificationError
from eucgate_client.dsse import Envelope, EnvelopeError
from eucgate_client.receipt import ReceiptError, verify_receipt
from eucgate_client.tlog import CheckpointError, NoteVerifier, ProofError, verify_inclusion


def test_every_check_fails_with_a_verification_error_and_its_reason() -> None:
    failures: list[tuple[type[VerificationError], str]] = []
    with pytest.raises(VerificationError) as caught:
        Envelope.from_json(b"{}")
    failures.append((type(caught.value), caught.value.reason))
    with pytest.raises(VerificationError) as caught:
        verify_inclusion(0, 1, b"\x00" * 32, [], b"\x01" * 32)
    failures.append((type(caught.value), caught.value.reason))
    with pytest.raises(VerificationError) as caught:
        NoteVerifier.parse("not a key")
    failures.append((type(caught.value), caught.value.reason))
    with pytest.raises(VerificationError) as caught:
        verify_receipt({"envelope": {}}, b"not a key")
    failures.append((type(caught.value), caught.value.reason))
    assert [kind for kind, _ in failures] == [
        EnvelopeError,
        ProofError,
        CheckpointError,
        ReceiptError,
    ]
    assert all(reason for _, reason in failures)
    assert isinstance(EnvelopeError("ENVELOPE_X", "m"), ValueError)  # as before
