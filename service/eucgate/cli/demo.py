"""`eucgate demo`: the main job end to end, on an embedded server over real gRPC.

Makes a throw-away PKI, mutual-TLS identities and store, starts the server on a free
loopback port with mTLS, submits five realistic EUCs the way two importers' ERP systems
would (each bound to its own importer), verifies every receipt offline with only the
service's public key, and shows that one importer cannot see the other's decisions.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from eucgate_client.client import ApiError, CertificateClient, open_channel
from eucgate_client.dsse import Envelope
from eucgate_client.receipt import ReceiptError, load_service_public_key, verify_receipt
from eucgate_client.v1 import certificate_pb2, decision_pb2
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from eucgate import samples
from eucgate.api.server import start_server
from eucgate.cli.keys import policy_admin_key, write_signed_bundle, write_trusting_bundle
from eucgate.cli.render import decision_dict, outcome_name, print_decision, print_json
from eucgate.config import load_settings
from eucgate.core.model import PAYLOAD_TYPE_JSON, PAYLOAD_TYPE_PROTO
from eucgate.signing import (
    issue_signer,
    load_certificates,
    load_private_key,
    make_demo_pki,
    sign_envelope,
)
from eucgate.tlsfiles import LocalAccess, add_client, make_local_access


@dataclass(frozen=True)
class Case:
    title: str
    expected: int  # decision_pb2.Outcome value
    envelope: Envelope
    erp: str = "importer"  # the client identity (tlsfiles) that submits it


KAVERI_ERP = "kaveri-erp"


def _registrations(party: samples.SampleParty) -> list[str]:
    return [f"{scheme}:{value}" for scheme, value in party.registrations]


def _tamper(envelope: Envelope) -> Envelope:
    """Raise the quantity after signing: the payload still decodes, the signature breaks."""
    doc = json.loads(envelope.payload)
    doc["items"][0]["quantity"]["value"] = "5000"
    return Envelope(envelope.payload_type, json.dumps(doc).encode(), envelope.signatures)


def _cases(directory: Path, now: datetime) -> tuple[list[Case], Path, Path, Path]:
    pki = make_demo_pki(
        directory / "pki",
        now=now,
        organization=samples.JAY_USHIN.legal_name,
        registrations=samples.JAY_USHIN.registrations,
    )
    issuer = (load_private_key(pki.intermediate_key), load_certificates(pki.intermediate_cert)[0])
    intermediate_ca = issuer[1]
    jay_key = load_private_key(pki.signer_key)
    jay_chain = load_certificates(pki.signer_chain)
    kaveri_key, kaveri_cert = issue_signer(
        issuer,  # type: ignore[arg-type]  # the demo intermediate is always ECDSA
        organization=samples.UNLICENSED.legal_name,
        registrations=samples.UNLICENSED.registrations,
        common_name=f"{samples.UNLICENSED.legal_name} EUC signing",
        country="IN",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )

    def as_json(euc: certificate_pb2.EndUserCertificate) -> tuple[str, bytes]:
        return PAYLOAD_TYPE_JSON, json_format.MessageToJson(euc).encode()

    def as_proto(euc: certificate_pb2.EndUserCertificate) -> tuple[str, bytes]:
        return PAYLOAD_TYPE_PROTO, euc.SerializeToString(deterministic=True)

    def signed(
        euc: certificate_pb2.EndUserCertificate,
        encode: Callable[[certificate_pb2.EndUserCertificate], tuple[str, bytes]],
        key: object = jay_key,
        chain: list[object] | None = None,
    ) -> Envelope:
        payload_type, payload = encode(euc)
        return sign_envelope(payload_type, payload, [(key, chain or jay_chain)])  # type: ignore[list-item]

    approved = signed(samples.certificate(now), as_json)
    cases = [
        Case("Licensed importer, EV traction motors", decision_pb2.OUTCOME_APPROVED, approved),
        Case(
            "Defence end use",
            decision_pb2.OUTCOME_REJECTED,
            signed(samples.military_end_use(now), as_proto),
        ),
        Case(
            "Final destination United States",
            decision_pb2.OUTCOME_REJECTED,
            signed(samples.reexport_to_us(now), as_json),
        ),
        Case(
            "Importer without a licence",
            decision_pb2.OUTCOME_REJECTED,
            signed(
                samples.unlicensed_importer(now),
                as_json,
                kaveri_key,
                [kaveri_cert, intermediate_ca],
            ),
            erp=KAVERI_ERP,
        ),
        Case(
            "Quantity altered after signing",
            decision_pb2.OUTCOME_REJECTED,
            _tamper(signed(samples.certificate(now, number="JUL-EUC-2026-0045"), as_json)),
        ),
    ]
    bundle = write_trusting_bundle(directory / "policy.yaml", pki.root_cert, pki.crls)
    # A throw-away policy-admin key: the server loads only a signed bundle.
    admin_key, admin_public = policy_admin_key(directory / "policy-admin")
    return cases, write_signed_bundle(bundle, admin_key), admin_public, pki.service_key


def run_demo(console: Console, *, keep: Path | None, json_output: bool) -> int:
    """Run the demo; returns the exit code (0 when every outcome and receipt is as expected)."""
    with tempfile.TemporaryDirectory(prefix="eucgate-demo-") as tmp:
        directory = keep or Path(tmp)
        now = datetime.now(UTC)
        cases, bundle, admin_public, service_key = _cases(directory, now)
        tls = make_local_access(
            directory / "tls", now=now, importers=_registrations(samples.JAY_USHIN)
        )
        add_client(tls, KAVERI_ERP, ("importer",), _registrations(samples.UNLICENSED), now=now)
        settings = load_settings(
            listen="127.0.0.1:0",
            data_dir=directory / "store",
            bundle_path=bundle,
            policy_admin_keys=[admin_public],
            service_key_path=service_key,
            tls_cert_path=tls.server_cert,
            tls_key_path=tls.server_key,
            access_path=tls.access_file,
            init_store=True,  # the demo's store is new each time
        )
        running = start_server(settings)
        public_key = load_service_public_key((service_key.parent / "service.pub.pem").read_bytes())
        results = []
        target = f"localhost:{running.port}"
        try:
            with _channel(tls, "importer", target) as jay, _channel(tls, KAVERI_ERP, target) as kav:
                clients = {"importer": CertificateClient(jay), KAVERI_ERP: CertificateClient(kav)}
                client = clients["importer"]
                if not json_output:
                    console.print(
                        f"[bold]eucgate demo[/]: server on {target} (mutual TLS), "
                        f"bundle {running.gate.bundle.name} ({running.gate.bundle.digest[:12]}…)"
                    )
                for case in cases:
                    response = clients[case.erp].submit(case.envelope)
                    try:
                        verify_receipt(response.receipt, public_key)
                        receipt = "verified offline with the service public key"
                    except ReceiptError as exc:
                        receipt = f"INVALID ({exc})"
                    ok = response.decision.outcome == case.expected and receipt.startswith(
                        "verified"
                    )
                    results.append((case, response.decision, receipt, ok))
                    if not json_output:
                        print_decision(
                            console, response.decision, title=case.title, receipt_status=receipt
                        )
                first = cases[0]
                retry = client.submit(first.envelope, request_id=results[0][1].request_id)
                hidden = _hidden_from(clients[KAVERI_ERP], results[0][1].decision_id)
                # One EUC, one use: the approved EUC again, under a new request id.
                again = client.submit(first.envelope, request_id="demo-same-euc-again")
                used = again.decision.outcome == decision_pb2.OUTCOME_REJECTED and any(
                    r.rule_id == "DOC-006" for r in again.decision.reasons
                )
        finally:
            running.stop(grace=2)
        same = retry.replayed and retry.decision.decision_id == results[0][1].decision_id
        if json_output:
            print_json(
                console,
                {
                    "cases": [
                        {
                            "title": c.title,
                            "expected": decision_pb2.Outcome.Name(c.expected).removeprefix(
                                "OUTCOME_"
                            ),
                            "decision": decision_dict(d),
                            "receipt": r,
                            "as_expected": ok,
                        }
                        for c, d, r, ok in results
                    ],
                    "retry_returned_first_decision": same,
                    "other_importer_cannot_read_it": hidden,
                    "same_euc_again_rejected": used,
                },
            )
        else:
            summary = Table("case", "outcome", "reasons", "as expected")
            for c, d, _, ok in results:
                summary.add_row(
                    c.title,
                    outcome_name(d),
                    ", ".join(dict.fromkeys(r.rule_id for r in d.reasons)) or "-",
                    "yes" if ok else "[red]NO[/]",
                )
            console.print(summary)
            console.print(
                "retry with the same request_id returned the first decision: "
                + ("yes" if same else "[red]NO[/]")
            )
            console.print(
                f"{KAVERI_ERP} asking for Jay-Ushin's decision gets NOT_FOUND: "
                + ("yes" if hidden else "[red]NO[/]")
            )
            console.print(
                "the approved EUC sent again under a new request_id is REJECTED (DOC-006): "
                + ("yes" if used else "[red]NO[/]")
            )
            if keep is not None:
                console.print(f"keys, bundle and store kept in {directory}")
        return 0 if same and hidden and used and all(ok for *_, ok in results) else 1


def _channel(tls: LocalAccess, name: str, target: str) -> grpc.Channel:
    cert, key = tls.client(name)
    return open_channel(
        target,
        ca=tls.server_ca.read_bytes(),
        cert=cert.read_bytes(),
        key=key.read_bytes(),
    )


def _hidden_from(client: CertificateClient, decision_id: str) -> bool:
    """Whether `client` is told the decision does not exist (another importer's)."""
    try:
        client.get_decision(decision_id)
    except ApiError as exc:
        return exc.code == grpc.StatusCode.NOT_FOUND
    return False
