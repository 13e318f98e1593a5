"""The policy bundle's schema: everything a decision depends on besides the EUC.

A bundle is validated into a frozen `Bundle`; holding one means it passed. Its identity
is `digest`, the hex SHA-256 of `canonical()` (canonical JSON of the validated
content), so formatting, key order and comments never change it, and parsing the
canonical form gives back the same digest: that is what the store keeps for replay.
Rule checks and their parameter models come from the check registry the caller passes
to `validate_bundle` (`core.bundleload` passes `core.checks.CHECKS`), so this schema
never imports the registry or the rules: an unknown check or bad parameters still fail
at load, not at decision. Reading bundle text (YAML/JSON with lines, files inlined) is
`core.bundleload`; trust anchors and CRLs as PEM are `core.trustanchors`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Protocol

from cryptography import x509
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from eucgate.core.bundletests import BundleTests
from eucgate.core.canonical import canonical_json, sha256_hex
from eucgate.core.decision import Family, RuleOutcome
from eucgate.core.model import (
    CountryCode,
    ElementSymbol,
    EndUseCategory,
    HsCode,
    Item,
    ItemForm,
    NonNegativeDecimal,
    Party,
    Unit,
)
from eucgate.core.pki import (
    RegistrationSource,
    RoleTrust,
    TrustPolicy,
    load_crl_pem,
)
from eucgate.core.policyfields import IsoDate, Text
from eucgate.core.private import private
from eucgate.core.screening import (
    Screener,
    ScreeningList,
    ScreeningThresholds,
)
from eucgate.core.trustanchors import AnchorPem, CrlPem, anchor_certificates
from eucgate.errors import BundleError

BUNDLE_VERSION = 1
ROLES = ("end_user", "consignee", "endorser")
Role = Literal["end_user", "consignee", "endorser"]
# Placeholders a rule message may use; anything else is refused at load.
MESSAGE_FIELDS = frozenset({"field", "detail"})

_RULE_ID_RE = re.compile(r"(?P<family>[A-Z]{2,3})-[0-9]{3}")
_CONTROL_CODE_RE = re.compile(r"[0-9][A-E][0-9]{3}[a-z0-9.]*")


class CheckSpec(Protocol):
    """What the schema needs of a registered check: the model of its parameters."""

    @property
    def params(self) -> type[BaseModel]: ...


# Check name -> its spec; `core.checks.CHECKS` is the one the service passes.
CheckRegistry = Mapping[str, CheckSpec]


def _registry(info: ValidationInfo) -> CheckRegistry:
    context = info.context
    if not isinstance(context, dict) or "checks" not in context:
        raise ValueError("no check registry: validate bundles through validate_bundle()")
    checks: CheckRegistry = context["checks"]
    return checks


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Parameters(_Frozen):
    """Numbers the rules share. `max_signing_skew_seconds` is how far signatory.signed_at
    (and issued_at) may lie after the service clock before the EUC counts as dated in the
    future."""

    max_validity_days: StrictInt = Field(gt=0)
    max_signing_skew_seconds: StrictInt = Field(ge=0)
    # How long before the receive time (`now`) a declared signing time is believed: an
    # older one is not used, and certificates are checked at `now` instead.
    max_signing_age_seconds: StrictInt = Field(default=30 * 86400, ge=0)


class SignaturePolicy(_Frozen):
    """How signatures are judged beyond the trust anchors (see `core.pki`).

    `rsa_pkcs1v15`: accept RSASSA-PKCS1-v1_5 (SHA-256) besides RSA-PSS.
    `require_crls`: every CA in a signer's chain must have a CRL in the bundle for the
    role; without one the signer's revocation status is unknown (a rule refers it).
    `registration_source`: where signer certificates carry registration numbers.
    """

    rsa_pkcs1v15: bool = False
    require_crls: bool = True
    registration_source: RegistrationSource = "subject_serial_number"


class Rule(_Frozen):
    """One rule: a registered check plus the id, family, outcome and message it reports.

    `effective_from` and `effective_until` bound the calendar days (UTC, both inclusive)
    on which the rule runs, judged by the `now` given to decide(): policy that switches
    on or off at a date is a bundle change made in advance, not a code change.
    """

    id: StrictStr
    family: Family
    outcome: RuleOutcome
    check: StrictStr
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    message: Text
    effective_from: IsoDate | None = None
    effective_until: IsoDate | None = None

    _params: BaseModel | None = PrivateAttr(default=None)

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not _RULE_ID_RE.fullmatch(value):
            raise ValueError("must be FAMILY-NNN, e.g. 'SIG-001'")
        if value.startswith(f"{Family.ENG.value}-"):
            raise ValueError("ENG rule ids are reserved for the engine")
        return value

    @field_validator("family")
    @classmethod
    def _family_matches_id(cls, value: Family, info: ValidationInfo) -> Family:
        if value is Family.ENG:
            raise ValueError("the ENG family is reserved for the engine")
        rule_id = info.data.get("id")
        if rule_id is not None and not rule_id.startswith(f"{value.value}-"):
            raise ValueError(f"rule {rule_id} must be of family {rule_id.split('-')[0]}")
        return value

    @field_validator("check")
    @classmethod
    def _known_check(cls, value: str, info: ValidationInfo) -> str:
        checks = _registry(info)
        if value not in checks:
            raise ValueError(f"unknown check {value!r}; known checks: {', '.join(sorted(checks))}")
        return value

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("check")
        if name is None:  # the check itself was refused; that error is reported
            return value
        try:
            parsed = _registry(info)[name].params.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{loc_text(tuple(e['loc'])) or '(params)'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ValueError(f"invalid parameters for check {name!r}: {problems}") from None
        # Normalised (defaults filled in), so the digest covers what the check will see.
        return dict(parsed.model_dump(mode="json"))

    @field_validator("message")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        template = string.Template(value)
        if not template.is_valid():
            raise ValueError("is not a valid template (write '$$' for a literal '$')")
        unknown = set(template.get_identifiers()) - MESSAGE_FIELDS
        if unknown:
            raise ValueError(
                f"uses unknown placeholder(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join('$' + f for f in sorted(MESSAGE_FIELDS))}"
            )
        return value

    @field_validator("effective_until")
    @classmethod
    def _window_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("effective_from")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before effective_from")
        return value

    @model_validator(mode="after")
    def _parse_params(self, info: ValidationInfo) -> Rule:
        self._params = _registry(info)[self.check].params.model_validate(self.params)
        return self

    def in_effect(self, now: datetime) -> bool:
        """Whether the rule runs for a decision made at `now` (an aware datetime)."""
        return self.in_effect_on(now.astimezone(UTC).date())

    def in_effect_on(self, day: date) -> bool:
        """Whether the rule runs on `day` (UTC): its effective dates are whole days."""
        return (self.effective_from is None or self.effective_from <= day) and (
            self.effective_until is None or day <= self.effective_until
        )

    @property
    def parsed_params(self) -> BaseModel:
        """The params as the check's own model (validated at load)."""
        assert self._params is not None  # set by the validator of every constructed Rule
        return self._params

    def render(self, field: str, detail: str) -> str:
        """The reason message for one finding."""
        return string.Template(self.message).substitute(field=field or "envelope", detail=detail)


