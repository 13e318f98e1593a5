"""RF: red flags."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from eucgate.core.checks import Finding, NoParams
from eucgate.core.model import (
    IntermediaryRole,
    PaymentMethod,
)
from eucgate.core.rules.context import RuleContext, check, normalize_name

_PO_BOX = re.compile(r"\b(p\.?\s*o\.?\s*box|post\s+office\s+box|postfach)\b", re.IGNORECASE)


@check("payment_not_cash", NoParams)
def payment_not_cash(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Cash payment for controlled goods is a red flag."""
    t = ctx.certificate.transaction
    if t is None or t.payment_method is not PaymentMethod.CASH:
        return []
    return [Finding("transaction.payment_method", "the buyer pays in cash")]


@check("consignee_not_forwarder", NoParams)
def consignee_not_forwarder(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A freight forwarder named as the final consignee hides who receives the goods."""
    c = ctx.certificate
    if c.consignee is None:
        return []
    consignee = normalize_name(c.consignee.legal_name)
    return [
        Finding("consignee.legal_name", f"{c.consignee.legal_name!r} is the freight forwarder")
        for m in c.intermediaries
        if m.role is IntermediaryRole.FREIGHT_FORWARDER
        and normalize_name(m.party.legal_name) == consignee
    ]


@check("street_address_given", NoParams)
def street_address_given(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """End user and consignee need a street address, not only a post-office box."""
    c = ctx.certificate
    findings = []
    for path, party in (("end_user", c.end_user), ("consignee", c.consignee)):
        if party is None or party.address is None or not party.address.lines:
            continue
        if all(_PO_BOX.search(line) for line in party.address.lines):
            findings.append(Finding(f"{path}.address.lines", "gives only a post-office box"))
    return findings


@check("support_accepted", NoParams)
def support_accepted(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A buyer who declines installation or training may not be the real user."""
    t = ctx.certificate.transaction
    if t is None:
        return []
    findings = []
    if t.installation_declined:
        findings.append(Finding("transaction.installation_declined", "installation declined"))
    if t.training_declined:
        findings.append(Finding("transaction.training_declined", "training declined"))
    return findings


class RoutingParams(BaseModel):
    """How many transit countries a direct shipment plausibly passes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_transit_countries: int = Field(ge=0)


@check("routing_direct", RoutingParams)
def routing_direct(ctx: RuleContext, params: RoutingParams) -> list[Finding]:
    """More transit countries than a direct route needs, or a route that returns to a
    country it passed, is unusual routing."""
    t = ctx.certificate.transaction
    if t is None:
        return []
    route = t.transit_countries
    findings = []
    if len(route) > params.max_transit_countries:
        findings.append(
            Finding(
                "transaction.transit_countries",
                f"{len(route)} transit countries ({', '.join(route)}); at most "
                f"{params.max_transit_countries} expected",
            )
        )
    if len(set(route)) < len(route):
        findings.append(
            Finding("transaction.transit_countries", f"the route {'-'.join(route)} doubles back")
        )
    return findings
