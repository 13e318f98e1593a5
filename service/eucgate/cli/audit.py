"""`eucgate audit`: checkpoints, proofs, export and offline verification of the log.

An auditor pins the log's verifier key ("name+keyid+base64key", from the operator, out
of band) and passes it as --log-key or EUCGATE_LOG_KEY; nothing the server says about
its own key is trusted. Exit codes: 0 verified, 1 error, 3 refused by the server,
4 server unavailable, 6 the log failed a check (what and where is printed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from eucgate_client.client import ApiError, AuditClient
from eucgate_client.tlog import (
    Checkpoint,
    CheckpointError,
    NoteVerifier,
    ProofError,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from eucgate.cli.connect import (
    CaOpt,
    CertOpt,
    Connection,
    InsecureOpt,
    KeyOpt,
    ServerOpt,
    api_failure,
)
from eucgate.cli.output import fail
from eucgate.cli.render import print_json
from eucgate.log.export import ExportError, ExportWriter, verify_export

audit_app = typer.Typer(
    help="Checkpoints, proofs, export and verification of the audit log.",
    no_args_is_help=True,
)

out = Console()
err = Console(stderr=True)

EXIT_ERROR = 1
EXIT_LOG_INVALID = 6

LogKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        envvar="EUCGATE_LOG_KEY",
        help="the log's pinned verifier key: name+keyid+base64(0x01||key)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _fail(message: str, code: int) -> typer.Exit:
    return fail(message, int(code))


def _verifier(log_key: str | None) -> NoteVerifier | None:
    if log_key is None:
        return None
    try:
        return NoteVerifier.parse(log_key)
    except CheckpointError as exc:
        raise _fail(f"--log-key: {exc}", EXIT_ERROR) from None


def _opened(note: str, verifier: NoteVerifier) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier)
    except CheckpointError as exc:
        raise _fail(f"checkpoint does not verify ({exc.reason}): {exc}", EXIT_LOG_INVALID) from None


@audit_app.command("checkpoint")
def checkpoint(
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    log_key: LogKeyOpt = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="keep the signed checkpoint in this file")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Fetch the latest checkpoint; verify it with --log-key; keep it with --out."""
    verifier = _verifier(log_key)
    with Connection(server, ca, cert, key, insecure).open() as channel:
        try:
            response = AuditClient(channel).get_checkpoint()
        except ApiError as exc:
            raise api_failure(exc) from None
    opened = None if verifier is None else _opened(response.checkpoint, verifier)
    if output is not None:
        output.write_text(response.checkpoint)
    if json_output:
        print_json(
            out,
            {
                "checkpoint": response.checkpoint,
                "tree_size": response.tree_size,
                "verified": opened is not None,
                "server_verifier_key": response.verifier_key,
            },
        )
        return
    out.print(response.checkpoint, end="", highlight=False, markup=False)
    if opened is not None:
        out.print(f"[green]verified[/] with {verifier}: size {opened.size}", highlight=False)
    else:
        out.print(
            f"[yellow]not verified[/]: pass --log-key (the server states its key as "
            f"{response.verifier_key}; pin it only from a trusted source)",
            highlight=False,
        )


