"""The rule catalogue: a rule is data plus one small function.

The bundle owns each rule's id, family, outcome and message; this package owns only the
checks they name, one module per family (sig, doc, cmt, eus, dst, pty, qty, itm, rf,
custom). A check is a pure function `(ctx, params) -> list[Finding]` that returns one
`Finding` (certificate field path and detail) per violation and an empty list when the
rule does not fire. It reads no clock (use `ctx.now`), file or database. To add a rule:
write a check in its family's module with `@check("name", ParamsModel)`
(`rules.context`), then list a rule that names it in the bundle, with a bundle test.
Importing this package registers every check in `core.checks`.
"""

from eucgate.core.rules import cmt, custom, doc, dst, eus, itm, pty, qty, rf, sig  # noqa: F401 (register)
from eucgate.core.rules.context import (
    RuleContext,
    RuleUnavailable,
    SignersUnavailable,
    check,
    normalize_name,
)

__all__ = ["RuleContext", "RuleUnavailable", "SignersUnavailable", "check", "normalize_name"]
