"""Rules switch on and off at dates the bundle states, judged by decide()'s `now`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.decide import decide
from eucgate.core.decision import Outcome
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import Certificate, Signatory, Validity
from eucgate.errors import BundleError

from tests.conftest import Pki
from tests.factories import magnet_item, sample_bundle, signed_submission, valid_certificate

SWITCH_ON = datetime(2026, 11, 10, tzinfo=UTC)  # Announcement No. 70's suspension ends


@pytest.fixture(scope="module")
def bundle(pki: Pki) -> Bundle:
    return sample_bundle(pki)


def _holmium_certificate(now: datetime) -> Certificate:
    start = now - timedelta(days=2)
    return valid_certificate(
        items=(magnet_item(elements=("Dy", "Ho")),),
        issued_at=start,
        validity=Validity(not_before=start, not_after=start + timedelta(days=90)),
        signatory=Signatory(
            name="Anil Mehra", position="Head of Procurement", signed_at=now - timedelta(days=1)
        ),
    )


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        (SWITCH_ON - timedelta(seconds=1), False),
        (SWITCH_ON, True),
        (SWITCH_ON + timedelta(days=40), True),
    ],
    ids=["day-before", "first-day", "later"],
)
def test_rule_runs_only_from_its_effective_date(
    pki: Pki, bundle: Bundle, now: datetime, fires: bool
) -> None:
    submission = signed_submission(_holmium_certificate(now), pki)
    decision = decide(submission, bundle, EmptyLedger(), now)
    fired = [r for r in decision.reasons if r.rule_id == "ITM-002"]
    assert bool(fired) is fires
    if fires:
        assert fired[0].field == "items[0].elements"
        assert "Ho" in fired[0].message
        assert decision.outcome is Outcome.REFERRED


def test_one_bundle_answers_each_day_afresh(pki: Pki, bundle: Bundle) -> None:
    """The bundle keeps the rules of the last day asked (Bundle.rules_in_effect): going
    back and forth across the switch, and a clock in another zone, must not reuse it."""
    before = SWITCH_ON - timedelta(seconds=1)
    tokyo_first_day = SWITCH_ON.astimezone(timezone(timedelta(hours=9)))  # 09:00 local
    tokyo_day_before = before.astimezone(timezone(timedelta(hours=9)))  # 08:59:59 local
    for now, fires in [
        (before, False),
        (SWITCH_ON, True),
        (before, False),
        (tokyo_first_day, True),
        (tokyo_day_before, False),
    ]:
        submission = signed_submission(_holmium_certificate(now), pki)
        decision = decide(submission, bundle, EmptyLedger(), now)
        assert any(r.rule_id == "ITM-002" for r in decision.reasons) is fires, now


def test_window_is_inclusive_and_ordered(bundle: Bundle) -> None:
    rule = next(r for r in bundle.rules if r.id == "ITM-002")
    bounded = rule.model_copy(update={"effective_until": SWITCH_ON.date()})
    assert bounded.in_effect(SWITCH_ON + timedelta(hours=23))
    assert not bounded.in_effect(SWITCH_ON + timedelta(days=1))
    assert rule.in_effect(SWITCH_ON.astimezone(UTC))


def test_window_ending_before_it_starts_is_refused(bundle: Bundle) -> None:
    doc = bundle.model_dump(mode="json")
    rule = next(r for r in doc["rules"] if r["id"] == "ITM-002")
    rule["effective_until"] = "2026-11-01"
    with pytest.raises(BundleError, match="effective_until"):
        parse_bundle(json.dumps(doc), "candidate.json")