@audit_app.command("prove")
def prove(
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    log_key: LogKeyOpt = None,
    leaf_index: Annotated[int | None, typer.Option(help="inclusion of this leaf")] = None,
    decision_id: Annotated[str | None, typer.Option(help="inclusion of this decision")] = None,
    since: Annotated[
        Path | None, typer.Option(help="consistency from this kept checkpoint file")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Print an inclusion proof (--leaf-index/--decision-id) or a consistency proof
    (--since KEPT_CHECKPOINT) against the latest checkpoint, checked with --log-key;
    exit 0 verified, 6 it does not verify."""
    if sum(x is not None for x in (leaf_index, decision_id, since)) != 1:
        raise _fail("give exactly one of --leaf-index, --decision-id, --since", 2)
    verifier = _verifier(log_key)
    if verifier is None:  # an unchecked proof proves nothing: never print one as if it did
        raise _fail(
            "--log-key (or EUCGATE_LOG_KEY) is required: the proof is checked against the "
            "checkpoint that key signed",
            2,
        )
    kept_note = ""
    if since is not None:
        try:
            kept_note = since.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"--since: {exc}", EXIT_ERROR) from None
    with Connection(server, ca, cert, key, insecure).open() as channel:
        client = AuditClient(channel)
        try:
            if since is not None:
                first_size = _size_of(kept_note)
                consistency = client.consistency_proof(first_size)
                hashes = list(consistency.hashes)
                note = consistency.checkpoint
                result: dict[str, object] = {
                    "kind": "consistency",
                    "first_size": consistency.first_size,
                    "second_size": consistency.second_size,
                }
            else:
                inclusion = client.inclusion_proof(decision_id=decision_id, leaf_index=leaf_index)
                hashes = list(inclusion.hashes)
                note = inclusion.checkpoint
                result = {
                    "kind": "inclusion",
                    "leaf_index": inclusion.leaf_index,
                    "tree_size": inclusion.tree_size,
                    "leaf_hash": inclusion.leaf_hash.hex(),
                }
        except ApiError as exc:
            raise api_failure(exc) from None
    result["hashes"] = [h.hex() for h in hashes]
    if verifier is not None:
        signed = _opened(note, verifier)
        try:
            if since is None:
                verify_inclusion(
                    inclusion.leaf_index, signed.size, inclusion.leaf_hash, hashes, signed.root
                )
            else:
                kept = _opened(kept_note, verifier)
                verify_consistency(kept.size, signed.size, kept.root, signed.root, hashes)
        except ProofError as exc:
            raise _fail(f"proof does not verify ({exc.reason}): {exc}", EXIT_LOG_INVALID) from None
        result["verified"] = True
    if json_output:
        print_json(out, result)
        return
    for name, value in result.items():
        if name == "hashes":
            out.print("hashes:")
            for h in hashes:
                out.print(f"  {h.hex()}", highlight=False)
        else:
            out.print(f"{name}: {value}", highlight=False)


@audit_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="write the tlog-tiles layout here")],
    server: ServerOpt = "127.0.0.1:50051",
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    log_key: LogKeyOpt = None,
    page_size: Annotated[int, typer.Option(help="entries per streamed page")] = 1024,
    json_output: JsonOpt = False,
) -> None:
    """Export every entry up to the latest checkpoint as C2SP tlog-tiles, streaming."""
    verifier = _verifier(log_key)
    with Connection(server, ca, cert, key, insecure).open(
        ("grpc.max_receive_message_length", 64 * 1024 * 1024)
    ) as channel:
        client = AuditClient(channel)
        try:
            note = client.get_checkpoint().checkpoint
            if verifier is not None:
                _opened(note, verifier)
            size = _size_of(note)
            writer = ExportWriter(directory)
            with _progress(quiet=json_output) as progress:
                task = progress.add_task("exporting", total=size)
                for page in client.stream_entries(0, limit=size, page_size=page_size):
                    for entry in page.entries:
                        writer.add(entry)
                    progress.update(task, completed=writer.size)
        except ApiError as exc:
            raise api_failure(exc) from None
        except (ExportError, OSError) as exc:
            raise _fail(str(exc), EXIT_ERROR) from None
    if writer.size != size:
        raise _fail(f"the server sent {writer.size} entries, not {size}", EXIT_LOG_INVALID)
    writer.finish(note)
    if json_output:
        print_json(
            out,
            {"directory": str(directory), "tree_size": size, "checked": verifier is not None},
        )
        return
    err.print(f"exported {size} entries to {directory}")


def _size_of(note: str) -> int:
    lines = note.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise _fail("the server's checkpoint is not a checkpoint", EXIT_LOG_INVALID)
    return int(lines[1])


def _progress(quiet: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=quiet,
    )


@audit_app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(help="an export written by `audit export`")],
    log_key: LogKeyOpt = None,
    since: Annotated[
        Path | None, typer.Option(help="a checkpoint kept earlier: the log must extend it")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Recompute the root from every entry and check signature, consistency and digests.

    Exits 0 when everything verifies, 6 with the first bad index and reason otherwise.
    """
    verifier = _verifier(log_key)
    if verifier is None:
        raise _fail("--log-key (or EUCGATE_LOG_KEY) is required to verify", 2)
    try:
        earlier = None if since is None else since.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"--since: {exc}", EXIT_ERROR) from None
    with _progress() as progress:
        task = progress.add_task("verifying", total=None)
        result = verify_export(
            directory,
            verifier,
            earlier_note=earlier,
            progress=lambda done: progress.update(task, completed=done),
        )
    finding = result.finding
    if json_output:
        print_json(
            out,
            {
                "ok": result.ok,
                "tree_size": None if result.checkpoint is None else result.checkpoint.size,
                "entries_checked": result.entries,
                "finding": None
                if finding is None
                else {"index": finding.index, "reason": finding.reason, "message": finding.message},
            },
        )
    elif finding is None:
        assert result.checkpoint is not None
        out.print(
            f"[green]verified[/] {result.entries} entries; root "
            f"{result.checkpoint.root.hex()} signed by {verifier.name}",
            highlight=False,
        )
    else:
        where = f"at index {finding.index}" if finding.index >= 0 else "in the export"
        err.print(f"[red]FAILED[/] {where}: {finding.reason}: {finding.message}", highlight=False)
    if finding is not None:
        raise typer.Exit(EXIT_LOG_INVALID)
