"""Custom rules: CEL expressions over the certificate, compiled once, evaluated per decision.

An operator writes a rule as a CEL expression (https://cel.dev) that is true when the rule
fires, e.g. `euc.items.exists(i, i.quantity.value > 5000.0 && i.form == "MAGNET")`. It sees
two variables: `euc`, the certificate as a map with the model's (= the proto's) field
names (`activation_for` says how values map), and `now`, the decision time (a timestamp).

`CelRule(rule_id, expression)` compiles at bundle load and raises `CelCompileError` with
the line and column of the first problem. `CelRule.evaluate` never raises: it returns a
`CelResult` whose status is FIRED, QUIET, ERROR (the expression failed at run time or did
not give a bool) or TIMEOUT; the last two must become a REFER with the rule's id.

Engine: `common-expression-language` (cel-rust through PyO3), chosen over `cel-python`
(bench/cel.py, bench/RESULTS.md): it evaluates a typical rule in microseconds instead of
hundreds of microseconds and compiles tens of times faster. It holds the GIL while it
evaluates and offers no cancellation, so a running evaluation cannot be stopped from
Python. The time bound is therefore kept before running, deterministically: CEL has no
loops or recursion, only comprehension macros (all, exists, exists_one, map, filter) over
finite lists, so the work of an expression grows at most as (longest list or map in the
activation) ** (macro nesting depth). Nesting deeper than `CelLimits.max_nesting` is
refused at compile time, and an evaluation whose estimate exceeds `CelLimits.max_work`
is not started: TIMEOUT. Being a function of the expression and the certificate only,
this keeps replay exact.

There is deliberately no wall-clock limit: an earlier one (discard a result that took
over 50 ms) made decisions depend on machine load, and replaying a 200 000-entry log on
a busy machine turned 3 decisions into timeouts the record did not have. The core reads
no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from functools import cached_property
from typing import Any, get_args, get_origin

import cel
from pydantic import BaseModel

from eucgate.core.model import Certificate
from eucgate.errors import BundleError

__all__ = [
    "EUC_VARIABLE",
    "NOW_VARIABLE",
    "CelActivation",
    "CelCompileError",
    "CelLimits",
    "CelResult",
    "CelRule",
    "CelStatus",
    "activation_for",
]

EUC_VARIABLE = "euc"
NOW_VARIABLE = "now"
_VARIABLES = frozenset({EUC_VARIABLE, NOW_VARIABLE})
_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})
_MAX_DETAIL = 300


class CelCompileError(BundleError):
    """A custom rule's expression that does not compile; `line` and `column` are
    1-based positions in the expression (0 when the engine gives none)."""

    def __init__(self, rule_id: str, message: str, *, line: int = 0, column: int = 0) -> None:
        where = f" at line {line}, column {column}" if line else ""
        super().__init__(f"custom rule {rule_id}: expression does not compile{where}: {message}")
        self.rule_id = rule_id
        self.line = line
        self.column = column
        self.detail = message


@dataclass(frozen=True)
class CelLimits:
    """Bounds on one evaluation (see the module docstring)."""

    max_nesting: int = 2
    max_work: int = 100_000
    max_expression_length: int = 4096


class CelStatus(StrEnum):
    FIRED = "FIRED"  # the expression gave true: the rule fires
    QUIET = "QUIET"  # it gave false
    ERROR = "ERROR"  # it failed at run time, or gave something other than a bool
    TIMEOUT = "TIMEOUT"  # over the work estimate: not run, no result


@dataclass(frozen=True)
class CelResult:
    """The outcome of one evaluation. `refer` is true for ERROR and TIMEOUT: the caller
    reports a REFER with `rule_id` and `detail`."""

    rule_id: str
    status: CelStatus
    detail: str = ""

    @property
    def refer(self) -> bool:
        return self.status in (CelStatus.ERROR, CelStatus.TIMEOUT)


# --- the activation -------------------------------------------------------------------


def _present(model: BaseModel, names: Iterable[str]) -> dict[str, Any]:
    return {name: v for name in names if (v := getattr(model, name)) is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _plain(v) for name, v in _present(value, type(value).model_fields).items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    return value


def _largest_collection(value: Any) -> int:
    """The longest list or map anywhere in `value` as `_plain` would give it (a model is
    a map of its present fields): what a comprehension can range over. (String functions
    are linear in the engine, regular expressions included.)"""
    largest = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseModel):
            item = _present(item, type(item).model_fields)
        if isinstance(item, Mapping):
            largest = max(largest, len(item))
            stack.extend(item.values())
        elif isinstance(item, tuple | list):
            largest = max(largest, len(item))
            stack.extend(item)
    return largest


@dataclass(frozen=True)
class CelActivation:
    """The variables of one decision, converted once and shared by every custom rule."""

    euc: Mapping[str, Any]
    now: datetime
    context: cel.Context
    certificate: Certificate

    @cached_property
    def largest_collection(self) -> int:
        """Over the whole certificate, whatever `euc` holds; counted only when a rule's
        estimate could reach its limit (`CelRule.evaluate`)."""
        return _largest_collection(self.certificate)


def _largest_possible(model: type[BaseModel]) -> int | None:
    """The longest list or map any instance of `model` can hold, from its fields' bounds
    and counts; None if some list is unbounded. Known before any certificate, it lets a
    rule that cannot reach its work limit skip counting."""
    largest = 0
    seen: set[type[BaseModel]] = set()
    stack = [model]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        largest = max(largest, len(current.model_fields))
        for info in current.model_fields.values():
            types = _types_in(info.annotation)
            if any(get_origin(t) in (tuple, list, set, frozenset, dict) for t in types):
                bounds = [
                    bound
                    for m in info.metadata
                    if isinstance(bound := getattr(m, "max_length", None), int)
                ]
                if not bounds:
                    return None
                largest = max(largest, *bounds)
            stack.extend(t for t in types if isinstance(t, type) and issubclass(t, BaseModel))
    return largest


def _types_in(annotation: Any) -> list[Any]:
    found = [annotation]
    for arg in get_args(annotation):
        found.extend(_types_in(arg))
    return found


LARGEST_POSSIBLE_COLLECTION = _largest_possible(Certificate)


def activation_for(
    certificate: Certificate, now: datetime, fields: frozenset[str] | None = None
) -> CelActivation:
    """The certificate as CEL sees it: a map keyed by field name, absent optional fields
    left out (so `has(euc.consignee)` tests presence), enums as their names ("MAGNET"),
    decimals as doubles (CEL has no decimal type: write `500.0`, not `500`), times as
    timestamps, repeated fields as lists. Raises ValueError if `now` is naive.

    `fields` (a rule's `euc_fields`) limits the map to the fields an expression reads:
    converting the whole certificate costs more than most rules. The work estimate
    still counts the whole certificate, so the limit changes no result."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    names = type(certificate).model_fields
    if fields is not None:
        names = {name: names[name] for name in fields if name in names}
    euc = {name: _plain(v) for name, v in _present(certificate, names).items()}
    context = cel.Context(variables={EUC_VARIABLE: euc, NOW_VARIABLE: now})
    return CelActivation(euc=euc, now=now, context=context, certificate=certificate)


# --- compiling ------------------------------------------------------------------------

_POSITION_RE = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _without_literals(expression: str) -> str:
    """The expression with the insides of string and bytes literals blanked (newlines
    kept), so positions still match and nothing quoted reads as code."""
    out = list(expression)
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch in "'\"":
            quote = expression[i : i + 3] if expression[i : i + 3] in ("'''", '"""') else ch
            raw = i > 0 and expression[i - 1] in "rR"
            i += len(quote)
            start = i
            while i < n and not expression.startswith(quote, i):
                i += 2 if expression[i] == "\\" and not raw else 1
            for j in range(start, min(i, n)):
                if out[j] != "\n":
                    out[j] = " "
            i += len(quote)
            continue
        i += 1
    return "".join(out)


_EUC_USE_RE = re.compile(
    rf"(?<![A-Za-z0-9_.]){EUC_VARIABLE}(?![A-Za-z0-9_])(?:\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\()?)?"
)


def _euc_fields(code: str) -> frozenset[str] | None:
    """The fields of `euc` the expression (literals blanked) reads as `euc.<field>`;
    None when it uses `euc` any other way (indexed, as a whole, a method on it)."""
    fields: set[str] = set()
    for use in _EUC_USE_RE.finditer(code):
        name, call = use.group(1), use.group(2)
        if name is None or call is not None:
            return None
        fields.add(name)
    return frozenset(fields)


def _scan(expression: str) -> tuple[int, tuple[int, int], frozenset[str]]:
    """Comprehension nesting depth, the (line, column) where the deepest macro starts, and
    the names the macros bind, in an expression whose literals are blanked; assumes the
    expression has compiled, so brackets balance."""
    depth = deepest = 0
    where = (0, 0)
    bound: set[str] = set()
    frames: list[bool] = []  # per open "(": is it a comprehension's?
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch == "." and (m := re.match(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", expression[i:])):
            if m.group(1) in _COMPREHENSIONS:
                depth += 1
                frames.append(True)
                if depth > deepest:
                    deepest = depth
                    line = expression.count("\n", 0, i) + 1
                    where = (line, i - (expression.rfind("\n", 0, i) + 1) + 2)
                var = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*,", expression[i + m.end() :])
                if var:
                    bound.add(var.group(1))
            else:
                frames.append(False)
            i += m.end()
            continue
        if ch == "(":
            frames.append(False)
        elif ch == ")" and frames and frames.pop():
            depth -= 1
        i += 1
    return deepest, where, frozenset(bound)


class CelRule:
    """A compiled custom rule. Raises CelCompileError for an expression that does not
    parse, nests comprehensions deeper than `limits.max_nesting`, names a variable other
    than `euc`, `now` and those its macros bind, or is longer than the limit."""

    def __init__(
        self,
        rule_id: str,
        expression: str,
        *,
        limits: CelLimits | None = None,
    ) -> None:
        self.rule_id = rule_id
        self.expression = expression
        self.limits = limits or CelLimits()
        if len(expression) > self.limits.max_expression_length:
            raise CelCompileError(
                rule_id,
                f"is {len(expression)} characters long; at most "
                f"{self.limits.max_expression_length} are allowed",
            )
        try:
            self._program = cel.compile(expression)
        except (ValueError, RuntimeError) as exc:
            raise _compile_error(rule_id, str(exc)) from None
        code = _without_literals(expression)
        self.nesting, where, bound = _scan(code)
        # Which fields of the certificate the activation must hold (None: all of them).
        self.euc_fields = _euc_fields(code)
        if self.nesting > self.limits.max_nesting:
            raise CelCompileError(
                rule_id,
                f"comprehensions are nested {self.nesting} deep; at most "
                f"{self.limits.max_nesting} are allowed, so that evaluation stays bounded",
                line=where[0],
                column=where[1],
            )
        unknown = sorted(set(self._program.variables()) - _VARIABLES - bound)
        if unknown:
            line, column = _position_of(expression, unknown[0])
            raise CelCompileError(
                rule_id,
                f"unknown variable {unknown[0]!r}; the variables are "
                f"{EUC_VARIABLE!r} and {NOW_VARIABLE!r}",
                line=line,
                column=column,
            )
        # Work estimate per element of the longest collection, to the nesting depth.
        self._weight = max(1, len(expression) // 8)
        # Whether some certificate could take the estimate over the limit.
        self._may_exceed = (
            LARGEST_POSSIBLE_COLLECTION is None
            or self._estimate(LARGEST_POSSIBLE_COLLECTION) > self.limits.max_work
        )

    def __eq__(self, other: object) -> bool:
        # Compiled from the same text under the same limits, two rules behave alike: a
        # bundle parsed back from its canonical form equals the original.
        if not isinstance(other, CelRule):
            return NotImplemented
        return (self.rule_id, self.expression, self.limits) == (
            other.rule_id,
            other.expression,
            other.limits,
        )

    __hash__ = None  # type: ignore[assignment]

    def work_estimate(self, activation: CelActivation) -> int:
        """An upper-bound-shaped estimate of evaluation steps: expression size times
        (longest collection + 1) to the power of the comprehension nesting."""
        return self._estimate(activation.largest_collection)

    def _estimate(self, largest_collection: int) -> int:
        return int(self._weight * (largest_collection + 1) ** self.nesting)

    def evaluate(self, activation: CelActivation) -> CelResult:
        """Evaluate against one decision's activation; never raises (see CelResult)."""
        estimate = self.work_estimate(activation) if self._may_exceed else 0
        if estimate > self.limits.max_work:
            return CelResult(
                self.rule_id,
                CelStatus.TIMEOUT,
                f"not evaluated: its work estimate ({estimate}) exceeds the limit "
                f"({self.limits.max_work}) for this certificate",
            )
        try:
            value = self._program.execute(activation.context)
        except Exception as exc:  # the engine raises several builtin types; all refer
            return CelResult(
                self.rule_id,
                CelStatus.ERROR,
                f"{type(exc).__name__}: {_first_line(str(exc))}"[:_MAX_DETAIL],
            )
        if not isinstance(value, bool):
            return CelResult(
                self.rule_id,
                CelStatus.ERROR,
                f"must give a bool, gave {type(value).__name__} {value!r}"[:_MAX_DETAIL],
            )
        return CelResult(self.rule_id, CelStatus.FIRED if value else CelStatus.QUIET)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


def _compile_error(rule_id: str, engine_message: str) -> CelCompileError:
    found = _POSITION_RE.search(engine_message)
    if found is None:
        return CelCompileError(rule_id, _first_line(engine_message))
    return CelCompileError(
        rule_id, found.group(3).strip(), line=int(found.group(1)), column=int(found.group(2))
    )


def _position_of(expression: str, name: str) -> tuple[int, int]:
    found = re.search(rf"(?<![A-Za-z0-9_.]){re.escape(name)}(?![A-Za-z0-9_])", expression)
    if found is None:
        return 0, 0
    start = found.start()
    return expression.count("\n", 0, start) + 1, start - (expression.rfind("\n", 0, start) + 1) + 1
