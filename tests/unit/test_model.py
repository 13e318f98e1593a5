"""The EUC model: validation, and decoding either payload type with documented reasons."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from eucgate.core import model
from eucgate.core.model import (
    PAYLOAD_TYPE_JSON,
    PAYLOAD_TYPE_PROTO,
    PAYLOAD_TYPES,
    Certificate,
    EndUse,
    EndUseCategory,
    ItemForm,
    Money,
    Quantity,
    Undertakings,
    certificate_from_payload,
    certificate_to_proto,
    encode_certificate,
)
from eucgate.errors import (
    MAX_FIELD_VIOLATIONS,
    VIOLATION_BYTES,
    FieldViolation,
    InvalidSubmission,
    fit_violations,
)
from eucgate_client.v1 import certificate_pb2
from google.protobuf import json_format
from pydantic import BaseModel, ValidationError

from tests.factories import magnet_item, valid_certificate

Pb = certificate_pb2.EndUserCertificate


def _proto_bytes(mutate: Callable[[Pb], None]) -> bytes:
    msg = certificate_to_proto(valid_certificate())
    mutate(msg)
    return msg.SerializeToString()


def _json_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(encode_certificate(valid_certificate(), PAYLOAD_TYPE_JSON))
    return doc


def _refused(payload_type: str, payload: bytes) -> InvalidSubmission:
    with pytest.raises(InvalidSubmission) as info:
        certificate_from_payload(payload_type, payload)
    return info.value


# --- round trips and the mirror of the proto ---------------------------------------------


@pytest.mark.parametrize("payload_type", PAYLOAD_TYPES)
def test_round_trip_gives_an_equal_certificate(payload_type: str) -> None:
    cert = valid_certificate()
    assert certificate_from_payload(payload_type, encode_certificate(cert, payload_type)) == cert


def test_protobuf_encoding_is_deterministic() -> None:
    cert = valid_certificate()
    assert encode_certificate(cert) == encode_certificate(cert)


def test_decimal_text_is_preserved() -> None:
    cert = valid_certificate(
        items=(magnet_item(quantity=Quantity(value=Decimal("1250.50"), unit="kg")),)
    )
    msg = certificate_to_proto(cert)
    assert msg.items[0].quantity.value == "1250.50"
    assert msg.items[0].value.amount == "62500.00"


def test_empty_undertakings_keep_their_presence() -> None:
    cert = valid_certificate(undertakings=Undertakings())
    decoded = certificate_from_payload(PAYLOAD_TYPE_PROTO, encode_certificate(cert))
    assert decoded.undertakings == Undertakings()


def _pairs() -> list[tuple[type[BaseModel], Any]]:
    m = model
    pb = certificate_pb2
    return [
        (m.Certificate, pb.EndUserCertificate),
        (m.Validity, pb.Validity),
        (m.Party, pb.Party),
        (m.Address, pb.Address),
        (m.Registration, pb.Registration),
        (m.Owner, pb.Owner),
        (m.Intermediary, pb.Intermediary),
        (m.Item, pb.Item),
        (m.Quantity, pb.Quantity),
        (m.Money, pb.Money),
        (m.EndUse, pb.EndUse),
        (m.Undertakings, pb.Undertakings),
        (m.Signatory, pb.Signatory),
        (m.Endorsement, pb.Endorsement),
    ]


@pytest.mark.parametrize(("py", "pb"), _pairs())
def test_model_mirrors_the_proto(py: type[BaseModel], pb: Any) -> None:
    assert list(py.model_fields) == [f.name for f in pb.DESCRIPTOR.fields]


@pytest.mark.parametrize(
    ("enum", "pb_enum"),
    [
        (model.EndUseCategory, certificate_pb2.EndUseCategory),
        (model.ItemForm, certificate_pb2.ItemForm),
        (model.IntermediaryRole, certificate_pb2.IntermediaryRole),
    ],
)
def test_enums_mirror_the_proto(enum: Any, pb_enum: Any) -> None:
    prefix = pb_enum.Name(0).removesuffix("UNSPECIFIED")
    assert [prefix + m.value for m in enum] == list(pb_enum.keys())


# --- field validation -------------------------------------------------------------------


@pytest.mark.parametrize("code", ["XX", "ZZ", "EU", "in", "IND", "I", ""])
def test_unassigned_or_malformed_country_codes_are_refused(code: str) -> None:
    def mutate(m: Pb) -> None:
        m.final_destination_country = code

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    expected = "PAYLOAD_MISSING_FIELD" if code == "" else "PAYLOAD_INVALID_FIELD"
    assert (err.reason, err.field) == (expected, "final_destination_country")


@pytest.mark.parametrize("code", ["US", "IN", "CN", "NO", "AX"])
def test_assigned_country_codes_are_accepted(code: str) -> None:
    assert valid_certificate(final_destination_country=code).final_destination_country == code


@pytest.mark.parametrize("currency", ["usd", "US", "USDT", "U5D"])
def test_currency_must_be_three_upper_case_letters(currency: str) -> None:
    with pytest.raises(ValidationError):
        Money(amount=Decimal(1), currency_code=currency)


@pytest.mark.parametrize("text", ["-1", "1e3", "1E3", "NaN", "Infinity", "1,5", " 1", "1.", ".5"])
def test_quantity_must_be_a_plain_decimal_string(text: str) -> None:
    def mutate(m: Pb) -> None:
        m.items[0].quantity.value = text

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "items[0].quantity.value")


def test_quantity_must_be_positive_but_a_value_may_be_zero() -> None:
    def zero_quantity(m: Pb) -> None:
        m.items[0].quantity.value = "0.000"

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(zero_quantity))
    assert err.field == "items[0].quantity.value"

    def zero_value(m: Pb) -> None:
        m.items[0].value.amount = "0"

    cert = certificate_from_payload(PAYLOAD_TYPE_PROTO, _proto_bytes(zero_value))
    assert cert.items[0].value is not None
    assert cert.items[0].value.amount == 0


def test_floats_are_never_quantities() -> None:
    with pytest.raises(ValidationError):
        Quantity(value=1.5, unit="kg")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Quantity(value=Decimal("NaN"), unit="kg")


@pytest.mark.parametrize("hs", ["8505.11", "850511", "2846", "8505.11.10", "85051110"])
def test_hs_codes_accepted(hs: str) -> None:
    assert magnet_item(hs_code=hs).hs_code == hs


@pytest.mark.parametrize("hs", ["850", "8505.1", "8505-11", "ABCD.11", "8505.11.10.10.10"])
def test_hs_codes_refused(hs: str) -> None:
    def mutate(m: Pb) -> None:
        m.items[0].hs_code = hs

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "items[0].hs_code")


@pytest.mark.parametrize("symbol", ["dy", "DY", "Xy", "D", "Dy ", "Dyy"])
def test_element_symbols_must_be_from_the_periodic_table(symbol: str) -> None:
    def mutate(m: Pb) -> None:
        m.items[0].elements.append(symbol)

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "items[0].elements[1]")


def test_validity_must_end_after_it_starts() -> None:
    def mutate(m: Pb) -> None:
        m.validity.not_after.CopyFrom(m.validity.not_before)

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "validity.not_after")


def test_blank_names_are_invalid() -> None:
    def mutate(m: Pb) -> None:
        m.end_user.legal_name = "   "

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "end_user.legal_name")


def test_datetimes_must_be_aware_and_are_kept_in_utc() -> None:
    with pytest.raises(ValidationError):
        valid_certificate(issued_at=datetime(2026, 5, 20))
    ist = timezone(timedelta(hours=5, minutes=30))
    cert = valid_certificate(issued_at=datetime(2026, 5, 20, 14, 30, tzinfo=ist))
    assert cert.issued_at == datetime(2026, 5, 20, 9, 0, tzinfo=UTC)
    assert cert.issued_at.tzinfo is UTC


def test_the_model_is_frozen_and_refuses_extra_fields() -> None:
    cert = valid_certificate()
    with pytest.raises(ValidationError):
        cert.certificate_number = "other"
    with pytest.raises(ValidationError):
        Certificate(**{**cert.model_dump(), "surprise": 1})


# --- required fields --------------------------------------------------------------------


def _clear(path: str) -> Callable[[Pb], None]:
    def mutate(m: Pb) -> None:
        *parents, name = path.split(".")
        target: Any = m
        for part in parents:
            target = getattr(target, part)
        target.ClearField(name)

    return mutate


@pytest.mark.parametrize(
    "path",
    [
        "certificate_number",
        "issued_at",
        "validity",
        "validity.not_before",
        "validity.not_after",
        "importer",
        "end_user",
        "end_user.legal_name",
        "end_user.country_code",
        "items",
        "end_use",
        "end_use.category",
        "final_destination_country",
        "signatory",
        "signatory.name",
        "signatory.signed_at",
    ],
)
def test_required_fields(path: str) -> None:
    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(_clear(path)))
    assert (err.reason, err.field) == ("PAYLOAD_MISSING_FIELD", path)
    assert path in str(err)


def test_missing_item_quantity_names_the_item() -> None:
    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(lambda m: m.items[0].ClearField("quantity")))
    assert (err.reason, err.field) == ("PAYLOAD_MISSING_FIELD", "items[0].quantity")


@pytest.mark.parametrize("path", ["exporter", "consignee", "undertakings", "endorsement"])
def test_optional_fields(path: str) -> None:
    certificate_from_payload(PAYLOAD_TYPE_PROTO, _proto_bytes(_clear(path)))


def test_unspecified_end_use_in_python_is_refused() -> None:
    with pytest.raises(ValidationError):
        EndUse(category=EndUseCategory.UNSPECIFIED)


# --- protobuf payloads ------------------------------------------------------------------


def test_unsupported_payload_type() -> None:
    err = _refused("application/json", encode_certificate(valid_certificate(), PAYLOAD_TYPE_JSON))
    assert (err.reason, err.field) == ("PAYLOAD_TYPE_UNSUPPORTED", "envelope.payload_type")


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xff\xfe"])
def test_malformed_protobuf(payload: bytes) -> None:
    assert _refused(PAYLOAD_TYPE_PROTO, payload).reason == "PAYLOAD_INVALID_PROTOBUF"


def test_protobuf_with_unknown_fields_is_refused() -> None:
    payload = encode_certificate(valid_certificate()) + b"\xf8\x01\x01"  # field 31, varint
    err = _refused(PAYLOAD_TYPE_PROTO, payload)
    assert err.reason == "PAYLOAD_INVALID_PROTOBUF"


def test_protobuf_with_unknown_nested_field_names_it() -> None:
    msg = certificate_to_proto(valid_certificate())
    quantity = msg.items[0].quantity.SerializeToString() + b"\x18\x01"  # field 3, varint
    item = certificate_pb2.Item()
    item.MergeFromString(msg.items[0].SerializeToString())
    item.quantity.Clear()
    raw_item = item.SerializeToString() + b"\x2a" + bytes([len(quantity)]) + quantity
    del msg.items[:]
    payload = msg.SerializeToString() + b"\x4a" + bytes([len(raw_item)]) + raw_item
    err = _refused(PAYLOAD_TYPE_PROTO, payload)
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_PROTOBUF", "items[0].quantity")


def test_unknown_enum_number_is_an_invalid_field() -> None:
    def mutate(m: Pb) -> None:
        m.end_use.category = 99  # type: ignore[assignment]

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "end_use.category")


def test_out_of_range_timestamp_is_an_invalid_field() -> None:
    def mutate(m: Pb) -> None:
        m.issued_at.seconds = 10**12

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "issued_at")


def test_decoded_enums_are_model_members() -> None:
    cert = certificate_from_payload(PAYLOAD_TYPE_PROTO, encode_certificate(valid_certificate()))
    assert cert.items[0].form is ItemForm.MAGNET
    assert cert.end_use.category is EndUseCategory.EV_TRACTION_MOTORS


# --- JSON payloads ----------------------------------------------------------------------


def test_json_accepts_proto_field_names_too() -> None:
    msg = certificate_to_proto(valid_certificate())
    text = json_format.MessageToJson(msg, preserving_proto_field_name=True)
    assert certificate_from_payload(PAYLOAD_TYPE_JSON, text.encode()) == valid_certificate()


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe{}",
        b"{",
        b"[]",
        b'"text"',
        b'{"certificateNumber": NaN}',
        b'{"certificateNumber": "A", "certificateNumber": "B"}',
        b'{"endUse": {"category": "END_USE_CATEGORY_EV_TRACTION_MOTORS", "category": 1}}',
        b'{"surprise": 1}',
        b'{"endUse": {"surprise": 1}}',
        b'{"endUse": {"category": "NOT_A_CATEGORY"}}',
        b'{"items": "not a list"}',
        b'{"issuedAt": "yesterday"}',
        b'{"certificateNumber": "\\ud800"}',
        b'{"endUse": "\\ud800"}',
        b'{"endUse": {"\\udfff": 1}}',
        b'{"certificateNumber": "\\uDBFF"}',  # escapes are case-insensitive
    ],
)
def test_invalid_json_payloads(payload: bytes) -> None:
    assert _refused(PAYLOAD_TYPE_JSON, payload).reason == "PAYLOAD_INVALID_JSON"


def test_duplicate_key_deep_inside_is_refused() -> None:
    text = encode_certificate(valid_certificate(), PAYLOAD_TYPE_JSON).decode()
    text = text.replace('"unit": "kg"', '"unit": "kg", "unit": "t"')
    assert _refused(PAYLOAD_TYPE_JSON, text.encode()).reason == "PAYLOAD_INVALID_JSON"


@pytest.mark.parametrize("depth", [200, 100_000])
def test_deep_json_nesting_is_refused(depth: int) -> None:
    payload = b'{"certificateNumber": ' + b"[" * depth + b"]" * depth + b"}"
    assert _refused(PAYLOAD_TYPE_JSON, payload).reason == "PAYLOAD_INVALID_JSON"


def test_json_missing_field_is_reported_with_its_proto_path() -> None:
    doc = _json_doc()
    del doc["endUser"]["countryCode"]
    err = _refused(PAYLOAD_TYPE_JSON, json.dumps(doc).encode())
    assert (err.reason, err.field) == ("PAYLOAD_MISSING_FIELD", "end_user.country_code")


def test_json_invalid_quantity_is_reported_with_its_proto_path() -> None:
    doc = _json_doc()
    doc["items"][0]["quantity"]["value"] = "-5"
    err = _refused(PAYLOAD_TYPE_JSON, json.dumps(doc).encode())
    assert (err.reason, err.field) == ("PAYLOAD_INVALID_FIELD", "items[0].quantity.value")


@pytest.mark.parametrize("payload_type", PAYLOAD_TYPES)
def test_mutated_payloads_only_ever_raise_invalid_submission(payload_type: str) -> None:
    rng = random.Random(20260601)
    base = bytearray(encode_certificate(valid_certificate(), payload_type))
    reasons = set()
    for _ in range(600):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.6:
                data[pos] = rng.randrange(256)
            elif choice < 0.8:
                del data[pos]
            else:
                data.insert(pos, rng.randrange(256))
        try:
            certificate_from_payload(payload_type, bytes(data))
        except InvalidSubmission as exc:
            reasons.add(exc.reason)
    assert reasons
    assert all(r.startswith("PAYLOAD_") for r in reasons), reasons


# --- every problem in one answer ---------------------------------------------------------

# The eight required top-level fields an integrator once found one sign-and-submit round
# at a time.
_TOP_LEVEL_REQUIRED = [
    "certificate_number",
    "issued_at",
    "validity",
    "importer",
    "end_user",
    "end_use",
    "final_destination_country",
    "signatory",
]


def test_every_missing_field_is_its_own_violation() -> None:
    def mutate(m: Pb) -> None:
        for name in _TOP_LEVEL_REQUIRED:
            m.ClearField(name)

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    assert (err.reason, err.field) == ("PAYLOAD_MISSING_FIELD", "certificate_number")
    assert [v.field for v in err.violations] == _TOP_LEVEL_REQUIRED
    assert {(v.description, v.reason) for v in err.violations} == {
        ("is required", "PAYLOAD_MISSING_FIELD")
    }
    assert str(err).startswith("the certificate has 8 problems")
    assert "more problem" not in str(err)


def test_missing_and_invalid_fields_each_keep_their_own_reason() -> None:
    def mutate(m: Pb) -> None:
        m.items[0].hs_code = "85-05"
        m.end_user.ClearField("legal_name")
        m.final_destination_country = "XX"
        m.end_use.category = 99  # type: ignore[assignment]  # refused while converting
        m.issued_at.seconds = 10**12  # refused while converting

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    got = {v.field: v.reason for v in err.violations}
    assert got == {
        "issued_at": "PAYLOAD_INVALID_FIELD",
        "end_use.category": "PAYLOAD_INVALID_FIELD",
        "end_user.legal_name": "PAYLOAD_MISSING_FIELD",
        "items[0].hs_code": "PAYLOAD_INVALID_FIELD",
        "final_destination_country": "PAYLOAD_INVALID_FIELD",
    }
    # A value refused while converting is not reported again as missing.
    assert len(err.violations) == 5
    # Any missing field makes the error's own reason PAYLOAD_MISSING_FIELD.
    assert err.reason == "PAYLOAD_MISSING_FIELD"


def test_only_invalid_fields_give_payload_invalid_field() -> None:
    doc = _json_doc()
    doc["items"][0]["quantity"]["value"] = "-5"
    doc["finalDestinationCountry"] = "XX"
    err = _refused(PAYLOAD_TYPE_JSON, json.dumps(doc).encode())
    assert err.reason == "PAYLOAD_INVALID_FIELD"
    assert [v.field for v in err.violations] == [
        "items[0].quantity.value",
        "final_destination_country",
    ]


def test_a_description_never_repeats_its_field() -> None:
    def mutate(m: Pb) -> None:
        m.end_user.ClearField("legal_name")
        m.items[0].elements.append("Xy")

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    for v in err.violations:
        assert v.field not in v.description
        assert not v.description.startswith(v.field)
    assert str(err).count("end_user.legal_name") == 1


def test_one_problem_keeps_the_one_line_message() -> None:
    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(_clear("end_user.legal_name")))
    assert str(err) == "end_user.legal_name: is required"
    assert [(v.field, v.description) for v in err.violations] == [
        ("end_user.legal_name", "is required")
    ]


def test_many_problems_are_capped_and_the_message_says_so() -> None:
    def mutate(m: Pb) -> None:
        for name in _TOP_LEVEL_REQUIRED:
            m.ClearField(name)
        first = m.items[0]
        for _ in range(model.MAX_ITEMS - 1):
            m.items.add().CopyFrom(first)
        for item in m.items:
            item.hs_code = "X"
            item.ClearField("quantity")
            item.elements[:] = ["Qq"] * model.MAX_ELEMENTS

    err = _refused(PAYLOAD_TYPE_PROTO, _proto_bytes(mutate))
    total = 8 + model.MAX_ITEMS * (2 + model.MAX_ELEMENTS)
    listed = len(err.violations)
    assert 1 <= listed <= MAX_FIELD_VIOLATIONS
    assert str(err).startswith(f"the certificate has {total} problems")
    assert f"the first {listed} are listed; at most {MAX_FIELD_VIOLATIONS}" in str(err)
    assert len(err.all_violations) == total  # what `eucgate validate` prints, uncapped
    assert err.all_violations[:listed] == err.violations
    # Field order: the model's (items come between end_user and end_use).
    assert [v.field for v in err.violations[:7]] == [
        *_TOP_LEVEL_REQUIRED[:5],
        "items[0].hs_code",
        "items[0].elements[0]",
    ]


def test_fit_violations_caps_count_and_bytes() -> None:
    short = [FieldViolation(f"f{i}", "is required", "PAYLOAD_MISSING_FIELD") for i in range(80)]
    assert len(fit_violations(short)) == MAX_FIELD_VIOLATIONS
    long = [FieldViolation(f"f{i}", "x" * 500, "PAYLOAD_INVALID_FIELD") for i in range(20)]
    kept = fit_violations(long)
    assert 1 <= len(kept) < 20
    assert sum(len(v.field) + len(v.description) + len(v.reason) for v in kept) <= VIOLATION_BYTES
    assert fit_violations([FieldViolation("f", "x" * 9000, "R")]) == (
        FieldViolation("f", "x" * 9000, "R"),
    )
