"""A transparency-log witness: C2SP tlog-witness over HTTP, C2SP tlog-cosignature out.

https://c2sp.org/tlog-witness and https://c2sp.org/tlog-cosignature. A witness is run
by someone other than the log's operator (a customs authority, an auditor) with its own
Ed25519 key. For each log it knows (origin and verifier keys) it keeps the latest
checkpoint it cosigned, and cosigns a new one only when the log's signature verifies and
a consistency proof shows the new tree extends the one it holds. A log that shows two
trees of one size, or a tree that does not extend the last one, gets no cosignature:
that is what makes a split view visible.

    POST /add-checkpoint
    old <size>\\n  <base64 proof hash>\\n ...  \\n  <signed checkpoint>

Answers: 200 with the cosignature line; 400 malformed; 403 no trusted log signature;
404 unknown origin; 409 (`text/x.tlog.size`, the size it holds) when `old` is not the
size it holds, or the same size comes with another root; 422 the proof does not verify.
The state is a small SQLite file in the witness's data directory (synchronous=FULL), and
the check of `old` and the update are one transaction under one lock, so two racing
requests can never roll the witness back.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.tlog import (
    HASH_SIZE,
    SIGNATURE_PREFIX,
    CheckpointError,
    NoteVerifier,
    ProofError,
    WitnessVerifier,
    cosigned_message,
    open_checkpoint,
    verify_consistency,
)

log = structlog.get_logger("eucgate.witness")

SIZE_CONTENT_TYPE = "text/x.tlog.size"
# tlog-witness: a client sends at most 63 proof lines; a request is small.
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024

CREATE_STATE = """
CREATE TABLE IF NOT EXISTS witnessed (
    origin TEXT PRIMARY KEY,   -- the log's origin line
    size INTEGER NOT NULL,     -- tree size of the latest checkpoint cosigned
    root BLOB NOT NULL,        -- its root hash
    note TEXT NOT NULL         -- the log's signed checkpoint, as received
)
"""
SELECT_STATE = "SELECT size, root FROM witnessed WHERE origin = ?"
UPSERT_STATE = """
INSERT INTO witnessed (origin, size, root, note) VALUES (?, ?, ?, ?)
ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root,
    note = excluded.note
"""


class Cosigner:
    """Makes `cosignature/v1` note signature lines with one Ed25519 key."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.verifier = WitnessVerifier.from_key(name, key.public_key())

    @property
    def name(self) -> str:
        return self.verifier.name

    def cosign(self, text: str, timestamp: int) -> str:
        """The signature line (with its newline) over a checkpoint's note text."""
        signature = self._key.sign(cosigned_message(text, timestamp))
        blob = self.verifier.key_id + timestamp.to_bytes(8, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


class WitnessRefusal(Exception):
    """An add-checkpoint request the witness refuses: HTTP status, and for 409 its size."""

    def __init__(self, status: HTTPStatus, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.size = size


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request body."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        """Raises WitnessRefusal(400) when the body is not old line, proof, blank, note."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "the body is not UTF-8") from None
        head, sep, note = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or not lines[0].startswith("old "):
            raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "expected an old line, proof, blank line")
        size_text = lines[0].removeprefix("old ")
        if not size_text.isascii() or not size_text.isdigit() or size_text != str(int(size_text)):
            raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "bad old size")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "too many proof lines")
        proof = []
        for line in lines[1:]:
            try:
                digest = base64.b64decode(line, validate=True)
            except ValueError:
                raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "a proof line is not base64") from None
            if len(digest) != HASH_SIZE:
                raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "a proof hash is not 32 bytes")
            proof.append(digest)
        return cls(int(size_text), tuple(proof), note)

    def body(self) -> bytes:
        proof = "".join(base64.b64encode(h).decode() + "\n" for h in self.proof)
        return f"old {self.old_size}\n{proof}\n{self.note}".encode()


class WitnessState:
    """The latest cosigned (size, root) per origin, in a SQLite file; thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # FULL: a cosignature is answered only after its state is on disk.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(CREATE_STATE)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def size(self, origin: str) -> int:
        with self._lock:
            row = self._conn.execute(SELECT_STATE, (origin,)).fetchone()
        return 0 if row is None else int(row[0])

    def advance(
        self, origin: str, check: Callable[[int, bytes | None], None], new: tuple[int, bytes, str]
    ) -> None:
        """Run `check(size, root)` on the held state and, if it returns, store `new`;
        atomically (one lock, one transaction). `check` raises to refuse."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(SELECT_STATE, (origin,)).fetchone()
                size, root = (0, None) if row is None else (int(row[0]), bytes(row[1]))
                check(size, root)
                self._conn.execute(UPSERT_STATE, (origin, *new))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


