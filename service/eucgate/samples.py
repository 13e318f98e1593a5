"""Realistic sample EUCs for the demo, the benchmarks and the tests.

Built as eucgate.v1 messages, exactly what an importer's ERP would send. The parties
match the sample bundle (policies/rare-earths-cn-in.yaml): Jay-Ushin Limited is a
licensed importer; Kaveri Motion Systems is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eucgate_client.v1 import certificate_pb2 as pb
from google.protobuf import timestamp_pb2


@dataclass(frozen=True)
class SampleParty:
    legal_name: str
    registrations: tuple[tuple[str, str], ...]
    city: str
    region: str
    postal_code: str
    street: str


JAY_USHIN = SampleParty(
    legal_name="Jay-Ushin Limited",
    registrations=(("IEC", "0588012345"), ("GSTIN", "06AAACJ1234F1Z5")),
    city="Gurugram",
    region="Haryana",
    postal_code="122015",
    street="GI-48, G.T. Karnal Road Industrial Area",
)

UNLICENSED = SampleParty(
    legal_name="Kaveri Motion Systems Private Limited",
    registrations=(("IEC", "0716054321"), ("GSTIN", "29AAFCK7788Q1Z2")),
    city="Bengaluru",
    region="Karnataka",
    postal_code="560099",
    street="Plot 14, Bommasandra Industrial Area",
)

EXPORTER = pb.Party(
    legal_name="Ganzhou Rare Earth Magnetics Co., Ltd.",
    country_code="CN",
    address=pb.Address(
        lines=["88 Jinling Road, Economic Development Zone"],
        city="Ganzhou",
        region="Jiangxi",
        postal_code="341000",
        country_code="CN",
    ),
    registrations=[pb.Registration(scheme="USCC", value="91360700MA35F2XK4B")],
)


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def party(sample: SampleParty) -> pb.Party:
    return pb.Party(
        legal_name=sample.legal_name,
        country_code="IN",
        address=pb.Address(
            lines=[sample.street],
            city=sample.city,
            region=sample.region,
            postal_code=sample.postal_code,
            country_code="IN",
        ),
        registrations=[pb.Registration(scheme=s, value=v) for s, v in sample.registrations],
    )


def certificate(
    now: datetime, *, buyer: SampleParty = JAY_USHIN, number: str = "JUL-EUC-2026-0042"
) -> pb.EndUserCertificate:
    """A complete, approvable EUC issued a day before `now`, valid for 120 days."""
    issued = now - timedelta(days=1)
    buyer_party = party(buyer)
    return pb.EndUserCertificate(
        certificate_number=number,
        issued_at=_ts(issued),
        validity=pb.Validity(not_before=_ts(issued), not_after=_ts(issued + timedelta(days=120))),
        exporter=EXPORTER,
        importer=buyer_party,
        end_user=buyer_party,
        items=[
            pb.Item(
                description="Sintered NdFeB permanent magnets, grade 48SH, Dy-diffused",
                hs_code="8505.11",
                elements=["Dy"],
                form=pb.ITEM_FORM_MAGNET,
                quantity=pb.Quantity(value="500", unit="kg"),
                value=pb.Money(amount="61250.00", currency_code="USD"),
                contract_reference="PO-4500123987",
            )
        ],
        end_use=pb.EndUse(
            category=pb.END_USE_CATEGORY_EV_TRACTION_MOTORS,
            statement=(
                "Rotor magnets for 48 V traction motors of two-wheeler electric vehicles "
                "assembled at our Manesar plant for the Indian market."
            ),
        ),
        final_destination_country="IN",
        undertakings=pb.Undertakings(
            no_wmd_use=True,
            no_military_end_use=True,
            no_military_end_user=True,
            no_reexport_without_consent=True,
            no_reexport_to=["US"],
        ),
        signatory=pb.Signatory(
            name="Anil Mehra", position="Head of Procurement", signed_at=_ts(issued)
        ),
    )


def military_end_use(now: datetime) -> pb.EndUserCertificate:
    euc = certificate(now, number="JUL-EUC-2026-0043")
    euc.end_use.category = pb.END_USE_CATEGORY_DEFENCE
    euc.end_use.statement = "Actuator magnets for guidance fins of a surface-to-air missile."
    return euc


def reexport_to_us(now: datetime) -> pb.EndUserCertificate:
    euc = certificate(now, number="JUL-EUC-2026-0044")
    euc.final_destination_country = "US"
    return euc


def unlicensed_importer(now: datetime) -> pb.EndUserCertificate:
    return certificate(now, buyer=UNLICENSED, number="KMS-EUC-2026-0007")
