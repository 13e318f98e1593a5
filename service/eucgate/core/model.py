"""The end-user certificate as the decision core sees it: a strict, frozen pydantic model.

The model mirrors `eucgate.v1.EndUserCertificate` field for field (same names, same
nesting), so a validation error's location is the proto path the submitter wrote.
`certificate_from_payload` is the only way in from the wire: it decodes either payload
type, refuses anything malformed with `InvalidSubmission`, and never re-serialises the
signed bytes. Quantities and amounts are `Decimal`, never float.

Every repeated field and every text field is bounded (the MAX_* constants below, the
proto comments and docs/reason-codes.md say the same): the largest certificate accepted
still makes a decision record, receipt and audit-log entry that every read path can
return, and a request's work stays small. Text is bounded in UTF-8 bytes, as it
travels, and holds no control characters but tab, line feed and carriage return.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from eucgate_client import strictjson
from eucgate_client.v1 import certificate_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.unknown_fields import UnknownFieldSet
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from eucgate.core.eucjson import JsonReader, text_size
from eucgate.errors import MAX_FIELD_VIOLATIONS, FieldViolation, InvalidSubmission, fit_violations

PAYLOAD_TYPE_PROTO = "application/vnd.eucgate.euc.v1+protobuf"
PAYLOAD_TYPE_JSON = "application/vnd.eucgate.euc.v1+json"
PAYLOAD_TYPES = (PAYLOAD_TYPE_PROTO, PAYLOAD_TYPE_JSON)

# ISO 3166-1 alpha-2 officially assigned codes (249). Reserved and user-assigned codes
# ("XX", "ZZ", "EU", "UK") are refused: a destination must be a country.
_ISO_3166_ALPHA2_TEXT = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_3166_ALPHA2 = frozenset(_ISO_3166_ALPHA2_TEXT.split())

# The periodic table, so that "Xy" or "Dy " is refused as an element.
_ELEMENT_SYMBOLS_TEXT = """
    H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge
    As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm
    Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th
    Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
