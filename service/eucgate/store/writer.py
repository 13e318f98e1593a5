"""The batch writer both drivers share: one thread that group-commits queued writes.

Callers queue a job and wait on its future. The writer thread takes whatever is queued
when it is free (up to MAX_BATCH jobs) and hands the batch to its driver's transaction
function, which commits it as one and then answers every job through `committed` (or
`failed`). `close` lets the writer drain what is already queued, then stops it; a job
still queued when the writer stops, for whatever reason, is failed, never left waiting.

An optional `observer` hears of each batch (its size and how long the driver took to
commit it) and of each decision a commit recorded; the server's metrics use it.

This module holds no SQL and opens no transaction: that is each driver's own business.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from eucgate.errors import EucgateError, StoreError
from eucgate.store.base import (
    AppendResult,
    DecisionRecord,
    Shipment,
    ShipmentResult,
    StoredCheckpoint,
    StoreStats,
    WriteObserver,
)

# The most jobs one transaction takes; more wait for the next commit.
MAX_BATCH = 256


@dataclass(frozen=True)
class AppendJob:
    record: DecisionRecord
    future: Future[AppendResult]


@dataclass(frozen=True)
class ShipmentJob:
    shipment: Shipment
    future: Future[ShipmentResult]


@dataclass(frozen=True)
class BundleJob:
    digest: str
    canonical: bytes
    future: Future[None]


@dataclass(frozen=True)
class CosignatureJob:
    size: int
    witness: str
    signature: str
    future: Future[None]


Job = AppendJob | ShipmentJob | BundleJob | CosignatureJob
# what one job gets: its result or its error
Answer = AppendResult | ShipmentResult | EucgateError | None
_STOP = object()  # queued by close(): the writer drains what is ahead of it, then exits


class BatchWriter:
    """The queue, the writer thread and its counters. Thread-safe.

    `commit` is the driver's transaction function: it runs on the writer thread with one
    batch and must answer every job of it, through `committed` or `failed`. `on_exit`
    runs on the writer thread as it stops, after the jobs still queued were failed.
    `closed_message` is the StoreError text for writes after close.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[Job]], None],
        closed_message: str,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        """Ready to take jobs once `start` has run."""
        self._commit = commit
        self._closed_message = closed_message
        self._on_exit = on_exit
        self._queue: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        # Guards `closed` and the counters; drivers may take it to keep their own state
        # consistent with `closed` (the SQLite reader pool does).
        self.lock = threading.Lock()
        self.closed = False
        self._commits = 0
        self._appended = 0
        self._replayed = 0
        self._failed_batches = 0
        self._pending = 0
        self.observer: WriteObserver | None = None
        self._thread = threading.Thread(target=self._run, name="eucgate-store-writer")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue `job`. Raises StoreError if the store is closed."""
        with self.lock:
            if self.closed:
                raise StoreError(self._closed_message)
            self._pending += 1
            self._queue.put(job)

    def close(self) -> None:
        """Complete every job already queued and stop the writer. Idempotent."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self._queue.put(_STOP)
        self._thread.join()

    @property
    def commits(self) -> int:
        """Transactions committed since open; each one carried a whole batch."""
        return self._commits

    def stats(self) -> StoreStats:
        """A snapshot of the writer's counters."""
        return StoreStats(
            commits=self._commits,
            appended=self._appended,
            replayed=self._replayed,
            failed_batches=self._failed_batches,
            queued=self._queue.qsize(),
            pending=self._pending,
        )

    def committed(
        self, results: Sequence[tuple[Job, Answer]], checkpoint: StoredCheckpoint | None
    ) -> None:
        """Count one commit and answer its jobs; appends carry `checkpoint`."""
        self._commits += 1
        observer = self.observer
        for job, answer in results:
            outcome = (
                dataclasses.replace(answer, checkpoint=checkpoint)
                if isinstance(answer, AppendResult)
                else answer
            )
            if isinstance(outcome, AppendResult | ShipmentResult):
                if outcome.replayed:
                    self._replayed += 1
                else:
                    self._appended += 1
                    if observer is not None and isinstance(outcome, AppendResult):
                        observer.decision_recorded(outcome.record.outcome)
            self._answer(job, outcome)

    def failed(self, batch: Sequence[Job], error: Callable[[], StoreError]) -> None:
        """Count one failed batch and answer each of its jobs with a new `error()`: one
        error object per waiter, as each thread re-raises it with its own traceback."""
        self._failed_batches += 1
        for job in batch:
            self._answer(job, error())

    def _run(self) -> None:
        """Take whatever is queued (up to MAX_BATCH), commit it as one, repeat until _STOP."""
        try:
            stopping = False
            while not stopping:
                batch: list[Job] = []
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    assert isinstance(item, AppendJob | BundleJob | ShipmentJob | CosignatureJob)
                    batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    started = time.perf_counter()
                    try:
                        self._commit(batch)
                    finally:
                        observer = self.observer
                        if observer is not None:
                            observer.batch_committed(len(batch), time.perf_counter() - started)
        finally:
            # Reached on _STOP, or if the writer itself broke: either way no job may wait
            # forever, so refuse new ones and fail any still queued.
            with self.lock:
                self.closed = True
            self._fail_queued()
            if self._on_exit is not None:
                self._on_exit()

    def _answer(self, job: Job, outcome: Answer) -> None:
        """Complete a job's future with its result, or with its error if `outcome` is one."""
        with self.lock:
            self._pending -= 1
        if isinstance(outcome, EucgateError):
            job.future.set_exception(outcome)
        elif isinstance(job, AppendJob):
            assert isinstance(outcome, AppendResult)
            job.future.set_result(outcome)
        elif isinstance(job, ShipmentJob):
            assert isinstance(outcome, ShipmentResult)
            job.future.set_result(outcome)
        else:
            job.future.set_result(None)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, AppendJob | BundleJob | ShipmentJob | CosignatureJob):
                self._answer(item, StoreError(self._closed_message))
