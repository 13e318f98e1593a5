"""The policy bundle (schema version 0): everything a decision depends on besides the EUC.

A bundle is written as YAML (or JSON, a subset) and validated into a frozen `Bundle`;
holding one means it passed. Its identity is `digest`, the hex SHA-256 of `canonical()`
(canonical JSON of the validated content), so formatting, key order and comments never
change it, and parsing the canonical form gives back the same digest: that is what the
store keeps for replay. Rule checks and their parameter models come from
`eucgate.core.rules`; an unknown check or bad parameters fail at load, not at decision.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from eucgate_client import strictjson
from pydantic import (
    AfterValidator,
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
from eucgate.core.checks import CHECKS
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
    MIN_RSA_BITS,
    RegistrationSource,
    RoleTrust,
    TrustPolicy,
    ca_profile_problems,
    load_anchor_pems,
    load_crl_pem,
)
from eucgate.core.policyfields import IsoDate, Text
from eucgate.core.screening import (
    Screener,
    ScreeningList,
    ScreeningThresholds,
    parse_screening_list,
)
from eucgate.errors import BundleError

BUNDLE_VERSION = 1
ROLES = ("end_user", "consignee", "endorser")
Role = Literal["end_user", "consignee", "endorser"]
# Placeholders a rule message may use; anything else is refused at load.
MESSAGE_FIELDS = frozenset({"field", "detail"})

_RULE_ID_RE = re.compile(r"(?P<family>[A-Z]{2,3})-[0-9]{3}")
_CONTROL_CODE_RE = re.compile(r"[0-9][A-E][0-9]{3}[a-z0-9.]*")


def _anchor_certificates(pem: str) -> list[x509.Certificate]:
    certs = load_anchor_pems([pem])
    if not certs:
        raise ValueError("holds no PEM certificate")
    for cert in certs:
        try:
            key = cert.public_key()
        except UnsupportedAlgorithm as exc:
            raise ValueError(f"anchor key is not supported: {exc}") from None
        # The chain builder refuses Ed25519 issuers, so an anchor must be ECDSA or RSA.
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"anchor {cert.subject.rfc4514_string()} has an RSA key of {key.key_size} "
                f"bits; at least {MIN_RSA_BITS} are required"
            )
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"anchor {cert.subject.rfc4514_string()} is not an ECDSA or RSA key")
        # The chain builder would refuse every signer under such an anchor, with an OID
        # message at each submission; refuse it here, once, in words.
        problems = ca_profile_problems(cert)
        if problems:
            raise ValueError(
                f"anchor {cert.subject.rfc4514_string()!r} cannot act as a CA: "
                f"{'; '.join(problems)}"
            )
    return certs


def _valid_anchor_pem(pem: str) -> str:
    try:
        _anchor_certificates(pem)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("trust anchor 0: ")) from None
    return pem


AnchorPem = Annotated[StrictStr, AfterValidator(_valid_anchor_pem)]


def _valid_crl_pem(pem: str) -> str:
    load_crl_pem(pem)
    return pem


CrlPem = Annotated[StrictStr, AfterValidator(_valid_crl_pem)]


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
    def _known_check(cls, value: str) -> str:
        if value not in CHECKS:
            raise ValueError(f"unknown check {value!r}; known checks: {', '.join(sorted(CHECKS))}")
        return value

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("check")
        if name is None:  # the check itself was refused; that error is reported
            return value
        try:
            parsed = CHECKS[name].params.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_loc_text(tuple(e['loc'])) or '(params)'}: {e['msg']}"
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
    def _parse_params(self) -> Rule:
        self._params = CHECKS[self.check].params.model_validate(self.params)
        return self

    def in_effect(self, now: datetime) -> bool:
        """Whether the rule runs for a decision made at `now` (an aware datetime)."""
        day = now.astimezone(UTC).date()
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

    def matches(self, party: Party) -> bool:
        """True when the party carries one of this importer's registrations (scheme and value)."""
        ours = {(r.scheme, r.value) for r in self.registrations}
        return any((r.scheme, r.value) in ours for r in party.registrations)


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
    def _identify(self) -> Bundle:
        self._anchors = {
            role: tuple(c for pem in self.trust_anchors[role] for c in _anchor_certificates(pem))
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
        self._digest = sha256_hex(self.canonical())
        return self

    @property
    def screener(self) -> Screener:
        """The screening lists indexed under the bundle's thresholds, built at load."""
        return self._screener

    @property
    def digest(self) -> str:
        """Lowercase hex SHA-256 of `canonical()`."""
        return self._digest

    @property
    def anchors(self) -> Mapping[str, Sequence[x509.Certificate]]:
        """Trust anchors per signer role, as `core.pki.verify_signatures` takes them."""
        return dict(self._anchors)

    @property
    def trust(self) -> TrustPolicy:
        """Anchors, CRLs and signature options per role, as `core.pki` takes them."""
        assert self._trust is not None  # set by the validator of every constructed Bundle
        return self._trust

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
        return _validate(data, "<trust anchors>", {})

    def licensed_importer_for(self, party: Party) -> LicensedImporter | None:
        """The first licensed importer sharing a registration (scheme and value) with `party`."""
        return next((li for li in self.licensed_importers if li.matches(party)), None)


# Reads a file a bundle names (`{file: name}`) and returns its bytes; raises OSError.
# The edge supplies it (eucgate.policyfiles); the core itself never opens a file.
FileReader = Callable[[str], bytes]


def parse_bundle(text: str, source: str, *, files: FileReader | None = None) -> Bundle:
    """Validate bundle text; `source` names it in errors ("file:line: path: message").

    JSON text (such as `canonical()`) is read as JSON, anything else as YAML. Screening
    lists, trust anchors and CRLs given as `{file: name}` are read through `files`
    (without it, naming a file is an error). Raises BundleError
    for text that does not parse, duplicate keys, YAML anchors/aliases, a list file that
    cannot be read or is invalid, and any schema violation (an unknown check, invalid
    check parameters or PEM included).
    """
    data = _read_json(text)
    if data is None:
        data, lines = _read_yaml(text, source)
    else:
        lines = _json_lines(text)
    if not isinstance(data, dict):
        raise BundleError(f"{source}:1: the bundle must be a mapping at the top level")
    inline_list_files(data, source, files, lines)
    inline_pem_files(data, source, files, lines)
    return _validate(data, source, lines)


def inline_list_files(
    data: dict[str, Any], source: str, files: FileReader | None, lines: _Lines | None = None
) -> None:
    """Replace each `{file: name}` of `data["screening_lists"]` by the list it names,
    read through `files`: a bundle written elsewhere then stands on its own.
    Raises BundleError for a file that cannot be read or is not a valid list."""
    lines = lines or {}
    lists = data.get("screening_lists")
    if not isinstance(lists, list):
        return
    for i, item in enumerate(lists):
        if not (isinstance(item, dict) and set(item) == {"file"}):
            continue
        where = f"{source}:{_line_of(('screening_lists', i), lines)}: screening_lists[{i}]"
        if files is None:
            raise BundleError(f"{where}: list files can be named only in a bundle file")
        name = str(item["file"])
        try:
            text = files(name).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"{where}: cannot read {name}: {exc}") from None
        lists[i] = parse_screening_list(text, name).model_dump(mode="json")


