"""The rule catalogue: a rule is data plus one small function.

The bundle owns each rule's id, family, outcome and message; this module owns only the
checks they name. A check is a pure function `(ctx, params) -> list[Finding]` that
returns one `Finding` (certificate field path and detail) per violation and an empty
list when the rule does not fire. It reads no clock (use `ctx.now`), file or database.
To add a rule: write a check here with `@check("name", ParamsModel)`, then list a rule
that names it in the bundle, with a bundle test.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from eucgate.core import quota
from eucgate.core.bundle import Bundle, ControlledItem, LicensedImporter
from eucgate.core.celrules import CelActivation, CelCompileError, CelRule, CelStatus, activation_for
from eucgate.core.checks import Finding, NoParams, register
from eucgate.core.decision import RuleOutcome, SignerResult
from eucgate.core.ledger import LedgerView
from eucgate.core.model import (
    Certificate,
    CountryCode,
    ElementSymbol,
    EndUseCategory,
    HsCode,
    IntermediaryRole,
    Item,
    Party,
    PaymentMethod,
)
from eucgate.core.registry import (
    USING_OUTCOMES,
    EmptyRegistry,
    RegistryEntry,
    RegistryView,
    issuers_of,
)
from eucgate.core.screening import ScreeningMatch
from eucgate.core.submission import Submission


class SignersUnavailable(RuntimeError):
    """Signature verification could not run, so no signer-based check can be evaluated."""


class RuleUnavailable(RuntimeError):
    """A rule that could not be evaluated for this certificate (a custom expression that
    failed or ran out of bounds): decide() refers under the rule's own id."""


@dataclass(frozen=True)
class RuleContext:
    """Everything a check may look at, fixed for one decision.

    `signer_results` is None when verification itself failed; reading `signers` then
    raises SignersUnavailable, which the engine turns into a REFER (ENG-001).
    """

    submission: Submission
    bundle: Bundle
    signer_results: tuple[SignerResult, ...] | None
    ledger: LedgerView
    now: datetime
    registry: RegistryView = field(default_factory=EmptyRegistry)

    @property
    def certificate(self) -> Certificate:
        return self.submission.certificate

    @functools.cached_property
    def screening_matches(self) -> tuple[ScreeningMatch, ...]:
        """Every screening match of the certificate's names, computed once per decision
        however many rules read it."""
        return self.bundle.screener.screen_certificate(self.certificate, self.now)

    @functools.cached_property
    def cel_activation(self) -> CelActivation:
        """The certificate as custom rules see it, converted once per decision."""
        return activation_for(self.certificate, self.now)

    @property
    def signers(self) -> tuple[SignerResult, ...]:
        if self.signer_results is None:
            raise SignersUnavailable("signature verification did not run")
        return self.signer_results

    @property
    def licensed_importer(self) -> LicensedImporter | None:
        return self.bundle.licensed_importer_for(self.certificate.end_user)


P = TypeVar("P", bound=BaseModel)
CheckFunction = Callable[[RuleContext, P], list[Finding]]


def check(name: str, params: type[P]) -> Callable[[CheckFunction[P]], CheckFunction[P]]:
    """Register a check under `name` with its params model (core.checks); raises
    ValueError on reuse."""

    def add(function: CheckFunction[P]) -> CheckFunction[P]:
        register(name, params, function)
        return function

    return add


