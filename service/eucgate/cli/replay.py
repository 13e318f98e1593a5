"""`eucgate replay`: recompute recorded decisions, exactly or under a candidate bundle.

Offline on an export (`--export DIR`, with the pinned `--log-key` and the `--bundle`
files the decisions were made under) or against a live service (`--server`, which
replays from its own store and streams the results; the range it replayed is checked
against its signed checkpoint here). Exit codes: 0 every decision recomputed as
recorded (what-if: none would change), 1 error, 2 usage, 3 refused by the server,
4 server unavailable, 6 the log failed its check, 7 differences found, 8 entries that
could not be replayed.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer
from eucgate_client.client import ApiError, AuditClient, PolicyClient
from eucgate_client.tlog import (
    CheckpointError,
    CompactRange,
    NoteVerifier,
    ProofError,
    verify_consistency,
)
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from eucgate.cli.audit import LogKeyOpt, _opened, _verifier
from eucgate.cli.bundlefiles import read_bundle_file
from eucgate.cli.connect import CaOpt, CertOpt, Connection, InsecureOpt, KeyOpt
from eucgate.cli.output import fail
from eucgate.cli.render import print_json
from eucgate.core.bundle import Bundle
from eucgate.errors import EucgateError
from eucgate.replay.bundlediff import diff_bundles
from eucgate.replay.engine import EntryFilter, EntryResult
from eucgate.replay.offline import Range, replay_export
from eucgate.replay.report import render_html
from eucgate.replay.run import ReplayJob
from eucgate.replay.summary import ReplaySummary, rule_changes
from eucgate.store.base import to_micros

out = Console()
err = Console(stderr=True)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4

QUOTA_NOTE = (
    "Approved quantities per licence and control code, before and after, summed in log "
    "order from what the entries carry (approved items, and the ledger balances each "
    "decision read, lowered by what the candidate took beyond the record before it)."
)


def _fail(message: str, code: int) -> typer.Exit:
    return fail(message, int(code))


def _when(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"{name} must be an ISO 8601 date or time", EXIT_USAGE) from None
    return to_micros(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _load(path: Path, what: str) -> Bundle:
    # A signed bundle is read without checking its signer: replay matches bundles to
    # entries by digest, and a what-if candidate need not be signed yet.
    try:
        return read_bundle_file(path)[0]
    except (OSError, ValueError, EucgateError) as exc:
        raise _fail(f"{what} {path}: {exc}", EXIT_ERROR) from None


class _Bar:
    """A progress bar with rate and ETA on stderr, or nothing when `quiet`."""

    def __init__(self, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
        )
        self.task = self.progress.add_task("replaying", total=None, rate="")
        self.done = 0

    def size(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, _result: EntryResult) -> None:
        self.done += 1
        if self.done % 64 == 0:
            speed = self.progress.tasks[0].speed
            rate = f"{speed:,.0f} entries/s" if speed else ""
            self.progress.update(self.task, completed=self.done, rate=rate)

    def finish(self) -> None:
        self.progress.update(self.task, completed=self.done)


def replay(
    export: Annotated[
        Path | None, typer.Option(help="replay this export (`eucgate audit export`) offline")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            "-s",
            help="replay on this service (default EUCGATE_SERVER, unless --export is given)",
        ),
    ] = None,
    ca: CaOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    insecure: InsecureOpt = False,
    log_key: LogKeyOpt = None,
    bundle: Annotated[
        list[Path] | None,
        typer.Option(help="a policy bundle the decisions were made under (repeatable)"),
    ] = None,
    candidate: Annotated[
        Path | None, typer.Option(help="what-if: replay under this bundle instead")
    ] = None,
    start: Annotated[int, typer.Option("--from", help="first leaf index (resume here)")] = 0,
    limit: Annotated[int, typer.Option(help="at most this many entries (0: to the end)")] = 0,
    importer: Annotated[str, typer.Option(help="only this importer registration")] = "",
    licence: Annotated[str, typer.Option(help="only decisions under this licence")] = "",
    after: Annotated[str | None, typer.Option(help="decided at or after (ISO 8601)")] = None,
    before: Annotated[str | None, typer.Option(help="decided before (ISO 8601)")] = None,
    since: Annotated[
        Path | None, typer.Option(help="a kept checkpoint the log must extend (offline)")
    ] = None,
    keep_going: Annotated[
        bool, typer.Option(help="report problems and go on instead of stopping")
    ] = False,
    workers: Annotated[
        int, typer.Option(help="worker processes (default: one per core; 0: none)")
    ] = -1,
    chain_cache: Annotated[
        bool, typer.Option(help="reuse verified intermediates (never changes a decision)")
    ] = True,
    report: Annotated[Path | None, typer.Option(help="write an HTML report here")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Recompute recorded decisions and compare them with the record (or, with
    --candidate, show what a new bundle would change). Exit 0 clean, 7 differences,
    8 entries not replayable, 6 log check failed."""
    if export is not None and server is not None:
        raise _fail("give --export DIR (offline) or --server (live), not both", EXIT_USAGE)
    if export is None and server is None:
        server = os.environ.get("EUCGATE_SERVER") or None  # an exported default
    if export is None and server is None:
        raise _fail("give --export DIR (offline) or --server (live)", EXIT_USAGE)
    if start < 0 or limit < 0:
        raise _fail("--from and --limit must not be negative", EXIT_USAGE)
    verifier = _verifier(log_key)
    flt = EntryFilter(
        importer=importer,
        licence=licence,
        after_micros=_when(after, "--after"),
        before_micros=_when(before, "--before"),
    )
    chosen = None if candidate is None else _load(candidate, "--candidate")
    given = {b.digest: b for b in map(_load_given, bundle or ())}
    summary = ReplaySummary(
        mode="exact" if chosen is None else "what-if",
        candidate_digest="" if chosen is None else chosen.digest,
        candidate_name="" if chosen is None else chosen.name,
        quota_note="" if chosen is None else QUOTA_NOTE,
        bundle_names={d: b.name for d, b in given.items()},
    )
    bar = _Bar(quiet=json_output)
    with bar.progress:
        try:
            if export is not None:
                if verifier is None:
                    raise _fail("--log-key (or EUCGATE_LOG_KEY) is required", EXIT_USAGE)
                try:
                    earlier = None if since is None else since.read_text()
                except (OSError, UnicodeDecodeError) as exc:
                    raise _fail(f"--since: {exc}", EXIT_ERROR) from None
                bundles = {d: b.canonical() for d, b in given.items()}
                job = ReplayJob(
                    bundles=bundles,
                    candidate=None if chosen is None else chosen.canonical(),
                    entry_filter=flt,
                    use_chain_cache=chain_cache,
                )
                replay_export(
                    export,
                    verifier,
                    job,
                    summary,
                    span=Range(start, limit),
                    keep_going=keep_going,
                    workers=os.cpu_count() or 1 if workers < 0 else workers,
                    earlier_note=earlier,
                    on_size=bar.size,
                    on_result=bar.advance,
                )
            else:
                assert server is not None
                if flt != EntryFilter():
                    raise _fail("filters apply offline only (--export)", EXIT_USAGE)
                _replay_live(
                    Connection(server, ca, cert, key, insecure),
                    verifier,
                    chosen,
                    summary,
                    Range(start, limit),
                    keep_going,
                    bar,
                )
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            bar.finish()
    recorded = {d: b.canonical() for d, b in given.items()}
    if server is not None and summary.main_bundle and summary.main_bundle not in recorded:
        recorded.update(_fetch_bundle(Connection(server, ca, cert, key, insecure), summary))
    describe_bundles(summary, recorded, None if chosen is None else chosen.canonical())
    _emit(summary, report, json_output)
    raise typer.Exit(summary.exit_code())


