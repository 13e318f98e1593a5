"""`eucgate receipt verify`: check a kept receipt offline, long after it was issued.

A receipt kept from `eucgate submit --json` (or `decision get --json`) holds the signed
statement, the decision's leaf index, the checkpoint of the commit that recorded it
and the inclusion proof. With the service's published key and the log's pinned key,
all of it is checked here without calling the service. After key rotations, give the
whole published key set (`eucgate keys --json`, `--keys`): the receipt key is chosen
by its key id and its validity period applies, every log key is tried, and the
witnesses it lists must cosign (their quorum) unless `--witness-key` pins others.
Exit codes: 0 verified, 1 the file is unreadable, 2 usage, 5 the receipt's signature
does not verify (or its key was retired before the decision), 6 its checkpoint,
witness cosignatures or inclusion proof do not verify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from eucgate_client.receipt import (
    ReceiptError,
    ServiceKeys,
    load_service_public_key,
    receipt_from_json,
    verify_receipt,
)
from eucgate_client.tlog import (
    CheckpointError,
    NoteVerifier,
    ProofError,
    PublishedKeys,
    WitnessVerifier,
    verify_logged_receipt,
)
from rich.console import Console

from eucgate.cli.audit import (
    LogKeyOpt,
    WitnessesRequiredOpt,
    WitnessKeyOpt,
    WitnessPolicy,
    _verifier,
)
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


def _key_set(path: Path) -> PublishedKeys:
    try:
        return PublishedKeys.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise fail(f"--keys: {exc}", EXIT_ERROR) from None
    except (ReceiptError, CheckpointError) as exc:
        raise fail(f"--keys: {exc}", EXIT_USAGE, reason=exc.reason) from None


def _service_key(path: Path) -> ServiceKeys:
    try:
        return load_service_public_key(path.read_bytes())
    except OSError as exc:
        raise fail(f"--service-public-key: {exc}", EXIT_ERROR) from None
    except ReceiptError as exc:
        raise fail(f"--service-public-key: {exc}", EXIT_USAGE, reason=exc.reason) from None


@receipt_app.command("verify")
def verify(
    receipt: Annotated[
        Path, typer.Argument(help="the receipt JSON, or the whole `submit --json` output")
    ],
    service_public_key: Annotated[
        Path | None, typer.Option(help="the service's published Ed25519 key (PEM)")
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="the published key set (`eucgate keys --json`): receipt keys with their "
            "periods, log keys and witnesses; in place of --service-public-key/--log-key",
        ),
    ] = None,
    log_key: LogKeyOpt = None,
    witness_key: WitnessKeyOpt = None,
    witnesses_required: WitnessesRequiredOpt = 0,
    signature_only: Annotated[
        bool,
        typer.Option(
            "--signature-only",
            help="check only the service's signature, not that the decision is in the log",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Verify a kept receipt: the service's signature, then (with a log key) the signed
    checkpoint, the witnesses' cosignatures and the inclusion proof of its log entry."""
    if (service_public_key is None) == (keys is None):
        raise fail("give either --service-public-key or --keys", EXIT_USAGE)
    pinned = WitnessPolicy(witness_key, witnesses_required)
    if signature_only and pinned:
        raise fail("--witness-key needs the log check (drop --signature-only)", EXIT_USAGE)
    witnesses: tuple[WitnessVerifier, ...] = pinned.witnesses
    required = pinned.required
    log_keys: tuple[NoteVerifier, ...] = ()
    service_keys: ServiceKeys
    if keys is not None:
        published = _key_set(keys)
        service_keys, log_keys = published.service_keys, published.log_keys
        if not pinned and published.witness_quorum:
            witnesses, required = published.witnesses, published.witness_quorum
    else:
        assert service_public_key is not None
        service_keys = _service_key(service_public_key)
    verifier = _verifier(log_key)
    if verifier is not None:
        log_keys = (verifier,)
    if not log_keys and not signature_only:
        raise fail(
            "give --log-key (or EUCGATE_LOG_KEY, or --keys) to check the receipt's "
            "inclusion in the log, or --signature-only to check only the service's signature",
            EXIT_USAGE,
        )
    doc = _read(receipt)
    logged = None
    try:
        message = receipt_from_json(doc)
        if signature_only:
            statement = verify_receipt(message, service_keys)
        else:
            logged = verify_logged_receipt(
                message, service_keys, log_keys, witnesses=witnesses, threshold=required
            )
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
        "witnesses_required": required if logged is not None and witnesses else 0,
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
        if result["witnesses_required"]:
            out.print(
                f"cosigned by at least {required} of {len(witnesses)} pinned witnesses",
                highlight=False,
            )
        else:
            out.print("witness cosignatures NOT checked (no witness keys)", highlight=False)
    else:
        out.print("log inclusion NOT checked (--signature-only)", highlight=False)
    for b in statement.get("licence_balances") or []:
        out.print(
            f"debits {number(b.get('approved'))} {b.get('unit')} of {b.get('control_code')} "
            f"(licence {b.get('licence_number')}); {number(b.get('remaining_after'))} left",
            highlight=False,
        )
