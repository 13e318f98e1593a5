"""Run a bundle's own test cases (`eucgate policy test`) through the real decide().

Each case is signed with a throw-away PKI made for the run: its root becomes the
bundle's end-user trust anchor, so a case exercises the policy's rules, not the
operator's keys. Signature rules get their own cases through `signer` and `tamper`.
`CasePki`, `case_bundle` and `case_envelope` let a test send the same cases to a real
server instead of calling decide().
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from eucgate_client.dsse import Envelope
from google.protobuf import json_format

from eucgate.core.bundle import Bundle
from eucgate.core.bundletests import BundleTestCase, BundleTests
from eucgate.core.decide import decide
from eucgate.core.ledger import EmptyLedger
from eucgate.core.model import PAYLOAD_TYPE_JSON
from eucgate.core.registry import (
    EmptyRegistry,
    RegistryEntry,
    RegistryView,
    SnapshotRegistry,
    issuers_of,
)
from eucgate.core.submission import Submission
from eucgate.errors import EucgateError
from eucgate.signing import Issuer, PrivateKey, issue_ca, issue_crl, issue_signer, sign_envelope

# Wide enough for any case's signing time; these keys live only for one run.
_PKI_FROM = datetime(2000, 1, 1, tzinfo=UTC)
_PKI_UNTIL = datetime(2099, 12, 31, tzinfo=UTC)
_OTHER_ORG = ("Unrelated Trading Company", (("IEC", "9999999999"),))


@dataclass(frozen=True)
class CaseResult:
    """A case's expectation beside what decide() said; `error` when it could not run."""

    name: str
    expected_outcome: str
    expected_rules: tuple[str, ...]
    outcome: str
    rules: tuple[str, ...]
    error: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.error
            and self.outcome == self.expected_outcome
            and sorted(self.rules) == sorted(self.expected_rules)
        )


class CasePki:
    """A root trusted by the bundle under test, one not trusted, and leaves on demand."""

    def __init__(self) -> None:
        self.trusted = self._chain("policy test root")
        self.untrusted = self._chain("untrusted test root")
        self.consignee = self._chain("policy test consignee root")
        self._leaves: dict[
            tuple[str, tuple[tuple[str, str], ...], bool], tuple[PrivateKey, list[x509.Certificate]]
        ] = {}

    @staticmethod
    def _chain(name: str) -> tuple[Issuer, Issuer]:
        root = issue_ca(name, not_before=_PKI_FROM, not_after=_PKI_UNTIL, path_length=1)
        intermediate = issue_ca(
            f"{name} issuing CA", issuer=root, not_before=_PKI_FROM, not_after=_PKI_UNTIL
        )
        return root, intermediate

    def crl_pems(self, hierarchy: tuple[Issuer, Issuer], until: datetime) -> list[str]:
        """Empty CRLs of a hierarchy's root and intermediate, next update `until`."""
        return [
            issue_crl(ca, this_update=_PKI_FROM, next_update=until)
            .public_bytes(Encoding.PEM)
            .decode()
            for ca in hierarchy
        ]

    def trusting(self, bundle: Bundle, crls_until: datetime = _PKI_UNTIL) -> Bundle:
        """`bundle` trusting this PKI's end-user and consignee roots, with their CRLs."""
        return bundle.with_trust_anchors(
            {
                role: [chain[0][1].public_bytes(Encoding.PEM).decode()]
                for role, chain in (("end_user", self.trusted), ("consignee", self.consignee))
            },
            {
                "end_user": self.crl_pems(self.trusted, crls_until),
                "consignee": self.crl_pems(self.consignee, crls_until),
            },
        )

    def consignee_signer(
        self, organization: str, registrations: Sequence[tuple[str, str]]
    ) -> tuple[PrivateKey, list[x509.Certificate]]:
        """A signer under the consignee root (made anew each time: cases are few)."""
        leaf_key, leaf = issue_signer(
            self.consignee[1],
            organization=organization,
            registrations=registrations,
            common_name=f"{organization} EUC signing",
            country="IN",
            not_before=_PKI_FROM,
            not_after=_PKI_UNTIL,
        )
        return leaf_key, [leaf, self.consignee[1][1]]

    def signer(
        self, organization: str, registrations: Sequence[tuple[str, str]], *, trusted: bool
    ) -> tuple[PrivateKey, list[x509.Certificate]]:
        key = (organization, tuple(registrations), trusted)
        if key not in self._leaves:
            intermediate = (self.trusted if trusted else self.untrusted)[1]
            leaf_key, leaf = issue_signer(
                intermediate,
                organization=organization,
                registrations=registrations,
                common_name=f"{organization} EUC signing",
                country="IN",
                not_before=_PKI_FROM,
                not_after=_PKI_UNTIL,
            )
            self._leaves[key] = (leaf_key, [leaf, intermediate[1]])
        return self._leaves[key]


