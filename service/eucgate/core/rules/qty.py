"""QTY: quantities against quotas."""

from __future__ import annotations

from eucgate.core import quota
from eucgate.core.checks import Finding, NoParams
from eucgate.core.rules.context import RuleContext, RuleUnavailable, check


@check("quantity_within_quota", NoParams)
def quantity_within_quota(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The quantity asked under each quota-kept control code of the end user's licence may
    not exceed the balance left (`ctx.ledger`; the whole quota when the ledger has
    recorded nothing). Units that cannot be compared make the rule unavailable (REFER)."""
    licensee = ctx.licensed_importer
    if licensee is None or not licensee.quotas:
        return []
    try:
        asked = quota.demand(ctx.bundle, licensee, ctx.certificate.items)
    except quota.QuotaUnitError as exc:
        raise RuleUnavailable(str(exc)) from exc
    findings = []
    for code, amount in asked.items():
        kept = licensee.quota_for(code)
        assert kept is not None  # demand() counts only quota-kept codes
        left = ctx.ledger.remaining(licensee.licence_number, code)
        balance = kept.quantity if left is None else left
        if amount > balance:
            findings.append(
                Finding(
                    "items",
                    f"{format(amount, 'f')} {kept.unit} under {code} exceeds the "
                    f"{format(balance, 'f')} {kept.unit} left of licence "
                    f"{licensee.licence_number}'s quota of {format(kept.quantity, 'f')} "
                    f"{kept.unit}",
                )
            )
    return findings