def normalize_name(name: str) -> str:
    """Names compare after Unicode NFC, case folding and white-space collapsing."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
    return " ".join(folded.split())


def _registrations(party: Party) -> list[str]:
    return [f"{r.scheme}:{r.value}" for r in party.registrations]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- SIG: signatures ------------------------------------------------------------------


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
    wanted_regs = _registrations(party)
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


# --- DOC: the document ----------------------------------------------------------------


@check("certificate_in_validity", NoParams)
def certificate_in_validity(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The EUC must be valid now: not_before <= now < not_after."""
    validity = ctx.certificate.validity
    if ctx.now < validity.not_before:
        return [
            Finding(
                "validity.not_before",
                f"the certificate is valid only from {_iso(validity.not_before)}; "
                f"now is {_iso(ctx.now)}",
            )
        ]
    if ctx.now >= validity.not_after:
        return [
            Finding(
                "validity.not_after",
                f"the certificate expired at {_iso(validity.not_after)}; now is {_iso(ctx.now)}",
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
            f"({_iso(validity.not_before)} to {_iso(validity.not_after)}); "
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
    return [Finding("issued_at", f"issued at {_iso(issued)}, after now ({_iso(ctx.now)})")]


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
            f"signed at {_iso(signed)}, more than {skew_seconds} s after now ({_iso(ctx.now)})",
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


# --- CMT: undertakings ----------------------------------------------------------------

Undertaking = Literal[
    "no_wmd_use", "no_military_end_use", "no_military_end_user", "no_reexport_without_consent"
]
_ALL_UNDERTAKINGS: tuple[Undertaking, ...] = (
    "no_wmd_use",
    "no_military_end_use",
    "no_military_end_user",
    "no_reexport_without_consent",
)


class UndertakingsParams(BaseModel):
    """Which undertakings the bundle requires (all four unless it says otherwise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required: tuple[Undertaking, ...] = Field(default=_ALL_UNDERTAKINGS, min_length=1)


@check("undertakings_given", UndertakingsParams)
def undertakings_given(ctx: RuleContext, params: UndertakingsParams) -> list[Finding]:
    """Each required undertaking must be given, and none qualified."""
    given = ctx.certificate.undertakings
    if given is None:
        return [Finding("undertakings", "the certificate gives no undertakings")]
    findings = [
        Finding(f"undertakings.{name}", "this undertaking is not given")
        for name in params.required
        if not getattr(given, name)
    ]
    if given.qualification.strip():
        findings.append(
            Finding(
                "undertakings.qualification",
                f"the undertakings are qualified ({given.qualification!r}); "
                "a qualified undertaking is not given",
            )
        )
    return findings


@check("reexport_bar_covers_barred_destinations", NoParams)
def reexport_bar_covers_barred_destinations(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """undertakings.no_reexport_to must name every barred destination of the bundle."""
    given = ctx.certificate.undertakings
    named = set(given.no_reexport_to) if given is not None else set()
    missing = [c for c in ctx.bundle.barred_destinations if c not in named]
    if not missing:
        return []
    return [
        Finding(
            "undertakings.no_reexport_to",
            f"no undertaking never to re-export to {', '.join(missing)}",
        )
    ]


# --- EUS: end use ---------------------------------------------------------------------


@check("end_use_permitted", NoParams)
def end_use_permitted(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The declared end-use category may not be one the bundle prohibits."""
    category = ctx.certificate.end_use.category
    if category not in ctx.bundle.prohibited_end_uses:
        return []
    return [Finding("end_use.category", f"{category.value} is a prohibited end use")]


# --- DST: destinations ----------------------------------------------------------------


@check("destinations_not_barred", NoParams)
def destinations_not_barred(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Neither the final destination, nor a transit country, nor any party but the
    exporter may be in a barred country; each offending field is its own finding."""
    c = ctx.certificate
    places: list[tuple[str, str]] = [
        ("final_destination_country", c.final_destination_country),
        ("importer.country_code", c.importer.country_code),
    ]
    if c.transaction is not None:  # goods may not pass through a barred country either
        places.extend(
            (f"transaction.transit_countries[{i}]", code)
            for i, code in enumerate(c.transaction.transit_countries)
        )
    if c.consignee is not None:
        places.append(("consignee.country_code", c.consignee.country_code))
    places.extend(
        (f"intermediaries[{i}].party.country_code", m.party.country_code)
        for i, m in enumerate(c.intermediaries)
    )
    places.append(("end_user.country_code", c.end_user.country_code))
    barred = set(ctx.bundle.barred_destinations)
    return [
        Finding(path, f"{code} is a barred destination") for path, code in places if code in barred
    ]


@check("parties_in_destination", NoParams)
def parties_in_destination(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Importer and end user are expected in the final destination country; a party
    elsewhere needs a person to look at why."""
    c = ctx.certificate
    return [
        Finding(path, f"{code} differs from the final destination {c.final_destination_country}")
        for path, code in (
            ("end_user.country_code", c.end_user.country_code),
            ("importer.country_code", c.importer.country_code),
        )
        if code != c.final_destination_country
    ]


@check("route_avoids_hubs", NoParams)
def route_avoids_hubs(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A known transshipment hub on the route (transit country, consignee or
    intermediary) is a finding."""
    c = ctx.certificate
    places: list[tuple[str, str]] = []
    if c.transaction is not None:
        places.extend(
            (f"transaction.transit_countries[{i}]", code)
            for i, code in enumerate(c.transaction.transit_countries)
        )
    if c.consignee is not None:
        places.append(("consignee.country_code", c.consignee.country_code))
    places.extend(
        (f"intermediaries[{i}].party.country_code", m.party.country_code)
        for i, m in enumerate(c.intermediaries)
    )
    hubs = set(ctx.bundle.transshipment_hubs)
    return [
        Finding(path, f"{code} is a known transshipment hub")
        for path, code in places
        if code in hubs
    ]


@check("destination_not_hub", NoParams)
def destination_not_hub(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A final destination in a known transshipment hub: goods declared to stay there
    are often sent on, so a person checks, even when every party is in that country."""
    code = ctx.certificate.final_destination_country
    if code not in ctx.bundle.transshipment_hubs:
        return []
    return [Finding("final_destination_country", f"{code} is a known transshipment hub")]


# --- PTY / LIC: parties and licences --------------------------------------------------


@check("end_user_licensed", NoParams)
def end_user_licensed(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The end user must be a licensed importer, matched by registration scheme and value."""
    if ctx.licensed_importer is not None:
        return []
    end_user = ctx.certificate.end_user
    registrations = ", ".join(_registrations(end_user)) or "no registrations"
    return [
        Finding(
            "end_user.registrations",
            f"{end_user.legal_name!r} ({registrations}) is not a licensed importer",
        )
    ]


def _screening(ctx: RuleContext, outcome: RuleOutcome) -> list[Finding]:
    return [
        Finding(
            m.field,
            f"{m.screened_name!r} matches {m.matched_name!r} (entry {m.entry_id} of "
            f"{m.list_id}, {m.list_kind.value} list, {m.source}, listed "
            f"{m.listed_on.isoformat()}) with score {m.score:.3f}; compared as "
            f"{m.screened_form!r} and {m.matched_form!r}"
            + (f", held below the hit score: {m.basis}" if m.held else ""),
        )
        for m in ctx.screening_matches
        if m.outcome is outcome
    ]


@check("screening_hits", NoParams)
def screening_hits(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A party, parent or 50 %+ owner matching a control-list entry at the hit score."""
    return _screening(ctx, RuleOutcome.REJECT)


@check("screening_near_matches", NoParams)
def screening_near_matches(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A watch-list match, or any match in the grey zone below the hit score."""
    return _screening(ctx, RuleOutcome.REFER)


@check("licence_in_force", NoParams)
def licence_in_force(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The matched importer's licence must be active and in force on now's UTC date."""
    licensee = ctx.licensed_importer
    today = ctx.now.date()
    if licensee is None:
        return []
    findings = []
    if licensee.status != "ACTIVE":
        findings.append(
            Finding(
                "end_user.registrations",
                f"licence {licensee.licence_number} is {licensee.status.lower()}",
            )
        )
    if not licensee.in_force(today):
        findings.append(
            Finding(
                "end_user.registrations",
                f"licence {licensee.licence_number} is valid from "
                f"{licensee.valid_from.isoformat()} to {licensee.valid_until.isoformat()}, "
                f"not on {today.isoformat()}",
            )
        )
    return findings


@check("licence_covers_items", NoParams)
def licence_covers_items(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Every controlled item must fall under a control code the licence lists."""
    licensee = ctx.licensed_importer
    if licensee is None:
        return []
    findings = []
    for i, item in enumerate(ctx.certificate.items):
        codes = {e.control_code for e in ctx.bundle.controlled_items if e.covers(item)}
        if codes and codes.isdisjoint(licensee.control_codes):
            findings.append(
                Finding(
                    f"items[{i}]",
                    f"{_describe(item)} is controlled under {', '.join(sorted(codes))}; licence "
                    f"{licensee.licence_number} covers {', '.join(licensee.control_codes)}",
                )
            )
    return findings


# --- QTY: quantities -----------------------------------------------------------------


@check("quantity_within_quota", NoParams)
def quantity_within_quota(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The quantity asked under each quota-kept control code of the end user's licence may
    not exceed the balance left (`ctx.ledger`; the whole quota when the ledger has
    recorded nothing). Units that cannot be compared make the rule unavailable (REFER)."""
    licensee = ctx.licensed_importer
    if licensee is None or not licensee.quotas:
        return []
    try:
        asked = quota.demand(ctx.bundle, licensee, ctx.certificate.items)
    except quota.QuotaUnitError as exc:
        raise RuleUnavailable(str(exc)) from exc
    findings = []
    for code, amount in asked.items():
        kept = licensee.quota_for(code)
        assert kept is not None  # demand() counts only quota-kept codes
        left = ctx.ledger.remaining(licensee.licence_number, code)
        balance = kept.quantity if left is None else left
        if amount > balance:
            findings.append(
                Finding(
                    "items",
                    f"{format(amount, 'f')} {kept.unit} under {code} exceeds the "
                    f"{format(balance, 'f')} {kept.unit} left of licence "
                    f"{licensee.licence_number}'s quota of {format(kept.quantity, 'f')} "
                    f"{kept.unit}",
                )
            )
    return findings


# --- ITM: items -----------------------------------------------------------------------


class ElementsParams(BaseModel):
    """Chemical symbols a rule looks for, and the instrument that names them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    elements: tuple[ElementSymbol, ...] = Field(min_length=1)
    instrument: str = Field(min_length=1)


@check("items_contain_elements", ElementsParams)
def items_contain_elements(ctx: RuleContext, params: ElementsParams) -> list[Finding]:
    """Each item that contains one of `params.elements` is a finding."""
    wanted = set(params.elements)
    return [
        Finding(
            f"items[{i}].elements",
            f"{', '.join(sorted(wanted & set(item.elements)))} "
            f"is controlled under {params.instrument}",
        )
        for i, item in enumerate(ctx.certificate.items)
        if wanted & set(item.elements)
    ]


def _describe(item: Item) -> str:
    return f"{item.hs_code} {item.form.value} ({', '.join(item.elements) or 'no elements'})"


def _inconsistent(ctx: RuleContext, item: Item) -> bool:
    """Controlled elements under a controlled heading, in a form no entry of it lists."""
    controlled = ctx.bundle.controlled_items
    return not any(e.covers(item) for e in controlled) and any(
        e.same_heading(item) and not set(item.elements).isdisjoint(e.elements) for e in controlled
    )


def _undecided(ctx: RuleContext, item: Item) -> list[ControlledItem]:
    """The controlled entries under an item's too coarse HS code that share an element
    with it, when no entry covers it: whether it is controlled depends on a subheading
    the certificate does not give (8505 holds the controlled 8505.11 and the
    uncontrolled 8505.19)."""
    controlled = ctx.bundle.controlled_items
    if any(e.covers(item) for e in controlled):
        return []
    return [
        e
        for e in controlled
        if quota.finer(e, item) and not set(item.elements).isdisjoint(e.elements)
    ]


def _classified_elsewhere(ctx: RuleContext) -> bool:
    """Whether a rule of the bundle in effect now runs `items_classified`."""
    return any(r.check == "items_classified" and r.in_effect(ctx.now) for r in ctx.bundle.rules)


@check("items_controlled", NoParams)
def items_controlled(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Each item must match a controlled-list entry (HS code, form and element); items
    whose form merely contradicts their heading are left to `items_consistent`, and
    items whose HS code is too coarse to decide to `items_classified` when the bundle
    runs it (else they are reported here, so they never pass by omission)."""
    controlled = ctx.bundle.controlled_items
    skip_undecided = _classified_elsewhere(ctx)
    return [
        Finding(f"items[{i}]", f"{_describe(item)} is not on the controlled list")
        for i, item in enumerate(ctx.certificate.items)
        if not any(entry.covers(item) for entry in controlled)
        and not _inconsistent(ctx, item)
        and not (skip_undecided and _undecided(ctx, item))
    ]


@check("items_classified", NoParams)
def items_classified(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """An item whose HS code is coarser than the controlled-list entries under it (a
    4-digit heading where the list reads 6-digit subheadings) cannot be said to need or
    not need a licence; its quantity still counts against the quota (`quota.demand`)."""
    findings = []
    for i, item in enumerate(ctx.certificate.items):
        entries = _undecided(ctx, item)
        if not entries:
            continue
        listed = ", ".join(sorted({f"{e.hs_code} ({e.control_code})" for e in entries}))
        findings.append(
            Finding(
                f"items[{i}].hs_code",
                f"{_describe(item)}: HS {item.hs_code} does not say whether the item is "
                f"controlled; the controlled list holds {listed} under it",
            )
        )
    return findings


@check("items_consistent", NoParams)
def items_consistent(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """An item with controlled elements under a controlled HS heading must be in a form
    that heading lists: a magnet heading declared as an oxide is a misdescription."""
    return [
        Finding(
            f"items[{i}].form",
            f"{_describe(item)}: the form {item.form.value} does not match HS {item.hs_code}",
        )
        for i, item in enumerate(ctx.certificate.items)
        if _inconsistent(ctx, item)
    ]


# --- EUS: end-use statements ----------------------------------------------------------


def _phrases_in(text: str, phrases: Sequence[str]) -> list[str]:
    """The phrases that occur in `text` as whole words (plurals included), compared
    after case folding: "missiles" matches "missile", "Stockholm" does not match "stock"."""
    folded = normalize_name(text)
    found = []
    for phrase in phrases:
        words = r"\s+".join(re.escape(w) for w in normalize_name(phrase).split())
        if re.search(rf"(?<![\w-]){words}(?:s|es)?(?![\w-])", folded):
            found.append(phrase)
    return found


@check("end_use_statement_clean", NoParams)
def end_use_statement_clean(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """The end-use statement may not mention a phrase the bundle screens for."""
    hits = _phrases_in(ctx.certificate.end_use.statement, ctx.bundle.prohibited_end_use_phrases)
    if not hits:
        return []
    return [Finding("end_use.statement", f"mentions {', '.join(repr(h) for h in hits)}")]


class VagueEndUseParams(BaseModel):
    """What makes an end use too vague to judge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    categories: tuple[EndUseCategory, ...] = ()
    phrases: tuple[str, ...] = ()
    min_words: int = Field(default=0, ge=0)


@check("end_use_specific", VagueEndUseParams)
def end_use_specific(ctx: RuleContext, params: VagueEndUseParams) -> list[Finding]:
    """The end use must say what the goods become: not trading, stock or resale."""
    end_use = ctx.certificate.end_use
    findings = []
    if end_use.category in params.categories:
        findings.append(Finding("end_use.category", f"{end_use.category.value} names no end use"))
    hits = _phrases_in(end_use.statement, params.phrases)
    if hits:
        findings.append(
            Finding("end_use.statement", f"says only {', '.join(repr(h) for h in hits)}")
        )
    elif len(end_use.statement.split()) < params.min_words:
        findings.append(
            Finding(
                "end_use.statement",
                f"has {len(end_use.statement.split())} words; at least {params.min_words} "
                "are needed to say what the goods are used for",
            )
        )
    return findings


# --- RF: red flags --------------------------------------------------------------------

_PO_BOX = re.compile(r"\b(p\.?\s*o\.?\s*box|post\s+office\s+box|postfach)\b", re.IGNORECASE)


@check("payment_not_cash", NoParams)
def payment_not_cash(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """Cash payment for controlled goods is a red flag."""
    t = ctx.certificate.transaction
    if t is None or t.payment_method is not PaymentMethod.CASH:
        return []
    return [Finding("transaction.payment_method", "the buyer pays in cash")]


@check("consignee_not_forwarder", NoParams)
def consignee_not_forwarder(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A freight forwarder named as the final consignee hides who receives the goods."""
    c = ctx.certificate
    if c.consignee is None:
        return []
    consignee = normalize_name(c.consignee.legal_name)
    return [
        Finding("consignee.legal_name", f"{c.consignee.legal_name!r} is the freight forwarder")
        for m in c.intermediaries
        if m.role is IntermediaryRole.FREIGHT_FORWARDER
        and normalize_name(m.party.legal_name) == consignee
    ]


@check("street_address_given", NoParams)
def street_address_given(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """End user and consignee need a street address, not only a post-office box."""
    c = ctx.certificate
    findings = []
    for path, party in (("end_user", c.end_user), ("consignee", c.consignee)):
        if party is None or party.address is None or not party.address.lines:
            continue
        if all(_PO_BOX.search(line) for line in party.address.lines):
            findings.append(Finding(f"{path}.address.lines", "gives only a post-office box"))
    return findings


@check("support_accepted", NoParams)
def support_accepted(ctx: RuleContext, params: NoParams) -> list[Finding]:
    """A buyer who declines installation or training may not be the real user."""
    t = ctx.certificate.transaction
    if t is None:
        return []
    findings = []
    if t.installation_declined:
        findings.append(Finding("transaction.installation_declined", "installation declined"))
    if t.training_declined:
        findings.append(Finding("transaction.training_declined", "training declined"))
    return findings


class RoutingParams(BaseModel):
    """How many transit countries a direct shipment plausibly passes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_transit_countries: int = Field(ge=0)


@check("routing_direct", RoutingParams)
def routing_direct(ctx: RuleContext, params: RoutingParams) -> list[Finding]:
    """More transit countries than a direct route needs, or a route that returns to a
    country it passed, is unusual routing."""
    t = ctx.certificate.transaction
    if t is None:
        return []
    route = t.transit_countries
    findings = []
    if len(route) > params.max_transit_countries:
        findings.append(
            Finding(
                "transaction.transit_countries",
                f"{len(route)} transit countries ({', '.join(route)}); at most "
                f"{params.max_transit_countries} expected",
            )
        )
    if len(set(route)) < len(route):
        findings.append(
            Finding("transaction.transit_countries", f"the route {'-'.join(route)} doubles back")
        )
    return findings


# --- custom rules ---------------------------------------------------------------------


class CelParams(BaseModel):
    """A custom rule: a CEL expression over `euc` and `now` that is true when the rule
    fires, compiled once when the bundle loads; `field` is the path its reason cites."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expression: str = Field(min_length=1)
    field: str = ""
    detail: str = "the custom rule's condition holds"

    _compiled: CelRule = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self) -> CelParams:
        try:
            self._compiled = CelRule("custom", self.expression)
        except CelCompileError as exc:
            where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
            raise ValueError(f"expression does not compile: {where}{exc.detail}") from None
        return self


@check("cel", CelParams)
def cel_expression(ctx: RuleContext, params: CelParams) -> list[Finding]:
    """Fires when the expression is true; raises RuleUnavailable when it errors or runs
    out of bounds, so the rule refers rather than passing silently."""
    result = params._compiled.evaluate(ctx.cel_activation)
    if result.refer:
        reason = "timed out" if result.status is CelStatus.TIMEOUT else "failed"
        raise RuleUnavailable(f"the expression {reason}: {result.detail}")
    return [Finding(params.field, params.detail)] if result.status is CelStatus.FIRED else []