class Witness:
    """Checks and cosigns checkpoints of the logs it knows (origin -> verifier keys)."""

    def __init__(
        self,
        cosigner: Cosigner,
        logs: Mapping[str, Sequence[NoteVerifier]],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cosigner = cosigner
        self._logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self._state = state
        self._clock = clock

    @property
    def verifier(self) -> WitnessVerifier:
        return self._cosigner.verifier

    def add_checkpoint(self, request: AddCheckpoint) -> str:
        """Cosign `request`'s checkpoint or raise WitnessRefusal (see the module doc)."""
        origin = request.note.partition("\n")[0]
        keys = self._logs.get(origin)
        if keys is None:
            raise WitnessRefusal(HTTPStatus.NOT_FOUND, f"unknown log {origin[:100]!r}")
        checkpoint = None
        for key in keys:
            try:
                checkpoint = open_checkpoint(request.note, key)
                break
            except CheckpointError as exc:
                if exc.reason == "CHECKPOINT_MALFORMED":
                    raise WitnessRefusal(HTTPStatus.BAD_REQUEST, str(exc)) from None
        if checkpoint is None:
            raise WitnessRefusal(HTTPStatus.FORBIDDEN, "no signature by a trusted log key")
        if request.old_size > checkpoint.size:
            raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "old size is above the checkpoint's")
        if request.old_size == 0 and request.proof:
            raise WitnessRefusal(HTTPStatus.BAD_REQUEST, "the proof from size 0 is empty")

        def check(size: int, root: bytes | None) -> None:
            if request.old_size != size:
                raise WitnessRefusal(HTTPStatus.CONFLICT, f"this witness holds {size}", size)
            if root is None:
                return
            if size == checkpoint.size and root != checkpoint.root:
                log.warning("witness_split_view", origin=origin, size=size)
                raise WitnessRefusal(HTTPStatus.CONFLICT, "same size, another root", size)
            try:
                verify_consistency(size, checkpoint.size, root, checkpoint.root, request.proof)
            except ProofError as exc:
                log.warning("witness_inconsistent", origin=origin, old=size, new=checkpoint.size)
                raise WitnessRefusal(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc)) from None

        text = request.note[: request.note.rfind("\n\n") + 1]
        self._state.advance(origin, check, (checkpoint.size, checkpoint.root, request.note))
        log.info("witness_cosigned", origin=origin, size=checkpoint.size)
        return self._cosigner.cosign(text, int(self._clock()))


class _Handler(BaseHTTPRequestHandler):
    server: WitnessHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as tlog-witness recommends
    timeout = 30  # seconds a connection may sit idle or trickle its request

    def do_POST(self) -> None:
        if self.path.rstrip("/").rsplit("/", 1)[-1] != "add-checkpoint":
            self.close_connection = True
            self._answer(HTTPStatus.NOT_FOUND, "not found\n")
            return
        length_text = self.headers.get("Content-Length") or "0"
        length = int(length_text) if length_text.isdigit() else 0
        if not 0 < length <= MAX_REQUEST_BYTES:
            self.close_connection = True  # the unread body must not become a request
            self._answer(HTTPStatus.BAD_REQUEST, "a body of 1 to 65536 bytes is required\n")
            return
        body = self.rfile.read(length)
        try:
            line = self.server.witness.add_checkpoint(AddCheckpoint.parse(body))
        except WitnessRefusal as exc:
            if exc.size is not None:
                self._answer(exc.status, f"{exc.size}\n", SIZE_CONTENT_TYPE)
            else:
                self._answer(exc.status, f"{exc}\n")
            return
        self._answer(HTTPStatus.OK, line)

    def _answer(self, status: HTTPStatus, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("witness_http", line=format % args)


class WitnessHttpServer(ThreadingHTTPServer):
    """The witness's HTTP listener; `serve_forever` until `shutdown`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], witness: Witness) -> None:
        super().__init__(address, _Handler)
        self.witness = witness

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def start_witness(
    address: tuple[str, int], witness: Witness
) -> tuple[WitnessHttpServer, threading.Thread]:
    """Serve `witness` on `address` in a background thread (port 0 picks one)."""
    httpd = WitnessHttpServer(address, witness)
    thread = threading.Thread(target=httpd.serve_forever, name="eucgate-witness", daemon=True)
    thread.start()
    return httpd, thread


def log_keys(keys: Iterable[str]) -> dict[str, list[NoteVerifier]]:
    """Log verifier keys by origin (a log may have several: rotation). CheckpointError."""
    logs: dict[str, list[NoteVerifier]] = {}
    for text in keys:
        verifier = NoteVerifier.parse(text)
        logs.setdefault(verifier.name, []).append(verifier)
    return logs
