"""Builders of valid domain objects for tests: change one thing, keep the rest valid.

`valid_certificate()` is a Jay-Ushin Limited EUC for 500 kg of Dy-bearing NdFeB magnets
(HS 8505.11) for EV traction motors, destination India, every undertaking given, valid
2026-05-20 to 2026-11-15 (inside the sample bundle's 183 days, around the `now`
fixture). Under `sample_bundle(pki)` and signed with `signed_submission(cert, pki)` it
is APPROVED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import eucgate
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eucgate.core.bundle import Bundle
from eucgate.core.decision import SignerResult
from eucgate.core.model import (
    PAYLOAD_TYPE_PROTO,
    Address,
    Certificate,
    EndUse,
    EndUseCategory,
    Item,
    ItemForm,
    Money,
    Party,
    Quantity,
    Registration,
    Signatory,
    Undertakings,
    Validity,
    encode_certificate,
)
from eucgate.core.submission import Submission
from eucgate.policyfiles import load_bundle
from eucgate.signing import PrivateKey, sign_envelope
from eucgate_client.dsse import Envelope, Signature

from tests.conftest import END_USER_ORGANIZATION, END_USER_REGISTRATIONS, NOW, Pki

SAMPLE_BUNDLE_PATH = Path(eucgate.__file__).parent / "policies" / "rare-earths-cn-in.yaml"
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_SIGNATURES = 8
SIGNED_AT = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_SIGNATURES",
    "NOW",
    "SAMPLE_BUNDLE_PATH",
    "SIGNED_AT",
    "envelope_for",
    "exporter",
    "jay_ushin",
    "magnet_item",
    "sample_bundle",
    "sample_bundle_with",
    "shin_etsu",
    "signed_submission",
    "signer_result",
    "submission_with_signers",
    "valid_certificate",
]


def jay_ushin(**overrides: Any) -> Party:
    """Jay-Ushin Limited, Gurugram: a licensed importer of the sample bundle."""
    fields: dict[str, Any] = {
        "legal_name": END_USER_ORGANIZATION,
        "address": Address(
            lines=("GI-48, G.T. Karnal Road Industrial Area",),
            city="Gurugram",
            region="Haryana",
            postal_code="122015",
            country_code="IN",
        ),
        "country_code": "IN",
        "registrations": tuple(Registration(scheme=s, value=v) for s, v in END_USER_REGISTRATIONS),
    }
    fields.update(overrides)
    return Party(**fields)


def shin_etsu(**overrides: Any) -> Party:
    """Shin-Etsu Magnetics Co, Japan: the consignee the `pki` fixture's consignee signs as."""
    fields: dict[str, Any] = {
        "legal_name": "Shin-Etsu Magnetics Co",
        "country_code": "JP",
        "registrations": (Registration(scheme="JCN", value="1234567890123"),),
    }
    fields.update(overrides)
    return Party(**fields)


def exporter(**overrides: Any) -> Party:
    fields: dict[str, Any] = {
        "legal_name": "Baotou Tianhe Magnetics Technology Co., Ltd.",
        "country_code": "CN",
        "registrations": (Registration(scheme="USCC", value="91150291MA0Q3E2K7L"),),
    }
    fields.update(overrides)
    return Party(**fields)


def magnet_item(**overrides: Any) -> Item:
    """500 kg of sintered NdFeB magnets with dysprosium, HS 8505.11."""
    fields: dict[str, Any] = {
        "description": "Sintered NdFeB permanent magnets, grade N42SH, Dy-diffused",
        "hs_code": "8505.11",
        "elements": ("Dy",),
        "form": ItemForm.MAGNET,
        "quantity": Quantity(value=Decimal("500"), unit="kg"),
        "value": Money(amount=Decimal("62500.00"), currency_code="USD"),
        "contract_reference": "JUL-PO-2026-0387",
    }
    fields.update(overrides)
    return Item(**fields)


