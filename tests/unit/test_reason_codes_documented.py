"""Every reason code the code can emit, and every rule of the sample bundle, is documented."""

from __future__ import annotations

import re
from pathlib import Path

from eucgate.config import SAMPLE_BUNDLE
from eucgate.core.decide import ENGINE_RULE_ID
from eucgate.policyfiles import load_bundle

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "reason-codes.md").read_text()
PREFIXES = (
    "ENVELOPE|PAYLOAD|SIGNATURES|REQUEST|DECISION|PAGE|OUTCOME|SIG|RECEIPT|DEADLINE|STORE"
    "|LOG|PROOF|CHECKPOINT|BUNDLE|POLICY|REPLAY|LICENCE|SHIPMENT|QUOTA|REVIEW|REFERRAL"
    "|CALLER|ROLE|IMPORTER|LEAF"
)
CODE = re.compile(rf'"((?:{PREFIXES})_[A-Z0-9_]+)"')


def _emitted() -> set[str]:
    sources = [*ROOT.joinpath("service").rglob("*.py"), *ROOT.joinpath("clients").rglob("*.py")]
    return {m for p in sources if "/v1/" not in p.as_posix() for m in CODE.findall(p.read_text())}


def test_every_emitted_code_is_documented() -> None:
    codes = _emitted()
    assert len(codes) > 30, "the scan found too few codes to be looking in the right place"
    missing = sorted(c for c in codes if f"`{c}`" not in DOC)
    assert not missing, f"document these in docs/reason-codes.md: {missing}"


def test_every_sample_rule_is_documented() -> None:
    ids = {rule.id for rule in load_bundle(SAMPLE_BUNDLE).rules} | {ENGINE_RULE_ID}
    missing = sorted(i for i in ids if f"`{i}`" not in DOC)
    assert not missing, f"document these rule ids in docs/reason-codes.md: {missing}"
