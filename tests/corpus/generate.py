"""Generate the forgery and malformation corpus: signed EUC envelopes that must not pass.

    python -m tests.corpus.generate        # rewrite tests/corpus/{cases,manifest,trust}

Every case is an envelope file (the bytes a client would send) and a manifest entry with
what eucgate must answer: an INVALID_ARGUMENT reason code for input that cannot be
decoded, or the outcome, the rule ids that fire and, per signature, its failure code
("" when it verifies; a revocation code when its revocation status is unknown). A few
valid envelopes are controls: without them a verifier that refuses everything would
pass. All certificates and CRLs are made relative to a reference time (REFERENCE for
the committed files; the tests decide at that time). `build(reference)` is also what
the gRPC test calls with the real clock, since a running server reads its own clock.
Cases too big to commit (a 16 MiB payload) are made at test time (`large_cases`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from eucgate import samples
from eucgate.core.model import PAYLOAD_TYPE_JSON, PAYLOAD_TYPE_PROTO
from eucgate.core.pki import keyid
from eucgate.signing import (
    Issuer,
    PrivateKey,
    add_signature,
    issue_ca,
    issue_crl,
    issue_signer,
)
from eucgate_client.dsse import Envelope, Signature
from eucgate_client.v1 import certificate_pb2 as pb
from google.protobuf import json_format

HERE = Path(__file__).resolve().parent
REFERENCE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
JAY = samples.JAY_USHIN
JAY_REGS = list(JAY.registrations)
CONSIGNEE = ("Sona Magnet Assemblies Private Limited", [("IEC", "0512077777")])


@dataclass
class Case:
    """One corpus case: the envelope bytes and what eucgate must answer."""

    name: str
    data: bytes
    error: str = ""  # INVALID_ARGUMENT reason, or "" for a decided case
    outcome: str = ""
    rules: tuple[str, ...] = ()
    signers: tuple[str, ...] = ()

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "file": f"cases/{self.name}.json"}
        if self.error:
            entry["error"] = self.error
        else:
            entry.update(outcome=self.outcome, rules=list(self.rules), signers=list(self.signers))
        return entry


@dataclass
class Corpus:
    reference: datetime
    cases: list[Case]
    trust: dict[str, dict[str, list[str]]]  # role -> {"anchors": [PEM], "crls": [PEM]}


@dataclass
class _Hierarchy:
    root: Issuer
    intermediate: Issuer
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)


class _Builder:
    """The PKIs of the corpus and helpers to sign as their signers."""

    def __init__(self, ref: datetime) -> None:
        self.ref = ref
        self.start = ref - timedelta(days=150)
        self.ca_end = ref + timedelta(days=1500)
        self.leaf_end = ref + timedelta(days=210)
        self.end_user = self._hierarchy("end-user")
        self.consignee = self._hierarchy("consignee")
        self.endorser = self._hierarchy("endorser")
        self.untrusted = self._hierarchy("unconfigured")
        # Endorser roots whose CRLs are forged, lapsed or absent (SIG-004 cases).
        self.forged_crl = self._hierarchy("endorser forged-CRL")
        self.lapsed_crl = self._hierarchy("endorser lapsed-CRL")
        self.no_crl = self._hierarchy("endorser no-CRL")
        # Revocations the end-user CRLs carry, filled in by the cases.
        self.revoked_leaves: list[tuple[int, datetime, x509.ReasonFlags | None]] = []
        self.revoked_intermediates: list[tuple[int, datetime, x509.ReasonFlags | None]] = []
        self.signed_at = ref - timedelta(days=1)

    def _hierarchy(self, label: str) -> _Hierarchy:
        root = issue_ca(
            f"corpus {label} root", not_before=self.start, not_after=self.ca_end, path_length=1
        )
        intermediate = issue_ca(
            f"corpus {label} issuing CA",
            issuer=root,
            not_before=self.start,
            not_after=self.ca_end,
            path_length=0,
        )
        return _Hierarchy(root, intermediate)

    def signer(
        self,
        hierarchy: _Hierarchy,
        organization: str = JAY.legal_name,
        registrations: Sequence[tuple[str, str]] = tuple(JAY_REGS),
        *,
        key_type: str = "ed25519",
        country: str = "IN",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> tuple[PrivateKey, list[x509.Certificate]]:
        key, leaf = issue_signer(
            hierarchy.intermediate,
            organization=organization,
            registrations=registrations,
            common_name=f"{organization} EUC signing",
            country=country,
            key_type=key_type,  # type: ignore[arg-type]
            not_before=not_before or self.start,
            not_after=not_after or self.leaf_end,
        )
        return key, [leaf, hierarchy.intermediate[1]]

    def custom_leaf(
        self,
        public_key: Any,
        *,
        issuer: Issuer | None = None,
        organization: str = JAY.legal_name,
        ca: bool = False,
        digital_signature: bool = True,
        eku: Sequence[x509.ObjectIdentifier] = (),
        self_signed_by: PrivateKey | None = None,
    ) -> x509.Certificate:
        """A leaf with exactly the extensions a case needs (issued by the end-user CA)."""
        issuer = issuer or self.end_user.intermediate
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "IN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                *(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{s}:{v}") for s, v in JAY_REGS),
                x509.NameAttribute(NameOID.COMMON_NAME, "corpus custom leaf"),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name if self_signed_by is not None else issuer[1].subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.start)
            .not_valid_after(self.leaf_end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=digital_signature, ca=ca), critical=True)
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if self_signed_by is not None:
            signing: Any = self_signed_by
            return builder.sign(signing, None if _is_ed(signing) else hashes.SHA256())
        return builder.sign(issuer[0], hashes.SHA256())

    def trust(self) -> dict[str, dict[str, list[str]]]:
        eu_root_crl = issue_crl(
            self.end_user.root,
            this_update=self.ref - timedelta(days=30),
            next_update=self.ref + timedelta(days=60),
            revoked=self.revoked_intermediates,
        )
        eu_int_crl = issue_crl(
            self.end_user.intermediate,
            this_update=self.ref - timedelta(days=30),
            next_update=self.ref + timedelta(days=60),
            revoked=self.revoked_leaves,
        )
        forger = ec.generate_private_key(ec.SECP256R1())
        forged_cert = self.forged_crl.intermediate[1]
        return {
            "end_user": _role([self.end_user.root[1]], [eu_root_crl, eu_int_crl]),
            "consignee": _role([self.consignee.root[1]], _current_crls(self.consignee, self.ref)),
            "endorser": _role(
                [h.root[1] for h in (self.endorser, self.forged_crl, self.lapsed_crl, self.no_crl)],
                [
                    *_current_crls(self.endorser, self.ref),
                    *_current_crls(self.lapsed_crl, self.ref - timedelta(days=90)),
                    # The forged-CRL root's own CRL is sound; its intermediate's CRL names
                    # the intermediate but is signed by another key.
                    _current_crls(self.forged_crl, self.ref)[0],
                    issue_crl(
                        (forger, forged_cert),
                        this_update=self.ref,
                        next_update=self.ref + timedelta(days=30),
                    ),
                    _current_crls(self.no_crl, self.ref)[0],  # the root's only
                ],
            ),
        }


def _is_ed(key: object) -> bool:
    return isinstance(key, ed25519.Ed25519PrivateKey)


def _usage(*, digital_signature: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=not digital_signature,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _current_crls(h: _Hierarchy, at: datetime) -> list[x509.CertificateRevocationList]:
    return [
        issue_crl(ca, this_update=at - timedelta(days=30), next_update=at + timedelta(days=60))
        for ca in (h.root, h.intermediate)
    ]


def _pem(obj: x509.Certificate | x509.CertificateRevocationList) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _role(
    anchors: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList]
) -> dict[str, list[str]]:
    return {"anchors": [_pem(c) for c in anchors], "crls": [_pem(c) for c in crls]}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# --- envelopes -------------------------------------------------------------------------


def euc(ref: datetime, number: str, **changes: Any) -> pb.EndUserCertificate:
    """The sample approvable EUC (signed a day before `ref`) with top-level changes."""
    msg = samples.certificate(ref, number=number)
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(msg, name)[:]
            getattr(msg, name).extend(value)
        else:
            getattr(msg, name).CopyFrom(value)
    return msg


def _payload(msg: pb.EndUserCertificate, payload_type: str) -> bytes:
    if payload_type == PAYLOAD_TYPE_JSON:
        return json_format.MessageToJson(msg).encode()
    return msg.SerializeToString(deterministic=True)


def signed(
    msg: pb.EndUserCertificate,
    signers: Sequence[tuple[PrivateKey, Sequence[x509.Certificate]]],
    payload_type: str = PAYLOAD_TYPE_PROTO,
) -> Envelope:
    envelope = Envelope(payload_type=payload_type, payload=_payload(msg, payload_type))
    for key, chain in signers:
        envelope = add_signature(envelope, key, chain)
    return envelope


def raw_signature(key: Any, data: bytes) -> bytes:
    """A signature over `data` exactly as given, by any key type (no PAE added)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(
            data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
        )
    return bytes(key.sign(data, ec.ECDSA(hashes.SHA256())))


