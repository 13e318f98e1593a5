"""The catalogue rules beyond the foundation's: items, end-use text, destinations,
licence coverage and red flags, each firing and staying quiet at its edges."""

from __future__ import annotations

import pytest
from eucgate.core.bundle import Bundle
from eucgate.core.model import (
    Address,
    EndUse,
    EndUseCategory,
    Intermediary,
    IntermediaryRole,
    ItemForm,
    PaymentMethod,
    Transaction,
)
from eucgate.core.rules import _phrases_in

from tests.factories import exporter, jay_ushin, magnet_item, sample_bundle, valid_certificate
from tests.unit.test_rules import run


def test_sample_certificate_fires_none_of_them() -> None:
    for rule_id in ("ITM-003", "EUS-002", "EUS-003", "DST-002", "DST-003", "LIC-002",
                    "RF-001", "RF-002", "RF-003", "RF-004", "RF-005"):  # fmt: skip
        assert run(rule_id) == [], rule_id


def test_itm_003_form_contradicting_the_heading_rejects_but_unlisted_goods_refer() -> None:
    oxide_as_magnet = magnet_item(form=ItemForm.OXIDE)
    plain_ndfeb = magnet_item(elements=("Nd",))
    cert = valid_certificate(items=(oxide_as_magnet, plain_ndfeb))
    assert [f.field for f in run("ITM-003", cert)] == ["items[0].form"]
    assert [f.field for f in run("ITM-001", cert)] == ["items[1]"]


@pytest.mark.parametrize(
    ("statement", "hits"),
    [
        ("Actuators for guided missiles.", ["missile"]),
        ("Magnets for a weather RADAR antenna drive.", ["radar"]),
        ("Traction motors; no defence or defense customers.", ["defence", "defense"]),
        ("Rotor magnets for electric scooters sold in India.", []),
        ("Dronelike toys and nuclearity puns are out of scope.", []),
        ("Two drones for crop spraying.", ["drone"]),
    ],
)
def test_eus_002_phrases_match_whole_words(statement: str, hits: list[str]) -> None:
    bundle = sample_bundle()
    assert _phrases_in(statement, bundle.prohibited_end_use_phrases) == hits
    cert = valid_certificate(
        end_use=EndUse(category=EndUseCategory.EV_TRACTION_MOTORS, statement=statement)
    )
    assert len(run("EUS-002", cert)) == (1 if hits else 0)


def test_eus_003_vague_end_use() -> None:
    trading = valid_certificate(end_use=EndUse(category=EndUseCategory.TRADING, statement="Stock."))
    assert [f.field for f in run("EUS-003", trading)] == ["end_use.category", "end_use.statement"]
    terse = valid_certificate(
        end_use=EndUse(category=EndUseCategory.INDUSTRIAL_MOTORS, statement="Motors.")
    )
    assert "at least 4" in run("EUS-003", terse)[0].detail
    stockholm = valid_certificate(
        end_use=EndUse(
            category=EndUseCategory.INDUSTRIAL_MOTORS,
            statement="Servo motors for packaging lines, designed at our Stockholm centre.",
        )
    )
    assert run("EUS-003", stockholm) == []


def test_dst_002_and_003() -> None:
    abroad = valid_certificate(end_user=jay_ushin(country_code="LK"))
    assert [f.field for f in run("DST-002", abroad)] == ["end_user.country_code"]
    via_hub = valid_certificate(
        transaction=Transaction(transit_countries=("LK", "AE")),
        intermediaries=(
            Intermediary(party=exporter(legal_name="Gulf Trading FZE", country_code="AE"),
                         role=IntermediaryRole.TRADER),
        ),
    )  # fmt: skip
    assert [f.field for f in run("DST-003", via_hub)] == [
        "transaction.transit_countries[1]",
        "intermediaries[0].party.country_code",
    ]


def test_lic_002_licence_coverage() -> None:
    oxide = magnet_item(hs_code="2846.90", form=ItemForm.OXIDE)
    cert = valid_certificate(items=(magnet_item(), oxide))
    (finding,) = run("LIC-002", cert)
    assert finding.field == "items[1]"
    assert "1C903" in finding.detail
    assert "1C904" in finding.detail
    uncontrolled = valid_certificate(items=(magnet_item(hs_code="8505.19"),))
    assert run("LIC-002", uncontrolled) == []  # ITM-001's business, not the licence's


def test_lic_001_suspended_licence() -> None:
    bundle = sample_bundle()
    doc = bundle.model_dump(mode="json")
    for importer in doc["licensed_importers"]:
        importer["status"] = "SUSPENDED"
    suspended = Bundle.model_validate(doc)
    findings = run("LIC-001", bundle=suspended)
    assert [f.detail for f in findings] == ["licence MOFCOM-EL-2025-000417 is suspended"]


def test_red_flags() -> None:
    cash = valid_certificate(transaction=Transaction(payment_method=PaymentMethod.CASH))
    assert [f.field for f in run("RF-001", cash)] == ["transaction.payment_method"]
    bank = valid_certificate(transaction=Transaction(payment_method=PaymentMethod.BANK_TRANSFER))
    assert run("RF-001", bank) == []

    forwarder = exporter(legal_name="Swift Cargo Logistics", country_code="IN")
    named = valid_certificate(
        consignee=exporter(legal_name="SWIFT  cargo logistics", country_code="IN"),
        intermediaries=(Intermediary(party=forwarder, role=IntermediaryRole.FREIGHT_FORWARDER),),
    )
    assert [f.field for f in run("RF-002", named)] == ["consignee.legal_name"]

    po_box = valid_certificate(end_user=jay_ushin(address=Address(lines=("PO Box 77",))))
    assert [f.field for f in run("RF-003", po_box)] == ["end_user.address.lines"]
    street = valid_certificate(
        end_user=jay_ushin(address=Address(lines=("Plot 4, Sector 8", "P.O. Box 77")))
    )
    assert run("RF-003", street) == []

    declined = valid_certificate(transaction=Transaction(training_declined=True))
    assert [f.field for f in run("RF-004", declined)] == ["transaction.training_declined"]

    loop = valid_certificate(transaction=Transaction(transit_countries=("LK", "BD", "LK")))
    assert len(run("RF-005", loop)) == 2
    direct = valid_certificate(transaction=Transaction(transit_countries=("LK",)))
    assert run("RF-005", direct) == []
