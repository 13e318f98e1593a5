"""DOC: the document, and one EUC, one use."""

from __future__ import annotations

from datetime import timedelta

from eucgate.core.checks import Finding, NoParams
from eucgate.core.registry import (
    USING_OUTCOMES,
    RegistryEntry,
    issuers_of,
)
from eucgate.core.rules.context import RuleContext, check, iso


@check("certificate_in_validity", NoParams)
def certificate_in_validity(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The EUC must be valid now: not_before <= now < not_after."""
    validity = ctx.certificate.validity
    if ctx.now < validity.not_before:
        return [
            Finding(
                "validity.not_before",
                f"the certificate is valid only from {iso(validity.not_before)}; "
                f"now is {iso(ctx.now)}",
            )
        ]
    if ctx.now >= validity.not_after:
        return [
            Finding(
                "validity.not_after",
                f"the certificate expired at {iso(validity.not_after)}; now is {iso(ctx.now)}",
            )
        ]
    return []


@check("validity_within_maximum", NoParams)
def validity_within_maximum(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The validity window may not exceed the bundle's max_validity_days."""
    validity = ctx.certificate.validity
    limit = ctx.bundle.parameters.max_validity_days
    length = validity.not_after - validity.not_before
    if length <= timedelta(days=limit):
        return []
    return [
        Finding(
            "validity.not_after",
            f"validity runs {length.total_seconds() / 86400:.2f} days "
            f"({iso(validity.not_before)} to {iso(validity.not_after)}); "
            f"at most {limit} days are allowed",
        )
    ]


@check("issued_not_in_future", NoParams)
def issued_not_in_future(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """issued_at may not lie after now by more than max_signing_skew_seconds."""
    issued = ctx.certificate.issued_at
    skew = timedelta(seconds=ctx.bundle.parameters.max_signing_skew_seconds)
    if issued <= ctx.now + skew:
        return []
    return [Finding("issued_at", f"issued at {iso(issued)}, after now ({iso(ctx.now)})")]


@check("signed_not_in_future", NoParams)
def signed_not_in_future(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """signatory.signed_at may not lie after now by more than max_signing_skew_seconds."""
    signed = ctx.certificate.signatory.signed_at
    skew_seconds = ctx.bundle.parameters.max_signing_skew_seconds
    if signed <= ctx.now + timedelta(seconds=skew_seconds):
        return []
    return [
        Finding(
            "signatory.signed_at",
            f"signed at {iso(signed)}, more than {skew_seconds} s after now ({iso(ctx.now)})",
        )
    ]


# One EUC, one use: the registry of decided EUCs (core.registry).


def _registry_entries(ctx: RuleContext) -> list[tuple[str, RegistryEntry]]:
    number = ctx.certificate.certificate_number
    found = ((issuer, ctx.registry.used(issuer, number)) for issuer in issuers_of(ctx.certificate))
    return [(issuer, entry) for issuer, entry in found if entry is not None]


@check("certificate_number_not_reused", NoParams)
def certificate_number_not_reused(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A certificate number its issuer already used for an EUC with other content."""
    digest = ctx.submission.euc_digest
    for issuer, entry in _registry_entries(ctx):
        if entry.euc_digest != digest:
            return [
                Finding(
                    "certificate_number",
                    f"{ctx.certificate.certificate_number} of {issuer} was decided before "
                    f"({entry.decision_id}, {entry.outcome}) with other content",
                )
            ]
    return []


@check("certificate_not_used", NoParams)
def certificate_not_used(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The same EUC again after a decision that used it (APPROVED or REFERRED): an EUC is
    good for one decision; a REJECTED one may be corrected and sent again."""
    digest = ctx.submission.euc_digest
    for _issuer, entry in _registry_entries(ctx):
        if entry.euc_digest == digest and entry.outcome in USING_OUTCOMES:
            return [
                Finding(
                    "certificate_number",
                    f"this EUC was already decided as {entry.decision_id} ({entry.outcome}); "
                    "send a retry with its first request_id to get that answer",
                )
            ]
    return []
