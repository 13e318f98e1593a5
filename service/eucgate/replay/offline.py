"""Replaying an export (C2SP tlog-tiles, as `eucgate audit export` writes it) offline.

The log is checked before and while it is replayed: the checkpoint's signature under
the pinned key, the hash tiles against its root, then each entry's leaf hash against
the authenticated tiles as it streams past. So the entries replayed are exactly the
ones the verified checkpoint commits to; an entry that is not is reported with its index
and never replayed. Bundles are the auditor's: the files given, keyed by their digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eucgate_client.tlog import NoteVerifier

from eucgate.log.export import ExportCheckError, export_entries, open_export, stated_size
from eucgate.replay.engine import EntryResult, Status
from eucgate.replay.run import Item, ReplayJob, replay_entries
from eucgate.replay.summary import ReplaySummary


@dataclass(frozen=True)
class Range:
    """Entries [start, start + limit) of the log; limit 0 means to the end."""

    start: int = 0
    limit: int = 0

    def end(self, size: int) -> int:
        return size if self.limit <= 0 else min(size, self.start + self.limit)


def replay_export(
    directory: Path,
    verifier: NoteVerifier,
    job: ReplayJob,
    summary: ReplaySummary,
    *,
    span: Range = Range(),
    keep_going: bool = False,
    workers: int = 0,
    earlier_note: str | None = None,
    on_size: Callable[[int], None] | None = None,
    on_result: Callable[[EntryResult], None] | None = None,
) -> ReplaySummary:
    """Check and replay an export into `summary`; returns it.

    Without `keep_going` the replay stops at the first entry that cannot be replayed
    or the first failed log check (findings never stop it). With it, a log whose
    checkpoint or tiles fail is still replayed, from the size its checkpoint states,
    and marked unverified. Raises BundleError for a candidate that does not parse.
    """
    size: int | None
    try:
        checkpoint = open_export(directory, verifier, earlier_note=earlier_note)
        size = checkpoint.size
        summary.log.update(
            verified=True,
            origin=checkpoint.origin,
            tree_size=checkpoint.size,
            root=checkpoint.root.hex(),
        )
    except ExportCheckError as exc:
        f = exc.finding
        summary.fail_log(f.index, f.reason, f.message)
        summary.log.update(verified=False)
        size = stated_size(directory)
        if not keep_going or size is None:
            return summary
    end = span.end(size)
    if on_size is not None:
        on_size(max(0, end - span.start))
    verified = summary.log_failure is None

    def items() -> Iterator[Item]:
        try:
            for index, entry, finding in export_entries(
                directory, size, span.start, end, check=verified
            ):
                if finding is None:
                    yield index, entry
                else:
                    yield EntryResult(
                        index=index,
                        status=Status.ERROR,
                        reason=finding.reason,
                        message=finding.message,
                    )
        except ExportCheckError as exc:
            summary.fail_log(exc.finding.index, exc.finding.reason, exc.finding.message)

    for result in replay_entries(items(), job, workers=workers):
        if result.status is Status.ERROR and result.reason == "LOG_ROOT_MISMATCH":
            summary.fail_log(result.index, result.reason, result.message)
        summary.add(result)
        if on_result is not None:
            on_result(result)
        if not keep_going and (result.status is Status.ERROR or summary.log_failure is not None):
            summary.interrupted = True
            break
    return summary