"""
ELEMENT_SYMBOLS = frozenset(_ELEMENT_SYMBOLS_TEXT.split())

_COUNTRY_RE = re.compile(r"[A-Z]{2}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_ELEMENT_RE = re.compile(r"[A-Z][a-z]?")
# Heading (4 digits) then up to three pairs, dotted or not: 2846, 2846.90, 85051110.
_HS_RE = re.compile(r"[0-9]{4}(?:\.?[0-9]{2}){0,3}")
_DECIMAL_RE = re.compile(r"[0-9]{1,24}(?:\.[0-9]{1,12})?")
_SCHEME_RE = re.compile(r"[A-Z][A-Z0-9_]{1,15}")
_UNIT_RE = re.compile(r"[A-Za-z]{1,16}")
# C0 and C1 controls and DEL, but tab, line feed and carriage return: never text, and
# a NUL is refused by some stores while others keep it.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# --- bounds: entries per repeated field, UTF-8 bytes per text field --------------------
# Over a bound, decoding fails with PAYLOAD_FIELD_TOO_LARGE naming the field. Together
# they keep the protobuf encoding of the largest certificate under 16 KiB, and its
# decision (with its bounded reasons, core.decision) well under a tlog-tiles entry.
MAX_INTERMEDIARIES = 3  # forwarders, traders, brokers between exporter and end user
MAX_ITEMS = 10  # lines of goods on one certificate
MAX_ELEMENTS = 8  # elements named for one item
MAX_REGISTRATIONS = 4  # registration numbers of one party
MAX_OWNERS = 2  # owners of 50 % or more of one party: two at most can be
MAX_ADDRESS_LINES = 3  # street lines of one address
MAX_TRANSIT_COUNTRIES = 8  # countries on the route between exporter and destination
MAX_REEXPORT_BARS = 32  # destinations the end user undertakes never to re-export to
MAX_NAME_BYTES = 128  # legal names, parent company, signatory and position, authority
MAX_ADDRESS_BYTES = 80  # an address line, city or region
MAX_REFERENCE_BYTES = 48  # certificate number, registration value, references, postal code
MAX_DESCRIPTION_BYTES = 200  # an item's description
MAX_STATEMENT_BYTES = 1000  # the end-use statement in the end user's words
MAX_QUALIFICATION_BYTES = 400  # a qualification of the undertakings
MAX_CODE_BYTES = 40  # codes and decimals (their own formats are checked as well)

# (proto message, field) -> bound. The decoder checks these before validating, so an
# oversized list is refused before any work is done on its entries; the model below
# carries the same bounds (a test holds the two together and covers every field).
MAX_ENTRIES: dict[tuple[str, str], int] = {
    ("EndUserCertificate", "intermediaries"): MAX_INTERMEDIARIES,
    ("EndUserCertificate", "items"): MAX_ITEMS,
    ("Item", "elements"): MAX_ELEMENTS,
    ("Party", "registrations"): MAX_REGISTRATIONS,
    ("Party", "owners"): MAX_OWNERS,
    ("Address", "lines"): MAX_ADDRESS_LINES,
    ("Transaction", "transit_countries"): MAX_TRANSIT_COUNTRIES,
    ("Undertakings", "no_reexport_to"): MAX_REEXPORT_BARS,
}
MAX_TEXT_BYTES: dict[tuple[str, str], int] = {
    ("EndUserCertificate", "certificate_number"): MAX_REFERENCE_BYTES,
    ("EndUserCertificate", "final_destination_country"): MAX_CODE_BYTES,
    ("Transaction", "transit_countries"): MAX_CODE_BYTES,
    ("Party", "legal_name"): MAX_NAME_BYTES,
    ("Party", "country_code"): MAX_CODE_BYTES,
    ("Party", "parent_company"): MAX_NAME_BYTES,
    ("Address", "lines"): MAX_ADDRESS_BYTES,
    ("Address", "city"): MAX_ADDRESS_BYTES,
    ("Address", "region"): MAX_ADDRESS_BYTES,
    ("Address", "postal_code"): MAX_REFERENCE_BYTES,
    ("Address", "country_code"): MAX_CODE_BYTES,
    ("Registration", "scheme"): MAX_CODE_BYTES,
    ("Registration", "value"): MAX_REFERENCE_BYTES,
    ("Owner", "legal_name"): MAX_NAME_BYTES,
    ("Owner", "country_code"): MAX_CODE_BYTES,
    ("Owner", "share_percent"): MAX_CODE_BYTES,
    ("Item", "description"): MAX_DESCRIPTION_BYTES,
    ("Item", "hs_code"): MAX_CODE_BYTES,
    ("Item", "elements"): MAX_CODE_BYTES,
    ("Item", "contract_reference"): MAX_REFERENCE_BYTES,
    ("Quantity", "value"): MAX_CODE_BYTES,
    ("Quantity", "unit"): MAX_CODE_BYTES,
    ("Money", "amount"): MAX_CODE_BYTES,
    ("Money", "currency_code"): MAX_CODE_BYTES,
    ("EndUse", "statement"): MAX_STATEMENT_BYTES,
    ("Undertakings", "no_reexport_to"): MAX_CODE_BYTES,
    ("Undertakings", "qualification"): MAX_QUALIFICATION_BYTES,
    ("Signatory", "name"): MAX_NAME_BYTES,
    ("Signatory", "position"): MAX_NAME_BYTES,
    ("Endorsement", "authority"): MAX_NAME_BYTES,
    ("Endorsement", "country_code"): MAX_CODE_BYTES,
    ("Endorsement", "reference"): MAX_REFERENCE_BYTES,
}


# --- constrained scalar types -------------------------------------------------------


def _country(value: str) -> str:
    if not _COUNTRY_RE.fullmatch(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 code (two upper-case letters)")
    if value not in ISO_3166_ALPHA2:
        raise ValueError(f"{value!r} is not an assigned ISO 3166-1 alpha-2 code")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY_RE.fullmatch(value):
        raise ValueError("must be an ISO 4217 code (three upper-case letters)")
    return value


def _element(value: str) -> str:
    if not _ELEMENT_RE.fullmatch(value) or value not in ELEMENT_SYMBOLS:
        raise ValueError(f"{value!r} is not a chemical element symbol (e.g. 'Dy', 'Tb', 'Sm')")
    return value


def _hs_code(value: str) -> str:
    if not _HS_RE.fullmatch(value):
        raise ValueError("must be a Harmonized System code such as '8505.11' or '2846.90'")
    return value


def _scheme(value: str) -> str:
    if not _SCHEME_RE.fullmatch(value):
        raise ValueError("must be an upper-case registration scheme such as 'GSTIN' or 'IEC'")
    return value


def _unit(value: str) -> str:
    if not _UNIT_RE.fullmatch(value):
        raise ValueError("must be a unit symbol such as 'kg', 't' or 'pcs'")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _text_within(limit: int) -> AfterValidator:
    """At most `limit` UTF-8 bytes, and no control characters (see _CONTROL_RE)."""

    def check(value: str) -> str:
        problem = text_problem(value, limit)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def text_problem(value: str, limit: int) -> str:
    """Why `value` is not acceptable text of at most `limit` UTF-8 bytes ("" if it is)."""
    size = text_size(value, limit)
    if size > limit:
        return f"is {size} bytes of UTF-8; at most {limit} are accepted"
    control = _CONTROL_RE.search(value)
    if control:
        return f"holds the control character U+{ord(control.group()):04X}"
    return ""


def _decimal(value: object) -> object:
    """Decimal strings as the proto writes them ("1250.5"): no sign, exponent or float."""
    if isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value):
            raise ValueError("must be a decimal string such as '1250.5' (no sign or exponent)")
        return Decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value  # Decimal passes on to pydantic (finite check); float is refused there


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Name = Annotated[str, AfterValidator(_not_blank), _text_within(MAX_NAME_BYTES)]
OptionalName = Annotated[str, _text_within(MAX_NAME_BYTES)]
AddressText = Annotated[str, _text_within(MAX_ADDRESS_BYTES)]
Reference = Annotated[str, _text_within(MAX_REFERENCE_BYTES)]
CountryCode = Annotated[str, AfterValidator(_country)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
ElementSymbol = Annotated[str, AfterValidator(_element)]
HsCode = Annotated[str, AfterValidator(_hs_code)]
Scheme = Annotated[str, AfterValidator(_scheme)]
Unit = Annotated[str, AfterValidator(_unit)]
Text = Annotated[str, AfterValidator(_not_blank)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
NonNegativeDecimal = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, allow_inf_nan=False)]
PositiveDecimal = Annotated[Decimal, BeforeValidator(_decimal), Field(gt=0, allow_inf_nan=False)]
Percent = Annotated[Decimal, BeforeValidator(_decimal), Field(gt=0, le=100, allow_inf_nan=False)]


# --- enums: proto value names without their prefix ------------------------------------


class IntermediaryRole(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    FREIGHT_FORWARDER = "FREIGHT_FORWARDER"
    TRADER = "TRADER"
    CUSTOMS_BROKER = "CUSTOMS_BROKER"
    OTHER = "OTHER"


class ItemForm(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    METAL = "METAL"
    ALLOY = "ALLOY"
    OXIDE = "OXIDE"
    COMPOUND = "COMPOUND"
    MAGNET = "MAGNET"
    OTHER = "OTHER"


class EndUseCategory(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    EV_TRACTION_MOTORS = "EV_TRACTION_MOTORS"
    WIND_TURBINE_GENERATORS = "WIND_TURBINE_GENERATORS"
    CONSUMER_ELECTRONICS = "CONSUMER_ELECTRONICS"
    INDUSTRIAL_MOTORS = "INDUSTRIAL_MOTORS"
    AUTOMOTIVE_COMPONENTS = "AUTOMOTIVE_COMPONENTS"
    MEDICAL_DEVICES = "MEDICAL_DEVICES"
    CIVIL_RESEARCH = "CIVIL_RESEARCH"
    TRADING = "TRADING"
    OTHER_CIVIL = "OTHER_CIVIL"
    MILITARY = "MILITARY"
    DEFENCE = "DEFENCE"
    WEAPONS = "WEAPONS"
    WMD = "WMD"
    NUCLEAR_EXPLOSIVE = "NUCLEAR_EXPLOSIVE"
    MISSILE = "MISSILE"
    UAV = "UAV"


class PaymentMethod(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    BANK_TRANSFER = "BANK_TRANSFER"
    LETTER_OF_CREDIT = "LETTER_OF_CREDIT"
    CASH = "CASH"
    OTHER = "OTHER"


_ENUMS: dict[str, type[StrEnum]] = {
    "eucgate.v1.PaymentMethod": PaymentMethod,
    "eucgate.v1.IntermediaryRole": IntermediaryRole,
    "eucgate.v1.ItemForm": ItemForm,
    "eucgate.v1.EndUseCategory": EndUseCategory,
}


# --- the certificate ------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Validity(_Strict):
    """Inclusive of `not_before`, exclusive of `not_after`; `not_after` must be later."""

    not_before: UtcDatetime
    not_after: UtcDatetime

    @field_validator("not_after")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("not_before")
        if start is not None and value <= start:
            raise ValueError("must be later than validity.not_before")
        return value


class Address(_Strict):
    lines: tuple[AddressText, ...] = Field(default=(), max_length=MAX_ADDRESS_LINES)
    city: AddressText = ""
    region: AddressText = ""
    postal_code: Reference = ""
    country_code: CountryCode | None = None


class Registration(_Strict):
    scheme: Scheme
    value: Annotated[Text, _text_within(MAX_REFERENCE_BYTES)]


class Owner(_Strict):
    legal_name: Name
    country_code: CountryCode | None = None
    share_percent: Percent


class Party(_Strict):
    legal_name: Name
    address: Address | None = None
    country_code: CountryCode
    registrations: tuple[Registration, ...] = Field(default=(), max_length=MAX_REGISTRATIONS)
    parent_company: OptionalName = ""
    owners: tuple[Owner, ...] = Field(default=(), max_length=MAX_OWNERS)


class Intermediary(_Strict):
    party: Party
    role: IntermediaryRole = IntermediaryRole.UNSPECIFIED


class Quantity(_Strict):
    value: PositiveDecimal
    unit: Unit


class Money(_Strict):
    amount: NonNegativeDecimal
    currency_code: CurrencyCode


class Item(_Strict):
    description: Annotated[str, _text_within(MAX_DESCRIPTION_BYTES)] = ""
    hs_code: HsCode
    elements: tuple[ElementSymbol, ...] = Field(default=(), max_length=MAX_ELEMENTS)
    form: ItemForm = ItemForm.UNSPECIFIED
    quantity: Quantity
    value: Money | None = None
    contract_reference: Reference = ""


class EndUse(_Strict):
    category: EndUseCategory
    statement: Annotated[str, _text_within(MAX_STATEMENT_BYTES)] = ""

    @field_validator("category")
    @classmethod
    def _stated(cls, value: EndUseCategory) -> EndUseCategory:
        if value is EndUseCategory.UNSPECIFIED:
            raise ValueError("must state an end-use category")
        return value


class Undertakings(_Strict):
    """Each flag is true only when given without qualification (see `qualification`)."""

    no_wmd_use: bool = False
    no_military_end_use: bool = False
    no_military_end_user: bool = False
    no_reexport_without_consent: bool = False
    no_reexport_to: tuple[CountryCode, ...] = Field(default=(), max_length=MAX_REEXPORT_BARS)
    qualification: Annotated[str, _text_within(MAX_QUALIFICATION_BYTES)] = ""


class Signatory(_Strict):
    name: Name
    position: OptionalName = ""
    signed_at: UtcDatetime


class Endorsement(_Strict):
    authority: Name
    country_code: CountryCode | None = None
    reference: Reference = ""
    endorsed_at: UtcDatetime | None = None


class Transaction(_Strict):
    """Commercial facts the red-flag rules read; all optional on the certificate."""

    payment_method: PaymentMethod = PaymentMethod.UNSPECIFIED
    transit_countries: tuple[CountryCode, ...] = Field(default=(), max_length=MAX_TRANSIT_COUNTRIES)
    installation_declined: bool = False
    training_declined: bool = False


class Certificate(_Strict):
    """An end-user certificate; holding one means every field passed validation."""

    certificate_number: Annotated[Text, _text_within(MAX_REFERENCE_BYTES)]
    issued_at: UtcDatetime
    validity: Validity
    exporter: Party | None = None
    importer: Party
    consignee: Party | None = None
    intermediaries: tuple[Intermediary, ...] = Field(default=(), max_length=MAX_INTERMEDIARIES)
    end_user: Party
    items: tuple[Item, ...] = Field(min_length=1, max_length=MAX_ITEMS)
    end_use: EndUse
    final_destination_country: CountryCode
    undertakings: Undertakings | None = None
    signatory: Signatory
    endorsement: Endorsement | None = None
    transaction: Transaction | None = None


# --- decoding -------------------------------------------------------------------------


def certificate_from_payload(payload_type: str, payload: bytes) -> Certificate:
    """Decode and validate an EUC payload of either supported type.

    Raises InvalidSubmission with reason PAYLOAD_TYPE_UNSUPPORTED (field
    "envelope.payload_type"), PAYLOAD_INVALID_PROTOBUF or PAYLOAD_INVALID_JSON (field
    "envelope.payload", or the path of an unknown field), PAYLOAD_MISSING_FIELD or
    PAYLOAD_INVALID_FIELD (field = proto path, e.g. "items[0].quantity.value"; every bad
    field of the certificate is in the error's `violations`, see certificate_from_proto).
    """
    if payload_type == PAYLOAD_TYPE_PROTO:
        return certificate_from_proto(_decode_proto(payload))
    if payload_type == PAYLOAD_TYPE_JSON:
        doc = _json_document(payload)
        data = _JSON_READER.read(doc)
        if data is None:  # not the usual shape: protobuf's parser says what it makes of it
            return certificate_from_proto(_parse_json(doc))
        return _validated(data, [])
    raise InvalidSubmission(
        f"payload type {payload_type!r} is not supported; use one of {', '.join(PAYLOAD_TYPES)}",
        reason="PAYLOAD_TYPE_UNSUPPORTED",
        field="envelope.payload_type",
    )


def certificate_from_proto(msg: certificate_pb2.EndUserCertificate) -> Certificate:
    """Validate a decoded EUC message.

    Raises InvalidSubmission naming every missing or invalid field at once, so a
    submitter fixes them in one round: each is one of the error's `violations` (field
    path, description, PAYLOAD_MISSING_FIELD or PAYLOAD_INVALID_FIELD), the first
    MAX_FIELD_VIOLATIONS of them in field order. The error's own reason is
    PAYLOAD_MISSING_FIELD when any required field is missing, else PAYLOAD_INVALID_FIELD.
    """
    _check_bounds(msg)
    problems: list[FieldViolation] = []
    data = _message_to_dict(msg, "", problems)
    return _validated(data, problems)


def _validated(data: dict[str, Any], problems: list[FieldViolation]) -> Certificate:
    """The certificate of plain `data` (as `_message_to_dict` gives it), or the
    InvalidSubmission naming `problems` (values the conversion refused) and every field
    the model refuses."""
    try:
        certificate = Certificate.model_validate(data)
    except ValidationError as exc:
        # A value the conversion refused was left out: the model would call it missing.
        reported = {p.field for p in problems}
        problems.extend(v for v in _violations(exc) if v.field not in reported)
    else:
        if not problems:
            return certificate
    raise _invalid(problems)


def _check_bounds(msg: certificate_pb2.EndUserCertificate) -> None:
    """Refuse a message with a field over its bound (MAX_ENTRIES, MAX_TEXT_BYTES) before
    any work is done on its values: InvalidSubmission PAYLOAD_FIELD_TOO_LARGE, with one
    violation per such field (at most MAX_FIELD_VIOLATIONS)."""
    found: list[FieldViolation] = []
    _bounds_of(msg, "", found)
    if found:
        first = found[0]
        more = f" (and {len(found) - 1} more fields over their bounds)" if len(found) > 1 else ""
        raise InvalidSubmission(
            f"{first.field}: {first.description}{more}",
            reason="PAYLOAD_FIELD_TOO_LARGE",
            field=first.field,
            violations=found[:MAX_FIELD_VIOLATIONS],
        )


def _bounds_of(msg: Message, path: str, found: list[FieldViolation]) -> None:
    message = msg.DESCRIPTOR.name
    for fd, value in msg.ListFields():
        field_path = _join(path, fd.name)
        limit = MAX_ENTRIES.get((message, fd.name))
        if fd.is_repeated and limit is not None and len(value) > limit:
            found.append(
                FieldViolation(
                    field_path,
                    f"has {len(value)} entries; at most {limit} are accepted",
                    "PAYLOAD_FIELD_TOO_LARGE",
                )
            )
            continue  # its entries are not looked at
        if fd.type == FieldDescriptor.TYPE_STRING:
            # A field missing from the table gets the tightest bound; a test keeps
            # every string field of the proto in it.
            most = MAX_TEXT_BYTES.get((message, fd.name), MAX_CODE_BYTES)
        elif fd.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        for i, v in enumerate(value if fd.is_repeated else (value,)):
            at = f"{field_path}[{i}]" if fd.is_repeated else field_path
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                _bounds_of(v, at, found)
                continue
            size = text_size(v, most)
            if size > most:
                found.append(
                    FieldViolation(
                        at,
                        f"is {size} bytes of UTF-8; at most {most} are accepted",
                        "PAYLOAD_FIELD_TOO_LARGE",
                    )
                )


def _decode_proto(payload: bytes) -> certificate_pb2.EndUserCertificate:
    try:
        msg = certificate_pb2.EndUserCertificate.FromString(payload)
    except DecodeError as exc:
        raise InvalidSubmission(
            f"payload is not a valid EndUserCertificate protobuf: {exc}",
            reason="PAYLOAD_INVALID_PROTOBUF",
            field="envelope.payload",
        ) from None
    # Unknown fields would be signed content the service cannot read: refuse them, as
    # the JSON form does.
    unknown = _first_unknown_field(msg, "")
    if unknown is not None:
        raise InvalidSubmission(
            f"payload carries fields this service does not know (in {unknown or 'the root'})",
            reason="PAYLOAD_INVALID_PROTOBUF",
            field=unknown,
        )
    return msg


def _first_unknown_field(msg: Message, path: str) -> str | None:
    if len(UnknownFieldSet(msg)):
        return path
    for fd, value in msg.ListFields():
        if fd.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        values = list(value) if fd.is_repeated else [value]
        for i, sub in enumerate(values):
            sub_path = _join(path, fd.name) + (f"[{i}]" if fd.is_repeated else "")
            found = _first_unknown_field(sub, sub_path)
            if found is not None:
                return found
    return None


def _invalid_json(detail: str) -> InvalidSubmission:
    return InvalidSubmission(
        f"payload is not a valid EndUserCertificate JSON document: {detail}",
        reason="PAYLOAD_INVALID_JSON",
        field="envelope.payload",
    )


def _json_document(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object of Unicode text; raises InvalidSubmission
    PAYLOAD_INVALID_JSON if it is not one."""
    invalid = _invalid_json
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("not UTF-8") from None
    try:
        # Duplicate keys are checked here because the protobuf JSON parser keeps the last.
        doc = strictjson.loads(text)
    except strictjson.DuplicateKeyError as exc:
        raise invalid(str(exc)) from None
    except RecursionError:
        raise invalid("nested too deeply") from None
    except ValueError as exc:
        raise invalid(str(exc)) from None
    if not isinstance(doc, dict):
        raise invalid("the top level must be an object")
    if _SURROGATE_ESCAPE.search(text) and not _all_text_encodable(doc):
        # "\ud800" escapes decode to lone surrogates, which are not Unicode text and
        # which the protobuf runtime does not handle gracefully.
        raise invalid("a string holds a lone UTF-16 surrogate")
    return doc


