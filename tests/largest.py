"""The largest input eucgate accepts, for the tests that bound what a request costs.

`largest_certificate()` has every repeated field at its bound and every text field at
its byte bound, in quotes (each costs two bytes in the decision's JSON), with content
that makes as many rules fire as it can: barred and hub routes, a military end use in
prohibited phrases, no undertakings, ten uncontrolled items, listed owners, cash.
`garbage_signatures` are signatures whose "certificates" do not parse (the verbose
SIG_BAD_CERTIFICATE detail) under long keyids; `fat_signers` are real certificates from
an untrusted CA with the longest names, registrations and keyids that still fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from eucgate.core.model import (
    MAX_ADDRESS_BYTES,
    MAX_ADDRESS_LINES,
    MAX_DESCRIPTION_BYTES,
    MAX_ELEMENTS,
    MAX_INTERMEDIARIES,
    MAX_ITEMS,
    MAX_NAME_BYTES,
    MAX_OWNERS,
    MAX_QUALIFICATION_BYTES,
    MAX_REEXPORT_BARS,
    MAX_REFERENCE_BYTES,
    MAX_REGISTRATIONS,
    MAX_STATEMENT_BYTES,
    MAX_TRANSIT_COUNTRIES,
    Address,
    Certificate,
    Endorsement,
    EndUse,
    EndUseCategory,
    Intermediary,
    IntermediaryRole,
    Item,
    ItemForm,
    Money,
    Owner,
    Party,
    PaymentMethod,
    Quantity,
    Registration,
    Signatory,
    Transaction,
    Undertakings,
    Validity,
)
from eucgate.signing import issue_ca, issue_signer, sign_envelope
from eucgate_client.dsse import Envelope, Signature

_BIGGEST_DECIMAL = Decimal("9" * 24 + "." + "9" * 12)  # the longest the model accepts
_ELEMENTS = ("Dy", "Tb", "Sm", "Gd", "Lu", "Sc", "Y", "Nd")
KEYID = '"' * 200  # a keyid hint far over what a decision keeps of it


def text(limit: int, seed: str = "") -> str:
    """`seed` padded with quotes to exactly `limit` UTF-8 bytes."""
    return seed + '"' * (limit - len(seed.encode()))


def _party(seed: str, country: str) -> Party:
    return Party(
        legal_name=text(MAX_NAME_BYTES, seed),
        address=Address(
            lines=tuple(
                text(MAX_ADDRESS_BYTES, f"P.O. Box {i} ") for i in range(MAX_ADDRESS_LINES)
            ),
            city=text(MAX_ADDRESS_BYTES, "Arlington "),
            region=text(MAX_ADDRESS_BYTES, "Virginia "),
            postal_code=text(MAX_REFERENCE_BYTES, "22202 "),
            country_code=country,
        ),
        country_code=country,
        registrations=tuple(
            Registration(scheme=f"SCHEME_{i}ABCDEFGH", value=text(MAX_REFERENCE_BYTES, f"{i} "))
            for i in range(MAX_REGISTRATIONS)
        ),
        parent_company=text(MAX_NAME_BYTES, "Lockheed Martin Corporation "),
        owners=tuple(
            Owner(
                legal_name=text(MAX_NAME_BYTES, "Anduril Industries "),
                country_code="US",
                share_percent=Decimal("50"),
            )
            for _ in range(MAX_OWNERS)
        ),
    )


def _item(i: int) -> Item:
    return Item(
        description=text(MAX_DESCRIPTION_BYTES, f"item {i}: missile guidance "),
        hs_code="9999.99.99.99",
        elements=_ELEMENTS[:MAX_ELEMENTS],
        form=ItemForm.OTHER,
        quantity=Quantity(value=_BIGGEST_DECIMAL, unit="k" * 16),
        value=Money(amount=_BIGGEST_DECIMAL, currency_code="USD"),
        contract_reference=text(MAX_REFERENCE_BYTES, f"PO-{i} "),
    )


def largest_certificate() -> Certificate:
    """Every list and text at its bound; as many rules firing as the content can make."""
    start = datetime(2026, 5, 20, tzinfo=UTC)
    forwarder = _party("General Dynamics Forwarding ", "AE")
    return Certificate(
        certificate_number=text(MAX_REFERENCE_BYTES, "EUC-LARGEST "),
        issued_at=start + timedelta(days=3650),  # in the future: DOC-002
        validity=Validity(not_before=start, not_after=start + timedelta(days=3000)),
        exporter=_party("Baotou Exporter ", "CN"),
        importer=_party("L3Harris Technologies ", "US"),
        consignee=forwarder,
        intermediaries=tuple(
            Intermediary(party=forwarder, role=IntermediaryRole.FREIGHT_FORWARDER)
            for _ in range(MAX_INTERMEDIARIES)
        ),
        end_user=_party("Boeing Defense ", "US"),
        items=tuple(_item(i) for i in range(MAX_ITEMS)),
        end_use=EndUse(
            category=EndUseCategory.MILITARY,
            statement=text(MAX_STATEMENT_BYTES, "missile radar defence weapons trading stock "),
        ),
        final_destination_country="US",
        undertakings=Undertakings(
            no_reexport_to=("CN",) * MAX_REEXPORT_BARS,
            qualification=text(MAX_QUALIFICATION_BYTES, "except where we decide otherwise "),
        ),
        signatory=Signatory(
            name=text(MAX_NAME_BYTES, "A. Signer "),
            position=text(MAX_NAME_BYTES, "Director "),
            signed_at=start + timedelta(days=3650),  # in the future: DOC-004
        ),
        endorsement=Endorsement(
            authority=text(MAX_NAME_BYTES, "Ministry "),
            country_code="US",
            reference=text(MAX_REFERENCE_BYTES, "REF "),
            endorsed_at=start,
        ),
        transaction=Transaction(
            payment_method=PaymentMethod.CASH,
            transit_countries=("AE", "US", "SG", "AE", "HK", "US", "TR", "MY")[
                :MAX_TRANSIT_COUNTRIES
            ],
            installation_declined=True,
            training_declined=True,
        ),
    )


def garbage_signatures(count: int) -> tuple[Signature, ...]:
    """Signatures whose certificate is not X.509: SIG_BAD_CERTIFICATE with the parser's
    (long) message, under a keyid far over its bound."""
    return tuple(
        Signature(sig=b"\x00" * 64, keyid=KEYID, certificates=(b"\x30\x82\xff\xff" + b"\x01" * 8,))
        for _ in range(count)
    )


def with_signatures(envelope: Envelope, extra: Sequence[Signature]) -> Envelope:
    return Envelope(envelope.payload_type, envelope.payload, (*envelope.signatures, *extra))


def fat_signers(count: int) -> list[tuple[object, list[object]]]:
    """`count` signers certified by a CA no role trusts (SIG_UNTRUSTED_CHAIN), each with
    the longest organisation, common name and registrations a certificate carries."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rogue = issue_ca("rogue root", not_before=start, not_after=start + timedelta(days=3650))
    signers: list[tuple[object, list[object]]] = []
    for i in range(count):
        key, cert = issue_signer(
            rogue,
            organization=f"{i} " + '"' * 400,
            registrations=[(f"SCHEME{j}", "V" * 56) for j in range(6)],
            common_name="C" * 64,
            country="IN",
            not_before=start,
            not_after=start + timedelta(days=365),
        )
        signers.append((key, [cert]))
    return signers


def sign(certificate_payload: bytes, payload_type: str, signers: Sequence[object]) -> Envelope:
    """`sign_envelope` for signer lists of any typing."""
    return sign_envelope(payload_type, certificate_payload, signers)  # type: ignore[arg-type]
