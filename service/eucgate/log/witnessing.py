"""The log asks its witnesses to cosign its checkpoints (C2SP tlog-witness client).

A background thread looks at the latest checkpoint on a short timer (so a burst of
commits costs one round of requests) and submits it to every configured witness that has
not cosigned it, with the consistency proof from the size that witness holds. A 409
answer names the witness's size: the next request proves from there. Cosignatures that
verify with the witness's pinned key are kept with the checkpoint
(`Witnessed.add_cosignature`). Nothing here is on the path of a decision: a witness that
is down, slow or refusing only delays the witnessed status, and is logged and counted.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from eucgate_client.tlog import (
    SIGNATURE_PREFIX,
    CheckpointError,
    WitnessVerifier,
)
from prometheus_client import CollectorRegistry, Counter, Gauge

from eucgate.log.witness import AddCheckpoint
from eucgate.store.base import AuditLog, StoredCheckpoint, Witnessed

log = structlog.get_logger("eucgate.witnessing")

# How long one request to one witness may take.
REQUEST_TIMEOUT_SECONDS = 5.0
# 409 answers followed in one round before giving up until the next.
MAX_CONFLICTS = 2


@dataclass(frozen=True)
class WitnessEndpoint:
    """One witness the log asks: its add-checkpoint URL prefix and pinned cosigner key."""

    url: str
    verifier: WitnessVerifier


@dataclass(frozen=True)
class WitnessStatus:
    """What this process knows of one witness: the size it holds (None before it
    answered), the largest size it cosigned for us (-1: none) and why the last round
    failed ("" when it did not)."""

    url: str
    size: int | None
    cosigned: int
    failing: str


@dataclass
class _Peer:
    endpoint: WitnessEndpoint
    size: int | None = None  # the size the witness holds, as far as we know
    cosigned: int = -1  # the largest size it cosigned for us
    failing: str = ""  # why the last round failed, "" when it did not
    lock: threading.Lock = field(default_factory=threading.Lock)


class WitnessError(Exception):
    """A witness round that failed: unreachable, refused, or an unusable answer."""


class Witnessing:
    """Submits new checkpoints to the witnesses; `start` it, `stop` it, read `status`."""

    def __init__(
        self,
        store: AuditLog,
        keep: Witnessed,
        witnesses: Sequence[WitnessEndpoint],
        *,
        quorum: int,
        interval: float = 0.2,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._store = store
        self._keep = keep
        self._peers = [_Peer(w) for w in witnesses]
        self._quorum = quorum
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._witnessed = -1
        self.submissions = Counter(
            "eucgate_witness_submissions",
            "Checkpoints submitted to witnesses, by witness and result.",
            ("witness", "result"),
            registry=registry,
        )
        self.witnessed_size = Gauge(
            "eucgate_witnessed_tree_size",
            "Largest tree size with at least witness_quorum cosignatures (-1: none yet).",
            registry=registry,
        )
        self.witnessed_size.set(-1)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="eucgate-witnessing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT_SECONDS * 2)

    def latest_witnessed(self) -> int:
        """The largest tree size cosigned by at least `quorum` witnesses this process
        asked, or -1."""
        return self._witnessed

    def status(self) -> dict[str, WitnessStatus]:
        """Each witness's known size, largest cosigned size and last failure, by name."""
        return {
            p.endpoint.verifier.name: WitnessStatus(p.endpoint.url, p.size, p.cosigned, p.failing)
            for p in self._peers
        }

    def run_once(self) -> None:
        """One round: submit the latest checkpoint to every witness behind it."""
        latest = self._store.latest_checkpoint()
        if latest is None:
            return
        for peer in self._peers:
            if self._stopping.is_set():
                return
            if peer.cosigned >= latest.size:
                continue
            with peer.lock:
                self._submit(peer, latest)
        done = [p for p in self._peers if p.cosigned >= latest.size]
        if len(done) >= self._quorum and latest.size > self._witnessed:
            self._witnessed = latest.size
            self.witnessed_size.set(latest.size)
            log.info(
                "checkpoint_witnessed",
                size=latest.size,
                witnesses=[p.endpoint.verifier.name for p in done],
            )

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.run_once()
            except Exception:
                log.exception("witnessing_failed")

    def _submit(self, peer: _Peer, latest: StoredCheckpoint) -> None:
        name = peer.endpoint.verifier.name
        for _ in range(MAX_CONFLICTS + 1):
            old = peer.size or 0
            if old > latest.size:
                # Another replica of this log got further; wait until ours does.
                return
            try:
                proof = self._store.consistency_proof(old, latest.size) if old else []
                request = AddCheckpoint(old, tuple(proof), latest.note)
                status, body = _post(peer.endpoint.url, request.body())
            except (OSError, WitnessError) as exc:
                self._failed(peer, f"unreachable: {exc}", "unreachable")
                return
            if status == 409:
                try:
                    peer.size = int(body.strip())
                except ValueError:
                    self._failed(peer, "409 without a size", "refused")
                    return
                if peer.size == old:  # same size, another root: a fork, never retried
                    self._failed(peer, f"refused size {latest.size}: conflict", "refused")
                    return
                self.submissions.labels(witness=name, result="conflict").inc()
                continue
            if status != 200:
                self._failed(peer, f"refused with HTTP {status}: {body.strip()[:200]}", "refused")
                return
            self._keep_cosignature(peer, latest, body)
            return

    def _keep_cosignature(self, peer: _Peer, latest: StoredCheckpoint, body: str) -> None:
        verifier = peer.endpoint.verifier
        lines = [f"{line}\n" for line in body.split("\n") if line]
        kept = False
        for line in lines:
            if not line.startswith(f"{SIGNATURE_PREFIX}{verifier.name} "):
                continue
            try:
                if verifier.cosigned_at(latest.note + line) is None:
                    continue
            except CheckpointError as exc:
                self._failed(peer, f"bad cosignature: {exc}", "invalid")
                return
            self._keep.add_cosignature(latest.size, verifier.name, line.rstrip("\n"))
            kept = True
            break
        if not kept:
            self._failed(peer, "no cosignature by its pinned key in the answer", "invalid")
            return
        peer.size = peer.cosigned = latest.size
        if peer.failing:
            log.info("witness_recovered", witness=verifier.name, size=latest.size)
        peer.failing = ""
        self.submissions.labels(witness=verifier.name, result="cosigned").inc()

    def _failed(self, peer: _Peer, why: str, result: str) -> None:
        name = peer.endpoint.verifier.name
        self.submissions.labels(witness=name, result=result).inc()
        if why != peer.failing:
            log.warning("witness_failed", witness=name, url=peer.endpoint.url, problem=why)
        peer.failing = why


def _post(prefix: str, body: bytes) -> tuple[int, str]:
    """POST an add-checkpoint body; (status, text). Raises OSError when unreachable."""
    # The scheme is http or https: config refuses any other witness URL.
    request = urllib.request.Request(  # noqa: S310
        prefix.rstrip("/") + "/add-checkpoint",
        data=body,
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:  # noqa: S310
            return int(answer.status), answer.read(64 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(64 * 1024).decode("utf-8", "replace")