def run_bundle_tests(bundle: Bundle) -> list[CaseResult]:
    """Run every case of `bundle.tests`; raises ValueError when the bundle has none."""
    if bundle.tests is None:
        raise ValueError(f"bundle {bundle.name} carries no test cases")
    pki = CasePki()
    under_test = pki.trusting(bundle)
    return [_run(under_test, bundle.tests, case, pki) for case in bundle.tests.cases]


def case_bundle(trusting: Bundle, case: BundleTestCase, pki: CasePki) -> Bundle:
    """The bundle `case` runs under: `trusting` (= `pki.trusting(bundle)`), with CRLs
    that lapsed the day before `case.now` when the case asks for expired ones."""
    if case.crls == "expired":
        return pki.trusting(trusting, crls_until=case.now - timedelta(days=1))
    return trusting


def _run(bundle: Bundle, tests: BundleTests, case: BundleTestCase, pki: CasePki) -> CaseResult:
    expected = (case.expect.outcome.value, case.expect.rules)
    try:
        envelope = case_envelope(tests, case, pki)
        submission = Submission.from_envelope(envelope, max_payload_bytes=1 << 20, max_signatures=8)
        decision = decide(
            submission,
            case_bundle(bundle, case, pki),
            EmptyLedger(),
            case.now,
            registry=case_registry(case, submission),
        )
    except (EucgateError, ValueError) as exc:
        return CaseResult(case.name, *expected, outcome="", rules=(), error=str(exc))
    return CaseResult(
        case.name,
        *expected,
        outcome=decision.outcome.value,
        rules=tuple(dict.fromkeys(r.rule_id for r in decision.reasons)),
    )


# The decision a case's registry says used its number before.
_EARLIER_DECISION = "dec_" + "0" * 26


def case_registry(case: BundleTestCase, submission: Submission) -> RegistryView:
    """The registry of decided EUCs as `case` says it is (empty unless it says)."""
    if case.registry is None:
        return EmptyRegistry()
    digest = submission.euc_digest if case.registry.content == "same" else "0" * 64
    entry = RegistryEntry(
        euc_digest=digest, decision_id=_EARLIER_DECISION, outcome=case.registry.outcome.value
    )
    number = submission.certificate.certificate_number
    return SnapshotRegistry(
        {(issuer, number): entry for issuer in issuers_of(submission.certificate)}
    )


def case_envelope(tests: BundleTests, case: BundleTestCase, pki: CasePki) -> Envelope:
    """The envelope `case` submits: its certificate signed as the case says (signer,
    consignee co-signature, tampering after signing). Raises ValueError or EucgateError
    when the case's certificate cannot be built."""
    certificate = tests.certificate(case)
    end_user = certificate.end_user
    if case.signer == "other":
        key, chain = pki.signer(*_OTHER_ORG, trusted=True)
    else:
        registrations = [(r.scheme, r.value) for r in end_user.registrations]
        key, chain = pki.signer(
            end_user.legal_name, registrations, trusted=case.signer == "end_user"
        )
    payload = json_format.MessageToJson(certificate).encode()
    signers = [(key, chain)]
    if case.consignee_signer != "none":
        party = certificate.consignee if case.consignee_signer == "consignee" else None
        signers.append(
            pki.consignee_signer(
                party.legal_name if party else _OTHER_ORG[0],
                [(r.scheme, r.value) for r in party.registrations] if party else _OTHER_ORG[1],
            )
        )
    envelope = sign_envelope(PAYLOAD_TYPE_JSON, payload, signers)
    if case.tamper:
        doc = json.loads(payload)
        doc["certificateNumber"] = doc.get("certificateNumber", "") + "-ALTERED"
        envelope = Envelope(envelope.payload_type, json.dumps(doc).encode(), envelope.signatures)
    return envelope
