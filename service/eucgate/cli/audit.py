"""`eucgate audit`: checkpoints, proofs, export and offline verification of the log.

An auditor pins the log's verifier key ("name+keyid+base64key", from the operator, out
of band) and passes it as --log-key or EUCGATE_LOG_KEY; nothing the server says about
its own key is trusted. With --witness-key (the cosigner keys of witnesses the auditor
trusts, repeatable, or EUCGATE_WITNESS_KEYS) a checkpoint counts only when at least
--witnesses-required of them cosigned it (default: all), so the log cannot show the
auditor a history no witness saw. Exit codes: 0 verified, 1 error, 3 refused by the server,
4 server unavailable, 6 the log failed a check (what and where is printed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from eucgate_client.client import ApiError, AuditClient
from eucgate_client.tlog import (
    Checkpoint,
    CheckpointError,
    NoteVerifier,
    ProofError,
    WitnessVerifier,
    open_checkpoint,
    parse_witness_keys,
    verify_consistency,
    verify_cosignatures,
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
from eucgate.log.export import ExportError, ExportWriter, Finding, verify_export

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
WitnessKeyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--witness-key",
        envvar="EUCGATE_WITNESS_KEYS",
        help="a pinned witness cosigner key name+keyid+base64(0x04||key); repeat for each",
    ),
]
WitnessesRequiredOpt = Annotated[
    int,
    typer.Option(
        "--witnesses-required",
        envvar="EUCGATE_WITNESSES_REQUIRED",
        help="how many of the --witness-key witnesses must have cosigned (0: all)",
    ),
]


class WitnessPolicy:
    """The auditor's k of n pinned witnesses; `check` refuses a checkpoint lacking them."""

    def __init__(self, keys: list[str] | None, required: int) -> None:
        try:
            self.witnesses: tuple[WitnessVerifier, ...] = parse_witness_keys(keys or ())
        except CheckpointError as exc:
            raise _fail(f"--witness-key: {exc}", 2) from None
        self.required = required or len(self.witnesses)
        if required and not self.witnesses:
            raise _fail("--witnesses-required needs --witness-key", 2)
        if self.required > len(self.witnesses):
            raise _fail(
                f"--witnesses-required {required} is more than the {len(self.witnesses)} keys", 2
            )

    def __bool__(self) -> bool:
        return bool(self.witnesses)

    def check(self, checkpoint: Checkpoint) -> list[str]:
        """The names of the pinned witnesses that cosigned; exits 6 when too few did."""
        if not self:
            return []
        try:
            return list(verify_cosignatures(checkpoint, self.witnesses, self.required))
        except CheckpointError as exc:
            raise _fail(
                f"checkpoint is not witnessed ({exc.reason}): {exc}", EXIT_LOG_INVALID
            ) from None


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
    witness_key: WitnessKeyOpt = None,
    witnesses_required: WitnessesRequiredOpt = 0,
    output: Annotated[
        Path | None, typer.Option("--out", help="keep the signed checkpoint in this file")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Fetch the latest checkpoint; verify it with --log-key; keep it with --out.

    With --witness-key: the latest checkpoint the witnesses cosigned, and exit 6 unless
    enough of the pinned ones did."""
    verifier = _verifier(log_key)
    policy = WitnessPolicy(witness_key, witnesses_required)
    if policy and verifier is None:
        raise _fail("--witness-key needs --log-key", 2)
    response = Connection(server, ca, cert, key, insecure).call(
        lambda channel: AuditClient(channel).get_checkpoint()
    )
    if policy:
        if not response.witnessed_checkpoint:
            raise _fail(
                "checkpoint is not witnessed (CHECKPOINT_NOT_WITNESSED): the server has no "
                "checkpoint its witness quorum cosigned yet",
                EXIT_LOG_INVALID,
            )
        response.checkpoint = response.witnessed_checkpoint
        response.tree_size = response.witnessed_tree_size
    opened = None if verifier is None else _opened(response.checkpoint, verifier)
    cosigned = [] if opened is None else policy.check(opened)
    if output is not None:
        output.write_text(response.checkpoint)
    if json_output:
        print_json(
            out,
            {
                "checkpoint": response.checkpoint,
                "tree_size": response.tree_size,
                "verified": opened is not None,
                "witnesses": cosigned,
                "server_verifier_key": response.verifier_key,
            },
        )
        return
    out.print(response.checkpoint, end="", highlight=False, markup=False)
    if opened is not None:
        out.print(f"[green]verified[/] with {verifier}: size {opened.size}", highlight=False)
        if cosigned:
            out.print(f"[green]cosigned[/] by {', '.join(cosigned)}", highlight=False)
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
    witness_key: WitnessKeyOpt = None,
    witnesses_required: WitnessesRequiredOpt = 0,
    json_output: JsonOpt = False,
) -> None:
    """Print an inclusion proof (--leaf-index/--decision-id) or a consistency proof
    (--since KEPT_CHECKPOINT) against the latest checkpoint, checked with --log-key;
    with --witness-key against the latest witnessed one, whose cosignatures must hold;
    exit 0 verified, 6 it does not verify."""
    if sum(x is not None for x in (leaf_index, decision_id, since)) != 1:
        raise _fail("give exactly one of --leaf-index, --decision-id, --since", 2)
    verifier = _verifier(log_key)
    policy = WitnessPolicy(witness_key, witnesses_required)
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
            size = _witnessed_size(client) if policy else 0
            if since is not None:
                first_size = _size_of(kept_note)
                consistency = client.consistency_proof(first_size, size)
                hashes = list(consistency.hashes)
                note = consistency.checkpoint
                result: dict[str, object] = {
                    "kind": "consistency",
                    "first_size": consistency.first_size,
                    "second_size": consistency.second_size,
                }
            else:
                inclusion = client.inclusion_proof(
                    decision_id=decision_id, leaf_index=leaf_index, tree_size=size
                )
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
        result["witnesses"] = policy.check(signed)
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
    witnessed: Annotated[
        bool,
        typer.Option(help="end at the latest checkpoint the witnesses cosigned, with them"),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Export every entry up to the latest checkpoint as C2SP tlog-tiles, streaming."""
    verifier = _verifier(log_key)
    with Connection(server, ca, cert, key, insecure).open(
        ("grpc.max_receive_message_length", 64 * 1024 * 1024)
    ) as channel:
        client = AuditClient(channel)
        try:
            answer = client.get_checkpoint()
            note = answer.witnessed_checkpoint if witnessed else answer.checkpoint
            if not note:
                raise _fail(
                    "checkpoint is not witnessed (CHECKPOINT_NOT_WITNESSED): none yet",
                    EXIT_LOG_INVALID,
                )
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


def _witnessed_size(client: AuditClient) -> int:
    """The size of the latest checkpoint the server's witness quorum cosigned; exits 6
    when there is none yet. Its cosignatures are checked on the proof's checkpoint."""
    size = client.get_checkpoint().witnessed_tree_size
    if size <= 0:
        raise _fail(
            "checkpoint is not witnessed (CHECKPOINT_NOT_WITNESSED): the server has no "
            "checkpoint its witness quorum cosigned yet",
            EXIT_LOG_INVALID,
        )
    return size


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
    witness_key: WitnessKeyOpt = None,
    witnesses_required: WitnessesRequiredOpt = 0,
    json_output: JsonOpt = False,
) -> None:
    """Recompute the root from every entry and check signature, consistency and digests;
    with --witness-key, that enough pinned witnesses cosigned the export's checkpoint
    (export it with --witnessed).

    Exits 0 when everything verifies, 6 with the first bad index and reason otherwise.
    """
    verifier = _verifier(log_key)
    policy = WitnessPolicy(witness_key, witnesses_required)
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
            workers=os.cpu_count() or 1,  # leaf tiles are independent: one process a core
        )
    finding = result.finding
    if finding is None and result.checkpoint is not None and policy:
        try:
            verify_cosignatures(result.checkpoint, policy.witnesses, policy.required)
        except CheckpointError as exc:
            finding = Finding(-1, exc.reason, str(exc))
    if json_output:
        print_json(
            out,
            {
                "ok": finding is None,
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
