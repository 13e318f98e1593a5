"""The JSON fast path (core.eucjson) against the protobuf path it stands in for.

A JSON payload is read by core.eucjson when it has the usual shape, else by protobuf's
JSON mapping (json_format.ParseDict), which is the reference. Over generated documents,
mutated from real certificates, the two must give the same certificate or the same
refusal (reason, message, field, violations): the reader may decline, never differ.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from eucgate import samples
from eucgate.core import model
from eucgate.core.eucjson import JsonReader
from eucgate.core.model import PAYLOAD_TYPE_JSON, Certificate, certificate_from_payload
from eucgate.errors import InvalidSubmission
from eucgate_client.v1 import certificate_pb2
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import valid_certificate

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _doc(msg: certificate_pb2.EndUserCertificate, *, proto_names: bool = False) -> Any:
    return json_format.MessageToDict(msg, preserving_proto_field_name=proto_names)


SEEDS = [
    _doc(samples.certificate(NOW)),
    _doc(samples.certificate(NOW), proto_names=True),
    json.loads(model.encode_certificate(valid_certificate(), PAYLOAD_TYPE_JSON)),
]


def _reference(payload: bytes) -> Certificate | InvalidSubmission:
    """The protobuf path alone: what every JSON payload was read by before the reader."""
    try:
        doc = model._json_document(payload)
        return model.certificate_from_proto(model._parse_json(doc))
    except InvalidSubmission as exc:
        return exc


def _served(payload: bytes) -> Certificate | InvalidSubmission:
    try:
        return certificate_from_payload(PAYLOAD_TYPE_JSON, payload)
    except InvalidSubmission as exc:
        return exc


def _comparable(result: Certificate | InvalidSubmission) -> Any:
    if isinstance(result, InvalidSubmission):
        return ("refused", result.reason, str(result), result.field, result.violations)
    return ("certificate", result.model_dump(mode="json"))


def _assert_same_reading(doc: Any) -> None:
    payload = json.dumps(doc).encode()
    assert _comparable(_served(payload)) == _comparable(_reference(payload))
    read = model._JSON_READER.read(doc)
    if read is not None:  # then protobuf accepted it, in bounds, and converted it the same
        msg = model._parse_json(doc)
        problems: list[Any] = []
        model._check_bounds(msg)
        assert read == model._message_to_dict(msg, "", problems)
        assert problems == []


def _issued_at(stamp: str) -> Any:
    """The first seed with `issuedAt` set to `stamp`."""
    doc = copy.deepcopy(SEEDS[0])
    doc["issuedAt"] = stamp
    return doc


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_the_usual_shape_takes_the_fast_path(seed: int) -> None:
    doc = SEEDS[seed]
    assert model._JSON_READER.read(doc) is not None, "the reader declined a usual document"
    _assert_same_reading(doc)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-05-20T09:00:00Z",
        "2026-05-20T09:00:00.5Z",
        "2026-05-20T09:00:00.123456789Z",
        "2026-05-20T09:00:00.000000999Z",
        "2026-05-20T14:30:00+05:30",
        "2026-05-20T04:00:00.25-05:00",
        "2026-05-21T00:10:00+99:99",
    ],
)
def test_timestamps_read_as_protobuf_reads_them(stamp: str) -> None:
    doc = _issued_at(stamp)
    data = model._JSON_READER.read(doc)
    assert data is not None
    ts = Timestamp()
    ts.FromJsonString(stamp)
    assert data["issued_at"] == ts.ToDatetime(tzinfo=UTC)
    assert data["issued_at"].tzinfo is UTC
    _assert_same_reading(doc)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-05-20t09:00:00Z",
        "2026-5-20T09:00:00Z",
        "2026-02-30T09:00:00Z",
        "2026-05-20T09:00:60Z",
        "2026-05-20T09:00:00.1234567891Z",
        "2026-05-20T09:00:00",
        "0001-01-01T00:00:00Z",
        "2026-05-20T09:00:00Z ",
        "２０２６-05-20T09:00:00Z",
    ],
)
def test_unusual_timestamps_are_left_to_protobuf(stamp: str) -> None:
    doc = _issued_at(stamp)
    assert model._JSON_READER.read(doc) is None
    _assert_same_reading(doc)


def test_a_field_under_both_names_and_nulls_are_left_to_protobuf() -> None:
    both = copy.deepcopy(SEEDS[0])
    both["certificate_number"] = both["certificateNumber"]
    null = copy.deepcopy(SEEDS[0])
    null["consignee"] = None
    for doc in (both, null):
        assert model._JSON_READER.read(doc) is None
        _assert_same_reading(doc)


def test_a_reader_is_not_built_for_field_types_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="does not handle"):
        JsonReader(Timestamp.DESCRIPTOR, lambda m, f: 40, lambda m, f: None, lambda e, n: n)


# --- generated documents ------------------------------------------------------------

_ENUM_NAMES = sorted(
    {v.name for enum in certificate_pb2.DESCRIPTOR.enum_types_by_name.values() for v in enum.values}
)
_FIELD_NAMES = sorted(
    {
        name
        for message in certificate_pb2.DESCRIPTOR.message_types_by_name.values()
        for f in message.fields
        for name in (f.name, f.json_name)
    }
)
_stamps = st.one_of(
    st.builds(
        lambda moment, digits, offset: (
            moment.replace(tzinfo=None).isoformat(timespec="seconds")
            + (("." + digits) if digits else "")
            + offset
        ),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.text(alphabet="0123456789", max_size=10),
        st.sampled_from(["Z", "+05:30", "-00:00", "+00:00", "-11:59", "", "z", "+0530"]),
    ),
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,10})?"
        r"(Z|[+-][0-9]{1,2}:[0-9]{2})?\Z"
    ),
)
_texts = st.one_of(
    st.text(max_size=12),
    st.integers(0, 2100).map(lambda n: "x" * n),
    st.integers(0, 700).map(lambda n: "€" * n),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _texts,
    _stamps,
    st.sampled_from(_ENUM_NAMES),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=6,
)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside `node`."""
    found: list[tuple[Any, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        keys: list[Any] = (
            list(item)
            if isinstance(item, dict)
            else list(range(len(item)))
            if isinstance(item, list)
            else []
        )
        for key in keys:
            found.append((item, key))
            stack.append(item[key])
    return found


@st.composite
def _documents(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "delete", "rename", "grow"]))
        if action == "replace":
            container[key] = draw(_values)
        elif action == "delete":
            del container[key]
        elif action == "rename" and isinstance(container, dict):
            container[draw(st.sampled_from(_FIELD_NAMES) | _texts)] = container.pop(key)
        elif action == "grow" and isinstance(container[key], list):
            container[key].extend(container[key] * draw(st.integers(1, 60)))
        elif action == "grow" and isinstance(container[key], dict):
            container[key][draw(st.sampled_from(_FIELD_NAMES))] = draw(_values)
    return doc


