"""The verification keys a service publishes: receipt keys and log keys, after rotations.

A rotation changes the signing key and keeps the earlier public key published: receipt
keys with the period they signed in (`valid_from`, `valid_until`), log keys by their
signed-note key id. A receipt or checkpoint made before a rotation still verifies after
it; a receipt dated after its key's `valid_until` does not (RECEIPT_KEY_RETIRED).
`eucgate keys` prints this set; `eucgate_client.tlog.PublishedKeys` reads it back.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.receipt import ReceiptError, ServiceKey, load_service_public_key

from eucgate.config import Settings
from eucgate.errors import ConfigError
from eucgate.log.checkpoint import CheckpointSigner


def earlier_service_keys(settings: Settings) -> tuple[ServiceKey, ...]:
    """The receipt keys configured besides the active one, with their periods.

    Raises ConfigError when a public key file is unreadable or not Ed25519.
    """
    keys = []
    for setting in settings.service_verification_keys:
        try:
            public = load_service_public_key(setting.public_key_path.read_bytes())
        except (OSError, ReceiptError) as exc:
            raise ConfigError(
                f"service_verification_keys: {setting.public_key_path}: {exc}"
            ) from None
        keys.append(ServiceKey(public, setting.valid_from, setting.valid_until))
    return tuple(keys)


def published_keys(
    settings: Settings, service_key: Ed25519PrivateKey, log_signer: CheckpointSigner
) -> dict[str, Any]:
    """The key set as JSON: active keys first and marked, then earlier ones.

    Raises ConfigError as `earlier_service_keys` does.
    """
    active = ServiceKey(service_key.public_key())
    service = [_service_key(active, active=True)]
    service += [
        _service_key(k, active=False)
        for k in earlier_service_keys(settings)
        if k.keyid != active.keyid
    ]
    logs = [
        {
            "verifier_key": log_signer.verifier_key,
            "key_id": log_signer.verifier.key_id.hex(),
            "active": True,
        }
    ]
    for text in settings.log_verification_keys:
        if text != log_signer.verifier_key:
            key_id = text.strip().split("+")[1]
            logs.append({"verifier_key": text, "key_id": key_id, "active": False})
    return {
        "service_keys": service,
        "log_origin": log_signer.origin,
        "log_keys": logs,
        "witnesses": [{"url": w.url, "verifier_key": w.verifier_key} for w in settings.witnesses],
        "witness_quorum": settings.witness_quorum or len(settings.witnesses),
    }


def _service_key(key: ServiceKey, *, active: bool) -> dict[str, Any]:
    pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "keyid": key.keyid,
        "public_key": pem.decode(),
        "valid_from": None if key.valid_from is None else key.valid_from.isoformat(),
        "valid_until": None if key.valid_until is None else key.valid_until.isoformat(),
        "active": active,
    }
