"""What eucgate answers for one corpus envelope, in the corpus manifest's terms.

The same path as the server's (`Envelope.from_json`, `Submission.from_envelope`,
`decide`), without gRPC, so every case can run in the unit suite.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from eucgate.core.bundle import Bundle
from eucgate.core.decide import decide
from eucgate.core.ledger import EmptyLedger
from eucgate.core.pki import ChainCache
from eucgate.core.submission import Submission
from eucgate.errors import InvalidSubmission
from eucgate_client.dsse import Envelope, EnvelopeError

from tests.factories import MAX_PAYLOAD_BYTES, MAX_SIGNATURES, sample_bundle_with

HERE = Path(__file__).resolve().parent


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HERE / "manifest.json").read_text())
    return loaded


def corpus_bundle(trust: dict[str, dict[str, list[str]]] | None = None) -> Bundle:
    """The sample bundle trusting the corpus roots and CRLs (trust.json by default)."""
    trust = trust or json.loads((HERE / "trust.json").read_text())
    return sample_bundle_with(
        {role: t["anchors"] for role, t in trust.items()},
        {role: t["crls"] for role, t in trust.items()},
    )


def judge(
    data: bytes, bundle: Bundle, now: datetime, cache: ChainCache | None = None
) -> dict[str, Any]:
    """{"error": reason} or {"outcome", "rules" (first-fired order, unique), "signers"}."""
    try:
        envelope = Envelope.from_json(data)
        submission = Submission.from_envelope(
            envelope, max_payload_bytes=MAX_PAYLOAD_BYTES, max_signatures=MAX_SIGNATURES
        )
    except EnvelopeError as exc:
        return {"error": exc.reason}
    except InvalidSubmission as exc:
        return {"error": exc.reason}
    decision = decide(submission, bundle, EmptyLedger(), now, chain_cache=cache)
    return {
        "outcome": decision.outcome.value,
        "rules": list(dict.fromkeys(r.rule_id for r in decision.reasons)),
        "signers": [s.failure or s.revocation_failure for s in decision.signers],
    }