def manual(
    payload_type: str, payload: bytes, key: Any, chain: Sequence[x509.Certificate], **sig: Any
) -> Envelope:
    """An envelope whose one signature is made by `key` over PAE, whatever the key."""
    pae = Envelope(payload_type=payload_type, payload=payload).pae()
    signature = Signature(
        sig=sig.pop("sig", None) or raw_signature(key, pae),
        keyid=sig.pop("keyid", keyid(chain[0].public_key())),
        certificates=tuple(_der(c) for c in chain),
    )
    return Envelope(payload_type=payload_type, payload=payload, signatures=(signature,))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _with_sigs(envelope: Envelope, *sigs: Signature) -> Envelope:
    return replace(envelope, signatures=sigs)


# --- the cases -------------------------------------------------------------------------

REJECT_UNSIGNED = ("SIG-001", "SIG-002")  # the only signature is bad: no end-user signature


def build(ref: datetime = REFERENCE) -> Corpus:
    """Every case, with certificates and CRLs relative to `ref`."""
    b = _Builder(ref)
    cases: list[Case] = []

    def decided(
        name: str, envelope: Envelope, outcome: str, rules: Sequence[str], *signers: str
    ) -> None:
        cases.append(
            Case(name, envelope.to_json(), outcome=outcome, rules=tuple(rules), signers=signers)
        )

    def invalid(name: str, data: bytes | Envelope, error: str) -> None:
        cases.append(Case(name, data.to_json() if isinstance(data, Envelope) else data, error))

    number = iter(range(1, 1000))

    def cert(**changes: Any) -> pb.EndUserCertificate:
        return euc(ref, f"CORPUS-{next(number):03d}", **changes)

    eu = b.signer(b.end_user)
    consignee_party = pb.Party(
        legal_name=CONSIGNEE[0],
        country_code="IN",
        registrations=[pb.Registration(scheme=s, value=v) for s, v in CONSIGNEE[1]],
    )
    consignee = b.signer(b.consignee, CONSIGNEE[0], CONSIGNEE[1])
    endorser = b.signer(b.endorser, "Directorate General of Foreign Trade", [("GOV", "DGFT")])

    # Controls: what must pass.
    decided("control_ed25519", signed(cert(), [eu]), "APPROVED", [], "")
    for kt in ("p256", "p384", "rsa2048"):
        decided(
            f"control_{kt}", signed(cert(), [b.signer(b.end_user, key_type=kt)]), "APPROVED", [], ""
        )
    decided(
        "control_json_with_consignee",
        signed(cert(consignee=consignee_party), [eu, consignee], PAYLOAD_TYPE_JSON),
        "APPROVED",
        [],
        "",
        "",
    )
    sm_magnets = [
        pb.Item(
            description="Sintered SmCo magnets",
            hs_code="8505.11",
            elements=["Sm"],
            form=pb.ITEM_FORM_MAGNET,
            quantity=pb.Quantity(value="50", unit="kg"),
        )
    ]
    decided(
        "control_endorsed_smco",
        signed(cert(items=sm_magnets), [eu, endorser]),
        "APPROVED",
        [],
        "",
        "",
    )

    # Tampering with signed bytes.
    good_json = signed(cert(), [eu], PAYLOAD_TYPE_JSON)
    text_at = good_json.payload.index(b"Rotor") + 2
    decided(
        "flipped_payload_byte",
        replace(good_json, payload=_flip(good_json.payload, text_at)),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )
    good = signed(cert(), [eu])
    sig0 = good.signatures[0]
    decided(
        "flipped_signature_byte",
        _with_sigs(good, replace(sig0, sig=_flip(sig0.sig, 7))),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )
    decided(
        "signature_without_pae",
        _with_sigs(good, replace(sig0, sig=raw_signature(eu[0], good.payload))),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )
    invalid(
        "payload_type_swapped",
        replace(good, payload_type=PAYLOAD_TYPE_JSON),
        "PAYLOAD_INVALID_JSON",
    )
    other_type = "application/vnd.eucgate.euc.v2+protobuf"
    invalid(
        "payload_type_unknown", replace(good, payload_type=other_type), "PAYLOAD_TYPE_UNSUPPORTED"
    )
    ecdsa_key = ec.generate_private_key(ec.SECP256R1())
    decided(
        "ecdsa_signature_presented_as_ed25519",
        _with_sigs(good, replace(sig0, sig=raw_signature(ecdsa_key, good.pae()))),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )
    decided(
        "truncated_signature",
        _with_sigs(good, replace(sig0, sig=sig0.sig[:32])),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )

    # Who signed.
    decided(
        "key_of_another_role",
        signed(cert(consignee=consignee_party), [consignee]),
        "REJECTED",
        ["SIG-002"],
        "",
    )
    decided(
        "endorser_alone",
        signed(cert(), [endorser]),
        "REJECTED",
        ["SIG-002"],
        "",
    )
    decided(
        "chain_to_unconfigured_root",
        signed(cert(), [b.signer(b.untrusted)]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_UNTRUSTED_CHAIN",
    )
    decided(
        "chain_missing_intermediate",
        signed(cert(), [(eu[0], eu[1][:1])]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_UNTRUSTED_CHAIN",
    )
    self_key = ed25519.Ed25519PrivateKey.generate()
    self_leaf = b.custom_leaf(self_key.public_key(), self_signed_by=self_key)
    decided(
        "self_signed_leaf",
        signed(cert(), [(self_key, [self_leaf])]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_SELF_SIGNED",
    )
    decided(
        "signer_not_the_named_party",
        signed(
            cert(),
            [b.signer(b.end_user, samples.UNLICENSED.legal_name, samples.UNLICENSED.registrations)],
        ),
        "REJECTED",
        ["SIG-003"],
        "",
    )
    # "Jay-Ushin" with a Cyrillic і (U+0456) for the Latin i.
    decided(
        "homoglyph_organisation",
        signed(cert(), [b.signer(b.end_user, "Jay-Ush\u0456n Limited")]),
        "REJECTED",
        ["SIG-003"],
        "",
    )
    decided(
        "registration_of_another_party",
        signed(cert(), [b.signer(b.end_user, JAY.legal_name, [("IEC", "0716054321")])]),
        "REJECTED",
        ["SIG-003"],
        "",
    )
    decided(
        "consignee_signer_not_the_consignee",
        signed(
            cert(consignee=consignee_party),
            [eu, b.signer(b.consignee, "Other Trading Co", [("IEC", "9999999999")])],
        ),
        "REJECTED",
        ["SIG-005"],
        "",
        "",
    )
    decided(
        "consignee_signature_without_consignee",
        signed(cert(), [eu, consignee]),
        "REJECTED",
        ["SIG-005"],
        "",
        "",
    )

    # Certificates: validity, usage, chain shape.
    decided(
        "expired_leaf",
        signed(cert(), [b.signer(b.end_user, not_after=ref - timedelta(days=2))]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_CERT_EXPIRED",
    )
    decided(
        "not_yet_valid_leaf",
        signed(cert(), [b.signer(b.end_user, not_before=ref - timedelta(hours=12))]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_CERT_NOT_YET_VALID",
    )
    # Signed 60 days ago (beyond the bundle's 30) with a certificate that expired since:
    # the claim is not believed, so the certificate is checked at receipt.
    old = ref - timedelta(days=60)
    stale = cert()
    stale.signatory.signed_at.FromDatetime(old)
    stale.issued_at.FromDatetime(old)
    stale.validity.not_before.FromDatetime(old)
    decided(
        "old_signing_time_expired_since",
        signed(stale, [b.signer(b.end_user, not_after=ref - timedelta(days=10))]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_CERT_EXPIRED",
    )
    # Intermediate without CA basic constraints: an end-entity certificate used as issuer.
    fake_ca_key = ec.generate_private_key(ec.SECP256R1())
    fake_ca = b.custom_leaf(fake_ca_key.public_key())
    leaf_key = ed25519.Ed25519PrivateKey.generate()
    under_fake = b.custom_leaf(leaf_key.public_key(), issuer=(fake_ca_key, fake_ca))
    decided(
        "intermediate_without_ca_constraints",
        signed(cert(), [(leaf_key, [under_fake, fake_ca])]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INTERMEDIATE_NOT_CA",
    )
    nds_key = ed25519.Ed25519PrivateKey.generate()
    decided(
        "leaf_without_digital_signature",
        signed(
            cert(),
            [
                (
                    nds_key,
                    [
                        b.custom_leaf(nds_key.public_key(), digital_signature=False),
                        b.end_user.intermediate[1],
                    ],
                )
            ],
        ),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_KEY_USAGE",
    )
    decided(
        "ca_certificate_as_signer",
        signed(cert(), [(b.end_user.intermediate[0], [b.end_user.intermediate[1]])]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_KEY_USAGE",
    )
    tls_key = ed25519.Ed25519PrivateKey.generate()
    decided(
        "tls_server_certificate_as_signer",
        signed(
            cert(),
            [
                (
                    tls_key,
                    [
                        b.custom_leaf(tls_key.public_key(), eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
                        b.end_user.intermediate[1],
                    ],
                )
            ],
        ),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_KEY_USAGE",
    )
    ds_key = ed25519.Ed25519PrivateKey.generate()
    decided(
        "document_signing_eku_is_fine",
        signed(
            cert(),
            [
                (
                    ds_key,
                    [
                        b.custom_leaf(
                            ds_key.public_key(), eku=[x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]
                        ),
                        b.end_user.intermediate[1],
                    ],
                )
            ],
        ),
        "APPROVED",
        [],
        "",
    )

    # Keys and algorithms.
    payload = _payload(cert(), PAYLOAD_TYPE_PROTO)
    for name, key, failure in (
        (
            "rsa_1024_key",
            rsa.generate_private_key(public_exponent=65537, key_size=1024),
            "SIG_KEY_TOO_WEAK",
        ),
        ("p192_key", ec.generate_private_key(ec.SECP192R1()), "SIG_KEY_TOO_WEAK"),
        ("secp256k1_key", ec.generate_private_key(ec.SECP256K1()), "SIG_KEY_NOT_ALLOWED"),
        ("p521_key", ec.generate_private_key(ec.SECP521R1()), "SIG_KEY_NOT_ALLOWED"),
    ):
        leaf = b.custom_leaf(key.public_key())
        decided(
            name,
            manual(PAYLOAD_TYPE_PROTO, payload, key, [leaf, b.end_user.intermediate[1]]),
            "REJECTED",
            REJECT_UNSIGNED,
            failure,
        )
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_leaf = b.custom_leaf(rsa_key.public_key())
    pae = Envelope(payload_type=PAYLOAD_TYPE_PROTO, payload=payload).pae()
    decided(
        "rsa_pkcs1v15_not_allowed",
        manual(
            PAYLOAD_TYPE_PROTO,
            payload,
            rsa_key,
            [rsa_leaf, b.end_user.intermediate[1]],
            sig=rsa_key.sign(pae, padding.PKCS1v15(), hashes.SHA256()),
        ),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )
    decided(
        "rsa_pss_other_salt_length",
        manual(
            PAYLOAD_TYPE_PROTO,
            payload,
            rsa_key,
            [rsa_leaf, b.end_user.intermediate[1]],
            sig=rsa_key.sign(
                pae, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20), hashes.SHA256()
            ),
        ),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_INVALID",
    )

    # Revocation.
    revoked = b.signer(b.end_user)
    b.revoked_leaves.append(
        (revoked[1][0].serial_number, b.signed_at - timedelta(days=3), x509.ReasonFlags.superseded)
    )
    decided(
        "revoked_leaf", signed(cert(), [revoked]), "REJECTED", REJECT_UNSIGNED, "SIG_CERT_REVOKED"
    )
    later = b.signer(b.end_user)
    b.revoked_leaves.append(
        (later[1][0].serial_number, b.signed_at + timedelta(hours=6), x509.ReasonFlags.superseded)
    )
    decided("revoked_after_signing", signed(cert(), [later]), "APPROVED", [], "")
    compromised = b.signer(b.end_user)
    b.revoked_leaves.append(
        (
            compromised[1][0].serial_number,
            b.signed_at + timedelta(hours=6),
            x509.ReasonFlags.key_compromise,
        )
    )
    decided(
        "key_compromised_after_claimed_signing",
        signed(cert(), [compromised]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_CERT_REVOKED",
    )
    second_int = issue_ca(
        "corpus end-user second issuing CA",
        issuer=b.end_user.root,
        not_before=b.start,
        not_after=b.ca_end,
        path_length=0,
    )
    b.revoked_intermediates.append(
        (
            second_int[1].serial_number,
            b.signed_at - timedelta(days=10),
            x509.ReasonFlags.ca_compromise,
        )
    )
    under_revoked = b.signer(_Hierarchy(b.end_user.root, second_int))
    decided(
        "revoked_intermediate",
        signed(cert(), [under_revoked]),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_CERT_REVOKED",
    )
    for name, hierarchy, code in (
        ("crl_not_signed_by_issuer", b.forged_crl, "SIG_CRL_BAD_SIGNATURE"),
        ("crl_expired", b.lapsed_crl, "SIG_CRL_NOT_CURRENT"),
        ("crl_missing", b.no_crl, "SIG_CRL_MISSING"),
    ):
        auth = b.signer(hierarchy, "Directorate General of Foreign Trade", [("GOV", "DGFT")])
        decided(name, signed(cert(), [eu, auth]), "REFERRED", ["SIG-004"], "", code)

    # Several signatures.
    decided(
        "duplicate_signature",
        _with_sigs(good, sig0, sig0),
        "REJECTED",
        ["SIG-001"],
        "",
        "SIG_DUPLICATE",
    )
    decided(
        "keyid_hint_of_another_key",
        _with_sigs(good, replace(sig0, keyid=keyid(consignee[1][0].public_key()))),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_KEYID_MISMATCH",
    )
    decided(
        "extra_signature_from_untrusted_key",
        signed(cert(), [eu, b.signer(b.untrusted)]),
        "REJECTED",
        ["SIG-001"],
        "",
        "SIG_UNTRUSTED_CHAIN",
    )
    decided(
        "signature_without_chain",
        _with_sigs(good, sig0, replace(sig0, certificates=())),
        "REJECTED",
        ["SIG-001"],
        "",
        "SIG_NO_CERTIFICATE",
    )
    decided(
        "garbage_certificate",
        _with_sigs(good, replace(sig0, certificates=(b"\x30\x03\x02\x01\x00",))),
        "REJECTED",
        REJECT_UNSIGNED,
        "SIG_BAD_CERTIFICATE",
    )
    decided(
        "endorsement_missing",
        signed(cert(items=sm_magnets), [eu]),
        "REFERRED",
        ["SIG-006"],
        "",
    )
    foreign = b.signer(b.endorser, "State Export Authority", [("GOV", "SEA")], country="CN")
    decided(
        "endorsement_from_another_country",
        signed(cert(items=sm_magnets), [eu, foreign]),
        "REFERRED",
        ["SIG-006"],
        "",
        "",
    )

    # Input that cannot be decoded.
    doc = json.loads(good.to_json())
    invalid(
        "invalid_base64_payload",
        _json({**doc, "payload": "not base64!"}),
        "ENVELOPE_INVALID_BASE64",
    )
    bad_sig = {**doc, "signatures": [{**doc["signatures"][0], "sig": "%%%"}]}
    invalid("invalid_base64_signature", _json(bad_sig), "ENVELOPE_INVALID_BASE64")
    text = good.to_json().decode()
    invalid(
        "duplicate_envelope_key",
        text.replace('"payloadType"', '"payloadType": "x/y", "payloadType"', 1).encode(),
        "ENVELOPE_DUPLICATE_KEY",
    )
    dup_payload = b'{"certificateNumber": "A", "certificateNumber": "B"}'
    invalid(
        "duplicate_payload_key",
        signed_raw(PAYLOAD_TYPE_JSON, dup_payload, eu),
        "PAYLOAD_INVALID_JSON",
    )
    invalid("deeply_nested_envelope", b"[" * 5000 + b"]" * 5000, "ENVELOPE_INVALID_JSON")
    nested = b'{"items": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    invalid(
        "deeply_nested_payload", signed_raw(PAYLOAD_TYPE_JSON, nested, eu), "PAYLOAD_INVALID_JSON"
    )
    invalid("empty_payload", signed_raw(PAYLOAD_TYPE_JSON, b"", eu), "PAYLOAD_EMPTY")
    invalid("no_signatures", _with_sigs(good), "SIGNATURES_EMPTY")
    invalid(
        "unknown_signature_extension",
        _json(
            {
                **doc,
                "signatures": [
                    {**doc["signatures"][0], "extension": {"kind": "x509/other", "ext": {}}}
                ],
            }
        ),
        "ENVELOPE_UNKNOWN_EXTENSION",
    )
    invalid("not_json", b"\xff\xfe garbage", "ENVELOPE_INVALID_JSON")
    return Corpus(reference=ref, cases=cases, trust=b.trust())


def signed_raw(
    payload_type: str, payload: bytes, signer: tuple[PrivateKey, Sequence[x509.Certificate]]
) -> Envelope:
    return add_signature(Envelope(payload_type=payload_type, payload=payload), *signer)


def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=2).encode()


def large_cases(ref: datetime = REFERENCE) -> list[Case]:
    """Cases too big to commit, made at test time: a 16 MiB payload, properly signed."""
    key = ed25519.Ed25519PrivateKey.generate()
    b = _Builder(ref)
    leaf = b.custom_leaf(key.public_key())
    envelope = signed_raw(
        PAYLOAD_TYPE_JSON, b"{" + b" " * (16 * 1024 * 1024 - 2) + b"}", (key, [leaf])
    )
    return [Case("payload_16_mib", envelope.to_json(), "PAYLOAD_TOO_LARGE")]


def write(corpus: Corpus, directory: Path = HERE) -> None:
    """Write cases/, manifest.json and trust.json; old case files are removed."""
    cases_dir = directory / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    for old in cases_dir.glob("*.json"):
        old.unlink()
    for case in corpus.cases:
        (cases_dir / f"{case.name}.json").write_bytes(case.data)
    manifest = {
        "reference_time": corpus.reference.isoformat().replace("+00:00", "Z"),
        "cases": [c.manifest() for c in corpus.cases],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (directory / "trust.json").write_text(json.dumps(corpus.trust, indent=2) + "\n")


if __name__ == "__main__":
    write(build())
