"""eucgate client: the eucgate.v1 API, DSSE envelopes and offline receipt verification."""

from eucgate_client.client import ApiError, CertificateClient
from eucgate_client.receipt import ReceiptError, load_service_public_key, verify_receipt

__all__ = [
    "ApiError",
    "CertificateClient",
    "ReceiptError",
    "load_service_public_key",
    "verify_receipt",
]
