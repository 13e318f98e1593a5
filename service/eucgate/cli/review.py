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

import grpc
import typer
from eucgate_client.client import LicenceClient, ReviewClient
from eucgate_client.v1 import licence_service_pb2 as licence_pb2
from rich.console import Console
from rich.table import Table

from eucgate.cli.connect import (
    CaOpt,
    CertOpt,
    Connection,
    InsecureOpt,
    KeyOpt,
    ServerOpt,
)
from eucgate.cli.output import proto_dict
from eucgate.cli.render import (
    decision_dict,
    decision_table,
    number,
    outcome_name,
    print_decision,
    print_json,
    rule_ids,
)

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
    referrals = Connection(server, ca, cert, key, insecure).call(
        lambda channel: list(
            ReviewClient(channel).referrals(include_resolved=include_resolved, limit=limit)
        )
    )
    if json_output:
        print_json(
            out,
            {
                "referrals": [
                    {
                        "decision": decision_dict(r.decision),
                        "resolution_decision_id": r.resolution_decision_id,
                    }
                    for r in referrals
                ]
            },
        )
        return
    if not referrals:
        out.print("no referrals" + (" at all" if include_resolved else " wait for a reviewer"))
        return
    table = decision_table("decided at", "certificate", "end user", "reasons", "resolved by")
    for r in referrals:
        d = r.decision
        table.add_row(
            d.decision_id,
            d.decided_at.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds"),
            d.certificate_number,
            d.end_user.legal_name,
            rule_ids(d),
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
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: ReviewClient(channel).resolve(decision_id, approve=approve, reason=reason)
    )
    if json_output:
        print_json(
            out,
            {
                "decision": decision_dict(response.decision),
                "receipt": proto_dict(response.receipt),
            },
        )
    else:
        print_decision(out, response.decision, receipt=response.receipt)
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
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: LicenceClient(channel).balance(licence_number, control_code)
    )
    if json_output:
        print_json(out, proto_dict(response))
        return
    table = Table("control code", "unit", "quota", "approved", "shipped", "remaining")
    for b in response.balances:
        table.add_row(
            b.control_code,
            b.unit,
            *(number(x) for x in (b.quota, b.approved, b.shipped, b.remaining)),
        )
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

    def ship(
        channel: grpc.Channel,
    ) -> tuple[licence_pb2.RecordShipmentResponse, list[licence_pb2.QuotaBalance]]:
        client = LicenceClient(channel)
        response = client.record_shipment(reference, decision_id, control_code, quantity, unit)
        shipped = response.shipment
        return response, list(client.balance(shipped.licence_number, shipped.control_code).balances)

    response, balances = Connection(server, ca, cert, key, insecure).call(ship)
    s = response.shipment
    if json_output:
        print_json(
            out,
            {
                **proto_dict(response),
                "balances": [proto_dict(b) for b in balances],
            },
        )
        return
    again = " (already recorded)" if response.replayed else ""
    out.print(
        f"{s.shipment_id}: {number(s.quantity.value)} {s.quantity.unit} under {s.control_code} "
        f"of licence {s.licence_number}, decision {s.decision_id}, reference "
        f"{s.gateway_reference}{again}",
        highlight=False,
    )
    for b in balances:
        out.print(
            f"{b.control_code}: {number(b.approved)} {b.unit} approved, {number(b.shipped)} "
            f"shipped, {number(b.remaining)} of the {number(b.quota)} quota not yet approved",
            highlight=False,
        )
