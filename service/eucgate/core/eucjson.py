"""The usual shape of a proto3 JSON document, read straight into plain data.

Reading an EUC's JSON through protobuf (json_format.ParseDict, pure Python, then a walk
over the parsed message) cost more than deciding it: most of a replay's time, a quarter
of a submission's. Documents in the shape clients send (known keys, each value of its
field's own JSON type, timestamps in RFC 3339 with Z or +HH:MM, nothing over its bound)
are read here in one pass, to the plain data the protobuf path gives. Anything else gets
None, and the caller takes the protobuf path, whose answer and refusal messages are the
reference: this reader only ever declines, it never refuses. Tests hold the two paths
together over generated documents.

It covers the field kinds the EUC message uses: strings, bools, enums, Timestamps and
nested messages, singular or repeated. A descriptor with any other kind is refused when
the reader is built, not misread later. (Descriptors are typed Any: protobuf's stubs
describe them as a union of the pure-Python and upb classes.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

#: (message name, field name) -> the most UTF-8 bytes a string may take.
TextBound = Callable[[str, str], int]
#: (message name, field name) -> the most entries a repeated field may hold, or None.
EntriesBound = Callable[[str, str], int | None]
#: (enum descriptor, number) -> the value the plain data holds for it.
EnumMember = Callable[[Any, int], Any]

_STRING, _BOOL, _ENUM, _TIMESTAMP, _MESSAGE = range(5)
_ABSENT = object()
_DECLINE = object()  # not the usual shape: the protobuf path decides
_OMIT = object()  # proto3's default for a field without presence: left out, as protobuf does

# What Timestamp.FromJsonString accepts, narrowed to its common form: exact digit counts,
# an upper-case T, Z or a +HH:MM / -HH:MM offset. ASCII digits only.
_TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Field:
    name: str
    kind: int
    repeated: bool
    text_bytes: int = 0
    entries: int | None = None
    enum: Mapping[str, tuple[int, Any]] = field(default_factory=dict)
    message: _Message | None = None


@dataclass(slots=True)
class _Message:
    fields: list[_Field] = field(default_factory=list)
    by_key: dict[str, _Field] = field(default_factory=dict)


class JsonReader:
    """Reads documents of one message type; build once per type (it walks the
    descriptors), then `read` each document."""

    def __init__(
        self,
        descriptor: Any,
        text_bytes: TextBound,
        entries: EntriesBound,
        enum_member: EnumMember,
    ) -> None:
        built: dict[str, _Message] = {}

        def build(message: Any) -> _Message:
            if message.full_name in built:
                return built[message.full_name]
            out = built[message.full_name] = _Message()
            for fd in message.fields:
                f = _Field(fd.name, _kind(fd), fd.is_repeated)
                if fd.is_repeated:
                    f.entries = entries(message.name, fd.name)
                if f.kind == _STRING:
                    f.text_bytes = text_bytes(message.name, fd.name)
                elif f.kind == _ENUM:
                    f.enum = {
                        v.name: (v.number, enum_member(fd.enum_type, v.number))
                        for v in fd.enum_type.values
                    }
                elif f.kind == _MESSAGE:
                    f.message = build(fd.message_type)
                out.fields.append(f)
                # ParseDict takes the JSON name and the proto name alike.
                out.by_key[fd.json_name] = f
                out.by_key[fd.name] = f
            return out

        self._root = build(descriptor)

    def read(self, doc: Any) -> dict[str, Any] | None:
        """The plain data of `doc` (proto field names; unset strings, enums and lists left
        out; bools always there; timestamps as aware UTC datetimes; repeated fields as
        tuples), or None when `doc` is not in the usual shape."""
        return _message(self._root, doc)


def text_size(text: str, most: int) -> int:
    """`text`'s size in UTF-8 (a lone surrogate as 3 bytes) where it could be over `most`
    bytes, else its length, which is then no more than `most` either: a code point takes
    at most 4 bytes, so most strings need no encoding to be measured against a bound."""
    return len(text) if 4 * len(text) <= most else len(text.encode("utf-8", "surrogatepass"))


def _kind(fd: Any) -> int:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return _STRING
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return _BOOL
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return _ENUM
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == Timestamp.DESCRIPTOR.full_name:
            return _TIMESTAMP
        return _MESSAGE
    raise ValueError(f"{fd.full_name}: this reader does not handle its field type {fd.type}")


def _message(message: _Message, doc: Any) -> dict[str, Any] | None:
    if type(doc) is not dict:
        return None
    given: dict[str, Any] = {}
    for key, value in doc.items():
        f = message.by_key.get(key)
        # Unknown keys, a field under both its names, and nulls are for ParseDict to judge.
        if f is None or f.name in given or value is None:
            return None
        given[f.name] = value
    out: dict[str, Any] = {}
    for f in message.fields:
        value = given.get(f.name, _ABSENT)
        if f.kind == _BOOL and not f.repeated:
            if value is _ABSENT:
                out[f.name] = False
            elif type(value) is bool:
                out[f.name] = value
            else:
                return None
            continue
        if value is _ABSENT:
            continue
        if f.repeated:
            if type(value) is not list or (f.entries is not None and len(value) > f.entries):
                return None
            if not value:
                continue
            converted = tuple(_value(f, v, repeated=True) for v in value)
            if _DECLINE in converted:
                return None
            out[f.name] = converted
            continue
        one = _value(f, value, repeated=False)
        if one is _DECLINE:
            return None
        if one is not _OMIT:
            out[f.name] = one
    return out


def _value(f: _Field, value: Any, *, repeated: bool) -> Any:
    kind = f.kind
    if kind == _STRING:
        if type(value) is not str:
            return _DECLINE
        if text_size(value, f.text_bytes) > f.text_bytes:
            return _DECLINE
        return _OMIT if value == "" and not repeated else value
    if kind == _ENUM:
        found = f.enum.get(value) if type(value) is str else None
        if found is None:
            return _DECLINE
        number, member = found
        return _OMIT if number == 0 and not repeated else member
    if kind == _TIMESTAMP:
        return _timestamp(value)
    if kind == _MESSAGE:
        assert f.message is not None
        read = _message(f.message, value)
        return _DECLINE if read is None else read
    if type(value) is not bool:  # a repeated bool
        return _DECLINE
    return value


def _timestamp(value: Any) -> Any:
    """As Timestamp.FromJsonString then ToDatetime(tzinfo=UTC) give it, same arithmetic;
    years at the ends of Timestamp's range are left to them."""
    if type(value) is not str:
        return _DECLINE
    m = _TIMESTAMP_RE.fullmatch(value)
    if m is None:
        return _DECLINE
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not 2 <= year <= 9998:
        return _DECLINE
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return _DECLINE
    seconds = (naive - _EPOCH_NAIVE) // timedelta(seconds=1)
    fraction = m.group(7)
    nanos = round(float("0." + fraction) * 1e9) if fraction else 0
    if m.group(8) is None:
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60
        seconds += -offset if m.group(9) == "+" else offset
    return (_EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)).astimezone(UTC)
