"""decide(): the one function that turns a submission into a decision.

Pure: it reads no clock, file, database or environment; everything it depends on is an
argument, so the server, the CLI, the benchmarks and replay all get the same answer from
the same inputs. Every rule of the bundle in effect at `now` runs, in bundle order; every
finding becomes a reason; the outcome is the strictest reason (REJECT > REFER > APPROVE).
A rule that raises gives REFER with rule id ENG-001: nothing approves by omission.
The reasons a decision keeps are bounded (`decision.bounded_reasons`: a few per rule, a
count of the rest), so no input makes a decision too large to log or return.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from eucgate.core.bundle import Bundle, Rule
from eucgate.core.checks import CHECKS
from eucgate.core.decision import (
    ApprovedItem,
    Decision,
    Family,
    Outcome,
    PartySummary,
    Reason,
    RuleOutcome,
    SignerResult,
    bounded_reasons,
    outcome_of,
)
from eucgate.core.ledger import LedgerView, RecordingLedger
from eucgate.core.model import Item, Party
from eucgate.core.pki import ChainCache, verify_signatures
from eucgate.core.registry import EmptyRegistry, RecordingRegistry, RegistryView
from eucgate.core.rules import RuleContext, RuleUnavailable
from eucgate.core.submission import Submission

ENGINE_RULE_ID = "ENG-001"
_MAX_ERROR_TEXT = 200


def decide(
    submission: Submission,
    bundle: Bundle,
    ledger_view: LedgerView,
    now: datetime,
    *,
    registry: RegistryView | None = None,
    chain_cache: ChainCache | None = None,
) -> Decision:
    """Decide a submission under a bundle at `now` (the caller's clock reading).

    `ledger_view` holds the quota balances and `registry` the decided EUCs (none if
    omitted), as the caller read them; the entries the rules read of each are recorded
    in the decision, so replay can hand them back.

    Signatures are verified once, against the bundle's trust per role, at
    `verification_time` (the declared signing time when believable, else `now`); CRLs
    must be current at `now`. `chain_cache` only saves work: the decision is the same
    without it. Never reads the clock. Raises ValueError only if `now` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    certificate = submission.certificate
    reasons: list[Reason] = []
    signers: tuple[SignerResult, ...] | None
    try:
        signers = verify_signatures(
            submission.envelope,
            bundle.trust,
            verification_time(certificate.signatory.signed_at, bundle, now),
            now=now,
            cache=chain_cache,
        )
    except Exception as exc:  # fail closed: signer rules then refer, see RuleContext
        signers = None
        reasons.append(_engine_reason("signature verification", exc))
    ledger = RecordingLedger(ledger_view)  # the balances read go into the decision
    used = RecordingRegistry(registry or EmptyRegistry())  # so do the registry entries
    ctx = RuleContext(
        submission=submission,
        bundle=bundle,
        signer_results=signers,
        ledger=ledger,
        now=now,
        registry=used,
    )
    for rule, params in bundle.rules_in_effect(now):
        try:
            reasons.extend(_evaluate(rule, params, ctx))
        except RuleUnavailable as exc:  # known not to be evaluable here: refer, own id
            reasons.append(
                Reason(
                    rule_id=rule.id,
                    family=rule.family,
                    outcome=RuleOutcome.REFER,
                    message=f"{rule.id} could not be evaluated ({exc}); a person must review",
                )
            )
        except Exception as exc:  # fail closed: a rule that cannot run refers
            reasons.append(_engine_reason(f"rule {rule.id}", exc))
    outcome = outcome_of(reasons)
    licensee = ctx.licensed_importer
    return Decision(
        outcome=outcome,
        reasons=bounded_reasons(reasons),
        bundle_digest=bundle.digest,
        euc_digest=submission.euc_digest,
        decided_at=now,
        valid_from=certificate.validity.not_before,
        valid_until=certificate.validity.not_after,
        approved_items=(
            tuple(approved_item(item) for item in certificate.items)
            if outcome is Outcome.APPROVED
            else ()
        ),
        certificate_number=certificate.certificate_number,
        importer=_summary(certificate.importer),
        end_user=_summary(certificate.end_user),
        licence_number=licensee.licence_number if licensee is not None else "",
        signers=signers or (),
        ledger_reads=ledger.reads,
        registry_reads=used.reads,
    )


def verification_time(signed_at: datetime, bundle: Bundle, now: datetime) -> datetime:
    """The time signer certificates are checked at: the declared signing time if it lies
    within [now - max_signing_age_seconds, now + max_signing_skew_seconds], else `now`.

    A signing time is a claim of the signer; bounding it against the receive time keeps
    an old or future-dated claim from reviving an expired or not-yet-valid certificate.
    """
    params = bundle.parameters
    earliest = now - timedelta(seconds=params.max_signing_age_seconds)
    latest = now + timedelta(seconds=params.max_signing_skew_seconds)
    return signed_at if earliest <= signed_at <= latest else now


def _evaluate(rule: Rule, params: BaseModel, ctx: RuleContext) -> list[Reason]:
    findings = CHECKS[rule.check].function(ctx, params)
    return [
        Reason(
            rule_id=rule.id,
            family=rule.family,
            outcome=rule.outcome,
            message=rule.render(f.field, f.detail),
            field=f.field,
        )
        for f in findings
    ]


def _engine_reason(what: str, exc: Exception) -> Reason:
    detail = str(exc)[:_MAX_ERROR_TEXT]
    return Reason(
        rule_id=ENGINE_RULE_ID,
        family=Family.ENG,
        outcome=RuleOutcome.REFER,
        message=(
            f"{what} could not be evaluated ({type(exc).__name__}: {detail}); "
            "a person must review this certificate"
        ),
    )


def _summary(party: Party) -> PartySummary:
    return PartySummary(
        legal_name=party.legal_name,
        country_code=party.country_code,
        registrations=tuple((r.scheme, r.value) for r in party.registrations),
    )


def approved_item(item: Item) -> ApprovedItem:
    """An item of the certificate as an approval lists it."""
    return ApprovedItem(
        description=item.description,
        hs_code=item.hs_code,
        elements=item.elements,
        form=item.form.value,
        quantity=format(item.quantity.value, "f"),
        unit=item.quantity.unit,
    )