class ControlledItem(_Frozen):
    """A controlled good: an HS code (or heading prefix) with the elements and forms it
    covers under a dual-use control code."""

    hs_code: HsCode
    elements: tuple[ElementSymbol, ...] = Field(min_length=1)
    forms: tuple[ItemForm, ...] = Field(min_length=1)
    control_code: StrictStr

    @field_validator("forms")
    @classmethod
    def _stated_forms(cls, value: tuple[ItemForm, ...]) -> tuple[ItemForm, ...]:
        if ItemForm.UNSPECIFIED in value:
            raise ValueError("UNSPECIFIED is not a form")
        return value

    @field_validator("control_code")
    @classmethod
    def _control_code(cls, value: str) -> str:
        if not _CONTROL_CODE_RE.fullmatch(value):
            raise ValueError("must be a control list code such as '1C902'")
        return value

    def covers(self, item: Item) -> bool:
        """Same HS code (or a subheading of it), a listed form, and a listed element."""
        return (
            self.same_heading(item)
            and item.form in self.forms
            and not set(item.elements).isdisjoint(self.elements)
        )

    def same_heading(self, item: Item) -> bool:
        """The item's HS code is this entry's code or a subheading of it."""
        return _hs_digits(item.hs_code).startswith(_hs_digits(self.hs_code))