def inline_pem_files(
    data: dict[str, Any], source: str, files: FileReader | None, lines: _Lines | None = None
) -> None:
    """Replace each `{file: name}` under `data["trust_anchors"][role]` and
    `data["crls"][role]` by the PEM text of the file it names, read through `files`
    (a DER certificate or CRL is turned into PEM): the digest then covers
    the certificates and CRLs themselves, and the signed bundle needs no other file.
    Raises BundleError naming the line for a file that cannot be read or holds no
    certificate (or CRL)."""
    lines = lines or {}
    for section, kind in (("trust_anchors", "certificate"), ("crls", "CRL")):
        roles = data.get(section)
        if not isinstance(roles, dict):
            continue
        for role, entries in roles.items():
            if not isinstance(entries, list):
                continue
            for i, item in enumerate(entries):
                if not (isinstance(item, dict) and set(item) == {"file"}):
                    continue
                loc = (section, str(role), i)
                where = f"{source}:{_line_of(loc, lines)}: {_loc_text(loc)}"
                if files is None:
                    raise BundleError(
                        f"{where}: PEM files can be named only in a bundle file", field=section
                    )
                name = str(item["file"])
                try:
                    raw = files(name)
                except OSError as exc:
                    raise BundleError(
                        f"{where}: cannot read {name}: {exc.strerror or exc}", field=section
                    ) from None
                try:
                    entries[i] = _pem_text(raw, kind)
                except ValueError as exc:
                    raise BundleError(f"{where}: {name}: {exc}", field=section) from None


