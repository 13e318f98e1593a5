"""CRLs dropped into the CRL directory join the signed bundle's, verified against a CA the
bundle trusts; the bundle decisions are made with names them by digest, so replay
loads the same CRLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.core.pki import verify_signatures
from eucgate.core.signedbundle import sign_bundle
from eucgate.errors import ConfigError
from eucgate.policysource import PolicySource
from eucgate.signing import issue_ca, issue_crl, sign_envelope
from structlog.testing import capture_logs

from tests.conftest import Pki
from tests.factories import sample_bundle

START = datetime(2026, 1, 1, tzinfo=UTC)
AT = datetime(2026, 6, 1, tzinfo=UTC)
LATER = START + timedelta(days=300)


def _pem(obj: x509.Certificate | x509.CertificateRevocationList) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _source(tmp_path: Path, bundle: Bundle) -> PolicySource:
    admin = Ed25519PrivateKey.generate()
    signed = tmp_path / "policy.dsse.json"
    signed.write_bytes(sign_bundle(bundle, admin).to_json())
    crl_dir = tmp_path / "crls"
    crl_dir.mkdir(exist_ok=True)
    return PolicySource(signed, (admin.public_key(),), crl_dir)


def _revoking(pki: Pki, number: int) -> x509.CertificateRevocationList:
    """A newer CRL of the end user's issuing CA that revokes the end user's leaf."""
    return issue_crl(
        (pki.intermediate_key, pki.intermediate),
        this_update=START + timedelta(days=number),
        next_update=LATER,
        revoked=[(pki.end_user_cert.serial_number, START, x509.ReasonFlags.key_compromise)],
        number=number,
    )


def _status(bundle: Bundle, pki: Pki) -> str:
    envelope = sign_envelope("text/plain", b"x", [(pki.end_user_key, pki.end_user_chain)])
    (result,) = verify_signatures(envelope, bundle.trust, AT)
    return result.failure or result.revocation


def test_an_empty_directory_leaves_the_signed_bundle(tmp_path: Path, pki: Pki) -> None:
    bundle = sample_bundle(pki)
    assert _source(tmp_path, bundle).read().digest == bundle.digest


def test_a_dropped_crl_revokes_and_the_bundle_replays_from_its_digest(
    tmp_path: Path, pki: Pki
) -> None:
    bundle = sample_bundle(pki)
    source = _source(tmp_path, bundle)
    assert _status(bundle, pki) == "good"
    # The issuing CA's certificate travels in envelopes, not the bundle: dropped beside.
    assert source.crl_dir is not None
    (source.crl_dir / "issuing-ca.pem").write_bytes(_pem(pki.intermediate))
    (source.crl_dir / "issuing-ca.crl").write_bytes(
        _revoking(pki, 2).public_bytes(serialization.Encoding.DER)
    )
    effective = source.read()
    assert effective.digest != bundle.digest
    assert _status(effective, pki) == "SIG_CERT_REVOKED"
    # What the gate stores by digest is all replay needs: the CRL is inside.
    again = parse_bundle(effective.canonical().decode("utf-8"), "stored")
    assert again.digest == effective.digest
    assert _status(again, pki) == "SIG_CERT_REVOKED"
    # Read again unchanged: the same digest, so a reload switches nothing.
    assert source.read().digest == effective.digest


def test_a_crl_of_an_anchor_needs_no_certificate(tmp_path: Path, pki: Pki) -> None:
    source = _source(tmp_path, sample_bundle(pki))
    newer = issue_crl((pki.root_key, pki.root), this_update=AT, next_update=LATER, number=5)
    assert source.crl_dir is not None
    (source.crl_dir / "root.pem").write_bytes(_pem(newer))
    assert _pem(newer).decode("ascii") in source.read().crls["end_user"]


def test_the_newest_crl_per_issuer_wins(tmp_path: Path, pki: Pki) -> None:
    source = _source(tmp_path, sample_bundle(pki))
    assert source.crl_dir is not None
    (source.crl_dir / "a.pem").write_bytes(_pem(pki.intermediate) + _pem(_revoking(pki, 3)))
    (source.crl_dir / "b.pem").write_bytes(_pem(_revoking(pki, 2)))
    added = set(source.read().crls["end_user"]) - set(sample_bundle(pki).crls["end_user"])
    (crl_pem,) = added
    number = x509.load_pem_x509_crl(crl_pem.encode()).extensions.get_extension_for_class(
        x509.CRLNumber
    )
    assert number.value.crl_number == 3


def test_a_crl_no_newer_than_the_bundles_adds_nothing(tmp_path: Path, pki: Pki) -> None:
    bundle = sample_bundle(pki)
    source = _source(tmp_path, bundle)
    assert source.crl_dir is not None
    (source.crl_dir / "root.pem").write_bytes(_pem(pki.root_crl))
    assert source.read().digest == bundle.digest


def test_unverifiable_crls_are_refused_with_a_log_line(tmp_path: Path, pki: Pki) -> None:
    bundle = sample_bundle(pki)
    source = _source(tmp_path, bundle)
    assert source.crl_dir is not None
    stranger = issue_ca("stranger CA", not_before=START, not_after=LATER)
    # Same name as the issuing CA, another key: a forged certificate and CRL.
    impostor = issue_ca(
        pki.intermediate.subject.rfc4514_string().removeprefix("CN="),
        issuer=stranger,
        not_before=START,
        not_after=LATER,
    )
    forged = issue_crl(impostor, this_update=AT, next_update=LATER, number=9)
    (source.crl_dir / "forged.pem").write_bytes(_pem(impostor[1]) + _pem(forged))
    (source.crl_dir / "issuing-ca.pem").write_bytes(_pem(pki.intermediate))
    (source.crl_dir / "stranger.pem").write_bytes(
        _pem(issue_crl(stranger, this_update=AT, next_update=LATER))
    )
    (source.crl_dir / "notes.txt").write_text("not a CRL")
    with capture_logs() as logs:
        effective = source.read()
    assert effective.digest == bundle.digest
    refused = {Path(e["file"]).name: e["reason"] for e in logs if e["event"] == "crl_refused"}
    assert (
        "does not verify with the key of CN=eucgate end-user issuing CA" in (refused["forged.pem"])
    )
    assert "no trust anchor or known CA" in refused["stranger.pem"]
    assert "not a DER CRL or certificate" in refused["notes.txt"]


def test_a_bad_crl_leaves_the_good_ones_in_use(tmp_path: Path, pki: Pki) -> None:
    source = _source(tmp_path, sample_bundle(pki))
    assert source.crl_dir is not None
    (source.crl_dir / "a-broken.pem").write_text(
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    )
    (source.crl_dir / "b-issuing.pem").write_bytes(_pem(pki.intermediate) + _pem(_revoking(pki, 2)))
    with capture_logs() as logs:
        effective = source.read()
    assert _status(effective, pki) == "SIG_CERT_REVOKED"
    assert [e["event"] for e in logs if e["event"] == "crl_refused"] == ["crl_refused"]


def test_a_missing_directory_is_crl_dir_unreadable(tmp_path: Path, pki: Pki) -> None:
    source = _source(tmp_path, sample_bundle(pki))
    assert source.crl_dir is not None
    source.crl_dir.rmdir()
    with pytest.raises(ConfigError) as caught:
        source.read()
    assert caught.value.reason == "BUNDLE_CRL_DIR_UNREADABLE"


def test_a_file_being_written_under_a_dot_name_is_skipped(tmp_path: Path, pki: Pki) -> None:
    bundle = sample_bundle(pki)
    source = _source(tmp_path, bundle)
    assert source.crl_dir is not None
    (source.crl_dir / ".int.crl.part").write_bytes(_pem(_revoking(pki, 2))[:40])
    with capture_logs() as logs:
        assert source.read().digest == bundle.digest
    assert not [e for e in logs if e["event"] == "crl_refused"]
