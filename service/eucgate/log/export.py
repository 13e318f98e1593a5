"""Exporting the log as static files (C2SP tlog-tiles) and verifying such an export.

Layout (https://c2sp.org/tlog-tiles), so any static file server can publish it:

    checkpoint                    the signed checkpoint the export ends at
    tile/<L>/<N>[.p/<W>]          hash tiles: the tree's level-8L node hashes, 256 a tile
    tile/entries/<N>[.p/<W>]      entry bundles: 256 entries a bundle, each prefixed by
                                  its length as a big-endian uint16

Both sides stream: memory stays O(log n) plus one tile, whatever the size. tlog-tiles
caps an entry at 65535 bytes (its uint16 length prefix); a larger entry cannot be
exported in this layout and `ExportWriter` refuses it.

`verify_export` checks, in order: the checkpoint's signature (pinned key); that every
hash tile has its exact size (a tile of width W is W x 32 bytes, LOG_TILE_SIZE_INVALID
otherwise: bytes beyond the hashes a tree needs are not ignored), gives its root and
agrees with the others; that an earlier checkpoint the auditor kept is a prefix of this
tree; then every entry: canonical form, internal digests, and its leaf hash against the
authenticated tiles. The first failure is reported with its
leaf index and reason; nothing in an export can make it crash.

It works a leaf tile at a time: a full tile's 256 leaf hashes fold into its level-8 node
one tree level per list comprehension (so the Python cost per interior node is one slice
and one hash call, not a CompactRange step), and the tile's entries are hashed with
hashlib where they lie in the bundle read and compared with it as one byte string
(so what it costs beyond hashing the leaves is reading them and hashing about as many
interior nodes: near 0.6 of hashlib's rate in one process). Leaf tiles are independent, so
with `workers` they are checked in forked processes, chunk by chunk, while this process
folds their level-8 nodes into the upper tiles and the root in log order. Findings are
the same either way: a hash tile that disagrees, wherever it is, before any entry.
"""

from __future__ import annotations

import itertools
import multiprocessing
import struct
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from eucgate_client.tlog import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    Checkpoint,
    CheckpointError,
    CompactRange,
    NoteVerifier,
    leaf_hash,
    node_hash,
    open_checkpoint,
)

from eucgate.log.entry import EntryError, check_any_entry

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_ENTRY_BYTES = 0xFFFF
# A checkpoint is a few lines and at most a hundred signature lines (C2SP signed-note):
# far under this; a longer file is read this far and refused as not a note.
MAX_CHECKPOINT_BYTES = 1 << 16
_LENGTH = struct.Struct(">H")
CHUNK_TILES = 16  # leaf tiles a worker checks per task (4096 entries)
_LEAF = sha256(LEAF_PREFIX)  # copied per entry: a leaf hashed without a 0x00 || entry copy


