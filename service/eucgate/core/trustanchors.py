"""Trust anchors and CRLs as a bundle states them (PEM text): what makes an anchor
usable (the CA profile the chain builder enforces) and a CRL well-formed, checked when a
bundle is validated."""

from __future__ import annotations

from typing import Annotated

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import (
    AfterValidator,
    StrictStr,
)

from eucgate.core.pki import (
    MIN_RSA_BITS,
    ca_profile_problems,
    load_anchor_pems,
    load_crl_pem,
)


def anchor_certificates(pem: str) -> list[x509.Certificate]:
    certs = load_anchor_pems([pem])
    if not certs:
        raise ValueError("holds no PEM certificate")
    for cert in certs:
        try:
            key = cert.public_key()
        except UnsupportedAlgorithm as exc:
            raise ValueError(f"anchor key is not supported: {exc}") from None
        # The chain builder refuses Ed25519 issuers, so an anchor must be ECDSA or RSA.
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"anchor {cert.subject.rfc4514_string()} has an RSA key of {key.key_size} "
                f"bits; at least {MIN_RSA_BITS} are required"
            )
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"anchor {cert.subject.rfc4514_string()} is not an ECDSA or RSA key")
        # The chain builder would refuse every signer under such an anchor, with an OID
        # message at each submission; refuse it here, once, in words.
        problems = ca_profile_problems(cert)
        if problems:
            raise ValueError(
                f"anchor {cert.subject.rfc4514_string()!r} cannot act as a CA: "
                f"{'; '.join(problems)}"
            )
    return certs


def valid_anchor_pem(pem: str) -> str:
    try:
        anchor_certificates(pem)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("trust anchor 0: ")) from None
    return pem


AnchorPem = Annotated[StrictStr, AfterValidator(valid_anchor_pem)]


def valid_crl_pem(pem: str) -> str:
    load_crl_pem(pem)
    return pem


CrlPem = Annotated[StrictStr, AfterValidator(valid_crl_pem)]
