"""eucgate client: the eucgate.v1 API, DSSE envelopes, offline receipt and log verification."""

from eucgate_client.client import ApiError, AuditClient, CertificateClient, open_channel
from eucgate_client.errors import VerificationError
from eucgate_client.receipt import ReceiptError, load_service_public_key, verify_receipt
from eucgate_client.tlog import (
    Checkpoint,
    CheckpointError,
    NoteVerifier,
    ProofError,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_logged_receipt,
)

__all__ = [
    "ApiError",
    "AuditClient",
    "CertificateClient",
    "Checkpoint",
    "CheckpointError",
    "NoteVerifier",
    "ProofError",
    "ReceiptError",
    "VerificationError",
    "load_service_public_key",
    "open_channel",
    "open_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_logged_receipt",
    "verify_receipt",
]
