"""Each check of the catalogue fires when it should and stays quiet when it should not.

Checks run directly on a RuleContext with signer results given, so no signing is
needed; test_decide.py covers the same rules end to end with real signatures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eucgate.core.bundle import Bundle
from eucgate.core.checks import CHECKS, Finding, NoParams
from eucgate.core.decision import SignerResult
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import (
    Certificate,
    EndUse,
    EndUseCategory,
    Intermediary,
    IntermediaryRole,
    ItemForm,
    Registration,
    Signatory,
    Undertakings,
    Validity,
)
from eucgate.core.rules import RuleContext, SignersUnavailable, check, normalize_name
from pydantic import ValidationError

from tests.factories import (
    NOW,
    exporter,
    jay_ushin,
    magnet_item,
    sample_bundle,
    signer_result,
    submission_with_signers,
    valid_certificate,
)

BUNDLE = sample_bundle()
US_PARTY = exporter(legal_name="Acme Magnetics Inc", country_code="US")


def run(
    rule_id: str,
    cert: Certificate | None = None,
    *,
    signers: tuple[SignerResult, ...] | None = (),
    now: datetime = NOW,
    bundle: Bundle = BUNDLE,
) -> list[Finding]:
    """The findings of one rule of the bundle on `cert` (default: the valid certificate)."""
    rule = next(r for r in bundle.rules if r.id == rule_id)
    ctx = RuleContext(
        submission=submission_with_signers(cert or valid_certificate()),
        bundle=bundle,
        signer_results=(signer_result(),) if signers == () else signers,
        ledger=EmptyLedger(),
        now=now,
    )
    return CHECKS[rule.check].function(ctx, rule.parsed_params)


@pytest.mark.parametrize("rule_id", [r.id for r in BUNDLE.rules])
def test_no_rule_fires_on_the_valid_certificate(rule_id: str) -> None:
    assert run(rule_id) == []


# --- SIG ------------------------------------------------------------------------------


def test_sig_001_reports_every_failure_with_its_code() -> None:
    signers = (
        signer_result(),
        signer_result(
            index=1,
            keyid="k1",
            role="",
            verified=False,
            failure="SIG_INVALID",
            detail="signature does not verify over the envelope",
        ),
        signer_result(
            index=2,
            keyid="k2",
            role="",
            verified=False,
            failure="SIG_UNTRUSTED_CHAIN",
            detail="no anchor",
        ),
    )
    findings = run("SIG-001", signers=signers)
    assert [f.field for f in findings] == ["", ""]
    assert "signature 1 (keyid k1): SIG_INVALID" in findings[0].detail
    assert "SIG_UNTRUSTED_CHAIN" in findings[1].detail


@pytest.mark.parametrize(
    "signers",
    [
        (signer_result(verified=False, role="", failure="SIG_CERT_EXPIRED"),),
        (signer_result(role="consignee", organization="Shin-Etsu Magnetics Co"),),
    ],
)
def test_sig_002_fires_without_a_verified_end_user_signature(
    signers: tuple[SignerResult, ...],
) -> None:
    assert len(run("SIG-002", signers=signers)) == 1


def test_sig_002_quiet_with_a_verified_end_user_among_others() -> None:
    signers = (
        signer_result(index=0, role="consignee", organization="Shin-Etsu Magnetics Co"),
        signer_result(index=1),
    )
    assert run("SIG-002", signers=signers) == []


def test_sig_003_organization_must_be_the_end_user() -> None:
    signers = (signer_result(organization="Kaveri Motion Systems Private Limited"),)
    findings = run("SIG-003", signers=signers)
    assert [f.field for f in findings] == ["end_user.legal_name"]


def test_sig_003_a_registration_must_be_shared() -> None:
    signers = (signer_result(registrations=("IEC:0716054321",)),)
    findings = run("SIG-003", signers=signers)
    assert [f.field for f in findings] == ["end_user.registrations"]
    # Same value under another scheme is not the same registration.
    signers = (signer_result(registrations=("GSTIN:0588012345",)),)
    assert [f.field for f in run("SIG-003", signers=signers)] == ["end_user.registrations"]


def test_sig_003_one_shared_registration_is_enough() -> None:
    assert run("SIG-003", signers=(signer_result(registrations=("IEC:0588012345",)),)) == []


@pytest.mark.parametrize(
    "organization", ["  JAY-USHIN   limited ", "jay-ushin\tlimited", "Jay-Ushin Limited"]
)
def test_sig_003_names_compare_normalised(organization: str) -> None:
    assert run("SIG-003", signers=(signer_result(organization=organization),)) == []


def test_sig_003_ignores_unverified_and_other_role_signers() -> None:
    signers = (
        signer_result(organization="Other", verified=False, role="", failure="SIG_INVALID"),
        signer_result(index=1, organization="Other", role="consignee"),
    )
    assert run("SIG-003", signers=signers) == []


def test_normalize_name() -> None:
    decomposed = "Socie\u0301te\u0301  Ge\u0301ne\u0301rale"
    assert normalize_name(decomposed) == normalize_name("SOCIÉTÉ GÉNÉRALE")
    assert normalize_name("Straße") == normalize_name("STRASSE")
    assert normalize_name("A  B") != normalize_name("AB")


def test_signer_checks_refuse_to_guess_without_verification() -> None:
    for rule_id in ("SIG-001", "SIG-002", "SIG-003"):
        with pytest.raises(SignersUnavailable):
            run(rule_id, signers=None)


# --- DOC ------------------------------------------------------------------------------


def _validity(start: datetime, end: datetime) -> Validity:
    return Validity(not_before=start, not_after=end)


def test_doc_001_not_yet_valid() -> None:
    cert = valid_certificate(
        validity=_validity(NOW + timedelta(seconds=1), NOW + timedelta(days=30))
    )
    assert [f.field for f in run("DOC-001", cert)] == ["validity.not_before"]


def test_doc_001_expired_at_not_after() -> None:
    cert = valid_certificate(validity=_validity(NOW - timedelta(days=30), NOW))
    assert [f.field for f in run("DOC-001", cert)] == ["validity.not_after"]
    cert = valid_certificate(validity=_validity(NOW, NOW + timedelta(seconds=1)))
    assert run("DOC-001", cert) == []


def test_doc_002_issued_in_the_future() -> None:
    cert = valid_certificate(issued_at=NOW + timedelta(seconds=301))
    assert [f.field for f in run("DOC-002", cert)] == ["issued_at"]
    assert run("DOC-002", valid_certificate(issued_at=NOW + timedelta(seconds=300))) == []


def test_doc_003_validity_longer_than_the_maximum() -> None:
    start = NOW - timedelta(days=10)
    at_max = valid_certificate(validity=_validity(start, start + timedelta(days=183)))
    assert run("DOC-003", at_max) == []
    over = valid_certificate(validity=_validity(start, start + timedelta(days=183, seconds=1)))
    (finding,) = run("DOC-003", over)
    assert finding.field == "validity.not_after"
    assert "at most 183 days" in finding.detail


def test_doc_004_signed_after_now_plus_skew() -> None:
    def signed(at: datetime) -> Certificate:
        return valid_certificate(signatory=Signatory(name="R", signed_at=at))

    assert [f.field for f in run("DOC-004", signed(NOW + timedelta(seconds=301)))] == [
        "signatory.signed_at"
    ]
    assert run("DOC-004", signed(NOW + timedelta(seconds=300))) == []


# --- CMT ------------------------------------------------------------------------------

ALL_GIVEN: dict[str, Any] = {
    "no_wmd_use": True,
    "no_military_end_use": True,
    "no_military_end_user": True,
    "no_reexport_without_consent": True,
    "no_reexport_to": ("US",),
}


def test_cmt_001_undertakings_missing() -> None:
    assert [f.field for f in run("CMT-001", valid_certificate(undertakings=None))] == [
        "undertakings"
    ]


@pytest.mark.parametrize(
    "name",
    ["no_wmd_use", "no_military_end_use", "no_military_end_user", "no_reexport_without_consent"],
)
def test_cmt_001_each_undertaking_is_required(name: str) -> None:
    cert = valid_certificate(undertakings=Undertakings(**{**ALL_GIVEN, name: False}))
    assert [f.field for f in run("CMT-001", cert)] == [f"undertakings.{name}"]


def test_cmt_001_a_qualified_undertaking_is_not_given() -> None:
    given = Undertakings(**ALL_GIVEN, qualification="except for orders of the Ministry of Defence")
    findings = run("CMT-001", valid_certificate(undertakings=given))
    assert [f.field for f in findings] == ["undertakings.qualification"]
    assert "Ministry of Defence" in findings[0].detail


def test_cmt_001_params_choose_the_required_undertakings() -> None:
    params = CHECKS["undertakings_given"].params.model_validate({"required": ["no_wmd_use"]})
    cert = valid_certificate(undertakings=Undertakings(no_wmd_use=True))
    ctx = RuleContext(
        submission=submission_with_signers(cert),
        bundle=BUNDLE,
        signer_results=(),
        ledger=EmptyLedger(),
        now=NOW,
    )
    assert CHECKS["undertakings_given"].function(ctx, params) == []
    with pytest.raises(ValidationError):
        CHECKS["undertakings_given"].params.model_validate({"required": []})


def test_cmt_002_reexport_bar_must_cover_barred_destinations() -> None:
    cert = valid_certificate(undertakings=Undertakings(**{**ALL_GIVEN, "no_reexport_to": ("CN",)}))
    (finding,) = run("CMT-002", cert)
    assert finding.field == "undertakings.no_reexport_to"
    assert "US" in finding.detail
    assert len(run("CMT-002", valid_certificate(undertakings=None))) == 1


# --- EUS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "category",
    ["MILITARY", "DEFENCE", "WEAPONS", "WMD", "NUCLEAR_EXPLOSIVE", "MISSILE", "UAV"],
)
def test_eus_001_prohibited_end_uses(category: str) -> None:
    cert = valid_certificate(end_use=EndUse(category=EndUseCategory(category)))
    (finding,) = run("EUS-001", cert)
    assert finding.field == "end_use.category"
    assert category in finding.detail


@pytest.mark.parametrize("category", ["WIND_TURBINE_GENERATORS", "TRADING", "MEDICAL_DEVICES"])
def test_eus_001_civil_end_uses_pass(category: str) -> None:
    assert (
        run("EUS-001", valid_certificate(end_use=EndUse(category=EndUseCategory(category)))) == []
    )


# --- DST ------------------------------------------------------------------------------


def test_dst_001_cites_each_barred_field() -> None:
    cert = valid_certificate(
        final_destination_country="US",
        importer=jay_ushin(country_code="US"),
        consignee=US_PARTY,
        intermediaries=(
            Intermediary(party=exporter(country_code="SG"), role=IntermediaryRole.TRADER),
            Intermediary(party=US_PARTY, role=IntermediaryRole.FREIGHT_FORWARDER),
        ),
        end_user=jay_ushin(country_code="US"),
    )
    assert [f.field for f in run("DST-001", cert)] == [
        "final_destination_country",
        "importer.country_code",
        "consignee.country_code",
        "intermediaries[1].party.country_code",
        "end_user.country_code",
    ]


def test_dst_001_the_exporter_may_be_anywhere() -> None:
    assert run("DST-001", valid_certificate(exporter=US_PARTY)) == []


# --- PTY / LIC ------------------------------------------------------------------------


def test_pty_001_unlicensed_end_user() -> None:
    other = jay_ushin(
        legal_name="Kaveri Motion Systems Private Limited",
        registrations=(Registration(scheme="IEC", value="0716054321"),),
    )
    (finding,) = run("PTY-001", valid_certificate(end_user=other))
    assert finding.field == "end_user.registrations"
    assert "Kaveri" in finding.detail


def test_pty_001_matches_by_scheme_and_value() -> None:
    same_value_other_scheme = jay_ushin(
        registrations=(Registration(scheme="GSTIN", value="0588012345"),)
    )
    assert len(run("PTY-001", valid_certificate(end_user=same_value_other_scheme))) == 1
    one_registration = jay_ushin(registrations=(Registration(scheme="IEC", value="0588012345"),))
    assert run("PTY-001", valid_certificate(end_user=one_registration)) == []


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        (datetime(2025, 10, 19, 23, 59, tzinfo=UTC), True),
        (datetime(2025, 10, 20, 0, 0, tzinfo=UTC), False),
        (datetime(2027, 10, 19, 23, 59, tzinfo=UTC), False),
        (datetime(2027, 10, 20, 0, 0, tzinfo=UTC), True),
    ],
)
def test_lic_001_licence_dates(now: datetime, fires: bool) -> None:
    findings = run("LIC-001", now=now)
    assert bool(findings) is fires
    if fires:
        assert "MOFCOM-EL-2025-000417" in findings[0].detail


def test_lic_001_quiet_when_no_licensee_matched() -> None:
    other = jay_ushin(registrations=(Registration(scheme="IEC", value="0716054321"),))
    assert (
        run("LIC-001", valid_certificate(end_user=other), now=datetime(2030, 1, 1, tzinfo=UTC))
        == []
    )


# --- ITM ------------------------------------------------------------------------------


def test_itm_001_item_not_on_the_controlled_list() -> None:
    items = (
        magnet_item(),
        magnet_item(elements=("Nd",)),  # NdFeB without Dy or Tb
        magnet_item(hs_code="8505.19"),
        magnet_item(form=ItemForm.OXIDE),
    )
    findings = run("ITM-001", valid_certificate(items=items))
    # items[3] declares a magnet heading as an oxide: ITM-003 rejects it instead.
    assert [f.field for f in findings] == ["items[1]", "items[2]"]
    assert "not on the controlled list" in findings[0].detail


@pytest.mark.parametrize(
    ("hs_code", "elements", "form"),
    [
        ("8505.11.10", ("Tb",), ItemForm.MAGNET),
        ("85051190", ("Sm",), ItemForm.MAGNET),
        ("2805.30", ("Y",), ItemForm.METAL),
        ("2805.30", ("Dy", "Fe"), ItemForm.ALLOY),
        ("2846.90", ("Gd",), ItemForm.OXIDE),
        ("2846.10", ("Lu",), ItemForm.COMPOUND),
    ],
)
def test_itm_001_controlled_items_pass(
    hs_code: str, elements: tuple[str, ...], form: ItemForm
) -> None:
    item = magnet_item(hs_code=hs_code, elements=elements, form=form)
    assert run("ITM-001", valid_certificate(items=(item,))) == []


# --- the registry ---------------------------------------------------------------------


def test_a_check_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @check("items_controlled", NoParams)
        def again(ctx: RuleContext, params: NoParams) -> list[Finding]:
            return []


def test_no_params_refuses_parameters() -> None:
    with pytest.raises(ValidationError):
        NoParams.model_validate({"x": 1})
