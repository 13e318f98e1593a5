"""eucgate client: the eucgate.v1 API, DSSE envelopes and offline receipt verification."""

from eucgate_client.receipt import ReceiptError, verify_receipt

__all__ = ["ReceiptError", "verify_receipt"]
