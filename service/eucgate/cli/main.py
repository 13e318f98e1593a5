"""`eucgate`: the command line for operators, integrators and auditors.

Human output by default, `--json` for scripts. Exit codes scripts can trust:
0 done (for `submit`: APPROVED), 1 error, 2 usage, 3 input refused (INVALID_ARGUMENT,
ALREADY_EXISTS, NOT_FOUND, FAILED_PRECONDITION), 4 service unavailable, 5 receipt did not verify,
6 the audit log failed a check (`audit verify`, `audit prove`, `replay`),
7 replay found differences, 8 replay could not replay some entries,
10 REJECTED, 11 REFERRED.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.client import CertificateClient
from eucgate_client.dsse import Envelope
from eucgate_client.receipt import ReceiptError, load_service_public_key, verify_receipt
from eucgate_client.v1 import certificate_pb2, decision_pb2
from google.protobuf import json_format
from rich.console import Console

from eucgate.api.workers import serve as run_server
from eucgate.cli.access import access_app
from eucgate.cli.audit import audit_app
from eucgate.cli.connect import (
    CaOpt,
    CertOpt,
    Connection,
    InsecureOpt,
    KeyOpt,
    ServerOpt,
)
from eucgate.cli.corelog import json_stderr
from eucgate.cli.db import db_app
from eucgate.cli.demo import run_demo
from eucgate.cli.keys import policy_admin_key, write_signed_bundle, write_trusting_bundle
from eucgate.cli.keyset import keys as print_keys
from eucgate.cli.output import Exit, fail, proto_dict
from eucgate.cli.policy import policy_app
from eucgate.cli.receipts import receipt_app
from eucgate.cli.render import (
    decision_dict,
    decision_table,
    outcome_name,
    print_decision,
    print_json,
    rule_ids,
)
from eucgate.cli.replay import replay
from eucgate.cli.review import licence_app, review_app
from eucgate.cli.validate import validate
from eucgate.cli.witness import witness_app
from eucgate.config import load_settings
from eucgate.core.model import PAYLOAD_TYPE_JSON, PAYLOAD_TYPE_PROTO
from eucgate.errors import EucgateError
from eucgate.logconfig import configure_logging
from eucgate.signing import (
    KEY_TYPES,
    add_signature,
    load_certificates,
    load_private_key,
    make_role_pki,
    sign_envelope,
    write_pem_key,
    write_pem_public_key,
)
from eucgate.tlsfiles import make_local_access

app = typer.Typer(
    help="eucgate: end-user certificate validation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
decision_app = typer.Typer(help="Look up recorded decisions.", no_args_is_help=True)
app.add_typer(decision_app, name="decision")
app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(review_app, name="review")
app.add_typer(licence_app, name="licence")
app.add_typer(receipt_app, name="receipt")
app.command("replay")(replay)
app.command("validate")(validate)
app.add_typer(db_app, name="db")
app.add_typer(access_app, name="access")
app.add_typer(witness_app, name="witness")
app.command("keys")(print_keys)

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


_OUTCOME_EXIT = {
    decision_pb2.OUTCOME_APPROVED: Exit.OK,
    decision_pb2.OUTCOME_REJECTED: Exit.REJECTED,
    decision_pb2.OUTCOME_REFERRED: Exit.REFERRED,
}


def _fail(message: str, code: Exit) -> typer.Exit:
    return fail(message, int(code))


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option(help="YAML configuration file")] = None,
    listen: Annotated[str | None, typer.Option(help="API address host:port")] = None,
    ops_listen: Annotated[str | None, typer.Option(help="health-probe address")] = None,
    metrics_listen: Annotated[
        str | None, typer.Option(help="Prometheus metrics address (HTTP, /metrics)")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="store directory")] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="postgresql://... URL of the database replicas share; default the SQLite "
            "file in --data-dir (prefer EUCGATE_STORE for a URL with a password)"
        ),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="signed policy bundle (`eucgate policy sign`)")
    ] = None,
    policy_admin_key: Annotated[
        list[Path] | None,
        typer.Option(help="policy-admin public key (PEM) trusted to sign the bundle; repeatable"),
    ] = None,
    service_key: Annotated[Path | None, typer.Option(help="Ed25519 receipt key (PEM)")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="the API port's certificate chain (PEM)")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="the API port's private key (PEM)")] = None,
    access: Annotated[
        Path | None,
        typer.Option(help="access file: client CAs and the callers' roles (docs/access.md)"),
    ] = None,
    insecure: Annotated[
        bool | None,
        typer.Option(
            "--insecure",
            help="plaintext API, every caller anonymous with every role: local use only",
        ),
    ] = None,
    init_store: Annotated[
        bool | None,
        typer.Option(
            "--init-store",
            help="create a new, empty store (a new log) if there is none; without it a "
            "missing store stops the server",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="server processes sharing the API port, each with its own gate (default 1;"
            " about one core each)"
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
    json_output: Annotated[
        bool | None,
        typer.Option("--json/--no-json", help="logs as JSON lines (default) or for a person"),
    ] = None,
) -> None:
    """Run the gRPC server until SIGTERM (SIGHUP reloads the bundle); settings from file,
    EUCGATE_* env, then flags. The API is mutual TLS (--tls-cert, --tls-key, --access)
    unless --insecure says otherwise."""
    try:
        settings = load_settings(
            config,
            listen=listen,
            ops_listen=ops_listen,
            metrics_listen=metrics_listen,
            data_dir=data_dir,
            store=store,
            bundle_path=bundle,
            policy_admin_keys=policy_admin_key or None,
            service_key_path=service_key,
            tls_cert_path=tls_cert,
            tls_key_path=tls_key,
            access_path=access,
            insecure=insecure,
            init_store=init_store,
            workers=workers,
            log_level=log_level,
            **({} if json_output is None else {"log_json": json_output}),
        )
        configure_logging(settings.log_level, json=settings.log_json)
        if settings.log_json:
            json_stderr()  # gRPC core's own lines too, as JSON events
        run_server(settings)
    except EucgateError as exc:
        raise _fail(str(exc), Exit.ERROR) from None


@app.command()
def demo(
    json_output: JsonOpt = False,
    keep: Annotated[
        Path | None, typer.Option(help="keep the demo's keys, bundle and store here")
    ] = None,
) -> None:
    """Start an embedded server, submit sample EUCs, show each decision and check receipts."""
    configure_logging("warning", json=False)  # the demo's output is the decisions
    code = run_demo(out, keep=keep, json_output=json_output)
    raise typer.Exit(code)


@app.command()
def keygen(
    directory: Annotated[Path, typer.Argument(help="where to write keys and certificates")],
    role: Annotated[
        str, typer.Option(help="signer role: end_user, consignee or endorser")
    ] = "end_user",
    organization: Annotated[str, typer.Option(help="the signer's legal name")] = (
        "Jay-Ushin Limited"
    ),
    registration: Annotated[
        list[str] | None,
        typer.Option(help="SCHEME:VALUE registration in the signer certificate, repeatable"),
    ] = None,
    country: Annotated[str, typer.Option(help="the signer's country (ISO 3166-1)")] = "IN",
    key_type: Annotated[str, typer.Option(help=f"signer key: {', '.join(KEY_TYPES)}")] = "ed25519",
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="add this role's root and CRLs to this bundle file "
            "(default DIRECTORY/policy.yaml, made from the sample bundle)"
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace keys already in DIRECTORY")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Make a PKI for one signer role (root, intermediate, signer, CRLs) and trust it.

    The bundle is also written signed (NAME.dsse.json beside it) by the policy-admin key
    beside it, made on first use. For the end_user role the service's receipt key is
    written too, and DIRECTORY/tls: mutual-TLS material for local use (server
    certificate, a client CA, one client certificate per role with the importer bound
    to the signer's registrations, and the access file that maps them). Keys already in
    DIRECTORY are never replaced without --force: a new service key or trust anchor
    would strand every receipt and signer made with the old ones.
    """
    if role not in ("end_user", "consignee", "endorser"):
        raise _fail("--role must be end_user, consignee or endorser", Exit.USAGE)
    if key_type not in KEY_TYPES:
        raise _fail(f"--key-type must be one of {', '.join(KEY_TYPES)}", Exit.USAGE)
    regs = registration or (
        ["IEC:0588012345", "GSTIN:06AAACJ1234F1Z5"] if role == "end_user" else []
    )
    pairs = []
    for r in regs:
        scheme, sep, value = r.partition(":")
        if not sep or not scheme or not value:
            raise _fail(f"registration {r!r} must be SCHEME:VALUE", Exit.USAGE)
        pairs.append((scheme, value))
    existing = [
        directory / name
        for name in (
            "root.key.pem",
            "intermediate.key.pem",
            "signer.key.pem",
            *(("service.key.pem", "tls") if role == "end_user" else ()),
        )
        if (directory / name).exists()
    ]
    if existing and not force:
        raise _fail(
            f"{directory} already holds keys ({', '.join(p.name for p in existing)}); "
            "use another directory, or --force to replace them",
            Exit.REFUSED,
        )
    now = datetime.now(UTC)
    policy_path = bundle or directory / "policy.yaml"
    written: list[tuple[str, Path]] = []
    try:
        pki = make_role_pki(
            directory,
            role=role,
            now=now,
            organization=organization,
            registrations=pairs,
            country=country,
            key_type=key_type,
        )
        if role == "end_user":
            service_key = Ed25519PrivateKey.generate()
            written += [
                ("service key", directory / "service.key.pem"),
                ("service public key", directory / "service.pub.pem"),
            ]
            write_pem_key(written[0][1], service_key)
            write_pem_public_key(written[1][1], service_key.public_key())
            tls = make_local_access(directory / "tls", now=now, importers=regs)
            written += [
                ("TLS server chain", tls.server_cert),
                ("TLS server key", tls.server_key),
                ("TLS server CA", tls.server_ca),
                ("access file", tls.access_file),
                ("client identities", tls.client("importer")[0].parent),
            ]
        policy = write_trusting_bundle(
            policy_path,
            pki.root_cert,
            pki.crls,
            role=role,
            base=policy_path if policy_path.exists() else None,
        )
        admin_key, admin_public = policy_admin_key(policy_path.parent)
        signed = write_signed_bundle(policy, admin_key)
    except (OSError, ValueError, EucgateError) as exc:
        raise _fail(str(exc), Exit.ERROR) from None
    files = [
        (label, path)
        for label, path in (
            ("root certificate", pki.root_cert),
            ("CRLs", pki.root_crl),
            ("", pki.intermediate_crl),
            ("signer key", pki.signer_key),
            ("signer chain", pki.signer_chain),
            *written,
            ("policy bundle", policy),
            ("signed bundle", signed),
            ("policy-admin key", admin_key),
            ("policy-admin public", admin_public),
        )
    ]
    if json_output:
        print_json(
            out,
            {
                "role": role,
                "organization": organization,
                "directory": str(directory),
                "files": [{"what": label or "CRLs", "path": str(path)} for label, path in files],
            },
        )
        return
    out.print(f"wrote {role} PKI for [bold]{organization}[/] in {directory}")
    for label, path in files:
        out.print(f"  {label:<20} {path}")


