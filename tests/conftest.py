"""Fixtures shared by every test: a fixed clock, a signer PKI and the service key.

The PKI is real (cryptography-issued, ECDSA CAs) and made once per session. Import
`Pki` from `tests.conftest` to type a test's `pki` argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.core.pki import TrustPolicy
from eucgate.signing import CaKey, PrivateKey, issue_ca, issue_crl, issue_signer

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
END_USER_ORGANIZATION = "Jay-Ushin Limited"
END_USER_REGISTRATIONS = (("IEC", "0588012345"), ("GSTIN", "06AAACJ1234F1Z5"))


@dataclass(frozen=True)
class Pki:
    """Two signer hierarchies, valid 2026-01-01 to 2027-01-01 (CAs until 2030).

    end_user: root -> intermediate -> Ed25519 leaf for Jay-Ushin Limited.
    consignee: its own root -> ECDSA P-256 leaf (no intermediate).
    `*_chain` is what a signer attaches: leaf first, intermediates, no root.
    Each CA has an empty CRL issued 2026-01-01, next update 2027-01-01.
    """

    root_key: CaKey
    root: x509.Certificate
    intermediate_key: CaKey
    intermediate: x509.Certificate
    end_user_key: PrivateKey
    end_user_cert: x509.Certificate
    consignee_root_key: CaKey
    consignee_root: x509.Certificate
    consignee_key: PrivateKey
    consignee_cert: x509.Certificate
    root_crl: x509.CertificateRevocationList
    intermediate_crl: x509.CertificateRevocationList
    consignee_root_crl: x509.CertificateRevocationList

    @property
    def end_user_chain(self) -> Sequence[x509.Certificate]:
        return (self.end_user_cert, self.intermediate)

    @property
    def consignee_chain(self) -> Sequence[x509.Certificate]:
        return (self.consignee_cert,)

    def anchors(self) -> Mapping[str, Sequence[x509.Certificate]]:
        """Trust anchors per signer role, as `core.pki.verify_signatures` takes them."""
        return {"end_user": [self.root], "consignee": [self.consignee_root]}

    def crls(self) -> Mapping[str, Sequence[x509.CertificateRevocationList]]:
        """The CRLs per signer role."""
        return {
            "end_user": [self.root_crl, self.intermediate_crl],
            "consignee": [self.consignee_root_crl],
        }

    def trust(self, **options: bool | str) -> TrustPolicy:
        """Anchors and CRLs per role with CRLs required; `options` override the rest."""
        return TrustPolicy.from_anchors(
            self.anchors(), self.crls(), **{"require_crls": True, **options}
        )


@pytest.fixture
def now() -> datetime:
    """The tests' fixed clock: 2026-06-01T12:00:00Z."""
    return NOW


@pytest.fixture(scope="session")
def pki() -> Pki:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ca_end = datetime(2030, 1, 1, tzinfo=UTC)
    leaf_end = start + timedelta(days=365)
    root = issue_ca("eucgate end-user root", not_before=start, not_after=ca_end, path_length=1)
    intermediate = issue_ca(
        "eucgate end-user issuing CA",
        issuer=root,
        not_before=start,
        not_after=ca_end,
        path_length=0,
    )
    end_user_key, end_user_cert = issue_signer(
        intermediate,
        organization=END_USER_ORGANIZATION,
        registrations=END_USER_REGISTRATIONS,
        common_name="Jay-Ushin Limited EUC signing",
        country="IN",
        not_before=start,
        not_after=leaf_end,
    )
    consignee_root = issue_ca("eucgate consignee root", not_before=start, not_after=ca_end)
    consignee_key, consignee_cert = issue_signer(
        consignee_root,
        organization="Shin-Etsu Magnetics Co",
        registrations=[("JCN", "1234567890123")],
        common_name="Shin-Etsu Magnetics EUC signing",
        country="JP",
        key_type="p256",
        not_before=start,
        not_after=leaf_end,
    )
    crl_end = start + timedelta(days=365)
    return Pki(
        root_crl=issue_crl(root, this_update=start, next_update=crl_end),
        intermediate_crl=issue_crl(intermediate, this_update=start, next_update=crl_end),
        consignee_root_crl=issue_crl(consignee_root, this_update=start, next_update=crl_end),
        root_key=root[0],
        root=root[1],
        intermediate_key=intermediate[0],
        intermediate=intermediate[1],
        end_user_key=end_user_key,
        end_user_cert=end_user_cert,
        consignee_root_key=consignee_root[0],
        consignee_root=consignee_root[1],
        consignee_key=consignee_key,
        consignee_cert=consignee_cert,
    )


@pytest.fixture(scope="session")
def service_key() -> ed25519.Ed25519PrivateKey:
    """The service's Ed25519 key for receipts and checkpoints."""
    return ed25519.Ed25519PrivateKey.generate()