def _parse_json(doc: dict[str, Any]) -> certificate_pb2.EndUserCertificate:
    """`doc` through protobuf's JSON mapping: the reference reading of a JSON payload,
    and its refusal messages. Raises InvalidSubmission PAYLOAD_INVALID_JSON."""
    msg = certificate_pb2.EndUserCertificate()
    try:
        json_format.ParseDict(doc, msg, ignore_unknown_fields=False)
    except (json_format.ParseError, RecursionError) as exc:
        raise _invalid_json(
            str(exc) if isinstance(exc, json_format.ParseError) else "nested too deeply"
        ) from None
    return msg


# Valid UTF-8 holds no surrogate: only a "\\uD800"-style escape can put one in a string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _all_text_encodable(doc: Any) -> bool:
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Refused:
    """A value the conversion refused (and reported): its field is left out."""


_REFUSED = _Refused()


def _message_to_dict(msg: Message, path: str, problems: list[FieldViolation]) -> dict[str, Any]:
    """Proto message → plain data keyed by proto field names; unset fields are left out.

    proto3 cannot tell "" or 0 from absent, so both are treated as absent: a required
    field left empty is reported as missing by the model. A value that cannot convert
    (a timestamp out of range, an enum number no version defines) is appended to
    `problems` and its field left out.
    """
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        field_path = _join(path, fd.name)
        converted: Any = _REFUSED
        if fd.is_repeated:
            if len(value):
                elements = tuple(
                    _value(fd, v, f"{field_path}[{i}]", problems) for i, v in enumerate(value)
                )
                if _REFUSED not in elements:
                    converted = elements
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if msg.HasField(fd.name):
                converted = _value(fd, value, field_path, problems)
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            if value != 0:
                converted = _value(fd, value, field_path, problems)
        elif fd.type == FieldDescriptor.TYPE_STRING:
            if value != "":
                converted = value
        else:
            converted = value
        if converted is not _REFUSED:
            out[fd.name] = converted
    return out