def describe_bundles(
    summary: ReplaySummary, recorded: dict[str, bytes], candidate: bytes | None
) -> None:
    """Name the recorded bundles and, for what-if, diff the main one against the
    candidate, rule by rule (recorded bundles the replay did not have stay unnamed)."""
    for digest, canonical in recorded.items():
        try:
            name = json.loads(canonical).get("name", "")
        except (ValueError, AttributeError):
            continue
        summary.bundle_names.setdefault(digest, str(name))
    base = summary.main_bundle
    if candidate is None or base not in recorded:
        return
    summary.bundle_diff_base = base
    summary.bundle_diff = [c.to_json() for c in diff_bundles(recorded[base], candidate)]


def _fetch_bundle(connection: Connection, summary: ReplaySummary) -> dict[str, bytes]:
    """The main recorded bundle from the service (auditor role), checked by its digest;
    {} when the service will not or cannot hand it out."""
    digest = summary.main_bundle
    try:
        with connection.open() as channel:
            canonical = PolicyClient(channel).bundle(digest, include_content=True).canonical_bundle
    except ApiError:
        return {}
    return {digest: canonical} if hashlib.sha256(canonical).hexdigest() == digest else {}


def _load_given(path: Path) -> Bundle:
    return _load(path, "--bundle")


def _replay_live(
    connection: Connection,
    verifier: NoteVerifier | None,
    candidate: Bundle | None,
    summary: ReplaySummary,
    span: Range,
    keep_going: bool,
    bar: _Bar,
) -> None:
    """Replay on the service; check the range against its checkpoint with --log-key."""
    with connection.open(("grpc.max_receive_message_length", 64 * 1024 * 1024)) as channel:
        client = AuditClient(channel)
        tree: CompactRange | None = None
        header = None
        try:
            for message in client.replay(
                start_index=span.start,
                limit=span.limit,
                candidate_bundle=b"" if candidate is None else candidate.canonical(),
                keep_going=keep_going,
            ):
                if message.HasField("range"):
                    header = message.range
                    bar.size(header.end_index - header.start_index)
                    peaks = list(reversed(header.prefix_hashes))
                    try:
                        tree = CompactRange(header.start_index, peaks)
                    except ValueError as exc:
                        summary.fail_log(-1, "LOG_ROOT_MISMATCH", str(exc))
                    continue
                result = EntryResult.from_json(json.loads(message.result.detail))
                if tree is not None:
                    if result.index != tree.size:
                        summary.fail_log(result.index, "LOG_ROOT_MISMATCH", "out of order")
                        tree = None
                    else:
                        tree.append(bytes.fromhex(result.leaf_hash))
                summary.add(result)
                bar.advance(result)
        except ApiError as exc:
            unavailable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
            raise _fail(
                str(exc), EXIT_UNAVAILABLE if exc.code in unavailable else EXIT_REFUSED
            ) from None
    if header is None:
        raise _fail("the service sent no range", EXIT_ERROR)
    summary.log.update(tree_size=header.tree_size, verified=False)
    if verifier is None:
        summary.log.update(
            note="the replayed range was not checked against the log's signed checkpoint: "
            "pass --log-key (or EUCGATE_LOG_KEY) to check it"
        )
        return
    if summary.interrupted or summary.log_failure is not None or tree is None:
        return
    try:
        signed = _opened(header.checkpoint, verifier)
        if tree.size != header.end_index:
            raise ProofError("PROOF_MALFORMED", f"{tree.size} results, not {header.end_index}")
        verify_consistency(
            tree.size, signed.size, tree.root(), signed.root, list(header.consistency_proof)
        )
    except (ProofError, CheckpointError) as exc:
        summary.fail_log(-1, exc.reason, str(exc))
        return
    summary.log.update(
        verified=True, origin=signed.origin, tree_size=signed.size, root=signed.root.hex()
    )