class ExportError(Exception):
    """An export that cannot be written (LOG_EXPORT_INVALID: an entry over 65535 bytes)."""

    reason = "LOG_EXPORT_INVALID"


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """The tlog-tiles path of a tile: index in 3-digit groups, "x" before all but the last."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    name = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{name}{suffix}"


class ExportWriter:
    """Writes an export from entries given in index order; `finish` writes the checkpoint.

    Raises ExportError for an entry too large for tlog-tiles, OSError on write failure.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._tree = CompactRange()
        self._bundle: list[bytes] = []
        self._tiles: dict[int, list[bytes]] = {}  # tile level -> hashes of its open tile

    @property
    def size(self) -> int:
        return self._tree.size

    def add(self, entry: bytes) -> None:
        if len(entry) > MAX_ENTRY_BYTES:
            raise ExportError(
                f"entry {self._tree.size} is {len(entry)} bytes; tlog-tiles allows 65535"
            )
        leaf = leaf_hash(entry)
        completed = self._tree.append(leaf)  # tiles are numbered from the new size
        self._bundle.append(entry)
        self._node(0, leaf)
        for level, _index, node in completed:
            if level % TILE_HEIGHT == 0:
                self._node(level // TILE_HEIGHT, node)
        if len(self._bundle) == TILE_WIDTH:
            self._write_bundle()

    def root(self) -> bytes:
        return self._tree.root()

    def finish(self, checkpoint_note: str) -> None:
        """Write the partial tiles and the checkpoint (which must be for this size)."""
        if self._bundle:
            self._write_bundle()
        for level, hashes in sorted(self._tiles.items()):
            if hashes:
                self._write_tile(level, hashes)
        self._write("checkpoint", checkpoint_note.encode())

    def _node(self, level: int, node: bytes) -> None:
        hashes = self._tiles.setdefault(level, [])
        hashes.append(node)
        if len(hashes) == TILE_WIDTH:
            self._write_tile(level, hashes)
            self._tiles[level] = []

    def _write_tile(self, level: int, hashes: list[bytes]) -> None:
        count = self._tree.size >> (TILE_HEIGHT * level)
        index = (count - 1) // TILE_WIDTH if len(hashes) < TILE_WIDTH else count // TILE_WIDTH - 1
        self._write(tile_path(level, index, len(hashes)), b"".join(hashes))

    def _write_bundle(self) -> None:
        index = (self._tree.size - 1) // TILE_WIDTH
        body = b"".join(_LENGTH.pack(len(e)) + e for e in self._bundle)
        self._write(tile_path("entries", index, len(self._bundle)), body)
        self._bundle = []

    def _write(self, name: str, data: bytes) -> None:
        path = self._dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_export(directory: Path, entries: Iterable[bytes], checkpoint_note: str) -> int:
    """Write `entries` and the checkpoint as an export; returns the number of entries."""
    writer = ExportWriter(directory)
    for entry in entries:
        writer.add(entry)
    writer.finish(checkpoint_note)
    return writer.size


@dataclass(frozen=True)
class Finding:
    """The first thing wrong with an export: the leaf index (-1: not about one leaf)."""

    index: int
    reason: str
    message: str


@dataclass(frozen=True)
class VerifyResult:
    checkpoint: Checkpoint | None
    entries: int
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


class _Bad(Exception):
    def __init__(self, index: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.finding = Finding(index, reason, message)

    @classmethod
    def of(cls, finding: Finding) -> _Bad:
        return cls(finding.index, finding.reason, finding.message)


_NOT_A_PREFIX = "the first %d leaves are not the tree the kept checkpoint signed"


def _read(path: Path, index: int, limit: int) -> bytes:
    """The file's bytes; of a file longer than `limit`, only the first `limit` + 1, which
    is enough to refuse it: an export is hostile input, and a tile or bundle of
    gigabytes must not be read into memory to find it too long."""
    try:
        with path.open("rb") as f:
            return f.read(limit + 1)
    except OSError as exc:
        raise _Bad(index, "LOG_EXPORT_INVALID", f"cannot read {path.name}: {exc}") from exc


def _bundle(directory: Path, number: int, width: int, first: int) -> bytes:
    """Entry bundle `number`: at most `width` entries of 2 + 65,535 bytes each, and one
    byte more of a longer file (which the split then refuses)."""
    return _read(
        directory / tile_path("entries", number, width), first, width * (2 + MAX_ENTRY_BYTES)
    )


def _hash_tile(directory: Path, level: int, number: int, width: int, first: int) -> bytes:
    """A hash tile's bytes, which must be exactly `width` hashes: a tile one hash too
    long or too short is refused, never read as far as the tree needs."""
    exact = width * HASH_SIZE
    data = _read(directory / tile_path(level, number, width), first, exact)
    if len(data) != exact:
        found = f"{len(data)} bytes" if len(data) < exact else f"longer than {exact} bytes"
        raise _Bad(
            first,
            "LOG_TILE_SIZE_INVALID",
            f"tile {tile_path(level, number, width)} is {found}; a tile of width {width} "
            f"is exactly {exact}",
        )
    return data


def _tiles_of(count: int, first: int = 0) -> Iterator[tuple[int, int]]:
    """(tile number, width) of every tile over `count` nodes from tile `first`, in order."""
    for number in range(first, (count + TILE_WIDTH - 1) // TILE_WIDTH):
        yield number, min(TILE_WIDTH, count - number * TILE_WIDTH)


def _leaf_hashes(directory: Path, size: int, first: int = 0) -> Iterator[bytes]:
    for number, width in _tiles_of(size, first):
        data = _hash_tile(directory, 0, number, width, number * TILE_WIDTH)
        for i in range(width):
            yield data[i * HASH_SIZE : (i + 1) * HASH_SIZE]


def _entry_views(data: bytes, first: int, width: int) -> tuple[list[memoryview], Finding | None]:
    """The entries of an entry bundle whose first leaf is `first`, as views into `data`
    (no copies), up to the first thing wrong with it, and that finding (None if the
    bundle is exactly `width` entries). The one parser of a bundle: hostile input."""
    size, at, view = len(data), 0, memoryview(data)
    items: list[memoryview] = []
    for i in range(width):
        if at + 2 > size:
            return items, Finding(first + i, "LOG_EXPORT_INVALID", "entry bundle ends early")
        end = at + 2 + (data[at] << 8 | data[at + 1])
        if end > size:
            return items, Finding(first + i, "LOG_EXPORT_INVALID", "entry is cut short")
        items.append(view[at + 2 : end])
        at = end
    if at != size:
        return items, Finding(first + width, "LOG_EXPORT_INVALID", "bytes after the last entry")
    return items, None


def _split_bundle(data: bytes, first: int, width: int) -> tuple[list[bytes], Finding | None]:
    """`_entry_views`, each entry as bytes of its own."""
    views, finding = _entry_views(data, first, width)
    return [bytes(v) for v in views], finding


def _leaf_row(data: bytes, first: int, width: int) -> tuple[bytes, Finding | None]:
    """The leaf hashes of an entry bundle's entries, concatenated, and `_entry_views`'
    finding. The root recompute's inner loop: each entry hashed where it lies in the
    bundle by a copy of a hash already fed 0x00."""
    views, finding = _entry_views(data, first, width)
    leaf = _LEAF.copy
    row: list[bytes] = []
    for entry in views:
        hashed = leaf()
        hashed.update(entry)
        row.append(hashed.digest())
    return b"".join(row), finding


def _entries(directory: Path, size: int, first: int = 0) -> Iterator[tuple[int, bytes]]:
    for number, width in _tiles_of(size, first):
        start = number * TILE_WIDTH
        items, broken = _split_bundle(_bundle(directory, number, width, start), start, width)
        yield from enumerate(items, start)
        if broken is not None:
            raise _Bad.of(broken)


def _fold(hashes: bytes) -> bytes:
    """MTH of 2**k concatenated node hashes, one tree level per list comprehension."""
    pair = 2 * HASH_SIZE
    while len(hashes) > HASH_SIZE:
        hashes = b"".join(
            [
                sha256(NODE_PREFIX + hashes[i : i + pair]).digest()
                for i in range(0, len(hashes), pair)
            ]
        )
    return hashes


def _peaks(hashes: bytes) -> list[bytes]:
    """The perfect-subtree roots of a row of concatenated hashes, left to right: one per
    set bit of the row's length, largest first (as a tree of that many leaves has)."""
    count, at, peaks = len(hashes) // HASH_SIZE, 0, []
    for bit in reversed(range(count.bit_length())):
        if count >> bit & 1:
            span = HASH_SIZE << bit
            peaks.append(_fold(hashes[at : at + span]))
            at += span
    return peaks


@dataclass(frozen=True)
class _TileCheck:
    """What checking one leaf tile found: its level-8 node (None for a partial tile),
    a finding that stops everything (a leaf tile missing or of the wrong size), and the
    first entry of the tile that is wrong (read, decoded or hashed)."""

    node: bytes | None
    tile_finding: Finding | None
    entry_finding: Finding | None


def _check_entries(
    directory: Path, hashes: bytes, number: int, width: int, decode: bool
) -> Finding | None:
    """The first entry of the tile that is malformed (with `decode`), not the leaf the
    tile holds, or unreadable; None if all of them are right."""
    first = number * TILE_WIDTH
    try:
        data = _bundle(directory, number, width, first)
    except _Bad as bad:
        return bad.finding
    computed, broken = _leaf_row(data, first, width)
    if decode or computed != hashes[: len(computed)]:
        items = _split_bundle(data, first, width)[0] if decode else []
        for i in range(len(computed) // HASH_SIZE):  # in index order: the first wrong wins
            if decode:
                try:
                    check_any_entry(items[i])
                except EntryError as exc:
                    return Finding(first + i, exc.reason, str(exc))
            at = i * HASH_SIZE
            if computed[at : at + HASH_SIZE] != hashes[at : at + HASH_SIZE]:
                message = f"entry {first + i} is not the leaf the tree holds"
                return Finding(first + i, "LOG_ROOT_MISMATCH", message)
    return broken


def _check_tile_range(
    directory: Path, size: int, numbers: range, leaves: bool, decode: bool
) -> list[_TileCheck]:
    """Check leaf tiles `numbers`: each tile's size and level-8 node, and with `leaves`
    its entries' leaf hashes against it (decoding each entry too with `decode`). Runs in
    a worker process; reads nothing but its own tiles."""
    checks = []
    for number in numbers:
        width = min(TILE_WIDTH, size - number * TILE_WIDTH)
        try:
            hashes = _hash_tile(directory, 0, number, width, number * TILE_WIDTH)
        except _Bad as bad:
            checks.append(_TileCheck(None, bad.finding, None))
            break
        node = _fold(hashes) if width == TILE_WIDTH else None
        found = _check_entries(directory, hashes, number, width, decode) if leaves else None
        checks.append(_TileCheck(node, None, found))
    return checks


def _tile_checks(
    directory: Path, size: int, workers: int, wanted: Callable[[], tuple[bool, bool]]
) -> Generator[_TileCheck, None, None]:
    """Every leaf tile's check, in order. `wanted()` gives (leaves, decode) for the
    next chunk as it is handed out, so checks no longer needed are skipped.

    With `workers` > 1 and more than one chunk, chunks go to that many forked processes
    (forked, not spawned: a spawned worker would import the caller's main module, the
    whole CLI, before hashing anything; the work needs nothing of this process's state
    but the tile reader), at most four per worker in flight.
    """
    tiles = (size + TILE_WIDTH - 1) // TILE_WIDTH
    chunks = [range(n, min(n + CHUNK_TILES, tiles)) for n in range(0, tiles, CHUNK_TILES)]
    if workers <= 1 or len(chunks) < 2:
        for numbers in chunks:
            yield from _check_tile_range(directory, size, numbers, *wanted())
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[list[_TileCheck]]] = deque()
        try:
            for numbers in chunks:
                pending.append(pool.submit(_check_tile_range, directory, size, numbers, *wanted()))
                if len(pending) >= 4 * workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            pool.shutdown(cancel_futures=True)


class _UpperTiles:
    """The tree above the leaf tiles, built from level-8 nodes in leaf order.

    `rows[L]` holds the level-8L nodes of the tile at tile level L that is still open;
    a row that fills is compared with its tile in the export and folded into one node of
    the level above. Memory: one tile per level.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self.rows: list[bytes] = [b""]  # level 0 unused: see `leaves`
        self.leaves = b""  # the leaf hashes of a last, partial leaf tile
        self._full: list[int] = [0]  # tiles completed, per level

    def add(self, node: bytes, level: int = 1) -> None:
        while True:
            if level == len(self.rows):
                self.rows.append(b"")
                self._full.append(0)
            row = self.rows[level] + node
            if len(row) < TILE_WIDTH * HASH_SIZE:
                self.rows[level] = row
                return
            self._compare(level, self._full[level], row)
            self._full[level] += 1
            self.rows[level] = b""
            node, level = _fold(row), level + 1

    def finish(self) -> None:
        """Compare the partial tile of every level with the export's."""
        for level in range(1, len(self.rows)):
            if self.rows[level]:
                self._compare(level, self._full[level], self.rows[level])

    def root(self, leaves: bytes = b"") -> bytes:
        """MTH of the leaves so far followed by `leaves` (concatenated leaf hashes, at
        most a tile): the peaks of every level's open row, highest level first."""
        peaks = [p for row in reversed([leaves, *self.rows[1:]]) for p in _peaks(row)]
        if not peaks:
            return EMPTY_ROOT
        node = peaks[-1]
        for peak in reversed(peaks[:-1]):
            node = node_hash(peak, node)
        return node

    def _compare(self, level: int, number: int, row: bytes) -> None:
        width = len(row) // HASH_SIZE
        if _hash_tile(self._dir, level, number, width, -1) != row:
            raise _Bad(-1, "LOG_ROOT_MISMATCH", f"tile {level}/{number} disagrees")


def _verify_tree(
    directory: Path,
    checkpoint: Checkpoint,
    earlier: Checkpoint | None,
    *,
    leaves: bool,
    decode: bool,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, Finding | None]:
    """Check the hash tiles against the checkpoint (and `earlier`), and with `leaves`
    every entry's leaf hash (and with `decode` the entry itself) against them.

    Raises _Bad for a tile or root finding: those come first, wherever they are. Returns
    the number of entries checked before the first entry finding, and that finding.
    """
    size = checkpoint.size
    upper = _UpperTiles(directory)
    finding: Finding | None = None
    done = 0

    def wanted() -> tuple[bool, bool]:
        return leaves and finding is None, decode and finding is None

    with closing(_tile_checks(directory, size, workers, wanted)) as checks:
        for number, check in enumerate(checks):
            if check.tile_finding is not None:
                raise _Bad.of(check.tile_finding)
            first = number * TILE_WIDTH
            width = min(TILE_WIDTH, size - first)
            if earlier is not None and first < earlier.size <= first + width:
                hashes = _hash_tile(directory, 0, number, width, first)
                if upper.root(hashes[: (earlier.size - first) * HASH_SIZE]) != earlier.root:
                    raise _Bad(-1, "PROOF_CONSISTENCY_INVALID", _NOT_A_PREFIX % earlier.size)
            if check.node is not None:
                upper.add(check.node)
            else:  # the last, partial leaf tile
                upper.leaves = _hash_tile(directory, 0, number, width, first)
            if finding is None and leaves:
                finding = check.entry_finding
                done = first + width if finding is None else finding.index
                if progress is not None:
                    progress(done)
    upper.finish()
    if earlier is not None and earlier.size == 0 and earlier.root != EMPTY_ROOT:
        raise _Bad(-1, "PROOF_CONSISTENCY_INVALID", _NOT_A_PREFIX % 0)
    if upper.root(upper.leaves) != checkpoint.root:
        raise _Bad(-1, "LOG_ROOT_MISMATCH", "the hash tiles do not give the checkpoint root")
    return done, finding


def verify_export(
    directory: Path,
    verifier: NoteVerifier,
    *,
    earlier_note: str | None = None,
    progress: Callable[[int], None] | None = None,
    check_entries: bool = True,
    workers: int = 0,
) -> VerifyResult:
    """Verify an export streaming; the result names the first failure, if any.

    `earlier_note` is a checkpoint the auditor kept from before: this export's tree must
    extend it. `progress(n)` is called as entries are checked. `check_entries` False
    checks every leaf hash against the tree but does not decode the entries (the root
    recomputed from the log's bytes, without its meaning). `workers` > 1 checks leaf
    tiles in that many processes. Never raises for anything in the export itself.
    """
    checkpoint: Checkpoint | None = None
    done = 0
    try:
        checkpoint, earlier = _open(directory, verifier, earlier_note)
        done, finding = _verify_tree(
            directory,
            checkpoint,
            earlier,
            leaves=True,
            decode=check_entries,
            workers=workers,
            progress=progress,
        )
    except _Bad as bad:
        return VerifyResult(checkpoint, done, bad.finding)
    return VerifyResult(checkpoint, done, finding)


def _open(
    directory: Path, verifier: NoteVerifier, earlier_note: str | None
) -> tuple[Checkpoint, Checkpoint | None]:
    """The export's checkpoint and the kept one, signatures verified; raises _Bad."""
    try:
        checkpoint = open_checkpoint(
            _read(directory / "checkpoint", -1, MAX_CHECKPOINT_BYTES), verifier
        )
        earlier = None if earlier_note is None else open_checkpoint(earlier_note, verifier)
    except CheckpointError as exc:
        raise _Bad(-1, exc.reason, str(exc)) from exc
    if earlier is not None and earlier.size > checkpoint.size:
        raise _Bad(
            -1,
            "PROOF_CONSISTENCY_INVALID",
            f"the kept checkpoint ({earlier.size}) is larger than this one ({checkpoint.size})",
        )
    return checkpoint, earlier


class ExportCheckError(Exception):
    """An export that fails a check replay needs; `finding` says where and why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def open_export(
    directory: Path, verifier: NoteVerifier, *, earlier_note: str | None = None
) -> Checkpoint:
    """The export's checkpoint, once its signature verified and its hash tiles were
    shown to give its root (and to extend `earlier_note`). The entries themselves are
    checked as `export_entries` reads them. O(n) hashing of 32-byte leaf hashes only.

    Raises ExportCheckError.
    """
    try:
        checkpoint, earlier = _open(directory, verifier, earlier_note)
        _verify_tree(directory, checkpoint, earlier, leaves=False, decode=False)
    except _Bad as bad:
        raise ExportCheckError(bad.finding) from None
    return checkpoint


def stated_size(directory: Path) -> int | None:
    """The tree size the export's checkpoint states, unverified; None if unreadable."""
    try:
        with (directory / "checkpoint").open("rb") as f:
            lines = f.read(MAX_CHECKPOINT_BYTES).decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    size = lines[1] if len(lines) > 2 else ""
    # A tree size is a uint64: ASCII digits, at most 20 (int() refuses over 4300).
    return int(size) if size.isascii() and size.isdigit() and len(size) <= 20 else None


def export_entries(
    directory: Path, size: int, start: int = 0, end: int | None = None, *, check: bool = True
) -> Iterator[tuple[int, bytes, Finding | None]]:
    """Entries [start, end) of an export of `size` leaves, streaming, in index order.

    With `check`, each entry's leaf hash is compared with the leaf tile (which
    `open_export` authenticated): a mismatch comes with a LOG_ROOT_MISMATCH finding and
    the iteration goes on. Raises ExportCheckError for a tile that cannot be read.
    """
    stop = size if end is None else min(end, size)
    if start >= stop:
        return
    first = start // TILE_WIDTH
    hashes: Iterator[bytes | None] = (
        _leaf_hashes(directory, size, first) if check else itertools.repeat(None)
    )
    try:
        for (index, entry), expected in zip(_entries(directory, size, first), hashes, strict=False):
            if index >= stop:
                return
            if index < start:
                continue
            finding = None
            if expected is not None and leaf_hash(entry) != expected:
                finding = Finding(
                    index, "LOG_ROOT_MISMATCH", f"entry {index} is not the leaf the tree holds"
                )
            yield index, entry, finding
    except _Bad as bad:
        raise ExportCheckError(bad.finding) from None
