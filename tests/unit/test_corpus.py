"""The forgery and malformation corpus (tests/corpus): every case gets its exact answer.

Decided at the corpus reference time through the same path as the server. No case may
raise, hang or be approved unless the manifest says it is a control that must pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from eucgate.core.bundle import Bundle
from eucgate.core.pki import ChainCache

from tests.corpus import generate
from tests.corpus.judge import HERE, corpus_bundle, judge, manifest

MANIFEST = manifest()
REFERENCE = datetime.fromisoformat(MANIFEST["reference_time"].replace("Z", "+00:00"))
CASES = MANIFEST["cases"]
# The cases the issue names, by the corpus names that hold them.
REQUIRED = {
    "flipped_payload_byte",
    "flipped_signature_byte",
    "signature_without_pae",
    "payload_type_swapped",
    "key_of_another_role",
    "chain_to_unconfigured_root",
    "self_signed_leaf",
    "expired_leaf",
    "not_yet_valid_leaf",
    "revoked_leaf",
    "intermediate_without_ca_constraints",
    "rsa_1024_key",
    "ecdsa_signature_presented_as_ed25519",
    "signer_not_the_named_party",
    "homoglyph_organisation",
    "empty_payload",
    "payload_16_mib",
    "deeply_nested_payload",
    "deeply_nested_envelope",
    "invalid_base64_payload",
    "duplicate_payload_key",
    "duplicate_envelope_key",
}


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return corpus_bundle()


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    if "error" in case:
        return {"error": case["error"]}
    return {k: case[k] for k in ("outcome", "rules", "signers")}


def test_the_corpus_is_large_and_names_every_required_case() -> None:
    names = {c["name"] for c in CASES} | {c.name for c in generate.large_cases()}
    assert len(names) >= 40
    assert sorted(REQUIRED - names) == []
    assert sum(1 for c in CASES if c.get("outcome") == "APPROVED") >= 3  # controls


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any], bundle: Bundle) -> None:
    data = (HERE / case["file"]).read_bytes()
    assert judge(data, bundle, REFERENCE) == _expected(case)


def test_a_cache_of_verified_paths_changes_no_answer(bundle: Bundle) -> None:
    cache = ChainCache()
    for _ in range(2):  # the second pass is served from the cache
        for case in CASES:
            data = (HERE / case["file"]).read_bytes()
            assert judge(data, bundle, REFERENCE, cache) == _expected(case), case["name"]


@pytest.mark.timeout(60)
def test_large_cases_made_at_test_time(bundle: Bundle) -> None:
    for case in generate.large_cases(REFERENCE):
        assert judge(case.data, bundle, REFERENCE) == {"error": case.error}


def test_the_generator_still_makes_what_the_manifest_expects() -> None:
    fresh = generate.build(REFERENCE)
    assert [c.manifest() for c in fresh.cases] == CASES
    # Fresh keys, same answers: the committed files are one run of the generator.
    fresh_bundle = corpus_bundle(fresh.trust)
    for case in fresh.cases:
        assert judge(case.data, fresh_bundle, REFERENCE) == _expected(case.manifest()), case.name
