"""The default request id, pinned by tests/vectors/request-ids.json: the Node client's
test reads the same file, so both clients derive the same id from the same envelope (a
retry from either returns the first decision)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from eucgate_client.client import envelope_request_id
from eucgate_client.dsse import Envelope, Signature

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "request-ids.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]


def _envelope(case: dict[str, Any]) -> Envelope:
    return Envelope(
        payload_type=case["payload_type"],
        payload=base64.b64decode(case["payload"]),
        signatures=tuple(
            Signature(
                sig=base64.b64decode(s["sig"]),
                keyid=s["keyid"],
                certificates=tuple(base64.b64decode(c) for c in s["certificates"]),
            )
            for s in case["signatures"]
        ),
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_request_id_of_the_vector(case: dict[str, Any]) -> None:
    envelope = _envelope(case)
    assert envelope_request_id(envelope) == case["request_id"]
    # The DSSE JSON form of the same envelope gets the same id.
    assert envelope_request_id(envelope_json=envelope.to_json()) == case["request_id"]
