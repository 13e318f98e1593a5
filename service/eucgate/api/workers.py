"""Several server processes on one port (`workers` > 1), for the cores one cannot use.

Python runs one thread of bytecode at a time per process, so a server uses about one
core whatever its thread pool. With `workers` set, the parent process takes the store's
lock (SQLite: `<store>.lock`, which refuses any other server) and checks that the store
opens, then forks the workers before it starts any gRPC server (gRPC does not survive
a fork once it runs). Each worker is a whole server, as a PostgreSQL replica is:
its own gate, store connections and batch writer, metrics, health and readiness. All
bind the API (and operations) port with SO_REUSEPORT, and the kernel spreads incoming
connections over them. They commit through the shared store: SQLite lets one process
write at a time, and each batch reads the tree state under that lock, so the log never
forks and idempotency, quotas and the registry of decided EUCs are checked against
everything committed, whichever worker committed it.

Worker i serves Prometheus metrics at `metrics_listen`'s port + i (port 0: each picks a
free one). Health and readiness on the operations port answer for whichever worker the
connection reached. SIGTERM or SIGINT to the parent stops every worker gracefully; SIGHUP
reloads the bundle in each. A worker that exits by itself stops the others and the parent
exits with an error, for its supervisor (systemd, Kubernetes) to restart the whole.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from multiprocessing.process import BaseProcess

import structlog

from eucgate.api import server, signals
from eucgate.config import Settings
from eucgate.errors import BundleError, ConfigError, EucgateError, StoreError
from eucgate.store import SqliteStore, StoreLock, is_postgresql

log = structlog.get_logger("eucgate.workers")

# How long a worker may take to start serving (it loads the bundle and opens the store).
START_TIMEOUT_SECONDS = 120.0
# Beyond its grace period, how long a stopping worker gets before it is killed.
STOP_MARGIN_SECONDS = 10.0
# How often a worker checks that its parent still runs.
ORPHAN_CHECK_SECONDS = 1.0


def serve(settings: Settings) -> None:
    """Run the server as `settings.workers` processes, or in this one when it is 1.

    Raises ConfigError or StoreError as start_server does (nothing is left running), and
    EucgateError when a worker failed or exited by itself (the others are stopped).
    """
    if settings.workers == 1:
        server.serve(settings)
        return
    # Handlers first: a signal while the workers start is acted on once they serve.
    stop_asked = threading.Event()
    running: list[Workers] = []

    def stop() -> None:
        stop_asked.set()
        for workers in running:
            threading.Thread(target=workers.stop).start()

    def hang_up() -> None:
        for workers in running:
            workers.send(signal.SIGHUP)

    signals.handle({signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: hang_up})
    workers = start_workers(settings)
    running.append(workers)
    log.info("workers_serving", workers=settings.workers, port=workers.port)
    if stop_asked.is_set():
        workers.stop()
    problem = workers.wait()
    if problem:
        raise EucgateError(problem)


@dataclass
class Workers:
    """The running worker processes, their shared API port and what they hold open."""

    processes: list[BaseProcess]
    port: int
    grace_seconds: float
    _held: contextlib.ExitStack
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, signum: signal.Signals) -> None:
        """Send `signum` to every worker still running."""
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def stop(self) -> None:
        """Stop every worker gracefully (SIGTERM), killing any that outlives its grace
        period, then let go of the port and the store lock. Idempotent."""
        with self._lock:
            self._stopping.set()
            self.send(signal.SIGTERM)
            for process in self.processes:
                process.join(self.grace_seconds + STOP_MARGIN_SECONDS)
                if process.exitcode is None:
                    log.error("worker_killed", worker=process.name, pid=process.pid)
                    process.kill()
                    process.join()
            self._held.close()

    def wait(self) -> str:
        """Block until every worker has exited; "" when they were stopped, else what
        went wrong (a worker exited by itself, and the others were stopped)."""
        problem = ""
        ended = wait_for([p.sentinel for p in self.processes])
        if not self._stopping.is_set():
            gone = [p for p in self.processes if p.sentinel in ended]
            problem = ", ".join(f"{p.name} exited with code {p.exitcode}" for p in gone)
            log.error("worker_exited", problem=problem)
        self.stop()
        return problem


def start_workers(settings: Settings) -> Workers:
    """Take the store lock, then fork `settings.workers` servers and wait until each
    serves. Call it before this process starts a gRPC server or a thread that a child
    would need (a forked child has only the thread that forked; the CLI's stderr pump
    stays in the parent, where the workers' descriptor 2 leads). Raises ConfigError,
    StoreError or BundleError (from the first worker that failed to start; none is left
    running)."""
    with contextlib.ExitStack() as held:
        lock = _hold_store(settings, held)
        listen, port = _shared_address(settings.listen, held)
        ops_listen = settings.ops_listen and _shared_address(settings.ops_listen, held)[0]
        context = multiprocessing.get_context("fork")
        processes: list[BaseProcess] = []
        reports: list[Connection] = []
        try:
            for index in range(settings.workers):
                mine = settings.model_copy(
                    update={
                        "listen": listen,
                        "ops_listen": ops_listen,
                        "metrics_listen": _metrics_address(settings.metrics_listen, index),
                    }
                )
                report, child_end = context.Pipe(duplex=False)
                child = context.Process(
                    target=_worker, args=(mine, lock, child_end), name=f"eucgate-worker-{index}"
                )
                child.start()
                child_end.close()
                processes.append(child)
                reports.append(report)
            for process, report in zip(processes, reports, strict=True):
                _await_start(process, report)
        except BaseException:
            Workers(processes, port, settings.grace_seconds, held.pop_all()).stop()
            raise
        return Workers(processes, port, settings.grace_seconds, held.pop_all())


def _worker(settings: Settings, lock: StoreLock | None, report: Connection) -> None:
    """One worker process: serve until stopped, telling the parent once it serves (or
    why it could not start)."""
    signals.forget()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)  # not the parent's, until serve sets its own
    parent = os.getppid()

    def started(running: server.RunningServer) -> None:
        threading.Thread(
            target=_stop_when_orphaned, args=(parent,), name="eucgate-parent-watch", daemon=True
        ).start()
        log.info("worker_serving", pid=os.getpid(), port=running.port)
        report.send(("serving", running.port))
        report.close()

    try:
        server.serve(settings, held=lock, share_port=True, started=started)
    except EucgateError as exc:
        with contextlib.suppress(OSError):
            report.send(("failed", type(exc).__name__, str(exc)))
        raise SystemExit(1) from None


def _stop_when_orphaned(parent: int) -> None:
    """Stop this worker gracefully once its parent is gone (killed without the chance to
    stop it): a worker never outlives its server, holding the port and the store."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    log.error("server_parent_gone", parent=parent)
    os.kill(os.getpid(), signal.SIGTERM)


# The errors a worker's failed start is raised as in the parent, by name.
_START_ERRORS: dict[str, type[EucgateError]] = {
    e.__name__: e for e in (ConfigError, StoreError, BundleError)
}


def _await_start(process: BaseProcess, report: Connection) -> None:
    """Wait for one worker to serve. Raises the error it failed to start with, or
    ConfigError if it died or did not answer in time."""
    if not report.poll(START_TIMEOUT_SECONDS):
        raise ConfigError(f"{process.name} did not start within {START_TIMEOUT_SECONDS:g} s")
    try:
        message = report.recv()
    except EOFError:
        raise ConfigError(f"{process.name} exited while starting") from None
    if message[0] == "failed":
        _, kind, text = message
        raise _START_ERRORS.get(kind, ConfigError)(text)


def _hold_store(settings: Settings, held: contextlib.ExitStack) -> StoreLock | None:
    """SQLite: take the store's lock for all workers and check that the store opens
    (creating it under `init_store`, migrating it); None for PostgreSQL, whose replicas
    and workers need no lock. Raises StoreError."""
    if is_postgresql(settings.store):
        return None
    path = server.sqlite_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = StoreLock.take(path)
    held.callback(lock.release)
    SqliteStore.open(path, create=settings.init_store, held=lock).close()
    return lock


def _shared_address(address: str, held: contextlib.ExitStack) -> tuple[str, int]:
    """`address` with the port every worker binds: port 0 is resolved here, to a port
    kept bound (not listening, so it takes no connections) until the workers stop.
    Raises ConfigError when the address cannot be bound."""
    host, _, port = address.rpartition(":")
    if int(port) != 0:
        return address, int(port)
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            host.strip("[]"), 0, type=socket.SOCK_STREAM
        )[0]
        sock = held.enter_context(socket.socket(family, kind, proto))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(where)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address}: {exc}") from exc
    chosen = int(sock.getsockname()[1])
    return f"{host}:{chosen}", chosen


def _metrics_address(address: str, index: int) -> str:
    """Worker `index`'s metrics address: the configured port + index (0 stays 0)."""
    if not address:
        return address
    host, _, port = address.rpartition(":")
    return address if int(port) == 0 else f"{host}:{int(port) + index}"
