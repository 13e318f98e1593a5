"""Custom rules in CEL: compiled at load with positions, fired per decision, and
referred under their own id when the expression fails or exceeds its bounds."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.decide import decide
from eucgate.core.decision import Outcome, RuleOutcome
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import MAX_ITEMS
from eucgate.errors import BundleError
from eucgate.policyfiles import files_in

from tests.conftest import Pki
from tests.factories import (
    SAMPLE_BUNDLE_PATH,
    magnet_item,
    sample_bundle,
    signed_submission,
    valid_certificate,
)


def _with_rule(pki: Pki, expression: str, rule_id: str = "RF-101") -> Bundle:
    doc = sample_bundle(pki).model_dump(mode="json")
    doc["rules"].append(
        {
            "id": rule_id,
            "family": rule_id.split("-", maxsplit=1)[0],
            "outcome": "REJECT",
            "check": "cel",
            "params": {"expression": expression, "field": "items"},
            "message": "$field: $detail.",
        }
    )
    return parse_bundle(json.dumps(doc), "custom.json", files=files_in(SAMPLE_BUNDLE_PATH.parent))


def test_a_custom_rule_fires_with_its_own_outcome(pki: Pki, now: datetime) -> None:
    bundle = _with_rule(pki, 'euc.items.exists(i, "Dy" in i.elements)')
    d = decide(signed_submission(valid_certificate(), pki), bundle, EmptyLedger(), now)
    assert d.outcome is Outcome.REJECTED
    (reason,) = d.reasons
    assert (reason.rule_id, reason.outcome, reason.field) == ("RF-101", RuleOutcome.REJECT, "items")


def test_a_quiet_custom_rule_approves(pki: Pki, now: datetime) -> None:
    bundle = _with_rule(pki, 'euc.final_destination_country == "US"')
    d = decide(signed_submission(valid_certificate(), pki), bundle, EmptyLedger(), now)
    assert d.outcome is Outcome.APPROVED


@pytest.mark.parametrize(
    "expression",
    [
        "euc.items[3].quantity.value > 1.0",  # no fourth item: a run-time error
        "euc.items.size()",  # not a bool
        "euc.items.all(a, euc.items.all(b, a.elements.all(c, c != '')))",  # bounds
    ],
    ids=["index-error", "not-a-bool", "too-deep"],
)
def test_a_failing_expression_refers_under_its_own_id(
    pki: Pki, now: datetime, expression: str
) -> None:
    if expression.count(".all(") > 2:
        with pytest.raises(BundleError, match=r"nested 3 deep"):
            _with_rule(pki, expression)
        return
    bundle = _with_rule(pki, expression)
    d = decide(signed_submission(valid_certificate(), pki), bundle, EmptyLedger(), now)
    assert d.outcome is Outcome.REFERRED
    (reason,) = d.reasons
    assert (reason.rule_id, reason.outcome) == ("RF-101", RuleOutcome.REFER)
    assert "could not be evaluated" in reason.message


def test_the_largest_certificate_stays_within_the_work_bound(pki: Pki, now: datetime) -> None:
    """The model bounds every list (MAX_ITEMS), so a nested expression over the most items
    a certificate may carry runs to its answer; the TIMEOUT path itself is in
    test_celrules (a tighter bound), and referring on it like any failure is above."""
    bundle = _with_rule(pki, "euc.items.all(a, euc.items.all(b, a.hs_code == b.hs_code))")
    many = valid_certificate(items=tuple(magnet_item() for _ in range(MAX_ITEMS)))
    d = decide(signed_submission(many, pki), bundle, EmptyLedger(), now)
    (custom,) = (r for r in d.reasons if r.rule_id == "RF-101")
    assert custom.outcome is RuleOutcome.REJECT


def test_a_bad_expression_fails_the_load_with_its_position(pki: Pki) -> None:
    with pytest.raises(BundleError) as info:
        _with_rule(pki, "euc.items.exists(i, i.quantity.value >)")
    text = str(info.value)
    assert "rules[" in text
    assert "params" in text
    assert "line 1, column" in text


def test_an_unknown_variable_is_refused(pki: Pki) -> None:
    with pytest.raises(BundleError, match="unknown variable 'certificate'"):
        _with_rule(pki, "certificate.items.size() > 0")
