"""PTY and LIC: parties, screening and licences."""

from __future__ import annotations

from eucgate.core.checks import Finding, NoParams
from eucgate.core.decision import RuleOutcome
from eucgate.core.rules.context import RuleContext, check, registrations_of
from eucgate.core.rules.itm import _describe


@check("end_user_licensed", NoParams)
def end_user_licensed(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The end user must be a licensed importer, matched by registration scheme and value."""
    if ctx.licensed_importer is not None:
        return []
    end_user = ctx.certificate.end_user
    registrations = ", ".join(registrations_of(end_user)) or "no registrations"
    return [
        Finding(
            "end_user.registrations",
            f"{end_user.legal_name!r} ({registrations}) is not a licensed importer",
        )
    ]


def _screening(ctx: RuleContext, outcome: RuleOutcome) -> list[Finding]:
    return [
        Finding(
            m.field,
            f"{m.screened_name!r} matches {m.matched_name!r} (entry {m.entry_id} of "
            f"{m.list_id}, {m.list_kind.value} list, {m.source}, listed "
            f"{m.listed_on.isoformat()}) with score {m.score:.3f}; compared as "
            f"{m.screened_form!r} and {m.matched_form!r}"
            + (f", held below the hit score: {m.basis}" if m.held else ""),
        )
        for m in ctx.screening_matches
        if m.outcome is outcome
    ]


@check("screening_hits", NoParams)
def screening_hits(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A party, parent or 50 %+ owner matching a control-list entry at the hit score."""
    return _screening(ctx, RuleOutcome.REJECT)


@check("screening_near_matches", NoParams)
def screening_near_matches(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A watch-list match, or any match in the grey zone below the hit score."""
    return _screening(ctx, RuleOutcome.REFER)


@check("licence_in_force", NoParams)
def licence_in_force(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The matched importer's licence must be active and in force on now's UTC date."""
    licensee = ctx.licensed_importer
    today = ctx.now.date()
    if licensee is None:
        return []
    findings = []
    if licensee.status != "ACTIVE":
        findings.append(
            Finding(
                "end_user.registrations",
                f"licence {licensee.licence_number} is {licensee.status.lower()}",
            )
        )
    if not licensee.in_force(today):
        findings.append(
            Finding(
                "end_user.registrations",
                f"licence {licensee.licence_number} is valid from "
                f"{licensee.valid_from.isoformat()} to {licensee.valid_until.isoformat()}, "
                f"not on {today.isoformat()}",
            )
        )
    return findings


@check("licence_covers_items", NoParams)
def licence_covers_items(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Every controlled item must fall under a control code the licence lists."""
    licensee = ctx.licensed_importer
    if licensee is None:
        return []
    findings = []
    for i, item in enumerate(ctx.certificate.items):
        codes = {e.control_code for e in ctx.bundle.controlled_items if e.covers(item)}
        if codes and codes.isdisjoint(licensee.control_codes):
            findings.append(
                Finding(
                    f"items[{i}]",
                    f"{_describe(item)} is controlled under {', '.join(sorted(codes))}; licence "
                    f"{licensee.licence_number} covers {', '.join(licensee.control_codes)}",
                )
            )
    return findings