def _pem_text(raw: bytes, kind: str) -> str:
    """PEM text of a PEM or DER file holding a certificate (or CRL); ValueError if not."""
    if b"-----BEGIN" in raw:
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("not PEM text: it holds bytes that are not ASCII") from None
    try:
        if kind == "CRL":
            pem = x509.load_der_x509_crl(raw).public_bytes(serialization.Encoding.PEM)
        else:
            pem = x509.load_der_x509_certificate(raw).public_bytes(serialization.Encoding.PEM)
    except ValueError:
        raise ValueError(f"holds no PEM or DER {kind}") from None
    return pem.decode("ascii")


_Lines = dict[tuple[int | str, ...], int]


def _read_json(text: str) -> Any:
    """The document if `text` is a JSON object without duplicate keys, else None.

    JSON is not left to the YAML reader because YAML folds some characters JSON keeps
    (U+0085, U+2028 in strings), which would change the digest of a stored bundle.
    Anything refused here is read again as YAML, which reports the error with a line.
    """
    if not text.lstrip().startswith("{"):
        return None
    try:
        return strictjson.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_lines(text: str) -> _Lines:
    # Best effort: JSON that YAML also reads gets line numbers in its errors.
    try:
        return _read_yaml(text, "")[1]
    except BundleError:
        return {}


def _read_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    try:
        # The reader refuses control characters as it is built: before any mark exists.
        loader = _LineLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise BundleError(
            f"{source}:{line}: not valid YAML: the character U+{exc.character:04X} is not "
            "allowed in YAML text"
            if isinstance(exc.character, int)
            else f"{source}:{line}: not valid YAML: {exc.reason}"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise BundleError(f"{source}:1: the bundle is empty")
        lines: _Lines = {}
        _record_lines(node, (), lines, set(), source)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise BundleError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise BundleError(f"{source}:1: not valid YAML: {exc}") from None
    except RecursionError:
        raise BundleError(f"{source}:1: the bundle is nested too deeply") from None
    finally:
        loader.dispose()


class _LineLoader(yaml.SafeLoader):
    """SafeLoader; `parse_bundle` walks its node tree to learn each path's line."""


def _record_lines(
    node: yaml.Node,
    path: tuple[int | str, ...],
    lines: _Lines,
    seen: set[int],
    source: str,
) -> None:
    # A node met twice is an alias: refused, so that a bundle is plain data and a
    # nested-alias "billion laughs" cannot blow up validation.
    if id(node) in seen:
        raise BundleError(
            f"{source}:{node.start_mark.line + 1}: {_loc_text(path)}: "
            "YAML anchors and aliases are not allowed in a bundle"
        )
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = (*path, key)
            if key in keys:
                raise BundleError(
                    f"{source}:{key_node.start_mark.line + 1}: {_loc_text(here)}: "
                    "the key appears twice"
                )
            keys.add(key)
            lines[here] = key_node.start_mark.line + 1
            _record_lines(value_node, here, lines, seen, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, i), lines, seen, source)


def _validate(
    data: dict[str, Any], source: str, lines: Mapping[tuple[int | str, ...], int]
) -> Bundle:
    try:
        return Bundle.model_validate(data)
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
            line = _line_of(loc, lines)
            msg = error["msg"].removeprefix("Value error, ")
            problems.append((line, _loc_text(loc) or "(bundle)", msg))
        text = "\n".join(f"{source}:{line}: {path}: {msg}" for line, path, msg in problems)
        raise BundleError(text, field=problems[0][1]) from None


def _line_of(loc: tuple[int | str, ...], lines: Mapping[tuple[int | str, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return 1


def _loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _hs_digits(code: str) -> str:
    return code.replace(".", "")