# Descriptor parameters are typed Any: the protobuf stubs describe them as a union of the
# pure-Python and upb classes, which share the attributes used here.


def _value(fd: Any, value: Any, path: str, problems: list[FieldViolation]) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == Timestamp.DESCRIPTOR.full_name:
            try:
                return value.ToDatetime(tzinfo=UTC)
            except (ValueError, OverflowError) as exc:
                problems.append(
                    FieldViolation(path, f"not a valid timestamp: {exc}", "PAYLOAD_INVALID_FIELD")
                )
                return _REFUSED
        return _message_to_dict(value, path, problems)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return _enum_member(fd.enum_type, value, path, problems)
    return value


def _enum_prefix(enum: Any) -> str:
    return str(enum.values_by_number[0].name).removesuffix("UNSPECIFIED")


def _enum_member(enum: Any, number: int, path: str, problems: list[FieldViolation]) -> Any:
    # proto3 enums are open: binary payloads may carry numbers no version defines.
    described = enum.values_by_number.get(number)
    if described is None:
        problems.append(
            FieldViolation(path, f"{number} is not a {enum.name} value", "PAYLOAD_INVALID_FIELD")
        )
        return _REFUSED
    return _ENUMS[enum.full_name](str(described.name).removeprefix(_enum_prefix(enum)))


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


