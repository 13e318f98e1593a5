"""`eucgate review` and `eucgate licence`: referrals for reviewers, balances and shipment
debits for licence holders and customs gateways.

The reviewer recorded on a resolution is the caller as the server identifies it (the
client certificate's CN under mTLS). Exit codes: 0 done, 3 refused by the server
(including FAILED_PRECONDITION: already resolved, quota exhausted, over-shipping),
4 server unavailable.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer
from eucgate_client.client import ApiError, LicenceClient, ReviewClient
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from eucgate.cli.connect import (
    CaOpt,
    CertOpt,
    Connection,
    InsecureOpt,
    KeyOpt,
    ServerOpt,
    api_failure,
)
from eucgate.cli.render import decision_dict, outcome_name, print_decision, print_json

review_app = typer.Typer(help="List and resolve REFERRED decisions.", no_args_is_help=True)
licence_app = typer.Typer(help="Licence quota balances and shipment debits.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)


JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@review_app.command("list")
def review_list(
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="also referrals already resolved")
    ] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    json_output: JsonOpt = False,
) -> None:
    """List REFERRED decisions waiting for a reviewer, newest first."""
    with Connection(server, ca, cert, key, insecure).open() as channel:
        try:
            referrals = list(
                ReviewClient(channel).referrals(include_resolved=include_resolved, limit=limit)
            )
        except ApiError as exc:
            raise api_failure(exc) from None
    if json_output:
        print_json(
            out,
            [
                {
                    "decision": decision_dict(r.decision),
                    "resolution_decision_id": r.resolution_decision_id,
                }
                for r in referrals
            ],
        )
        return
    table = Table("decision", "decided at", "certificate", "end user", "reasons", "resolved by")
    for r in referrals:
        d = r.decision
        table.add_row(
            d.decision_id,
            d.decided_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds"),
            d.certificate_number,
            d.end_user.legal_name,
            ", ".join(x.rule_id for x in d.reasons),
            r.resolution_decision_id or "-",
        )
    out.print(table)


@review_app.command("resolve")
def review_resolve(
    decision_id: Annotated[str, typer.Argument(help="the REFERRED decision, dec_…")],
    approve: Annotated[
        bool, typer.Option("--approve/--reject", help="the verdict", show_default=False)
    ],
    reason: Annotated[str, typer.Option(help="why: recorded and signed with the decision")],
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Approve or reject a referral; prints the new decision that resolves it."""
    with Connection(server, ca, cert, key, insecure).open() as channel:
        try:
            response = ReviewClient(channel).resolve(decision_id, approve=approve, reason=reason)
        except ApiError as exc:
            raise api_failure(exc) from None
    if json_output:
        print_json(
            out,
            {
                "decision": decision_dict(response.decision),
                "receipt": json_format.MessageToDict(response.receipt.envelope),
            },
        )
    else:
        print_decision(out, response.decision)
        err.print(f"resolves {decision_id}: {outcome_name(response.decision)}")


@licence_app.command("balance")
def licence_balance(
    licence_number: Annotated[str, typer.Argument(help="e.g. MOFCOM-EL-2025-000417")],
    control_code: Annotated[str, typer.Option(help="only this control code")] = "",
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Show a licence's quotas: approved, shipped and remaining."""
    with Connection(server, ca, cert, key, insecure).open() as channel:
        try:
            response = LicenceClient(channel).balance(licence_number, control_code)
        except ApiError as exc:
            raise api_failure(exc) from None
    if json_output:
        print_json(out, json_format.MessageToDict(response, preserving_proto_field_name=True))
        return
    table = Table("control code", "unit", "quota", "approved", "shipped", "remaining")
    for b in response.balances:
        table.add_row(b.control_code, b.unit, b.quota, b.approved, b.shipped, b.remaining)
    out.print(table)


@licence_app.command("ship")
def licence_ship(
    decision_id: Annotated[str, typer.Argument(help="the APPROVED decision, dec_…")],
    control_code: Annotated[str, typer.Argument(help="the quota debited, e.g. 1C904")],
    quantity: Annotated[str, typer.Argument(help="decimal, e.g. 250.5")],
    unit: Annotated[str, typer.Argument(help="g, kg or t")],
    reference: Annotated[str, typer.Option(help="the gateway's reference: the retry key")],
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Debit what shipped under an approval (a customs gateway's call)."""
    with Connection(server, ca, cert, key, insecure).open() as channel:
        try:
            response = LicenceClient(channel).record_shipment(
                reference, decision_id, control_code, quantity, unit
            )
        except ApiError as exc:
            raise api_failure(exc) from None
    if json_output:
        print_json(out, json_format.MessageToDict(response, preserving_proto_field_name=True))
        return
    s = response.shipment
    again = " (already recorded)" if response.replayed else ""
    out.print(
        f"{s.shipment_id}: {s.quantity.value} {s.quantity.unit} under {s.control_code} of "
        f"licence {s.licence_number}, decision {s.decision_id}{again}",
        highlight=False,
    )
