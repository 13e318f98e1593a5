"""QTY-001 and the quota arithmetic: decimals with units, balances from the ledger view."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from eucgate.core import quota
from eucgate.core.bundleload import parse_bundle
from eucgate.core.checks import CHECKS
from eucgate.core.decide import decide
from eucgate.core.ledger import EmptyLedger, LedgerRead, LedgerView, SnapshotLedger
from eucgate.core.model import Item, Quantity
from eucgate.core.rules import RuleContext, RuleUnavailable
from eucgate.errors import BundleError

from tests.conftest import Pki
from tests.factories import (
    NOW,
    magnet_item,
    sample_bundle,
    signed_submission,
    signer_result,
    submission_with_signers,
    valid_certificate,
)

BUNDLE = sample_bundle()
LICENCE = "MOFCOM-EL-2025-000417"  # Jay-Ushin: 40000 kg under 1C904


def qty001(items: list[Item], ledger: LedgerView) -> list[str]:
    rule = next(r for r in BUNDLE.rules if r.id == "QTY-001")
    ctx = RuleContext(
        submission=submission_with_signers(valid_certificate(items=tuple(items))),
        bundle=BUNDLE,
        signer_results=(signer_result(),),
        ledger=ledger,
        now=NOW,
    )
    return [f.detail for f in CHECKS[rule.check].function(ctx, rule.parsed_params)]


def test_within_the_whole_quota_when_nothing_is_recorded() -> None:
    item = magnet_item(quantity=Quantity(value=Decimal("40000"), unit="kg"))
    assert qty001([item], EmptyLedger()) == []


def test_beyond_the_whole_quota_fires() -> None:
    item = magnet_item(quantity=Quantity(value=Decimal("40000.001"), unit="kg"))
    (detail,) = qty001([item], EmptyLedger())
    assert "40000.001 kg under 1C904 exceeds the 40000 kg left" in detail


def test_lines_add_up_and_units_convert() -> None:
    items = [
        magnet_item(quantity=Quantity(value=Decimal("0.6"), unit="t")),
        magnet_item(quantity=Quantity(value=Decimal("400001"), unit="g")),
    ]
    ledger = SnapshotLedger({(LICENCE, "1C904"): Decimal("1000")})
    assert qty001(items, ledger) == [
        f"1000.001 kg under 1C904 exceeds the 1000 kg left of licence {LICENCE}'s quota of 40000 kg"
    ]
    assert qty001(items[:1], ledger) == []


def test_the_balance_comes_from_the_ledger() -> None:
    item = magnet_item()  # 500 kg
    assert qty001([item], SnapshotLedger({(LICENCE, "1C904"): Decimal("500")})) == []
    assert qty001([item], SnapshotLedger({(LICENCE, "1C904"): Decimal("499.999")}))
    assert qty001([item], SnapshotLedger({(LICENCE, "1C904"): Decimal("0")}))


def test_incomparable_units_make_the_rule_unavailable() -> None:
    item = magnet_item(quantity=Quantity(value=Decimal("3"), unit="pcs"))
    with pytest.raises(RuleUnavailable, match="'pcs' cannot be counted against a quota in 'kg'"):
        qty001([item], EmptyLedger())


def test_convert_is_exact_decimal() -> None:
    assert quota.convert(Decimal("0.001"), "t", "g") == Decimal("1000")
    assert quota.convert(Decimal("1"), "g", "kg") == Decimal("0.001")
    with pytest.raises(quota.QuotaUnitError):
        quota.convert(Decimal("1"), "kg", "l")


def test_decide_records_the_balance_it_read(pki: Pki) -> None:
    submission = signed_submission(valid_certificate(), pki)
    bundle = sample_bundle(pki)
    ledger = SnapshotLedger({(LICENCE, "1C904"): Decimal("123.5")})
    d = decide(submission, bundle, ledger, NOW)
    assert [r.rule_id for r in d.reasons] == ["QTY-001"]
    assert d.ledger_reads == (
        LedgerRead(licence_number=LICENCE, control_code="1C904", remaining="123.5"),
    )
    assert b'"ledger_reads"' in d.model_dump_json().encode()


def test_a_bundle_without_quotas_keeps_its_digest() -> None:
    text = BUNDLE.canonical().decode()
    assert '"quotas"' in text

    data = json.loads(text)
    for li in data["licensed_importers"]:
        li.pop("quotas")
    stripped = json.dumps(data)
    bundle = parse_bundle(stripped, "<test>")
    assert '"quotas"' not in bundle.canonical().decode()
    assert all(li.quotas == () for li in bundle.licensed_importers)


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ([{"control_code": "1C902", "quantity": "1", "unit": "kg"}], "does not list"),
        (
            [
                {"control_code": "1C904", "quantity": "1", "unit": "kg"},
                {"control_code": "1C904", "quantity": "2", "unit": "kg"},
            ],
            "two quotas for 1C904",
        ),
        ([{"control_code": "1C904", "quantity": 1.5, "unit": "kg"}], "quantity"),
        ([{"control_code": "1C904", "quantity": "-1", "unit": "kg"}], "quantity"),
    ],
)
def test_bad_quotas_fail_the_load(quotas: list[dict[str, object]], message: str) -> None:

    data = json.loads(BUNDLE.canonical())
    jay = next(li for li in data["licensed_importers"] if li["licence_number"] == LICENCE)
    jay["quotas"] = quotas
    with pytest.raises(BundleError, match=message):
        parse_bundle(json.dumps(data), "<test>")
