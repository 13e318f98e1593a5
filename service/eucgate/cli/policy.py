"""`eucgate policy check|test|sign`: validate a bundle, run its test cases, sign it.

`check` and `test` read a bundle file (YAML or JSON) or a signed bundle (the DSSE
envelope `sign` writes); a signed one's signature is verified only when `--admin-key`
names the policy-admin public key(s) to trust.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from eucgate_client.client import PolicyClient
from eucgate_client.dsse import Envelope
from eucgate_client.v1 import policy_service_pb2
from rich.console import Console
from rich.table import Table

from eucgate.cli.bundlefiles import read_bundle_file
from eucgate.cli.connect import (
    CaOpt,
    CertOpt,
    Connection,
    InsecureOpt,
    KeyOpt,
    ServerOpt,
)
from eucgate.cli.keys import write_signed_bundle
from eucgate.cli.output import fail
from eucgate.cli.render import print_json
from eucgate.core.bundle import Bundle
from eucgate.errors import BundleError
from eucgate.policytest import run_bundle_tests

policy_app = typer.Typer(help="Check, test and sign policy bundles.", no_args_is_help=True)

BundleArg = Annotated[
    Path, typer.Argument(help="policy bundle (YAML or JSON) or signed bundle (DSSE JSON)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
AdminKeyOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--admin-key",
        help="policy-admin public key (PEM) a signed bundle must be signed by; repeatable",
    ),
]

out = Console()
err = Console(stderr=True)


def _load(path: Path, admin_keys: list[Path] | None = None) -> tuple[Bundle, str]:
    """The bundle and how its signature was judged: "unsigned", "verified" or
    "not verified"; exits 1 with the reason when it is invalid or wrongly signed."""
    try:
        return read_bundle_file(path, admin_keys or ())
    except BundleError as exc:
        raise fail(f"invalid bundle:\n{exc}", 1, reason=exc.reason) from None
    except (OSError, ValueError) as exc:
        raise fail(str(exc), 1) from None


@policy_app.command("check")
def check(bundle: BundleArg, admin_key: AdminKeyOpt = None, json_output: JsonOpt = False) -> None:
    """Validate a bundle (and a signed one's signature, given --admin-key); exit 1 with
    file, line and path of every problem."""
    loaded, signature = _load(bundle, admin_key)
    summary = {
        "name": loaded.name,
        "digest": loaded.digest,
        "signature": signature,
        "rules": len(loaded.rules),
        "controlled_items": len(loaded.controlled_items),
        "licensed_importers": len(loaded.licensed_importers),
        "trust_anchor_roles": sorted(loaded.anchors),
        "test_cases": len(loaded.tests.cases) if loaded.tests else 0,
    }
    if json_output:
        print_json(out, summary)
        return
    out.print(f"[green]valid[/] {loaded.name}  digest {loaded.digest}", soft_wrap=True)
    for key, value in summary.items():
        if key not in {"name", "digest"}:
            out.print(f"  {key.replace('_', ' '):<20} {value}")


@policy_app.command("sign")
def sign(
    bundle: Annotated[Path, typer.Argument(help="policy bundle (YAML or JSON)")],
    key: Annotated[
        Path, typer.Option("--key", help="policy-admin private key (PEM, Ed25519 or ECDSA)")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--out", help="signed bundle file (default: BUNDLE as NAME.dsse.json)"),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Validate a bundle and write it signed: a DSSE envelope over its canonical JSON,
    which is exactly what the server loads. Exit 1 when it is invalid."""
    try:
        written = write_signed_bundle(bundle, key, output)
    except BundleError as exc:
        raise fail(f"invalid bundle:\n{exc}", 1, reason=exc.reason) from None
    except (OSError, ValueError) as exc:
        raise fail(str(exc), 1) from None
    loaded, _ = _load(written)
    if json_output:
        print_json(
            out, {"signed_bundle": str(written), "name": loaded.name, "digest": loaded.digest}
        )
        return
    out.print(f"wrote {written}  ({loaded.name}, digest {loaded.digest})", soft_wrap=True)


@policy_app.command("test")
def run_tests(
    bundle: BundleArg, admin_key: AdminKeyOpt = None, json_output: JsonOpt = False
) -> None:
    """Run the bundle's test cases through decide(); exit 1 when any case fails."""
    loaded, _ = _load(bundle, admin_key)
    if loaded.tests is None:
        raise fail(f"{bundle} carries no test cases", 1)
    results = run_bundle_tests(loaded)
    failed = [r for r in results if not r.passed]
    if json_output:
        print_json(
            out,
            {
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "cases": [
                    {
                        "name": r.name,
                        "passed": r.passed,
                        "expected": {
                            "outcome": r.expected_outcome,
                            "rules": list(r.expected_rules),
                        },
                        "got": {"outcome": r.outcome, "rules": list(r.rules)},
                        "error": r.error or None,
                    }
                    for r in results
                ],
            },
        )
    else:
        table = Table("case", "expected", "got", "result")
        for r in results:
            table.add_row(
                r.name,
                f"{r.expected_outcome} {' '.join(sorted(r.expected_rules))}".strip(),
                r.error or f"{r.outcome} {' '.join(sorted(r.rules))}".strip(),
                "[green]pass[/]" if r.passed else "[red]FAIL[/]",
            )
        out.print(table)
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


def _active_dict(active: policy_service_pb2.ActiveBundle) -> dict[str, str]:
    return {
        "digest": active.digest,
        "name": active.name,
        "loaded_at": active.loaded_at.ToDatetime(tzinfo=UTC).isoformat(),
    }


@policy_app.command("active")
def active(
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Show the bundle the service decides under (auditor, policy-admin, operator)."""
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: PolicyClient(channel).active()
    )
    shown = _active_dict(response.bundle)
    if json_output:
        print_json(out, shown)
    else:
        out.print(f"{shown['name']} {shown['digest']} loaded {shown['loaded_at']}")


@policy_app.command("reload")
def reload(
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Make the service re-read and verify its bundle file and switch to it
    (policy-admin); a refused bundle leaves the active one serving (exit 3)."""
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: PolicyClient(channel).reload()
    )
    shown = {**_active_dict(response.bundle), "previous_digest": response.previous_digest}
    if json_output:
        print_json(out, shown)
    else:
        out.print(f"active: {shown['name']} {shown['digest']} (was {shown['previous_digest']})")


@policy_app.command("export")
def export(
    digest: Annotated[str, typer.Argument(help="the bundle's digest, as a decision names it")],
    output: Annotated[
        Path | None, typer.Option("--out", help="write the bundle's canonical JSON here")
    ] = None,
    signed_out: Annotated[
        Path | None,
        typer.Option(help="also write the signed bundle (DSSE JSON) here, when the service has it"),
    ] = None,
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Fetch a bundle the service decided under, by digest (auditor, policy-admin); its
    SHA-256 is checked against the digest (exit 6 when it differs). The canonical JSON
    goes to --out (default stdout) and replays with `eucgate replay --bundle`."""
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: PolicyClient(channel).bundle(digest, include_content=True)
    )
    canonical = response.canonical_bundle
    got = hashlib.sha256(canonical).hexdigest()
    if got != digest:
        raise fail(f"the service sent a bundle whose digest is {got}, not {digest}", 6)
    signed = response.signed_bundle
    if signed:
        try:
            envelope = Envelope.from_json(signed)
        except ValueError as exc:
            raise fail(f"the signed bundle is not a DSSE envelope: {exc}", 6) from None
        if envelope.payload != canonical:
            raise fail("the signed bundle's payload is not the bundle", 6)
    try:
        if output is not None:
            output.write_bytes(canonical)
        if signed_out is not None and signed:
            signed_out.write_bytes(signed)
    except OSError as exc:
        raise fail(str(exc), 1) from None
    if json_output:
        print_json(
            out,
            {
                "digest": digest,
                "name": response.bundle.name,
                "active": response.active,
                "out": None if output is None else str(output),
                "signed_out": str(signed_out) if signed_out is not None and signed else None,
                "signed_available": bool(signed),
                "bundle": json.loads(canonical) if output is None else None,
            },
        )
        return
    if output is None:
        sys.stdout.write(canonical.decode("utf-8") + "\n")
    state = "active" if response.active else "no longer active"
    err.print(f"{response.bundle.name} {digest} ({state}): digest checked", highlight=False)
    if signed_out is not None and not signed:
        err.print(
            "the service no longer holds this bundle's signed envelope; the canonical JSON "
            "is checked by its digest alone",
            highlight=False,
        )