_EDGE_VALUES: list[Any] = [
    "",
    "x" * 41,
    "x" * 2001,
    0,
    1.5,
    True,
    False,
    None,
    [],
    [""],
    {},
    *sorted(n for n in _ENUM_NAMES if n.endswith("UNSPECIFIED")),
    "2026-05-20T09:00:00Z",
]


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_edge_values_in_every_slot_read_the_same(seed: int) -> None:
    """Each slot of a real certificate in turn given each of proto3's edge values (empty
    text, the zero enum, empty lists and messages, wrong types, over-long text)."""
    slots = len(_slots(SEEDS[seed]))
    for i in range(slots):
        for value in _EDGE_VALUES:
            doc = copy.deepcopy(SEEDS[seed])
            container, key = _slots(doc)[i]
            container[key] = value
            _assert_same_reading(doc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
def test_generated_documents_read_the_same_on_both_paths(doc: Any) -> None:
    _assert_same_reading(doc)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.just(UTC)
        | st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-1439, 1439)),
    ),
    st.text(alphabet="0123456789", min_size=0, max_size=9),
)
def test_valid_timestamps_take_the_fast_path_and_agree(moment: datetime, digits: str) -> None:
    offset = moment.strftime("%z")
    stamp = (
        moment.replace(tzinfo=None).isoformat(timespec="seconds")
        + ("." + digits if digits else "")
        + ("Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}")
    )
    doc = _issued_at(stamp)
    assert model._JSON_READER.read(doc) is not None, stamp
    _assert_same_reading(doc)
