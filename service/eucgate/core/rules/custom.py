"""Custom rules: CEL expressions from the bundle."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from eucgate.core.celrules import CelCompileError, CelRule, CelStatus
from eucgate.core.checks import Finding
from eucgate.core.private import private
from eucgate.core.rules.context import RuleContext, RuleUnavailable, check


class CelParams(BaseModel):
    """A custom rule: a CEL expression over `euc` and `now` that is true when the rule
    fires, compiled once when the bundle loads; `field` is the path its reason cites."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expression: str = Field(min_length=1)
    field: str = ""
    detail: str = "the custom rule's condition holds"

    _compiled: CelRule = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self) -> CelParams:
        try:
            self._compiled = CelRule("custom", self.expression)
        except CelCompileError as exc:
            where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
            raise ValueError(f"expression does not compile: {where}{exc.detail}") from None
        return self


@check("cel", CelParams)
def cel_expression(ctx: RuleContext, params: CelParams) -> list[Finding]:
    """Fires when the expression is true; raises RuleUnavailable when it errors or runs
    out of bounds, so the rule refers rather than passing silently."""
    rule: CelRule = private(params)["_compiled"]
    result = rule.evaluate(ctx.cel_activation(rule.euc_fields))
    if result.refer:
        reason = "timed out" if result.status is CelStatus.TIMEOUT else "failed"
        raise RuleUnavailable(f"the expression {reason}: {result.detail}")
    return [Finding(params.field, params.detail)] if result.status is CelStatus.FIRED else []
