"""How decisions look to a person (rich) and to a script (JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from eucgate_client.v1 import decision_pb2
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from eucgate.cli.output import emit_json, proto_dict

_STYLE = {
    decision_pb2.OUTCOME_APPROVED: "bold green",
    decision_pb2.OUTCOME_REJECTED: "bold red",
    decision_pb2.OUTCOME_REFERRED: "bold yellow",
}


def outcome_name(decision: decision_pb2.Decision) -> str:
    return decision_pb2.Outcome.Name(decision.outcome).removeprefix("OUTCOME_")


def number(value: object) -> str:
    """A decimal string as a person reads it: "750.0" -> "750", "0.50" -> "0.5"."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not d.is_finite():
        return str(value)
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _balances(receipt: decision_pb2.Receipt | None) -> list[dict[str, Any]]:
    if receipt is None or not receipt.envelope.payload:
        return []
    try:
        statement = json.loads(receipt.envelope.payload)
    except ValueError:
        return []
    balances = statement.get("licence_balances") if isinstance(statement, dict) else None
    return [b for b in balances or [] if isinstance(b, dict)]


def rule_ids(decision: decision_pb2.Decision) -> str:
    """The rules that fired, each once, in rule order ("-" when none)."""
    return ", ".join(dict.fromkeys(r.rule_id for r in decision.reasons)) or "-"


def decision_table(*columns: str) -> Table:
    """A table whose first column is the decision id, never cut or wrapped (ids are
    copied into `licence ship` and `review resolve`); the other columns give way."""
    table = Table(show_lines=False)
    table.add_column("decision", no_wrap=True, overflow="fold", min_width=30)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def decision_dict(decision: decision_pb2.Decision) -> dict[str, Any]:
    """The decision in the CLI's JSON convention (see `eucgate.cli.output`)."""
    return proto_dict(decision)


def print_json(console: Console, value: Mapping[str, Any]) -> None:
    """One JSON object on stdout; `console` is kept for the callers' symmetry."""
    del console
    emit_json(value)


def print_decision(
    console: Console,
    decision: decision_pb2.Decision,
    *,
    title: str = "",
    receipt_status: str = "",
    receipt: decision_pb2.Receipt | None = None,
    replayed: bool = False,
) -> None:
    """A decision for a person. `receipt` (its payload is read, not verified: that is
    `receipt_status`'s job) adds what each approved quota takes and leaves."""
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
    for b in _balances(receipt):
        lines.append(
            f"debits {number(b.get('approved'))} {b.get('unit')} of {b.get('control_code')} "
            f"(licence {b.get('licence_number')}): {number(b.get('remaining_after'))} "
            f"{b.get('unit')} of the {number(b.get('quota'))} quota left after it"
        )
    if replayed:
        lines.append("replayed: decided before; nothing new recorded or reserved")
        lines.append(f"request {decision.request_id}")
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
