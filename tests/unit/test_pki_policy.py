"""Signature policy beyond the corpus: options of the bundle, the cache, signing time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from eucgate.core.decide import verification_time
from eucgate.core.pki import ChainCache, TrustPolicy, verify_signatures
from eucgate.signing import issue_ca, issue_crl, issue_signer, sign_envelope
from eucgate_client.dsse import Envelope, Signature

from tests.conftest import Pki
from tests.corpus.generate import manual
from tests.factories import sample_bundle

PAYLOAD_TYPE = "application/vnd.eucgate.euc.v1+json"
PAYLOAD = b'{"certificateNumber":"EUC-2026-0001"}'


def _leaf(pki: Pki, public_key: object, *extensions: x509.ExtensionType) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jay-Ushin Limited"),
                    x509.NameAttribute(x509.ObjectIdentifier("2.5.4.97"), "IEC:0588012345"),
                ]
            )
        )
        .issuer_name(pki.intermediate.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
    )
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(pki.intermediate_key, hashes.SHA256())


def test_rsa_pkcs1v15_only_when_the_policy_allows_it(pki: Pki, now: datetime) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _leaf(pki, key.public_key())
    pae = Envelope(payload_type=PAYLOAD_TYPE, payload=PAYLOAD).pae()
    envelope = manual(
        PAYLOAD_TYPE,
        PAYLOAD,
        key,
        [leaf, pki.intermediate],
        sig=key.sign(pae, padding.PKCS1v15(), hashes.SHA256()),
    )
    (refused,) = verify_signatures(envelope, pki.trust(), now)
    (allowed,) = verify_signatures(envelope, pki.trust(allow_rsa_pkcs1v15=True), now)
    assert (refused.failure, allowed.failure, allowed.key_algorithm) == (
        "SIG_INVALID",
        "",
        "rsa-2048",
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("subject_serial_number", ()),
        ("subject_organization_identifier", ("IEC:0588012345",)),
        ("san_directory_name", ("GSTIN:06AAACJ1234F1Z5",)),
    ],
)
def test_registrations_come_from_the_configured_field(
    pki: Pki, now: datetime, source: str, expected: tuple[str, ...]
) -> None:
    key = __import__("cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"])
    private = key.Ed25519PrivateKey.generate()
    san = x509.SubjectAlternativeName(
        [
            x509.DirectoryName(
                x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "GSTIN:06AAACJ1234F1Z5")])
            )
        ]
    )
    leaf = _leaf(pki, private.public_key(), san)
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(private, [leaf, pki.intermediate])])
    (result,) = verify_signatures(envelope, pki.trust(registration_source=source), now)
    assert (result.verified, result.registrations) == (True, expected)


def test_without_required_crls_revocation_is_not_checked(pki: Pki, now: datetime) -> None:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.end_user_key, pki.end_user_chain)])
    no_crls = TrustPolicy.from_anchors(pki.anchors())
    required = TrustPolicy.from_anchors(pki.anchors(), require_crls=True)
    (unchecked,) = verify_signatures(envelope, no_crls, now)
    (missing,) = verify_signatures(envelope, required, now)
    (good,) = verify_signatures(envelope, pki.trust(), now)
    assert (unchecked.revocation, missing.revocation, good.revocation) == (
        "not_checked",
        "unknown",
        "good",
    )
    assert missing.revocation_failure == "SIG_CRL_MISSING"
    assert missing.verified  # unknown revocation refers (SIG-004); it does not reject


def test_a_cached_path_is_used_only_under_the_same_anchors_and_times(
    pki: Pki, now: datetime
) -> None:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(pki.end_user_key, pki.end_user_chain)])
    cache = ChainCache()
    (first,) = verify_signatures(envelope, pki.trust(), now, cache=cache)
    assert first.verified
    # The end-user root is no longer trusted: the cached path must not vouch for it.
    consignee_only = TrustPolicy.from_anchors({"end_user": [pki.consignee_root]})
    (untrusted,) = verify_signatures(envelope, consignee_only, now, cache=cache)
    assert untrusted.failure == "SIG_UNTRUSTED_CHAIN"
    # A time after the intermediate expires: refused with or without the cache.
    late = datetime(2030, 6, 1, tzinfo=UTC)
    with_cache = verify_signatures(envelope, pki.trust(), late, cache=cache)
    without = verify_signatures(envelope, pki.trust(), late)
    assert with_cache == without
    assert with_cache[0].failure == "SIG_CERT_EXPIRED"


def test_a_cached_intermediate_is_still_checked_for_revocation(pki: Pki, now: datetime) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    root = issue_ca("cache root", not_before=start, not_after=start + timedelta(days=900))
    intermediate = issue_ca(
        "cache CA", issuer=root, not_before=start, not_after=start + timedelta(days=900)
    )
    key, leaf = issue_signer(
        intermediate,
        organization="X",
        registrations=[],
        common_name="x",
        country="IN",
        not_before=start,
        not_after=start + timedelta(days=365),
    )
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, [(key, [leaf, intermediate[1]])])
    end = start + timedelta(days=365)
    good_crls = [issue_crl(ca, this_update=start, next_update=end) for ca in (root, intermediate)]
    revoking = issue_crl(
        root,
        this_update=start,
        next_update=end,
        revoked=[(intermediate[1].serial_number, start, x509.ReasonFlags.ca_compromise)],
    )
    cache = ChainCache()
    good = TrustPolicy.from_anchors({"end_user": [root[1]]}, {"end_user": good_crls})
    bad = TrustPolicy.from_anchors({"end_user": [root[1]]}, {"end_user": [revoking, good_crls[1]]})
    assert verify_signatures(envelope, good, now, cache=cache)[0].verified
    assert verify_signatures(envelope, bad, now, cache=cache)[0].failure == "SIG_CERT_REVOKED"


def test_the_signing_time_is_believed_only_within_the_bundle_bounds() -> None:
    bundle = sample_bundle()
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    age = timedelta(seconds=bundle.parameters.max_signing_age_seconds)
    skew = timedelta(seconds=bundle.parameters.max_signing_skew_seconds)
    for signed_at, expected in (
        (now - age, now - age),
        (now - age - timedelta(seconds=1), now),
        (now + skew, now + skew),
        (now + skew + timedelta(seconds=1), now),
    ):
        assert verification_time(signed_at, bundle, now) == expected


def test_an_empty_signature_list_verifies_nothing(pki: Pki, now: datetime) -> None:
    envelope = Envelope(payload_type=PAYLOAD_TYPE, payload=PAYLOAD, signatures=())
    assert verify_signatures(envelope, pki.trust(), now) == ()
    bare = Envelope(PAYLOAD_TYPE, PAYLOAD, (Signature(sig=b"x"),))
    assert verify_signatures(bare, pki.trust(), now)[0].failure == "SIG_NO_CERTIFICATE"