_MAX_DESCRIPTION = 120


def _violations(exc: ValidationError) -> list[FieldViolation]:
    """One violation per validation error, in field order; a description never repeats
    the field path (that is the violation's `field`)."""
    errors = exc.errors(include_url=False)
    paths = [_loc_path(tuple(e["loc"])) for e in errors]
    found = []
    for error, path in zip(errors, paths, strict=True):
        if error["type"] == "too_short" and any(p.startswith(f"{path}[") for p in paths):
            continue  # pydantic's "too few" after dropping an entry it already reported
        missing = error["type"] == "missing"
        detail = "is required" if missing else error["msg"].removeprefix("Value error, ")
        if len(detail) > _MAX_DESCRIPTION:  # a validator may quote a long value
            detail = detail[: _MAX_DESCRIPTION - 1] + "…"
        found.append(
            FieldViolation(
                path,
                detail,
                "PAYLOAD_MISSING_FIELD" if missing else "PAYLOAD_INVALID_FIELD",
            )
        )
    return found


def _invalid(problems: list[FieldViolation]) -> InvalidSubmission:
    """The error for a certificate with these problems (at least one): the first as
    `field`, as many as the caps allow as `violations`."""
    total = len(problems)
    kept = fit_violations(problems)
    first = problems[0]
    message = f"{first.field}: {first.description}"
    if total > 1:
        message = (
            f"the certificate has {total} problems, each a field violation; the first: {message}"
        )
    if len(kept) < total:
        message += f" (the first {len(kept)} are listed; at most {MAX_FIELD_VIOLATIONS} ever are)"
    missing = any(p.reason == "PAYLOAD_MISSING_FIELD" for p in problems)
    return InvalidSubmission(
        message,
        reason="PAYLOAD_MISSING_FIELD" if missing else "PAYLOAD_INVALID_FIELD",
        field=first.field,
        violations=problems,
    )


