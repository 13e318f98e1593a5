"""What-if balances: what the candidate took beyond the record is counted in the unit it
was taken in and converted where a balance is read, into the deciding quota's unit."""

from __future__ import annotations

import json
from decimal import Decimal

from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.log.entry import LedgerRead
from eucgate.replay.engine import RecordedLedger

from tests.factories import sample_bundle

LICENCE, CODE = "MOFCOM-EL-2025-000417", "1C904"
KEY = (LICENCE, CODE)


def _with_quota(quantity: str, unit: str) -> Bundle:
    data = json.loads(sample_bundle().canonical())
    for licensee in data["licensed_importers"]:
        if licensee["licence_number"] == LICENCE:
            for quota in licensee["quotas"]:
                if quota["control_code"] == CODE:
                    quota["quantity"], quota["unit"] = quantity, unit
    return parse_bundle(json.dumps(data), "test")


def _read(remaining: str | None) -> LedgerRead:
    return LedgerRead(licence_number=LICENCE, control_code=CODE, remaining=remaining)


def test_without_a_shift_the_record_is_read_as_it_is() -> None:
    assert RecordedLedger([_read("39.5")]).remaining(*KEY) == Decimal("39.5")
    assert RecordedLedger([_read(None)]).remaining(*KEY) is None
    assert RecordedLedger([]).remaining(*KEY) is None


def test_a_balance_kept_in_tonnes_less_kilograms_taken() -> None:
    ledger = RecordedLedger(
        [_read("39.5")],
        {KEY: {"kg": Decimal(500)}},
        recorded=_with_quota("40", "t"),
        deciding=_with_quota("40", "t"),
    )
    assert ledger.remaining(*KEY) == Decimal("39.0")


def test_the_balance_is_read_in_the_deciding_quotas_unit() -> None:
    ledger = RecordedLedger(
        [_read("39.5")],
        {KEY: {"kg": Decimal(500), "t": Decimal(0)}},
        recorded=_with_quota("40", "t"),
        deciding=_with_quota("40000", "kg"),
    )
    assert ledger.remaining(*KEY) == Decimal("39000")


def test_nothing_recorded_starts_from_the_deciding_whole_quota() -> None:
    ledger = RecordedLedger(
        [_read(None)],
        {KEY: {"kg": Decimal(500)}},
        recorded=_with_quota("40000", "kg"),
        deciding=_with_quota("0.6", "t"),
    )
    assert ledger.remaining(*KEY) == Decimal("0.1")


def test_units_that_do_not_convert_leave_the_record() -> None:
    ledger = RecordedLedger(
        [_read("39.5")],
        {KEY: {"pcs": Decimal(3)}},
        recorded=_with_quota("40", "t"),
        deciding=_with_quota("40", "t"),
    )
    assert ledger.remaining(*KEY) == Decimal("39.5")
