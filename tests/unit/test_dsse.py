"""DSSE envelope: PAE vector, JSON and protobuf round trips, strict parsing."""

from __future__ import annotations

import base64
import json

import pytest
from eucgate_client.dsse import Envelope, EnvelopeError, Signature, pae


def _envelope() -> Envelope:
    return Envelope(
        payload_type="application/vnd.eucgate.euc.v1+json",
        payload=b'{"certificate_number":"EUC-1"}\xff',
        signatures=(
            Signature(sig=b"\x01" * 64, keyid="ab" * 32, certificates=(b"leaf", b"ca")),
            Signature(sig=b"\x02" * 70),
        ),
    )


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_pae_matches_the_dsse_spec_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", b"") == b"DSSEv1 3 t\xc3\xa9 0 "


def test_json_round_trip_keeps_every_byte() -> None:
    env = _envelope()
    assert Envelope.from_json(env.to_json()) == env


def test_proto_round_trip_keeps_every_byte() -> None:
    env = _envelope()
    assert Envelope.from_proto(env.to_proto()) == env
    assert env.digest_input() == Envelope.from_json(env.to_json()).digest_input()


def test_url_safe_base64_is_accepted() -> None:
    payload = b"\xfb\xff\xfe"  # standard base64 "+//+", URL-safe "-__-"
    doc = {
        "payload": base64.urlsafe_b64encode(payload).decode(),
        "payloadType": "t",
        "signatures": [{"sig": base64.urlsafe_b64encode(b"\xff\xfe").decode()}],
    }
    env = Envelope.from_json(_json(doc))
    assert env.payload == payload
    assert env.signatures[0].sig == b"\xff\xfe"
    assert "-" in doc["payload"] or "_" in doc["payload"]


def test_unknown_top_level_fields_are_ignored() -> None:
    doc = {"payload": "", "payloadType": "t", "signatures": [], "extra": 1}
    assert Envelope.from_json(_json(doc)).payload == b""


@pytest.mark.parametrize(
    ("data", "reason", "field"),
    [
        (
            b'{"payload": "!!", "payloadType": "t", "signatures": []}',
            "ENVELOPE_INVALID_BASE64",
            "payload",
        ),
        (
            b'{"payload": "YQ=a", "payloadType": "t", "signatures": []}',
            "ENVELOPE_INVALID_BASE64",
            "payload",
        ),
        (
            b'{"payload": "", "payloadType": "t", "signatures": [{"sig": "a b"}]}',
            "ENVELOPE_INVALID_BASE64",
            "signatures[0].sig",
        ),
        (
            b'{"payload": "", "payload": "", "payloadType": "t", "signatures": []}',
            "ENVELOPE_DUPLICATE_KEY",
            "payload",
        ),
        (b'[{"payload": ""}]', "ENVELOPE_INVALID_JSON", ""),
        (b"{", "ENVELOPE_INVALID_JSON", ""),
        (b"\xff", "ENVELOPE_INVALID_JSON", ""),
        (b'{"payloadType": "t", "signatures": []}', "ENVELOPE_MISSING_FIELD", "payload"),
        (b'{"payload": "", "signatures": []}', "ENVELOPE_MISSING_FIELD", "payloadType"),
        (b'{"payload": "", "payloadType": "t"}', "ENVELOPE_INVALID_FIELD", "signatures"),
        (
            b'{"payload": "", "payloadType": "t", "signatures": [{}]}',
            "ENVELOPE_MISSING_FIELD",
            "signatures[0].sig",
        ),
        (
            b'{"payload": 1, "payloadType": "t", "signatures": []}',
            "ENVELOPE_INVALID_FIELD",
            "payload",
        ),
        (
            b'{"payload": "", "payloadType": "t", "signatures": [{"sig": "", "keyid": 3}]}',
            "ENVELOPE_INVALID_FIELD",
            "signatures[0].keyid",
        ),
        (
            b'{"payload": "", "payloadType": "t", "signatures": '
            b'[{"sig": "", "extension": {"kind": "other", "ext": {}}}]}',
            "ENVELOPE_UNKNOWN_EXTENSION",
            "signatures[0].extension",
        ),
    ],
)
def test_malformed_json_gives_its_reason(data: bytes, reason: str, field: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        Envelope.from_json(data)
    assert info.value.reason == reason
    assert info.value.field == field
