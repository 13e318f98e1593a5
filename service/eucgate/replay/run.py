"""Replaying a range of entries across processes, results in log order.

Memory stays O(1) in the log's length: entries are read as a stream, cut into chunks,
and at most `window` chunks are in flight; results come back in index order whatever
order the workers finish in, so output is deterministic. Workers are spawned (not
forked), each with its own `Replayer`, so nothing of the parent's state leaks into a
decision.

What-if replay recomputes quotas in log order: the parent keeps, per (licence, control
code), how much more the candidate took than the recorded decisions so far; an entry
that read a balance which that has moved is decided again in the parent with the
balance lowered accordingly, after every entry before it.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from eucgate.core.bundle import Bundle
from eucgate.core.bundleload import parse_bundle
from eucgate.replay.engine import EntryFilter, EntryResult, Replayer, Shift, Status

# An item of the stream: an entry to replay, or a result made before replay (an entry
# the log check refused), passed through in its place.
Item = tuple[int, bytes] | EntryResult


@dataclass(frozen=True)
class ReplayJob:
    """What every worker needs, picklable: known bundles by digest (canonical bytes),
    the candidate bundle (canonical bytes) for what-if, the filter, and whether to use
    a ChainCache (the answer is the same either way)."""

    bundles: dict[str, bytes] = field(default_factory=dict)
    candidate: bytes | None = None
    entry_filter: EntryFilter = field(default_factory=EntryFilter)
    use_chain_cache: bool = True

    def replayer(self) -> Replayer:
        """Raises BundleError if the candidate does not parse."""
        candidate: Bundle | None = None
        if self.candidate is not None:
            candidate = parse_bundle(self.candidate.decode("utf-8"), "candidate bundle")
        return Replayer(
            bundles=self.bundles.get,
            candidate=candidate,
            entry_filter=self.entry_filter,
            use_chain_cache=self.use_chain_cache,
        )


_worker: Replayer | None = None


def _start_worker(job: ReplayJob) -> None:
    global _worker  # noqa: PLW0603 - one Replayer per worker process, made once
    _worker = job.replayer()


def _replay_chunk(chunk: list[Item]) -> list[EntryResult]:
    assert _worker is not None  # set by the pool's initializer
    return [i if isinstance(i, EntryResult) else _worker.replay(*i) for i in chunk]


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Quotas:
    """How much more the candidate took than the record, per (licence, code), by unit
    (converted where a balance is read: `engine.RecordedLedger`)."""

    def __init__(self) -> None:
        self.delta: dict[tuple[str, str], dict[str, Decimal]] = {}

    def moved(self, result: EntryResult) -> bool:
        return any(
            any(self.delta.get((lic, code), {}).values()) for lic, code, _ in result.ledger_reads
        )

    def shift(self) -> Shift:
        return {key: dict(amounts) for key, amounts in self.delta.items()}

    def account(self, result: EntryResult) -> None:
        if result.recorded is None or result.replayed is None:
            return
        for sign, brief in ((-1, result.recorded), (1, result.replayed)):
            for licence, code, unit, quantity in brief.taken:
                if code:
                    amounts = self.delta.setdefault((licence, code), {})
                    amounts[unit] = amounts.get(unit, Decimal(0)) + sign * Decimal(quantity)


def replay_entries(
    items: Iterable[Item],
    job: ReplayJob,
    *,
    workers: int = 0,
    chunk_size: int = 64,
    window: int = 0,
    replayer: Replayer | None = None,
) -> Iterator[EntryResult]:
    """Replay `items` (in index order) and yield one result per item, in the same order.

    `workers` 0 replays in this process (with `replayer` if given, e.g. one reading
    bundles from a store); otherwise that many spawned processes, with at
    most `window` chunks in flight (default 4 per worker). Raises BundleError if the
    candidate does not parse; whatever the item iterator raises (a log check that
    failed) propagates after the results before it were yielded.
    """
    quotas = _Quotas() if job.candidate is not None else None
    local: Replayer | None = replayer

    def settle(chunk: list[Item], results: list[EntryResult]) -> Iterator[EntryResult]:
        nonlocal local
        for item, first in zip(chunk, results, strict=True):
            result = first
            if quotas is not None and not isinstance(item, EntryResult):
                if quotas.moved(first):
                    local = local or job.replayer()
                    result = local.replay(*item, quotas.shift())
                quotas.account(result)
            yield result

    if workers <= 0:
        local = local or job.replayer()
        for chunk in _chunks(items, chunk_size):
            results = [i if isinstance(i, EntryResult) else local.replay(*i) for i in chunk]
            yield from settle(chunk, results)
        return
    job.replayer()  # a candidate that does not parse fails here, not in every worker
    context = multiprocessing.get_context("spawn")
    limit = window or 4 * workers
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(job,)
    ) as pool:
        pending: deque[tuple[list[Item], Future[list[EntryResult]]]] = deque()
        try:
            for chunk in _chunks(items, chunk_size):
                pending.append((chunk, pool.submit(_replay_chunk, chunk)))
                while len(pending) >= limit:
                    done, future = pending.popleft()
                    yield from settle(done, future.result())
            while pending:
                done, future = pending.popleft()
                yield from settle(done, future.result())
        finally:
            for _, future in pending:
                future.cancel()


def is_finding(result: EntryResult) -> bool:
    """A difference: a decision that does not recompute, or one a candidate changes."""
    return result.status in (Status.DIFFERENT, Status.CHANGED)