class RegistrationRef(_Frozen):
    scheme: Text
    value: Text


class LicenceQuota(_Frozen):
    """How much a licence allows under one control code, in one unit (a decimal string
    in the file, never a float: 1250.5 must be written "1250.5")."""

    control_code: StrictStr
    quantity: NonNegativeDecimal
    unit: Unit

    @field_validator("quantity", mode="before")
    @classmethod
    def _no_float(cls, value: object) -> object:
        if isinstance(value, float):
            raise ValueError('must be a decimal string such as "1250.5", not a float')
        return value


class LicensedImporter(_Frozen):
    """An importer holding an export licence; dates are calendar days (UTC), inclusive.

    `quotas` (optional) caps the approved quantity per control code over the licence's
    life; approvals reserve against it in the store (see `eucgate.licences`).
    """

    legal_name: Text
    registrations: tuple[RegistrationRef, ...] = Field(min_length=1)
    licence_number: Text
    valid_from: IsoDate
    valid_until: IsoDate
    status: Literal["ACTIVE", "SUSPENDED"] = "ACTIVE"
    # The control codes (controlled_items[].control_code) the licence covers.
    control_codes: tuple[StrictStr, ...] = Field(min_length=1)
    quotas: tuple[LicenceQuota, ...] = ()

    @field_validator("quotas")
    @classmethod
    def _quotas_covered(
        cls, value: tuple[LicenceQuota, ...], info: ValidationInfo
    ) -> tuple[LicenceQuota, ...]:
        codes = info.data.get("control_codes") or ()
        seen: set[str] = set()
        for quota in value:
            if quota.control_code not in codes:
                raise ValueError(f"quota for {quota.control_code}, which the licence does not list")
            if quota.control_code in seen:
                raise ValueError(f"two quotas for {quota.control_code}")
            seen.add(quota.control_code)
        return value

    @model_serializer(mode="wrap")
    def _omit_no_quotas(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A licence without quotas dumps as it did before quotas existed, so the digest
        # of every bundle that keeps none stays what it was.
        data: dict[str, Any] = handler(self)
        if not self.quotas:
            data.pop("quotas", None)
        return data

    def quota_for(self, control_code: str) -> LicenceQuota | None:
        """The quota kept for `control_code`, or None."""
        return next((q for q in self.quotas if q.control_code == control_code), None)

    @field_validator("valid_until")
    @classmethod
    def _not_before_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("valid_from")
        if start is not None and value < start:
            raise ValueError("must not be before valid_from")
        return value

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on <= self.valid_until


class Bundle(_Frozen):
    """A validated policy bundle. `digest` identifies it; `anchors` are the parsed trust
    anchors per role, in the fixed role order (end_user, consignee, endorser)."""

    version: StrictInt
    name: Text
    description: StrictStr = ""
    parameters: Parameters
    rules: tuple[Rule, ...] = Field(min_length=1)
    controlled_items: tuple[ControlledItem, ...] = ()
    prohibited_end_uses: tuple[EndUseCategory, ...] = ()
    barred_destinations: tuple[CountryCode, ...] = ()
    transshipment_hubs: tuple[CountryCode, ...] = ()
    # Restricted, military end-user and watch lists, held inline: a bundle file may
    # name list files ({file: path}), which eucgate.policyfiles reads into it so the
    # digest covers every entry and replay needs nothing else.
    screening_lists: tuple[ScreeningList, ...] = ()
    screening: ScreeningThresholds = Field(default_factory=ScreeningThresholds)
    prohibited_end_use_phrases: tuple[Text, ...] = ()
    licensed_importers: tuple[LicensedImporter, ...] = ()
    # Anchors and CRLs are PEM text; a bundle file may name PEM or DER files instead
    # ({file: path}), inlined at load like list files. Each anchor must meet the CA
    # profile: the chain builder would refuse every signer under one that does not.
    trust_anchors: dict[Role, Annotated[tuple[AnchorPem, ...], Field(min_length=1)]] = Field(
        default_factory=dict
    )
    crls: dict[Role, tuple[CrlPem, ...]] = Field(default_factory=dict)
    signatures: SignaturePolicy = Field(default_factory=SignaturePolicy)
    tests: BundleTests | None = None

    _digest: str = PrivateAttr(default="")
    _screener: Screener = PrivateAttr()
    _anchors: dict[str, tuple[x509.Certificate, ...]] = PrivateAttr(default_factory=dict)
    _trust: TrustPolicy | None = PrivateAttr(default=None)
    _checks: CheckRegistry = PrivateAttr(default_factory=dict)
    _rule_params: tuple[tuple[Rule, BaseModel], ...] = PrivateAttr(default=())
    # The last UTC day rules_in_effect was asked for, and its answer.
    _in_effect: dict[date, tuple[tuple[Rule, BaseModel], ...]] = PrivateAttr(default_factory=dict)
    _rules_by_check: dict[str, tuple[Rule, ...]] = PrivateAttr(default_factory=dict)
    # (scheme, value) -> position of the first licensed importer registered under it.
    _importer_at: dict[tuple[str, str], int] = PrivateAttr(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _supported_version(cls, value: int) -> int:
        if value != BUNDLE_VERSION:
            raise ValueError(f"this service reads bundle version {BUNDLE_VERSION}, not {value}")
        return value

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: dict[str, int] = {}
        for i, rule in enumerate(value):
            if rule.id in seen:
                raise ValueError(
                    f"rule id {rule.id} is used by rules[{seen[rule.id]}] and rules[{i}]"
                )
            seen[rule.id] = i
        return value

    @field_validator("prohibited_end_uses")
    @classmethod
    def _stated_end_uses(cls, value: tuple[EndUseCategory, ...]) -> tuple[EndUseCategory, ...]:
        if EndUseCategory.UNSPECIFIED in value:
            raise ValueError("UNSPECIFIED is not an end use")
        return value

    @model_validator(mode="after")
    def _identify(self, info: ValidationInfo) -> Bundle:
        self._checks = _registry(info)  # kept for with_trust_anchors
        self._anchors = {
            role: tuple(c for pem in self.trust_anchors[role] for c in anchor_certificates(pem))
            for role in ROLES
            if role in self.trust_anchors
        }
        crls: dict[str, tuple[x509.CertificateRevocationList, ...]] = {
            role: tuple(load_crl_pem(pem) for pem in pems) for role, pems in self.crls.items()
        }
        self._trust = TrustPolicy(
            roles={
                role: RoleTrust(anchors=anchors, crls=crls.get(role, ()))
                for role, anchors in self._anchors.items()
            },
            allow_rsa_pkcs1v15=self.signatures.rsa_pkcs1v15,
            require_crls=self.signatures.require_crls,
            registration_source=self.signatures.registration_source,
        )
        self._screener = Screener(self.screening_lists, self.screening)
        self._rule_params = tuple((rule, rule.parsed_params) for rule in self.rules)
        for rule in self.rules:
            self._rules_by_check[rule.check] = (*self._rules_by_check.get(rule.check, ()), rule)
        for i, importer in enumerate(self.licensed_importers):
            for r in importer.registrations:
                self._importer_at.setdefault((r.scheme, r.value), i)
        self._digest = sha256_hex(self.canonical())
        return self

    def rules_in_effect(self, now: datetime) -> tuple[tuple[Rule, BaseModel], ...]:
        """The rules that run for a decision at `now`, in bundle order, each with its
        parsed parameters. Effective dates are whole UTC days, so the answer for the last
        day asked is kept: decisions come in time order, and testing every rule's dates
        on each cost about 3 % of decide(). Paired with the parameters at load, because
        reading a private attribute of a pydantic model costs microseconds."""
        day = now.astimezone(UTC).date()
        compiled = private(self)
        kept: dict[date, tuple[tuple[Rule, BaseModel], ...]] = compiled["_in_effect"]
        rules = kept.get(day)
        if rules is None:
            rules = tuple(
                (rule, params)
                for rule, params in compiled["_rule_params"]
                if rule.in_effect_on(day)
            )
            kept.clear()  # one day kept: a replay across years must not grow it
            kept[day] = rules
        return rules

    def runs(self, check: str, now: datetime) -> bool:
        """Whether a rule in effect at `now` runs `check`: checks that leave a case to
        another ask this on every decision."""
        by_check: dict[str, tuple[Rule, ...]] = private(self)["_rules_by_check"]
        return any(rule.in_effect(now) for rule in by_check.get(check, ()))

    @property
    def screener(self) -> Screener:
        """The screening lists indexed under the bundle's thresholds, built at load."""
        screener: Screener = private(self)["_screener"]
        return screener

    @property
    def digest(self) -> str:
        """Lowercase hex SHA-256 of `canonical()`."""
        digest: str = private(self)["_digest"]
        return digest

    @property
    def anchors(self) -> Mapping[str, Sequence[x509.Certificate]]:
        """Trust anchors per signer role, as `core.pki.verify_signatures` takes them."""
        return dict(self._anchors)

    @property
    def trust(self) -> TrustPolicy:
        """Anchors, CRLs and signature options per role, as `core.pki` takes them."""
        trust: TrustPolicy | None = private(self)["_trust"]
        assert trust is not None  # set by the validator of every constructed Bundle
        return trust

    def canonical(self) -> bytes:
        """Canonical JSON of the validated content: what the store keeps for replay."""
        return canonical_json(self.model_dump(mode="json"))

    def with_trust_anchors(
        self,
        role_to_pems: Mapping[str, Sequence[str]],
        crls: Mapping[str, Sequence[str]] | None = None,
    ) -> Bundle:
        """This bundle with its trust anchors (and, if given, CRLs) replaced; new digest.

        Raises BundleError for an unknown role, a PEM that is not an ECDSA or RSA
        certificate meeting the CA profile (`core.pki.ca_profile_problems`), or one
        that is not a CRL.
        """
        data = self.model_dump(mode="json")
        data["trust_anchors"] = {role: list(pems) for role, pems in role_to_pems.items()}
        if crls is not None:
            data["crls"] = {role: list(pems) for role, pems in crls.items()}
        return validate_bundle(data, "<trust anchors>", {}, self._checks)

    def licensed_importer_for(self, party: Party) -> LicensedImporter | None:
        """The first licensed importer sharing a registration (scheme and value) with `party`."""
        importer_at: dict[tuple[str, str], int] = private(self)["_importer_at"]
        found = [
            i
            for r in party.registrations
            if (i := importer_at.get((r.scheme, r.value))) is not None
        ]
        return self.licensed_importers[min(found)] if found else None


def _hs_digits(code: str) -> str:
    return code.replace(".", "")


def validate_bundle(
    data: dict[str, Any],
    source: str,
    lines: Mapping[tuple[int | str, ...], int],
    checks: CheckRegistry,
) -> Bundle:
    """A Bundle from parsed data, its rules checked against `checks`, or BundleError
    naming each problem's path and line ("source:line: path: message"; `lines` maps
    paths to lines, {} when unknown)."""
    try:
        return Bundle.model_validate(data, context={"checks": checks})
    except ValidationError as exc:
        problems = []
        errors = exc.errors(include_url=False)
        # An item refused inside a list that must not be empty (a bad trust anchor)
        # also leaves the list "too short"; the item's own error is the one that helps.
        inner = {tuple(e["loc"])[:n] for e in errors for n in range(len(e["loc"]))}
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "too_short" and loc in inner:
                continue
            line = line_of(loc, lines)
            msg = error["msg"].removeprefix("Value error, ")
            problems.append((line, loc_text(loc) or "(bundle)", msg))
        text = "\n".join(f"{source}:{line}: {path}: {msg}" for line, path, msg in problems)
        raise BundleError(text, field=problems[0][1]) from None


def line_of(loc: tuple[int | str, ...], lines: Mapping[tuple[int | str, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return 1


def loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out
