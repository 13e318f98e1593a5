"""Custom CEL rules: compile errors with positions, the certificate as CEL sees it,
run-time errors and time bounds reported as results with the rule id."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from eucgate.core.celrules import (
    LARGEST_POSSIBLE_COLLECTION,
    CelCompileError,
    CelLimits,
    CelResult,
    CelRule,
    CelStatus,
    _largest_possible,
    activation_for,
)
from eucgate.core.model import MAX_ENTRIES, MAX_ITEMS, Quantity
from eucgate.errors import BundleError
from pydantic import BaseModel, Field

from tests.factories import NOW, jay_ushin, magnet_item, valid_certificate

ACTIVATION = activation_for(valid_certificate(), NOW)


def _run(expression: str) -> CelResult:
    return CelRule("CEL-001", expression).evaluate(ACTIVATION)


# --- compiling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "line", "column"),
    [
        ("euc.end_user.legal_name ==", 1, 27),
        ("euc.items.exists(i,\n  i.quantity.value >)", 2, 21),
        ("size(euc.items) > 0 &&& true", 1, 23),
    ],
)
def test_a_bad_expression_fails_with_its_position(expression: str, line: int, column: int) -> None:
    with pytest.raises(CelCompileError) as caught:
        CelRule("CEL-007", expression)
    error = caught.value
    assert (error.rule_id, error.line, error.column) == ("CEL-007", line, column)
    assert str(error).startswith(f"custom rule CEL-007: expression does not compile at line {line}")
    assert isinstance(error, BundleError)  # a bundle with it fails to load


def test_an_unknown_variable_fails_at_compile_time() -> None:
    with pytest.raises(CelCompileError, match="unknown variable 'certificate'") as caught:
        CelRule("CEL-001", "euc.items.all(i, i.form == 'MAGNET') && certificate.x")
    assert (caught.value.line, caught.value.column) == (1, 41)


def test_comprehension_variables_are_not_unknown() -> None:
    rule = CelRule("CEL-001", "euc.items.exists(item, euc.items.all(other, other == item))")
    assert rule.nesting == 2


def test_nesting_deeper_than_the_limit_is_refused_where_it_starts() -> None:
    deep = "euc.items.all(a,\n euc.items.all(b, euc.items.exists(c, a == c)))"
    with pytest.raises(CelCompileError, match="nested 3 deep; at most 2") as caught:
        CelRule("CEL-001", deep)
    assert (caught.value.line, caught.value.column) == (2, 29)  # the "exists"
    assert CelRule("CEL-001", deep, limits=CelLimits(max_nesting=3)).nesting == 3


def test_macro_names_inside_strings_do_not_count() -> None:
    rule = CelRule("CEL-001", "euc.end_use.statement.contains('.all(x, .exists(y, (')")
    assert rule.nesting == 0


def test_an_overlong_expression_is_refused() -> None:
    with pytest.raises(CelCompileError, match="at most 100 are allowed"):
        CelRule("CEL-001", "true && " * 20 + "true", limits=CelLimits(max_expression_length=100))


# --- evaluating -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "status"),
    [
        ('euc.items.exists(i, i.form == "MAGNET" && i.quantity.value >= 500.0)', "FIRED"),
        ('euc.items.exists(i, i.quantity.value > 500.0 && i.quantity.unit == "kg")', "QUIET"),
        ('euc.end_use.category == "EV_TRACTION_MOTORS"', "FIRED"),
        ('"Dy" in euc.items[0].elements', "FIRED"),
        ("has(euc.consignee)", "QUIET"),  # absent optional fields are absent
        ("has(euc.exporter)", "FIRED"),
        ("size(euc.intermediaries) == 0", "FIRED"),
        ("euc.validity.not_after - euc.validity.not_before > duration('4000h')", "FIRED"),
        ("now >= euc.validity.not_before && now < euc.validity.not_after", "FIRED"),
        ("euc.end_user.legal_name.matches('(?i)^jay-ushin')", "FIRED"),
        ("euc.undertakings.no_reexport_to.exists(c, c == 'US')", "FIRED"),
    ],
)
def test_expressions_see_the_certificate_and_now(expression: str, status: str) -> None:
    assert _run(expression) == CelResult("CEL-001", CelStatus(status))


def test_now_is_the_decision_time() -> None:
    rule = CelRule("CEL-001", "now > timestamp('2026-11-15T00:00:00Z')")
    assert rule.evaluate(ACTIVATION).status is CelStatus.QUIET
    later = activation_for(valid_certificate(), NOW + timedelta(days=200))
    assert rule.evaluate(later).status is CelStatus.FIRED


def test_quantities_are_doubles() -> None:
    heavy = valid_certificate(
        items=(magnet_item(quantity=Quantity(value=Decimal("5000.25"), unit="kg")),)
    )
    rule = CelRule("CEL-001", "euc.items.exists(i, i.quantity.value > 5000.0)")
    assert rule.evaluate(ACTIVATION).status is CelStatus.QUIET
    assert rule.evaluate(activation_for(heavy, NOW)).status is CelStatus.FIRED


def test_owners_and_parent_are_visible() -> None:
    cert = valid_certificate(end_user=jay_ushin(parent_company="Minda Corporation"))
    rule = CelRule("CEL-001", "euc.end_user.parent_company.startsWith('Minda')")
    assert rule.evaluate(activation_for(cert, NOW)).status is CelStatus.FIRED


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("euc.consignee.legal_name == 'x'", "KeyError"),  # absent field read
        ("euc.items[3].hs_code == '2846'", "IndexError"),
        ("euc.items[0].quantity.value + 1 > 0.0", "TypeError"),  # double plus int
        ("1 / (size(euc.items) - 1) > 0", "ZeroDivisionError"),
        ("euc.items.size()", "must give a bool, gave int 1"),
        ("euc.certificate_number", "must give a bool, gave str"),
    ],
)
def test_run_time_errors_are_results_that_refer(expression: str, detail: str) -> None:
    result = _run(expression)
    assert (result.rule_id, result.status, result.refer) == ("CEL-001", CelStatus.ERROR, True)
    assert detail in result.detail


def test_fired_and_quiet_do_not_refer() -> None:
    assert not _run("true").refer
    assert not _run("false").refer


def test_work_over_the_estimate_is_not_started() -> None:
    # The model bounds every list (MAX_ITEMS and the like), so the default bound is out of
    # reach of any certificate; a tighter one shows the check.
    many = valid_certificate(items=tuple(magnet_item() for _ in range(MAX_ITEMS)))
    expression = "euc.items.all(a, euc.items.all(b, a == b))"
    rule = CelRule("CEL-001", expression, limits=CelLimits(max_work=500))
    result = rule.evaluate(activation_for(many, NOW))
    assert result.status is CelStatus.TIMEOUT
    assert result.refer
    assert "work estimate" in result.detail
    # The same rule under the default bound runs, on the largest list of items too.
    assert CelRule("CEL-001", expression).evaluate(activation_for(many, NOW)).status is (
        CelStatus.FIRED
    )


def test_the_outcome_does_not_depend_on_how_long_evaluation_takes() -> None:
    # No wall-clock limit: replay on a loaded machine must decide as the record did.
    assert "clock" not in inspect.signature(CelRule).parameters
    assert not hasattr(CelLimits(), "time_limit_seconds")


def test_activation_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        activation_for(valid_certificate(), datetime(2026, 6, 1))


# --- the activation holds what the rule reads ------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        ("euc.items.exists(i, i.form == 'MAGNET')", {"items"}),
        ("has(euc.consignee) || euc . end_use.category == 'X'", {"consignee", "end_use"}),
        ("'euc.validity' == euc.certificate_number", {"certificate_number"}),  # quoted
        ("now > timestamp('2026-01-01T00:00:00Z')", set()),
        ("euc['items'].size() > 0", None),  # indexed: every field
        ("size(euc) > 3", None),  # the map as a whole
        ("euc.exists(k, k == 'items')", None),  # a macro over its keys
        ("euc.items.exists(euc, euc.form == 'MAGNET')", None),  # shadowed: bare
    ],
)
def test_a_rule_knows_which_fields_it_reads(expression: str, fields: set[str] | None) -> None:
    expected = None if fields is None else frozenset(fields)
    assert CelRule("CEL-001", expression).euc_fields == expected


@pytest.mark.parametrize(
    "expression",
    [
        'euc.items.exists(i, i.form == "MAGNET" && i.quantity.value >= 500.0)',
        "has(euc.consignee)",
        "has(euc.exporter) && euc.exporter.country == 'CN'",
        "euc.consignee.legal_name == 'x'",  # the same error with fewer fields
        "euc.no_such_field == 1",
        "euc.items[3].hs_code == '2846'",
        "euc['items'].size() == 1",
        "size(euc) > 3",
        "euc.certificate_number",
        "euc.items.all(a, euc.items.all(b, a == b))",
    ],
)
def test_a_narrowed_activation_gives_the_same_result(expression: str) -> None:
    many = valid_certificate(items=tuple(magnet_item() for _ in range(MAX_ITEMS)))
    for limits in (CelLimits(), CelLimits(max_work=500)):  # the estimate counts it all
        rule = CelRule("CEL-001", expression, limits=limits)
        for cert in (valid_certificate(), many):
            whole = rule.evaluate(activation_for(cert, NOW))
            assert rule.evaluate(activation_for(cert, NOW, rule.euc_fields)) == whole


def test_the_largest_possible_collection_bounds_every_certificate() -> None:
    assert max(MAX_ENTRIES.values()) == LARGEST_POSSIBLE_COLLECTION
    many = valid_certificate(items=tuple(magnet_item() for _ in range(MAX_ITEMS)))
    for cert in (valid_certificate(), many):
        assert activation_for(cert, NOW).largest_collection <= LARGEST_POSSIBLE_COLLECTION

    class Bounded(BaseModel):
        names: tuple[str, ...] = Field(default=(), max_length=5)

    class Unbounded(BaseModel):
        inner: Bounded | None = None
        names: list[str] = []

    assert _largest_possible(Bounded) == 5
    assert _largest_possible(Unbounded) is None