# --- encoding (tests, the CLI's sign command, the demo) --------------------------------


def certificate_to_proto(c: Certificate) -> certificate_pb2.EndUserCertificate:
    """The proto message for a certificate; decoding its bytes gives back an equal model."""
    msg = certificate_pb2.EndUserCertificate()
    _fill(msg, c)
    return msg


def encode_certificate(c: Certificate, payload_type: str = PAYLOAD_TYPE_PROTO) -> bytes:
    """Payload bytes of either type: deterministic protobuf binary, or protobuf JSON.

    Raises InvalidSubmission (PAYLOAD_TYPE_UNSUPPORTED) for any other payload type.
    """
    msg = certificate_to_proto(c)
    if payload_type == PAYLOAD_TYPE_PROTO:
        return msg.SerializeToString(deterministic=True)
    if payload_type == PAYLOAD_TYPE_JSON:
        return json_format.MessageToJson(msg, indent=2, sort_keys=True).encode("utf-8")
    raise InvalidSubmission(
        f"payload type {payload_type!r} is not supported",
        reason="PAYLOAD_TYPE_UNSUPPORTED",
        field="envelope.payload_type",
    )


def _fill(msg: Message, model: BaseModel) -> None:
    fields = msg.DESCRIPTOR.fields_by_name
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None:
            continue
        fd = fields[name]
        target = getattr(msg, name)
        if fd.is_repeated:
            for item in value:
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill_message(target.add(), item)
                else:
                    target.append(_scalar_to_proto(fd, item))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            target.SetInParent()  # presence matters: an empty Undertakings is still given
            _fill_message(target, value)
        else:
            setattr(msg, name, _scalar_to_proto(fd, value))


def _fill_message(target: Message, value: Any) -> None:
    if isinstance(value, datetime):
        assert isinstance(target, Timestamp)
        target.FromDatetime(value)
    else:
        _fill(target, value)


def _scalar_to_proto(fd: Any, value: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return fd.enum_type.values_by_name[_enum_prefix(fd.enum_type) + value.value].number
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


# The JSON payloads clients send, read without protobuf (core.eucjson); it declines
# anything else, which _parse_json then reads.
_JSON_READER = JsonReader(
    certificate_pb2.EndUserCertificate.DESCRIPTOR,
    text_bytes=lambda message, name: MAX_TEXT_BYTES.get((message, name), MAX_CODE_BYTES),
    entries=lambda message, name: MAX_ENTRIES.get((message, name)),
    enum_member=lambda enum, number: _enum_member(enum, number, "", []),
)