def _emit(summary: ReplaySummary, report: Path | None, json_output: bool) -> None:
    document = summary.to_json()
    if report is not None:
        try:
            report.write_text(render_html(document), encoding="utf-8")
        except OSError as exc:
            raise _fail(f"--report: {exc}", EXIT_ERROR) from None
    if json_output:
        print_json(out, document)
        return
    _print_human(summary)
    if report is not None:
        err.print(f"wrote {report}")


def _print_human(summary: ReplaySummary) -> None:
    log = summary.log
    if summary.log_failure is not None:
        f = summary.log_failure
        where = f"at index {f['index']}" if f["index"] >= 0 else "in the log"
        out.print(f"[red]log check FAILED[/] {where}: {f['reason']}: {f['message']}")
    elif log.get("verified"):
        out.print(
            f"[green]log verified[/]: {log.get('tree_size')} entries, root {log.get('root')}",
            highlight=False,
        )
    else:
        note = log.get("note") or "the log was not checked"
        out.print(f"[yellow]log not verified[/]: {note}", highlight=False)
    for digest, n in summary.bundle_digests.most_common():
        name = summary.bundle_names.get(digest) or "(bundle not at hand)"
        out.print(f"recorded under {name} {digest}: {_plural(n, 'decision')}", highlight=False)
    if summary.candidate_digest:
        out.print(f"candidate {summary.candidate_name} {summary.candidate_digest}", highlight=False)
        if summary.bundle_diff:
            out.print(f"the candidate changes {_plural(len(summary.bundle_diff), 'setting')}:")
            for c in summary.bundle_diff[:20]:
                was_now = f"{c['before']} -> {c['after']}" if c["before"] or c["after"] else ""
                out.print(
                    f"  {c['kind']} {c['path']} {was_now} {c['detail']}".rstrip(),
                    highlight=False,
                    markup=False,
                )
    statuses = dict(summary.statuses)  # resolutions are listed on their own line
    statuses["SKIPPED"] = statuses.get("SKIPPED", 0) - sum(summary.resolutions.values())
    statuses = {k: v for k, v in statuses.items() if v}
    counts = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    out.print(f"{summary.mode} replay of {_plural(summary.replayed, 'decision')}: {counts}")
    if summary.resolutions:
        made = ", ".join(f"{k} {v}" for k, v in sorted(summary.resolutions.items()))
        out.print(
            f"  {_plural(sum(summary.resolutions.values()), 'resolution')} by reviewers "
            f"({made}): persons' decisions, kept as recorded; approvals count toward quotas",
            highlight=False,
        )
    for kind, n in sorted(summary.skipped_kinds.items()):
        out.print(f"  {n} {kind!r} entries skipped: they record no decision", highlight=False)
    for rule, change, b, a, n in summary.group_lines():
        out.print(f"  {rule} {change}: {n} {b} would be {a}", highlight=False)
    for result in summary.findings[:50]:
        out.print(
            f"  [bold]{result.index}[/] {result.decision_id} {result.status}: {result.message}",
            highlight=False,
        )
        for rule, change in rule_changes(result):
            if rule != "-":
                why = _reason_message(result, rule)
                out.print(f"      {rule} {change}{why}", highlight=False, markup=False)
        for path, was, now in result.diffs[:10]:
            out.print(f"      {path}: {was} -> {now}", highlight=False, markup=False)
    for result in summary.problems[:50]:
        out.print(
            f"  [red]{result.index}[/] {result.reason}: {result.message}",
            highlight=False,
        )
    if summary.interrupted and summary.resume_index is not None:
        if summary.stopped_at_error:
            out.print(
                f"stopped at entry {summary.resume_index}, which could not be replayed; fix "
                f"its cause (e.g. give the missing bundle with --bundle) and resume with "
                f"--from {summary.resume_index}, or pass --keep-going to list every problem",
                highlight=False,
            )
        else:
            out.print(f"stopped; resume with --from {summary.resume_index}", highlight=False)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _reason_message(result: EntryResult, rule: str) -> str:
    """ " (REJECT on end_use.category)": how the rule fires where it does, if it does."""
    for brief in (result.replayed, result.recorded):
        for rule_id, outcome, field in brief.reasons if brief is not None else ():
            if rule_id == rule:
                return f" ({outcome} on {field})" if field else f" ({outcome})"
    return ""
