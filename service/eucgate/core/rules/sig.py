"""SIG: signatures."""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, ConfigDict

from eucgate.core.checks import Finding, NoParams
from eucgate.core.model import (
    CountryCode,
    ElementSymbol,
    HsCode,
    Party,
)
from eucgate.core.rules.context import RuleContext, check, normalize_name, registrations_of


@check("signatures_verified", NoParams)
def signatures_verified(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Every signature must verify and chain to a role's trust anchor."""
    return [
        Finding("", f"signature {s.index} (keyid {s.keyid or 'none'}): {s.failure}: {s.detail}")
        for s in ctx.signers
        if not s.verified
    ]


@check("end_user_signature_present", NoParams)
def end_user_signature_present(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """At least one verified signature must chain to an end-user trust anchor."""
    if any(s.verified and s.role == "end_user" for s in ctx.signers):
        return []
    return [Finding("", "no signature verifies and chains to an end-user trust anchor")]


def _scripts(name: str) -> set[str]:
    """The scripts of a name's letters (first word of each Unicode character name)."""
    return {unicodedata.name(ch, "?").split(" ")[0] for ch in name if ch.isalpha()}


def _bound(ctx: RuleContext, role: str, party: Party | None, path: str) -> list[Finding]:
    """Each verified signer of `role` must be `party`: same organisation name (NFC,
    case-folded) and at least one shared registration (scheme and value)."""
    signers = [s for s in ctx.signers if s.verified and s.role == role]
    if not signers:
        return []
    if party is None:
        return [
            Finding(path, f"signature {s.index} is by a {role} but the certificate names none")
            for s in signers
        ]
    wanted_name = normalize_name(party.legal_name)
    wanted_regs = registrations_of(party)
    findings = []
    for s in signers:
        if normalize_name(s.organization) != wanted_name:
            spoof = len(_scripts(s.organization)) > 1
            findings.append(
                Finding(
                    f"{path}.legal_name",
                    f"signature {s.index} is by {s.organization!r}, not the {role} "
                    f"{party.legal_name!r}"
                    + (" (the signer's name mixes scripts: look-alike letters)" if spoof else ""),
                )
            )
        if not set(s.registrations) & set(wanted_regs):
            findings.append(
                Finding(
                    f"{path}.registrations",
                    f"signature {s.index} carries registrations "
                    f"{', '.join(s.registrations) or 'none'}; the {role} declares "
                    f"{', '.join(wanted_regs) or 'none'}",
                )
            )
    return findings


@check("end_user_signer_bound", NoParams)
def end_user_signer_bound(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Each verified end-user signer must be the end user the EUC names."""
    return _bound(ctx, "end_user", ctx.certificate.end_user, "end_user")


@check("consignee_signer_bound", NoParams)
def consignee_signer_bound(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Each verified consignee signer must be the consignee the EUC names (and the EUC
    must name one)."""
    return _bound(ctx, "consignee", ctx.certificate.consignee, "consignee")


@check("revocation_known", NoParams)
def revocation_known(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Each verified signer's revocation status must be known: a CRL that is missing,
    not current or not signed by the issuing CA leaves it unknown."""
    return [
        Finding(
            "",
            f"signature {s.index} ({s.role}): {s.revocation_failure}: {s.revocation_detail}",
        )
        for s in ctx.signers
        if s.verified and s.revocation == "unknown"
    ]


class EndorsementParams(BaseModel):
    """When an endorsement by an authority of the importing country is required: for
    any of these final destinations, or any item under one of these HS code prefixes
    or containing one of these elements. Empty lists match nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    destinations: tuple[CountryCode, ...] = ()
    hs_codes: tuple[HsCode, ...] = ()
    elements: tuple[ElementSymbol, ...] = ()


@check("endorsement_present", EndorsementParams)
def endorsement_present(ctx: RuleContext, params: EndorsementParams) -> list[Finding]:
    """When the EUC falls under `params`, a verified endorser signature whose
    certificate country is the final destination must be present; the rule's outcome
    (REJECT or REFER) is the bundle's choice."""
    c = ctx.certificate
    why = []
    if c.final_destination_country in params.destinations:
        why.append(f"final destination {c.final_destination_country}")
    for i, item in enumerate(c.items):
        digits = item.hs_code.replace(".", "")
        if any(digits.startswith(h.replace(".", "")) for h in params.hs_codes):
            why.append(f"items[{i}] HS {item.hs_code}")
        elif set(item.elements) & set(params.elements):
            why.append(f"items[{i}] elements {', '.join(item.elements)}")
    if not why:
        return []
    endorsers = [s for s in ctx.signers if s.verified and s.role == "endorser"]
    if any(s.country == c.final_destination_country for s in endorsers):
        return []
    others = ", ".join(f"signature {s.index} from {s.country or 'no country'}" for s in endorsers)
    return [
        Finding(
            "final_destination_country",
            f"an endorsement by an authority of {c.final_destination_country} is required "
            f"({'; '.join(why)}); "
            + (f"the endorsements present are not from it ({others})" if others else "none"),
        )
    ]
