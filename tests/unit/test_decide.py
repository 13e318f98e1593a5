"""decide(): real signatures, every rule, strictest outcome, fail closed, deterministic."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from eucgate.core import decide as decide_module
from eucgate.core.bundle import Bundle, validate_bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.checks import CHECKS, Check, Finding, NoParams
from eucgate.core.decide import ENGINE_RULE_ID, decide
from eucgate.core.decision import Family, Outcome, Reason, RuleOutcome
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import (
    PAYLOAD_TYPE_JSON,
    PAYLOAD_TYPES,
    EndUse,
    EndUseCategory,
    Signatory,
    Undertakings,
    Validity,
    encode_certificate,
)
from eucgate.core.rules import RuleContext
from eucgate.core.submission import Submission
from eucgate.signing import issue_ca, issue_signer
from eucgate_client.dsse import Envelope

from tests.conftest import Pki
from tests.factories import (
    magnet_item,
    sample_bundle,
    shin_etsu,
    signed_submission,
    valid_certificate,
)

LEDGER = EmptyLedger()


@pytest.fixture(scope="module")
def bundle(pki: Pki) -> Bundle:
    return sample_bundle(pki)


def _ids(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.rule_id for r in reasons]


@pytest.mark.parametrize("payload_type", PAYLOAD_TYPES)
def test_valid_certificate_is_approved(
    pki: Pki, bundle: Bundle, now: datetime, payload_type: str
) -> None:
    sub = signed_submission(valid_certificate(), pki, payload_type=payload_type)
    d = decide(sub, bundle, LEDGER, now)
    assert d.outcome is Outcome.APPROVED
    assert d.reasons == ()
    assert d.bundle_digest == bundle.digest
    assert d.euc_digest == hashlib.sha256(sub.envelope.payload).hexdigest()
    assert d.decided_at == now
    assert (d.valid_from, d.valid_until) == (
        datetime(2026, 5, 20, tzinfo=UTC),
        datetime(2026, 11, 15, tzinfo=UTC),
    )
    assert d.certificate_number == "JUL/EUC/2026/0142"
    assert d.licence_number == "MOFCOM-EL-2025-000417"
    assert d.end_user is not None
    assert d.end_user.legal_name == "Jay-Ushin Limited"
    assert d.end_user.registrations == (("IEC", "0588012345"), ("GSTIN", "06AAACJ1234F1Z5"))
    assert d.importer == d.end_user
    (signer,) = d.signers
    assert (signer.role, signer.verified, signer.organization) == (
        "end_user",
        True,
        "Jay-Ushin Limited",
    )
    (item,) = d.approved_items
    assert (item.hs_code, item.elements, item.form, item.quantity, item.unit) == (
        "8505.11",
        ("Dy",),
        "MAGNET",
        "500",
        "kg",
    )


def test_a_verified_consignee_co_signature_is_fine(pki: Pki, bundle: Bundle, now: datetime) -> None:
    signers = [(pki.end_user_key, pki.end_user_chain), (pki.consignee_key, pki.consignee_chain)]
    cert = valid_certificate(consignee=shin_etsu())
    d = decide(signed_submission(cert, pki, signers=signers), bundle, LEDGER, now)
    assert d.outcome is Outcome.APPROVED
    assert [s.role for s in d.signers] == ["end_user", "consignee"]


def test_decide_is_deterministic(pki: Pki, bundle: Bundle, now: datetime) -> None:
    cert = valid_certificate(end_use=EndUse(category=EndUseCategory.UAV), undertakings=None)
    sub = signed_submission(cert, pki)
    first, second = decide(sub, bundle, LEDGER, now), decide(sub, bundle, LEDGER, now)
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()
    # The same inputs rebuilt from their stored forms give the same decision.
    stored_bundle = parse_bundle(bundle.canonical().decode(), "stored")
    again = signed_submission(cert, pki)  # new signature bytes, same payload
    assert decide(again, stored_bundle, LEDGER, now).reasons == first.reasons


def test_now_must_be_aware(pki: Pki, bundle: Bundle) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(signed_submission(valid_certificate(), pki), bundle, LEDGER, datetime(2026, 6, 1))


# --- outcomes and reasons -------------------------------------------------------------


def test_refer_only_gives_referred_and_no_approved_items(
    pki: Pki, bundle: Bundle, now: datetime
) -> None:
    cert = valid_certificate(items=(magnet_item(), magnet_item(elements=("Nd",))))
    d = decide(signed_submission(cert, pki), bundle, LEDGER, now)
    assert d.outcome is Outcome.REFERRED
    (reason,) = d.reasons
    assert (reason.rule_id, reason.family, reason.outcome, reason.field) == (
        "ITM-001",
        Family.ITM,
        RuleOutcome.REFER,
        "items[1]",
    )
    assert "items[1]" in reason.message
    assert "no export licence is needed" in reason.message
    assert d.approved_items == ()


def test_reject_beats_refer(pki: Pki, bundle: Bundle, now: datetime) -> None:
    cert = valid_certificate(
        items=(magnet_item(), magnet_item(elements=("Nd",))),
        end_use=EndUse(
            category=EndUseCategory.MILITARY,
            statement="Magnets for armoured vehicle turret drives.",
        ),
    )
    d = decide(signed_submission(cert, pki), bundle, LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    assert _ids(d.reasons) == ["EUS-001", "ITM-001"]
    assert d.approved_items == ()


def test_every_rule_runs_and_every_fired_rule_is_a_reason(
    pki: Pki, bundle: Bundle, now: datetime
) -> None:
    unknown_party_key, unknown_party_cert = issue_signer(
        (pki.intermediate_key, pki.intermediate),
        organization="Kaveri Motion Systems Private Limited",
        registrations=[("IEC", "0716054321")],
        common_name="Kaveri EUC signing",
        country="IN",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2027, 1, 1, tzinfo=UTC),
    )
    cert = valid_certificate(
        issued_at=now + timedelta(days=1),
        validity=Validity(not_before=now - timedelta(days=200), not_after=now - timedelta(days=1)),
        end_use=EndUse(category=EndUseCategory.WMD),
        final_destination_country="US",
        undertakings=Undertakings(qualification="subject to change"),
        items=(magnet_item(elements=("Nd",)),),
        signatory=Signatory(name="R", signed_at=now + timedelta(hours=1)),
    )
    rogue_root = issue_ca(
        "rogue root",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )
    rogue_key, rogue_cert = issue_signer(
        rogue_root,
        organization="Jay-Ushin Limited",
        registrations=[("IEC", "0588012345")],
        common_name="rogue",
        country="IN",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2027, 1, 1, tzinfo=UTC),
    )
    signers = [
        (unknown_party_key, (unknown_party_cert, pki.intermediate)),
        (rogue_key, (rogue_cert,)),
    ]
    d = decide(signed_submission(cert, pki, signers=signers), bundle, LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    fired = _ids(d.reasons)
    # In bundle order; PTY/LIC stay quiet because Jay-Ushin is licensed.
    assert sorted(set(fired), key=fired.index) == [
        "SIG-001",
        "SIG-003",
        "DOC-001",
        "DOC-002",
        "DOC-003",
        "DOC-004",
        "CMT-001",
        "CMT-002",
        "EUS-001",
        "EUS-003",
        "DST-001",
        "DST-002",
        "ITM-001",
    ]
    assert all(r.message for r in d.reasons)
    sig_001 = next(r for r in d.reasons if r.rule_id == "SIG-001")
    assert "signature 1" in sig_001.message
    assert "SIG_UNTRUSTED_CHAIN" in sig_001.message
    assert [r.field for r in d.reasons if r.rule_id == "SIG-003"] == [
        "end_user.legal_name",
        "end_user.registrations",
    ]
    cmt = [r.field for r in d.reasons if r.rule_id == "CMT-001"]
    assert cmt == [
        "undertakings.no_wmd_use",
        "undertakings.no_military_end_use",
        "undertakings.no_military_end_user",
        "undertakings.no_reexport_without_consent",
        "undertakings.qualification",
    ]


# --- signatures end to end ------------------------------------------------------------


def test_untrusted_signer_is_rejected(pki: Pki, now: datetime) -> None:
    d = decide(signed_submission(valid_certificate(), pki), sample_bundle(), LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    assert _ids(d.reasons) == ["SIG-001", "SIG-002"]
    assert "SIG_UNTRUSTED_CHAIN" in d.reasons[0].message
    assert d.approved_items == ()


def test_tampered_payload_is_rejected(pki: Pki, bundle: Bundle, now: datetime) -> None:
    signed = signed_submission(valid_certificate(), pki).envelope
    other = encode_certificate(valid_certificate(certificate_number="JUL/EUC/2026/9999"))
    forged = Envelope(payload_type=signed.payload_type, payload=other, signatures=signed.signatures)
    sub = Submission.from_envelope(forged, max_payload_bytes=1 << 20, max_signatures=8)
    d = decide(sub, bundle, LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    assert _ids(d.reasons) == ["SIG-001", "SIG-002"]
    assert "SIG_INVALID" in d.reasons[0].message


def test_signer_must_be_the_named_end_user(pki: Pki, bundle: Bundle, now: datetime) -> None:
    key, leaf = issue_signer(
        (pki.intermediate_key, pki.intermediate),
        organization="Jay-Ushin Limited",
        registrations=[("IEC", "0716054321")],
        common_name="impostor",
        country="IN",
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        not_after=datetime(2027, 1, 1, tzinfo=UTC),
    )
    sub = signed_submission(valid_certificate(), pki, signers=[(key, (leaf, pki.intermediate))])
    d = decide(sub, bundle, LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    assert [(r.rule_id, r.field) for r in d.reasons] == [("SIG-003", "end_user.registrations")]


def test_certificates_are_checked_at_the_signing_time(
    pki: Pki, bundle: Bundle, now: datetime
) -> None:
    # The signer certificate is valid from 2026-01-01; this EUC claims an earlier
    # signature, recent enough (bundle: 30 days) to be believed.
    before = datetime(2025, 12, 30, tzinfo=UTC)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    cert = valid_certificate(
        issued_at=before,
        validity=Validity(not_before=before, not_after=before + timedelta(days=180)),
        signatory=Signatory(name="R", signed_at=before),
    )
    d = decide(signed_submission(cert, pki), bundle, LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    assert "SIG_CERT_NOT_YET_VALID" in d.reasons[0].message
    assert _ids(d.reasons) == ["SIG-001", "SIG-002"]


def test_json_and_protobuf_payloads_decide_alike(pki: Pki, bundle: Bundle, now: datetime) -> None:
    cert = valid_certificate(end_use=EndUse(category=EndUseCategory.MISSILE))
    proto = decide(signed_submission(cert, pki), bundle, LEDGER, now)
    json_ = decide(
        signed_submission(cert, pki, payload_type=PAYLOAD_TYPE_JSON), bundle, LEDGER, now
    )
    assert proto.reasons == json_.reasons
    assert proto.euc_digest != json_.euc_digest


# --- fail closed ----------------------------------------------------------------------


def _explodes(ctx: RuleContext, params: NoParams) -> list[Finding]:
    raise ZeroDivisionError("division by zero")


@pytest.fixture
def exploding_bundle(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> Bundle:
    monkeypatch.setitem(CHECKS, "explodes", Check("explodes", NoParams, _explodes))
    data = bundle.model_dump(mode="json")
    data["rules"].insert(
        3,
        {
            "id": "RF-901",
            "family": "RF",
            "outcome": "REJECT",
            "check": "explodes",
            "message": "$field: $detail",
        },
    )
    return validate_bundle(data, "<test>", {}, CHECKS)


def test_a_check_that_raises_refers(pki: Pki, exploding_bundle: Bundle, now: datetime) -> None:
    d = decide(signed_submission(valid_certificate(), pki), exploding_bundle, LEDGER, now)
    assert d.outcome is Outcome.REFERRED
    (reason,) = d.reasons
    assert (reason.rule_id, reason.family, reason.outcome, reason.field) == (
        ENGINE_RULE_ID,
        Family.ENG,
        RuleOutcome.REFER,
        "",
    )
    assert "RF-901" in reason.message
    assert "ZeroDivisionError" in reason.message
    assert d.approved_items == ()


def test_other_rules_still_run_after_a_check_raises(
    pki: Pki, exploding_bundle: Bundle, now: datetime
) -> None:
    cert = valid_certificate(
        end_use=EndUse(
            category=EndUseCategory.DEFENCE, statement="Magnets for armoured vehicle turret drives."
        )
    )
    d = decide(signed_submission(cert, pki), exploding_bundle, LEDGER, now)
    assert d.outcome is Outcome.REJECTED
    assert _ids(d.reasons) == [ENGINE_RULE_ID, "EUS-001"]


def test_verification_that_raises_refers_instead_of_rejecting(
    pki: Pki, bundle: Bundle, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> tuple[()]:
        raise RuntimeError("verifier unavailable")

    monkeypatch.setattr(decide_module, "verify_signatures", broken)
    d = decide(signed_submission(valid_certificate(), pki), bundle, LEDGER, now)
    assert d.outcome is Outcome.REFERRED
    assert set(_ids(d.reasons)) == {ENGINE_RULE_ID}
    assert "signature verification" in d.reasons[0].message
    # Every rule that reads the signers refers; the endorsement rule does not apply here.
    assert [r.message.split(" could not")[0] for r in d.reasons[1:]] == [
        f"rule SIG-00{n}" for n in (1, 2, 3, 4, 5)
    ]
    assert d.signers == ()