@app.command()
def sign(
    certificate: Annotated[Path | None, typer.Argument(help="EUC as protobuf JSON")] = None,
    key: Annotated[Path | None, typer.Option(help="signer's private key (PEM)")] = None,
    chain: Annotated[
        Path | None, typer.Option(help="signer's certificate, then intermediates (PEM)")
    ] = None,
    pki: Annotated[
        Path | None,
        typer.Option(help="a `keygen` directory: sign as its signer (instead of --key/--chain)"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="envelope file; - for stdout")
    ] = None,
    payload_format: Annotated[
        str, typer.Option("--format", help="payload encoding: json or protobuf")
    ] = "json",
    add_to: Annotated[
        Path | None,
        typer.Option(help="add a signature (e.g. a consignee's) to this existing envelope"),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Sign an EUC, or add a signer role's signature to an envelope; write DSSE JSON."""
    if pki is not None:
        if key is not None or chain is not None:
            raise _fail("give --pki or --key with --chain, not both", Exit.USAGE)
        key, chain = pki / "signer.key.pem", pki / "signer-chain.pem"
    if key is None or chain is None:
        raise _fail("give --pki, or --key with --chain", Exit.USAGE)
    if (certificate is None) == (add_to is None):
        raise _fail("give the EUC to sign, or --add-to an envelope, not both", Exit.USAGE)
    try:
        private_key = load_private_key(key)
        certs = load_certificates(chain)
        if add_to is not None:
            envelope = add_signature(Envelope.from_json(add_to.read_bytes()), private_key, certs)
        else:
            assert certificate is not None  # checked above
            euc = json_format.Parse(certificate.read_text(), certificate_pb2.EndUserCertificate())
            if payload_format == "json":
                payload_type, payload = PAYLOAD_TYPE_JSON, json_format.MessageToJson(euc).encode()
            elif payload_format == "protobuf":
                payload_type = PAYLOAD_TYPE_PROTO
                payload = euc.SerializeToString(deterministic=True)
            else:
                raise _fail("--format must be json or protobuf", Exit.USAGE)
            envelope = sign_envelope(payload_type, payload, [(private_key, certs)])
    except (OSError, ValueError, json_format.ParseError) as exc:
        raise _fail(str(exc), Exit.ERROR) from None
    data = envelope.to_json()
    to_stdout = output is None or str(output) == "-"
    if not to_stdout:
        assert output is not None
        output.write_bytes(data)
    if json_output:
        print_json(
            out,
            {
                "envelope": json.loads(data) if to_stdout else None,
                "out": None if to_stdout else str(output),
                "payload_type": envelope.payload_type,
                "signatures": len(envelope.signatures),
            },
        )
    elif to_stdout:
        sys.stdout.write(data.decode() + "\n")
    else:
        err.print(f"wrote {output}")


@app.command()
def submit(
    envelope: Annotated[Path, typer.Argument(help="DSSE JSON envelope")],
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    request_id: Annotated[
        str | None,
        typer.Option(
            help="idempotency key; default derived from the envelope, so sending the same "
            "envelope again returns the first decision"
        ),
    ] = None,
    service_public_key: Annotated[
        Path | None, typer.Option(help="verify the receipt with this Ed25519 key (PEM)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds")] = 10.0,
    json_output: JsonOpt = False,
) -> None:
    """Submit a signed EUC; exit 0 APPROVED, 10 REJECTED, 11 REFERRED.

    Unreachable-service failures are retried with the same request id. `--json` prints
    the decision and the whole receipt (envelope, leaf index, checkpoint, inclusion
    proof): keep it, and check it later with `eucgate receipt verify`.
    """
    try:
        data = envelope.read_bytes()
    except OSError as exc:
        raise _fail(str(exc), Exit.ERROR) from None
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: CertificateClient(channel, timeout=timeout).submit(
            envelope_json=data, request_id=request_id
        )
    )
    receipt_status = ""
    if service_public_key is not None:
        try:
            verify_receipt(
                response.receipt, load_service_public_key(service_public_key.read_bytes())
            )
            receipt_status = "verified"
        except (ReceiptError, OSError, ValueError) as exc:
            raise _fail(f"receipt does not verify: {exc}", Exit.RECEIPT_INVALID) from None
    if json_output:
        print_json(
            out,
            {
                "decision": decision_dict(response.decision),
                "replayed": response.replayed,
                "receipt": proto_dict(response.receipt),
                "receipt_verified": receipt_status == "verified",
            },
        )
    else:
        print_decision(
            out,
            response.decision,
            receipt_status=receipt_status,
            receipt=response.receipt,
            replayed=response.replayed,
        )
    raise typer.Exit(int(_OUTCOME_EXIT.get(response.decision.outcome, Exit.ERROR)))


@decision_app.command("get")
def decision_get(
    decision_id: Annotated[str, typer.Argument(help="dec_…")],
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Show one decision."""
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: CertificateClient(channel).get_decision(decision_id)
    )
    if json_output:
        print_json(
            out,
            {"decision": decision_dict(response.decision), "receipt": proto_dict(response.receipt)},
        )
    else:
        print_decision(out, response.decision, receipt=response.receipt)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{name} must be an ISO 8601 date or time", Exit.USAGE) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@decision_app.command("list")
def decision_list(
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    importer: Annotated[str, typer.Option(help="importer registration number")] = "",
    outcome: Annotated[str, typer.Option(help="APPROVED, REJECTED or REFERRED")] = "",
    after: Annotated[str | None, typer.Option(help="decided at or after (ISO 8601)")] = None,
    before: Annotated[str | None, typer.Option(help="decided before (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    json_output: JsonOpt = False,
) -> None:
    """List decisions, newest first."""
    outcome_value: int = decision_pb2.OUTCOME_UNSPECIFIED
    if outcome:
        try:
            outcome_value = decision_pb2.Outcome.Value(f"OUTCOME_{outcome.upper()}")
        except ValueError:
            raise _fail("outcome must be APPROVED, REJECTED or REFERRED", Exit.USAGE) from None
    decisions = Connection(server, ca, cert, key, insecure).call(
        lambda channel: list(
            CertificateClient(channel).list_decisions(
                importer_registration=importer,
                outcome=outcome_value,
                decided_after=_when(after, "--after"),
                decided_before=_when(before, "--before"),
                limit=limit,
            )
        )
    )
    if json_output:
        print_json(out, {"decisions": [decision_dict(d) for d in decisions]})
        return
    if not decisions:
        out.print("no decisions match")
        return
    table = decision_table("outcome", "decided at", "certificate", "end user", "reasons")
    for d in decisions:
        table.add_row(
            d.decision_id,
            outcome_name(d),
            d.decided_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds"),
            d.certificate_number,
            d.end_user.legal_name,
            rule_ids(d),
        )
    out.print(table)
