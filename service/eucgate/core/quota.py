"""Quota arithmetic: what a certificate asks of a licence's quotas, in the quotas' units.

Quantities are Decimal throughout, never float. An item counts against the first control
code that may cover it (bundle `controlled_items`, see `may_cover`), that the licence
lists and keeps a quota for: an item declared under a heading too coarse to say whether
it is controlled still counts, so a quota is never passed by declaring "8505" instead of
"8505.11". Mass units convert exactly (g, kg, t); any other pair of different units
cannot be compared and raises QuotaUnitError, which QTY-001 turns into a referral. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from eucgate.core.bundle import Bundle, ControlledItem, LicensedImporter
from eucgate.core.model import Item

_MASS_IN_KG = {"g": Decimal("0.001"), "kg": Decimal(1), "t": Decimal(1000)}


class QuotaUnitError(ValueError):
    """A quantity whose unit cannot be converted to the unit its quota is kept in."""


def convert(value: Decimal, unit: str, to: str) -> Decimal:
    """`value` in `unit` expressed in `to`; exact. Raises QuotaUnitError if incomparable."""
    if unit == to:
        return value
    if unit in _MASS_IN_KG and to in _MASS_IN_KG:
        return value * _MASS_IN_KG[unit] / _MASS_IN_KG[to]
    raise QuotaUnitError(f"a quantity in {unit!r} cannot be counted against a quota in {to!r}")


def finer(entry: ControlledItem, item: Item) -> bool:
    """The entry's HS code lies strictly under the item's: the item names a heading (say
    8505) that holds the entry's subheading (8505.11) and others besides."""
    entry_digits = entry.hs_code.replace(".", "")
    item_digits = item.hs_code.replace(".", "")
    return len(entry_digits) > len(item_digits) and entry_digits.startswith(item_digits)


def may_cover(entry: ControlledItem, item: Item) -> bool:
    """The entry covers the item, or would if the item's too coarse HS code were refined
    to the entry's (same form, a shared element)."""
    return entry.covers(item) or (
        finer(entry, item)
        and item.form in entry.forms
        and not set(item.elements).isdisjoint(entry.elements)
    )


def demand(bundle: Bundle, licensee: LicensedImporter, items: Sequence[Item]) -> dict[str, Decimal]:
    """Total quantity per quota-kept control code, in the quota's unit, in item order.

    Items under no quota-kept code are left out. Raises QuotaUnitError.
    """
    totals: dict[str, Decimal] = {}
    for item in items:
        code = next(
            (
                e.control_code
                for e in bundle.controlled_items
                if may_cover(e, item) and licensee.quota_for(e.control_code) is not None
            ),
            None,
        )
        if code is None:
            continue
        quota = licensee.quota_for(code)
        assert quota is not None
        amount = convert(item.quantity.value, item.quantity.unit, quota.unit)
        totals[code] = totals.get(code, Decimal(0)) + amount
    return totals
