"""How decisions look to a person (rich) and to a script (JSON)."""

from __future__ import annotations

import json
from typing import Any

from eucgate_client.v1 import decision_pb2
from google.protobuf import json_format
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

_STYLE = {
    decision_pb2.OUTCOME_APPROVED: "bold green",
    decision_pb2.OUTCOME_REJECTED: "bold red",
    decision_pb2.OUTCOME_REFERRED: "bold yellow",
}


def outcome_name(decision: decision_pb2.Decision) -> str:
    return decision_pb2.Outcome.Name(decision.outcome).removeprefix("OUTCOME_")


def decision_dict(decision: decision_pb2.Decision) -> dict[str, Any]:
    """The protobuf JSON mapping: the same shape every other language sees."""
    return json_format.MessageToDict(decision, preserving_proto_field_name=True)


def print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value))


def print_decision(
    console: Console,
    decision: decision_pb2.Decision,
    *,
    title: str = "",
    receipt_status: str = "",
) -> None:
    outcome = outcome_name(decision)
    head = f"[{_STYLE.get(decision.outcome, 'bold')}]{outcome}[/]  {decision.decision_id}"
    lines = [head]
    if decision.certificate_number:
        who = decision.end_user.legal_name or "?"
        lines.append(f"certificate {decision.certificate_number} · end user {who}")
    if decision.licence_number:
        lines.append(f"licence {decision.licence_number}")
    for item in decision.approved_items:
        lines.append(
            f"approved: {item.quantity.value} {item.quantity.unit} {item.hs_code} "
            f"{'/'.join(item.elements)} ({item.description})"
        )
    if receipt_status:
        lines.append(f"receipt: {receipt_status}")
    body: Any = "\n".join(lines)
    if decision.reasons:
        table = Table(show_header=True, header_style="bold", expand=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("outcome", no_wrap=True)
        table.add_column("field")
        table.add_column("why")
        for r in decision.reasons:
            table.add_row(
                r.rule_id,
                decision_pb2.RuleOutcome.Name(r.outcome).removeprefix("RULE_OUTCOME_"),
                r.field,
                r.message,
            )
        body = Group(body, table)
    console.print(Panel(body, title=title or None, title_align="left"))
