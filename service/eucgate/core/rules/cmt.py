"""CMT: undertakings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eucgate.core.checks import Finding, NoParams
from eucgate.core.rules.context import RuleContext, check

Undertaking = Literal[
    "no_wmd_use", "no_military_end_use", "no_military_end_user", "no_reexport_without_consent"
]
_ALL_UNDERTAKINGS: tuple[Undertaking, ...] = (
    "no_wmd_use",
    "no_military_end_use",
    "no_military_end_user",
    "no_reexport_without_consent",
)


class UndertakingsParams(BaseModel):
    """Which undertakings the bundle requires (all four unless it says otherwise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: tuple[Undertaking, ...] = Field(default=_ALL_UNDERTAKINGS, min_length=1)


@check("undertakings_given", UndertakingsParams)
def undertakings_given(ctx: RuleContext, params: UndertakingsParams) -> list[Finding]:
    """Each required undertaking must be given, and none qualified."""
    given = ctx.certificate.undertakings
    if given is None:
        return [Finding("undertakings", "the certificate gives no undertakings")]
    findings = [
        Finding(f"undertakings.{name}", "this undertaking is not given")
        for name in params.required
        if not getattr(given, name)
    ]
    if given.qualification.strip():
        findings.append(
            Finding(
                "undertakings.qualification",
                f"the undertakings are qualified ({given.qualification!r}); "
                "a qualified undertaking is not given",
            )
        )
    return findings


@check("reexport_bar_covers_barred_destinations", NoParams)
def reexport_bar_covers_barred_destinations(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """undertakings.no_reexport_to must name every barred destination of the bundle."""
    given = ctx.certificate.undertakings
    named = set(given.no_reexport_to) if given is not None else set()
    missing = [c for c in ctx.bundle.barred_destinations if c not in named]
    if not missing:
        return []
    return [
        Finding(
            "undertakings.no_reexport_to",
            f"no undertaking never to re-export to {', '.join(missing)}",
        )
    ]
