"""A submission: a DSSE envelope whose payload decoded into a valid certificate.

Construct means valid: the only way to hold a `Submission` is `Submission.from_envelope`,
which applies the limits and decodes the certificate, so nothing downstream re-checks.
Signatures are not verified here; `decide()` does that against the bundle's anchors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eucgate_client.dsse import Envelope

from eucgate.core.canonical import sha256_hex
from eucgate.core.model import Certificate, certificate_from_payload
from eucgate.errors import InvalidSubmission

# Whatever the configuration says: with the model's field bounds and the decision's
# (core.decision), an envelope this size or smaller always makes an audit-log entry
# within the 65,535 bytes of a tlog-tiles entry (the entry holds the envelope and the
# decision, each as base64).
MAX_ENVELOPE_BYTES = 19 * 1024  # the envelope as logged: deterministic protobuf
MAX_SIGNATURES = 8
_KEY = object()


@dataclass(frozen=True)
class Submission:
    """An envelope within the limits and its decoded certificate.

    `euc_digest` is the hex SHA-256 of the payload bytes as received; `envelope_digest`
    the hex SHA-256 of `envelope.digest_input()` (the same whichever form it arrived in).
    """

    envelope: Envelope
    certificate: Certificate
    euc_digest: str
    envelope_digest: str
    _key: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._key is not _KEY:
            raise TypeError("a Submission is built only by Submission.from_envelope")

    @classmethod
    def from_envelope(
        cls, envelope: Envelope, *, max_payload_bytes: int, max_signatures: int
    ) -> Submission:
        """Check the limits, then decode the certificate.

        `max_signatures` and `max_payload_bytes` are the caller's limits; MAX_SIGNATURES
        and MAX_ENVELOPE_BYTES hold whatever they are. Raises InvalidSubmission:
        SIGNATURES_EMPTY, SIGNATURES_TOO_MANY (field "signatures"), PAYLOAD_EMPTY,
        PAYLOAD_TOO_LARGE (field "payload"), ENVELOPE_TOO_LARGE, or any payload reason
        of `model.certificate_from_payload`.
        """
        max_signatures = min(max_signatures, MAX_SIGNATURES)
        count = len(envelope.signatures)
        if count == 0:
            raise InvalidSubmission(
                "the envelope carries no signature; the end user must sign it",
                reason="SIGNATURES_EMPTY",
                field="signatures",
            )
        if count > max_signatures:
            raise InvalidSubmission(
                f"the envelope carries {count} signatures; at most {max_signatures} are accepted",
                reason="SIGNATURES_TOO_MANY",
                field="signatures",
            )
        size = len(envelope.payload)
        if size == 0:
            raise InvalidSubmission(
                "the envelope payload is empty", reason="PAYLOAD_EMPTY", field="payload"
            )
        if size > max_payload_bytes:
            raise InvalidSubmission(
                f"the payload is {size} bytes; at most {max_payload_bytes} are accepted",
                reason="PAYLOAD_TOO_LARGE",
                field="payload",
            )
        logged = envelope.digest_input()
        if len(logged) > MAX_ENVELOPE_BYTES:
            raise InvalidSubmission(
                f"the envelope is {len(logged)} bytes with its signatures and certificate "
                f"chains; at most {MAX_ENVELOPE_BYTES} are accepted",
                reason="ENVELOPE_TOO_LARGE",
            )
        certificate = certificate_from_payload(envelope.payload_type, envelope.payload)
        return cls(
            envelope=envelope,
            certificate=certificate,
            euc_digest=sha256_hex(envelope.payload),
            envelope_digest=sha256_hex(logged),
            _key=_KEY,
        )
