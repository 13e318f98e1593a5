"""Log entries for tests and benchmarks: cheap to make, and true to their digests.

Each entry carries a real DSSE envelope (protobuf) and a decision JSON whose euc digest,
bundle digest and clock reading agree with it, so `check_entry` passes on it unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from eucgate.core.canonical import canonical_json
from eucgate.core.receipt import rfc3339
from eucgate.log.entry import encode_entry
from eucgate.store.base import DecisionRecord
from eucgate_client.dsse import Envelope, Signature

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BUNDLE = "ab" * 32
PAYLOAD_TYPE = "application/vnd.eucgate.euc.v1+json"


def make_record(n: int) -> DecisionRecord:
    payload = b'{"certificateNumber":"EUC-%08d","padding":"%s"}' % (n, b"x" * 1500)
    envelope = Envelope(
        PAYLOAD_TYPE, payload, (Signature(sig=hashlib.sha512(payload).digest(), keyid="k"),)
    ).to_proto()
    envelope_bytes = envelope.SerializeToString(deterministic=True)
    decided_at = T0 + timedelta(seconds=n)
    decision = canonical_json(
        {
            "outcome": "APPROVED",
            "reasons": [],
            "euc_digest": hashlib.sha256(payload).hexdigest(),
            "bundle_digest": BUNDLE,
            "decided_at": rfc3339(decided_at),
        }
    )
    return DecisionRecord(
        decision_id=f"dec_{n:026d}",
        caller="anonymous",
        request_id=f"req-{n}",
        envelope_digest=hashlib.sha256(envelope_bytes).hexdigest(),
        envelope=envelope_bytes,
        decision=decision,
        receipt=b"",
        outcome="APPROVED",
        decided_at=decided_at,
        bundle_digest=BUNDLE,
        importer_registrations=(),
    )


def entries(count: int) -> Iterator[bytes]:
    for n in range(count):
        yield encode_entry(make_record(n))
