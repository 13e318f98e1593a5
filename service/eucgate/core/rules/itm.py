"""ITM: items and their control."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from eucgate.core import quota
from eucgate.core.bundle import ControlledItem
from eucgate.core.checks import Finding, NoParams
from eucgate.core.model import (
    ElementSymbol,
    Item,
)
from eucgate.core.rules.context import RuleContext, check


class ElementsParams(BaseModel):
    """Chemical symbols a rule looks for, and the instrument that names them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    elements: tuple[ElementSymbol, ...] = Field(min_length=1)
    instrument: str = Field(min_length=1)


@check("items_contain_elements", ElementsParams)
def items_contain_elements(ctx: RuleContext, params: ElementsParams) -> list[Finding]:
    """Each item that contains one of `params.elements` is a finding."""
    wanted = set(params.elements)
    return [
        Finding(
            f"items[{i}].elements",
            f"{', '.join(sorted(wanted & set(item.elements)))} "
            f"is controlled under {params.instrument}",
        )
        for i, item in enumerate(ctx.certificate.items)
        if wanted & set(item.elements)
    ]


def _describe(item: Item) -> str:
    return f"{item.hs_code} {item.form.value} ({', '.join(item.elements) or 'no elements'})"


def _inconsistent(ctx: RuleContext, item: Item) -> bool:
    """Controlled elements under a controlled heading, in a form no entry of it lists."""
    controlled = ctx.bundle.controlled_items
    return not any(e.covers(item) for e in controlled) and any(
        e.same_heading(item) and not set(item.elements).isdisjoint(e.elements) for e in controlled
    )


def _undecided(ctx: RuleContext, item: Item) -> list[ControlledItem]:
    """The controlled entries under an item's too coarse HS code that share an element
    with it, when no entry covers it: whether it is controlled depends on a subheading
    the certificate does not give (8505 holds the controlled 8505.11 and the
    uncontrolled 8505.19)."""
    controlled = ctx.bundle.controlled_items
    if any(e.covers(item) for e in controlled):
        return []
    return [
        e
        for e in controlled
        if quota.finer(e, item) and not set(item.elements).isdisjoint(e.elements)
    ]


@check("items_controlled", NoParams)
def items_controlled(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Each item must match a controlled-list entry (HS code, form and element); items
    whose form merely contradicts their heading are left to `items_consistent`, and
    items whose HS code is too coarse to decide to `items_classified` when the bundle
    runs it (else they are reported here, so they never pass by omission)."""
    controlled = ctx.bundle.controlled_items
    skip_undecided = ctx.bundle.runs("items_classified", ctx.now)
    return [
        Finding(f"items[{i}]", f"{_describe(item)} is not on the controlled list")
        for i, item in enumerate(ctx.certificate.items)
        if not any(entry.covers(item) for entry in controlled)
        and not _inconsistent(ctx, item)
        and not (skip_undecided and _undecided(ctx, item))
    ]


@check("items_classified", NoParams)
def items_classified(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """An item whose HS code is coarser than the controlled-list entries under it (a
    4-digit heading where the list reads 6-digit subheadings) cannot be said to need or
    not need a licence; its quantity still counts against the quota (`quota.demand`)."""
    findings = []
    for i, item in enumerate(ctx.certificate.items):
        entries = _undecided(ctx, item)
        if not entries:
            continue
        listed = ", ".join(sorted({f"{e.hs_code} ({e.control_code})" for e in entries}))
        findings.append(
            Finding(
                f"items[{i}].hs_code",
                f"{_describe(item)}: HS {item.hs_code} does not say whether the item is "
                f"controlled; the controlled list holds {listed} under it",
            )
        )
    return findings


@check("items_consistent", NoParams)
def items_consistent(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """An item with controlled elements under a controlled HS heading must be in a form
    that heading lists: a magnet heading declared as an oxide is a misdescription."""
    return [
        Finding(
            f"items[{i}].form",
            f"{_describe(item)}: the form {item.form.value} does not match HS {item.hs_code}",
        )
        for i, item in enumerate(ctx.certificate.items)
        if _inconsistent(ctx, item)
    ]
