"""`eucgate receipt verify`: check a kept receipt offline, long after it was issued.

A receipt kept from `eucgate submit --json` (or `decision get --json`) holds the signed
statement, the decision's leaf index, the checkpoint of the commit that recorded it
and the inclusion proof. With the service's published key and the log's pinned key,
all of it is checked here without calling the service. Exit codes: 0 verified, 1 the
file is unreadable, 2 usage, 5 the receipt's signature does not verify, 6 its
checkpoint or inclusion proof does not verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from eucgate_client.receipt import (
    ReceiptError,
    load_service_public_key,
    receipt_from_json,
    verify_receipt,
)
from eucgate_client.tlog import CheckpointError, ProofError, verify_logged_receipt
from rich.console import Console

from eucgate.cli.audit import LogKeyOpt, _verifier
from eucgate.cli.output import emit_json, fail
from eucgate.cli.render import number

receipt_app = typer.Typer(help="Verify kept receipts offline.", no_args_is_help=True)

out = Console()

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_RECEIPT_INVALID = 5
EXIT_LOG_INVALID = 6


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise fail(f"{path}: {exc}", EXIT_ERROR) from None
    if isinstance(doc, dict) and isinstance(doc.get("receipt"), dict):
        doc = doc["receipt"]  # the whole `submit --json` answer
    if not isinstance(doc, dict):
        raise fail(f"{path}: not a JSON object", EXIT_ERROR)
    return doc


@receipt_app.command("verify")
def verify(
    receipt: Annotated[
        Path, typer.Argument(help="the receipt JSON, or the whole `submit --json` output")
    ],
    service_public_key: Annotated[
        Path, typer.Option(help="the service's published Ed25519 key (PEM)")
    ],
    log_key: LogKeyOpt = None,
    signature_only: Annotated[
        bool,
        typer.Option(
            "--signature-only",
            help="check only the service's signature, not that the decision is in the log",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Verify a kept receipt: the service's signature, then (with --log-key) the signed
    checkpoint and the inclusion proof of the decision's log entry."""
    if log_key is None and not signature_only:
        raise fail(
            "give --log-key (or EUCGATE_LOG_KEY) to check the receipt's inclusion in the "
            "log, or --signature-only to check only the service's signature",
            EXIT_USAGE,
        )
    verifier = None if signature_only else _verifier(log_key)
    doc = _read(receipt)
    try:
        key = load_service_public_key(service_public_key.read_bytes())
    except OSError as exc:
        raise fail(f"--service-public-key: {exc}", EXIT_ERROR) from None
    except ReceiptError as exc:
        raise fail(f"--service-public-key: {exc}", EXIT_USAGE, reason=exc.reason) from None
    logged = None
    try:
        message = receipt_from_json(doc)
        if verifier is None:
            statement = verify_receipt(message, key)
        else:
            logged = verify_logged_receipt(message, key, verifier)
            statement = logged.statement
    except ReceiptError as exc:
        raise fail(
            f"receipt does not verify: {exc}",
            EXIT_LOG_INVALID if exc.reason == "RECEIPT_NOT_LOGGED" else EXIT_RECEIPT_INVALID,
            reason=exc.reason,
        ) from None
    except (CheckpointError, ProofError) as exc:
        raise fail(f"log check failed: {exc}", EXIT_LOG_INVALID, reason=exc.reason) from None
    result: dict[str, Any] = {
        "signature_verified": True,
        "log_verified": logged is not None,
        "decision_id": statement.get("decision_id"),
        "outcome": statement.get("outcome"),
        "bundle_digest": statement.get("bundle_digest"),
        "leaf_index": None if logged is None else logged.leaf_index,
        "tree_size": None if logged is None else logged.checkpoint.size,
        "log_origin": None if logged is None else logged.checkpoint.origin,
        "statement": statement,
    }
    if json_output:
        emit_json(result)
        return
    out.print(
        f"[green]verified[/] receipt of {result['decision_id']}: {result['outcome']}, "
        f"signed by the service key",
        highlight=False,
    )
    if logged is not None:
        out.print(
            f"in the log: leaf {logged.leaf_index} of {logged.checkpoint.size} "
            f"({logged.checkpoint.origin}), checkpoint signed by the pinned log key",
            highlight=False,
        )
    else:
        out.print("log inclusion NOT checked (--signature-only)", highlight=False)
    for b in statement.get("licence_balances") or []:
        out.print(
            f"debits {number(b.get('approved'))} {b.get('unit')} of {b.get('control_code')} "
            f"(licence {b.get('licence_number')}); {number(b.get('remaining_after'))} left",
            highlight=False,
        )
