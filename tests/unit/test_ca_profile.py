"""The CA profile: an unusable root is refused when a bundle is validated, and an
intermediate that breaks the profile is named, in words, in the signature's reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from eucgate.core.bundleload import parse_bundle
from eucgate.core.pki import TrustPolicy, ca_profile_problems, verify_signatures
from eucgate.errors import BundleError
from eucgate.signing import CaKey, issue_ca, issue_signer, sign_envelope

from tests.conftest import END_USER_ORGANIZATION
from tests.factories import sample_bundle

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
SIGN_ONLY = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
CA_TRUE = x509.BasicConstraints(ca=True, path_length=None)
Extensions = list[tuple[x509.ExtensionType, bool]]


def _ca(
    cn: str,
    extensions: Callable[[ec.EllipticCurvePrivateKey], Extensions],
    issuer: tuple[CaKey, x509.Certificate] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signing_key, issuer_name = (key, name) if issuer is None else (issuer[0], issuer[1].subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=3650))
    )
    for extension, critical in extensions(key):
        builder = builder.add_extension(extension, critical=critical)
    return key, builder.sign(signing_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


PROFILES: dict[str, tuple[Callable[[ec.EllipticCurvePrivateKey], Extensions], str]] = {
    # What `openssl req -x509 -new` writes with its default configuration.
    "no keyUsage": (lambda k: [(CA_TRUE, True)], "has no keyUsage extension"),
    "no keyCertSign": (lambda k: [(CA_TRUE, True), (SIGN_ONLY, True)], "lacks keyCertSign"),
    "basicConstraints not critical": (
        lambda k: [(CA_TRUE, False), (CA_USAGE, True)],
        "basicConstraints is not marked critical",
    ),
    "no basicConstraints": (
        lambda k: [(CA_USAGE, True)],
        "has no basicConstraints extension",
    ),
    "authorityKeyIdentifier critical": (
        lambda k: [
            (CA_TRUE, True),
            (CA_USAGE, True),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(k.public_key()), True),
        ],
        "authorityKeyIdentifier is marked critical",
    ),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_root_that_breaks_the_profile_is_named_and_really_unusable(profile: str) -> None:
    extensions, words = PROFILES[profile]
    key, root = _ca(f"{profile} root", extensions)
    assert any(words in p for p in ca_profile_problems(root))
    # The chain builder refuses a signer under it, which is why the bundle refuses it.
    leaf_key, leaf = issue_signer(
        (key, root),
        organization=END_USER_ORGANIZATION,
        registrations=[("IEC", "0588012345")],
        common_name="signer",
        country="IN",
        not_before=START,
        not_after=START + timedelta(days=365),
    )
    envelope = sign_envelope("text/plain", b"x", [(leaf_key, [leaf])])
    (result,) = verify_signatures(envelope, TrustPolicy.from_anchors({"end_user": [root]}), NOW)
    assert result.failure == "SIG_UNTRUSTED_CHAIN"
    assert f"trust anchor 'CN={profile} root' cannot act as a CA" in result.detail
    assert words in result.detail
    assert "2.5.29." not in result.detail  # words, not cryptography's OID message


def test_a_well_made_ca_has_no_problem() -> None:
    _, root = issue_ca("good root", not_before=START, not_after=START + timedelta(days=365))
    _, plain = _ca("plain", lambda k: [(CA_TRUE, True), (CA_USAGE, False)])
    assert ca_profile_problems(root) == ()
    assert ca_profile_problems(plain) == ()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_bundle_refuses_an_unusable_anchor_naming_role_subject_and_extension(
    profile: str,
) -> None:
    extensions, words = PROFILES[profile]
    _, root = _ca(f"{profile} root", extensions)
    with pytest.raises(BundleError) as caught:
        sample_bundle().with_trust_anchors({"consignee": [_pem(root)]})
    message = str(caught.value)
    assert "trust_anchors.consignee[0]" in message
    assert f"'CN={profile} root' cannot act as a CA" in message
    assert words in message


def test_bundle_file_error_gives_the_line_of_the_unusable_anchor() -> None:
    _, root = _ca("line root", PROFILES["no keyUsage"][0])
    data = sample_bundle().model_dump(mode="json")
    data["trust_anchors"]["endorser"] = [_pem(root)]
    text = yaml.safe_dump(data, sort_keys=False)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("  endorser:"))
    with pytest.raises(BundleError) as caught:
        parse_bundle(text, "policy.yaml")
    assert str(caught.value).startswith(f"policy.yaml:{line + 1}: trust_anchors.endorser[0]: ")
    assert "has no keyUsage extension" in str(caught.value)
    # Only the anchor's own error: not also "the list is too short" for the role.
    assert len(str(caught.value).splitlines()) == 1


def test_an_intermediate_without_critical_basic_constraints_is_named_in_words() -> None:
    root_key, root = issue_ca(
        "sound root", not_before=START, not_after=START + timedelta(days=3650)
    )
    issuing = _ca(
        "loose issuing CA",
        lambda k: [(CA_TRUE, False), (CA_USAGE, True)],
        issuer=(root_key, root),
    )
    leaf_key, leaf = issue_signer(
        issuing,
        organization=END_USER_ORGANIZATION,
        registrations=[("IEC", "0588012345")],
        common_name="signer",
        country="IN",
        not_before=START,
        not_after=START + timedelta(days=365),
    )
    envelope = sign_envelope("text/plain", b"x", [(leaf_key, [leaf, issuing[1]])])
    policy = TrustPolicy.from_anchors({"end_user": [root], "consignee": [issuing[1]]})
    (result,) = verify_signatures(envelope, policy, NOW)
    assert result.failure == "SIG_UNTRUSTED_CHAIN"
    assert (
        "end_user: intermediate 'CN=loose issuing CA' cannot act as a CA: basicConstraints "
        "is not marked critical"
    ) in result.detail
    assert "consignee: trust anchor 'CN=loose issuing CA'" in result.detail


def test_a_chain_to_another_root_keeps_the_builder_message() -> None:
    _, root = issue_ca("trusted root", not_before=START, not_after=START + timedelta(days=3650))
    other = issue_ca("other root", not_before=START, not_after=START + timedelta(days=3650))
    leaf_key, leaf = issue_signer(
        other,
        organization=END_USER_ORGANIZATION,
        registrations=[("IEC", "0588012345")],
        common_name="signer",
        country="IN",
        not_before=START,
        not_after=START + timedelta(days=365),
    )
    envelope = sign_envelope("text/plain", b"x", [(leaf_key, [leaf])])
    (result,) = verify_signatures(envelope, TrustPolicy.from_anchors({"end_user": [root]}), NOW)
    assert result.failure == "SIG_UNTRUSTED_CHAIN"
    assert "cannot act as a CA" not in result.detail
