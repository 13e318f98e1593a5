"""The verdict cache saves work and never changes a result, whatever the times.

A shared ChainCache is asked for one signer at verification and receive times drawn
around every moment at which an input changes (certificate validity, CRL windows,
revocation dates, compromise), in random order: each answer must equal a verification
without a cache.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from eucgate.core.pki import ChainCache, TrustPolicy, verify_signatures
from eucgate.signing import issue_ca, issue_crl, issue_signer, sign_envelope
from eucgate_client.dsse import Envelope
from hypothesis import given, settings
from hypothesis import strategies as st

PAYLOAD_TYPE = "application/vnd.eucgate.euc.v1+json"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _day(n: float) -> datetime:
    return START + timedelta(days=n)


def _setup() -> tuple[Envelope, Envelope, TrustPolicy, list[datetime]]:
    root = issue_ca("verdict root", not_before=_day(0), not_after=_day(900))
    ca = issue_ca("verdict CA", issuer=root, not_before=_day(10), not_after=_day(400))
    signers = [
        issue_signer(
            ca,
            organization=name,
            registrations=[],
            common_name=name,
            country="IN",
            not_before=_day(20),
            not_after=_day(300),
        )
        for name in ("Plain Signer", "Revoked Signer")
    ]
    (key, leaf), (revoked_key, revoked_leaf) = signers
    crls = [
        issue_crl(root, this_update=_day(5), next_update=_day(200)),
        issue_crl(
            ca,
            this_update=_day(15),
            next_update=_day(100),
            revoked=[(revoked_leaf.serial_number, _day(60), None)],
        ),
        issue_crl(
            ca,
            this_update=_day(90),
            next_update=_day(250),
            number=2,
            revoked=[(revoked_leaf.serial_number, _day(120), x509.ReasonFlags.key_compromise)],
        ),
    ]
    policy = TrustPolicy.from_anchors(
        {"end_user": [root[1]]}, {"end_user": crls}, require_crls=True
    )
    plain = sign_envelope(PAYLOAD_TYPE, b"{}", [(key, [leaf, ca[1]])])
    revoked = sign_envelope(PAYLOAD_TYPE, b"{}", [(revoked_key, [revoked_leaf, ca[1]])])
    moments = [_day(d) for d in (0, 5, 10, 15, 20, 60, 90, 100, 120, 200, 250, 300, 400, 900)]
    return plain, revoked, policy, moments


PLAIN, REVOKED, POLICY, MOMENTS = _setup()
_NEAR = [m + timedelta(microseconds=d) for m in MOMENTS for d in (-1, 0, 1)]
_TIMES = st.one_of(st.sampled_from(_NEAR), st.integers(0, 1000).map(_day))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _TIMES, _TIMES), min_size=1, max_size=12))
def test_a_cached_verdict_is_the_verdict_without_a_cache(
    asks: list[tuple[bool, datetime, datetime]],
) -> None:
    cache = ChainCache()
    for revoked, at, now in asks:
        envelope = REVOKED if revoked else PLAIN
        expected = verify_signatures(envelope, POLICY, at, now=now)
        assert verify_signatures(envelope, POLICY, at, now=now, cache=cache) == expected


@pytest.mark.parametrize(
    ("at", "now", "expected"),
    [
        (_day(30), _day(30), ("good", "")),
        (_day(30), _day(110), ("good", "")),  # compromised from day 120 on
        (_day(30), _day(130), ("", "SIG_CERT_REVOKED")),  # which counts at receipt
        (_day(70), _day(70), ("", "SIG_CERT_REVOKED")),
        (_day(30), _day(260), ("unknown", "")),  # no CRL of the CA current any more
    ],
)
def test_the_cache_follows_revocation_across_windows(
    at: datetime, now: datetime, expected: tuple[str, str]
) -> None:
    cache = ChainCache()
    verify_signatures(REVOKED, POLICY, _day(30), now=_day(30), cache=cache)  # warm
    (result,) = verify_signatures(REVOKED, POLICY, at, now=now, cache=cache)
    assert (result.revocation, result.failure) == expected


def test_a_hit_still_checks_the_envelope_signature() -> None:
    cache = ChainCache()
    assert verify_signatures(PLAIN, POLICY, _day(30), cache=cache)[0].verified
    (sig,) = PLAIN.signatures
    forged = Envelope(PAYLOAD_TYPE, b'{"x":1}', (sig,))
    (result,) = verify_signatures(forged, POLICY, _day(30), cache=cache)
    assert result.failure == "SIG_INVALID"
    assert result.certificate_digest  # the facts are still reported
    twice = Envelope(PAYLOAD_TYPE, b"{}", (sig, sig))
    second = verify_signatures(twice, POLICY, _day(30), cache=cache)[1]
    assert second.failure == "SIG_DUPLICATE"


def test_a_changed_policy_never_reuses_a_verdict() -> None:
    cache = ChainCache()
    assert verify_signatures(PLAIN, POLICY, _day(30), cache=cache)[0].verified
    other_root = issue_ca("another root", not_before=_day(0), not_after=_day(900))
    stranger = TrustPolicy.from_anchors({"end_user": [other_root[1]]})
    (result,) = verify_signatures(PLAIN, stranger, _day(30), cache=cache)
    assert result.failure == "SIG_UNTRUSTED_CHAIN"
