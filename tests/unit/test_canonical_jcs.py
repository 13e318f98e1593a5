"""Our canonical JSON is RFC 8785 (JCS), checked against an independent implementation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rfc8785
from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.canonical import canonical_json
from eucgate.core.decision import Decision, Family, Outcome, Reason, RuleOutcome
from eucgate.core.receipt import receipt_statement
from eucgate.policyfiles import load_bundle


def test_the_sample_bundle_digest_is_over_jcs() -> None:
    bundle = load_bundle(SAMPLE_BUNDLE)
    assert bundle.canonical() == rfc8785.dumps(bundle.model_dump(mode="json"))


def test_decisions_and_receipts_are_jcs() -> None:
    decision = Decision(
        outcome=Outcome.REFERRED,
        reasons=(
            Reason(
                rule_id="PTY-003",
                family=Family.PTY,
                outcome=RuleOutcome.REFER,
                message="parent: 'Lockhead Martin' ~ 'Lockheed Martin' — é ü 中",
                field="end_user.parent_company",
            ),
        ),
        bundle_digest="b" * 64,
        euc_digest="e" * 64,
        decided_at=datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
    )
    dumped = decision.model_dump(mode="json")
    assert canonical_json(dumped) == rfc8785.dumps(dumped)
    statement = receipt_statement("dec_01JD3Z0000000000000000000", "r-1", decision)
    assert canonical_json(statement) == rfc8785.dumps(statement)


def test_control_characters_and_key_order_agree() -> None:
    value: dict[str, Any] = {
        "b": "line\nbreak\u001f\u007f",
        "a": [1, True, None, "\u2028"],
        "é": {"z": 0, "y": -5},
    }
    assert canonical_json(value) == rfc8785.dumps(value)