def valid_certificate(**overrides: Any) -> Certificate:
    """A valid EUC; keyword arguments replace top-level fields (validated again)."""
    fields: dict[str, Any] = {
        "certificate_number": "JUL/EUC/2026/0142",
        "issued_at": datetime(2026, 5, 20, 9, 0, tzinfo=UTC),
        "validity": Validity(
            not_before=datetime(2026, 5, 20, tzinfo=UTC),
            not_after=datetime(2026, 11, 15, tzinfo=UTC),
        ),
        "exporter": exporter(),
        "importer": jay_ushin(),
        "end_user": jay_ushin(),
        "items": (magnet_item(),),
        "end_use": EndUse(
            category=EndUseCategory.EV_TRACTION_MOTORS,
            statement="Rotor magnets for EV traction motors built at our Manesar plant "
            "for vehicles sold in India.",
        ),
        "final_destination_country": "IN",
        "undertakings": Undertakings(
            no_wmd_use=True,
            no_military_end_use=True,
            no_military_end_user=True,
            no_reexport_without_consent=True,
            no_reexport_to=("US",),
        ),
        "signatory": Signatory(
            name="Rajiv Mehta", position="Chief Procurement Officer", signed_at=SIGNED_AT
        ),
    }
    fields.update(overrides)
    return Certificate(**fields)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sample_bundle(pki: Pki | None = None) -> Bundle:
    """The shipped sample bundle; with `pki`, its roots and CRLs installed."""
    bundle = load_bundle(SAMPLE_BUNDLE_PATH)
    if pki is None:
        return bundle
    anchors: Mapping[str, Sequence[x509.Certificate]] = pki.anchors()
    return bundle.with_trust_anchors(
        {role: [_pem(c) for c in certs] for role, certs in anchors.items()},
        {
            role: [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in crls]
            for role, crls in pki.crls().items()
        },
    )


def sample_bundle_with(
    anchors: Mapping[str, Sequence[str]], crls: Mapping[str, Sequence[str]]
) -> Bundle:
    """The shipped sample bundle with these PEM trust anchors and CRLs per role."""
    return load_bundle(SAMPLE_BUNDLE_PATH).with_trust_anchors(anchors, crls)


def envelope_for(
    cert: Certificate,
    signers: Sequence[tuple[PrivateKey, Sequence[x509.Certificate]]],
    payload_type: str = PAYLOAD_TYPE_PROTO,
) -> Envelope:
    """The certificate encoded as `payload_type` and signed by each (key, chain)."""
    return sign_envelope(payload_type, encode_certificate(cert, payload_type), signers)


def signed_submission(
    cert: Certificate,
    pki: Pki,
    *,
    payload_type: str = PAYLOAD_TYPE_PROTO,
    signers: Sequence[tuple[PrivateKey, Sequence[x509.Certificate]]] | None = None,
) -> Submission:
    """A submission signed by the pki's end user (or by `signers`, in order)."""
    chosen = signers if signers is not None else [(pki.end_user_key, pki.end_user_chain)]
    return Submission.from_envelope(
        envelope_for(cert, chosen, payload_type),
        max_payload_bytes=MAX_PAYLOAD_BYTES,
        max_signatures=MAX_SIGNATURES,
    )


def submission_with_signers(cert: Certificate, count: int = 1) -> Submission:
    """A submission whose signatures are placeholders: for rule tests that supply
    `SignerResult`s directly instead of verifying."""
    envelope = Envelope(
        payload_type=PAYLOAD_TYPE_PROTO,
        payload=encode_certificate(cert),
        signatures=tuple(Signature(sig=b"\x00", keyid=f"k{i}") for i in range(count)),
    )
    return Submission.from_envelope(
        envelope, max_payload_bytes=MAX_PAYLOAD_BYTES, max_signatures=MAX_SIGNATURES
    )


def signer_result(**overrides: Any) -> SignerResult:
    """A verified end-user signer result for Jay-Ushin Limited."""
    fields: dict[str, Any] = {
        "index": 0,
        "keyid": "k0",
        "role": "end_user",
        "subject": "CN=Jay-Ushin Limited EUC signing,O=Jay-Ushin Limited,C=IN",
        "certificate_digest": "00" * 32,
        "organization": END_USER_ORGANIZATION,
        "registrations": tuple(f"{s}:{v}" for s, v in END_USER_REGISTRATIONS),
        "verified": True,
    }
    fields.update(overrides)
    return SignerResult(**fields)
