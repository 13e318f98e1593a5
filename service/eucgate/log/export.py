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
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eucgate_client.tlog import (
    HASH_SIZE,
    Checkpoint,
    CheckpointError,
    CompactRange,
    NoteVerifier,
    leaf_hash,
    open_checkpoint,
)

from eucgate.log.entry import EntryError, check_any_entry

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_ENTRY_BYTES = 0xFFFF
_LENGTH = struct.Struct(">H")


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


def _read(path: Path, index: int) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Bad(index, "LOG_EXPORT_INVALID", f"cannot read {path.name}: {exc}") from exc


def _tile(directory: Path, level: int | str, number: int, width: int, first: int) -> bytes:
    return _read(directory / tile_path(level, number, width), first)


def _hash_tile(directory: Path, level: int, number: int, width: int, first: int) -> bytes:
    """A hash tile's bytes, which must be exactly `width` hashes: a tile one hash too
    long or too short is refused, never read as far as the tree needs."""
    data = _tile(directory, level, number, width, first)
    if len(data) != width * HASH_SIZE:
        raise _Bad(
            first,
            "LOG_TILE_SIZE_INVALID",
            f"tile {tile_path(level, number, width)} is {len(data)} bytes; a tile of "
            f"width {width} is exactly {width * HASH_SIZE}",
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


def _entries(directory: Path, size: int, first: int = 0) -> Iterator[tuple[int, bytes]]:
    for number, width in _tiles_of(size, first):
        first = number * TILE_WIDTH
        data = _tile(directory, "entries", number, width, first)
        at = 0
        for i in range(width):
            if at + 2 > len(data):
                raise _Bad(first + i, "LOG_EXPORT_INVALID", "entry bundle ends early")
            (length,) = _LENGTH.unpack_from(data, at)
            if at + 2 + length > len(data):
                raise _Bad(first + i, "LOG_EXPORT_INVALID", "entry is cut short")
            yield first + i, data[at + 2 : at + 2 + length]
            at += 2 + length
        if at != len(data):
            raise _Bad(first + width, "LOG_EXPORT_INVALID", "bytes after the last entry")


def _check_tiles(directory: Path, checkpoint: Checkpoint, earlier: Checkpoint | None) -> None:
    """The hash tiles give the checkpoint's root, agree with each other, and hold the
    earlier checkpoint's tree as a prefix."""
    tree = CompactRange()
    upper: dict[int, tuple[int, bytes]] = {}  # tile level -> (tile number, its bytes)
    for leaf in _leaf_hashes(directory, checkpoint.size):
        for level, index, node in tree.append(leaf):
            if level % TILE_HEIGHT:
                continue
            tile_level = level // TILE_HEIGHT
            number = index // TILE_WIDTH
            if upper.get(tile_level, (-1, b""))[0] != number:
                count = checkpoint.size >> level
                width = min(TILE_WIDTH, count - number * TILE_WIDTH)
                upper[tile_level] = (number, _hash_tile(directory, tile_level, number, width, -1))
            data = upper[tile_level][1]
            offset = (index % TILE_WIDTH) * HASH_SIZE
            if data[offset : offset + HASH_SIZE] != node:
                raise _Bad(-1, "LOG_ROOT_MISMATCH", f"tile {tile_level}/{number} disagrees")
        if earlier is not None and tree.size == earlier.size and tree.root() != earlier.root:
            raise _Bad(
                -1,
                "PROOF_CONSISTENCY_INVALID",
                f"the first {earlier.size} leaves are not the tree the kept checkpoint signed",
            )
    if tree.root() != checkpoint.root:
        raise _Bad(-1, "LOG_ROOT_MISMATCH", "the leaf-hash tiles do not give the checkpoint root")


def verify_export(
    directory: Path,
    verifier: NoteVerifier,
    *,
    earlier_note: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Verify an export streaming; the result names the first failure, if any.

    `earlier_note` is a checkpoint the auditor kept from before: this export's tree must
    extend it. `progress(n)` is called as entries are checked. Never raises for anything
    in the export itself.
    """
    checkpoint: Checkpoint | None = None
    done = 0
    try:
        try:
            checkpoint = open_checkpoint(_read(directory / "checkpoint", -1), verifier)
            earlier = None if earlier_note is None else open_checkpoint(earlier_note, verifier)
        except CheckpointError as exc:
            raise _Bad(-1, exc.reason, str(exc)) from exc
        if earlier is not None and earlier.size > checkpoint.size:
            raise _Bad(
                -1,
                "PROOF_CONSISTENCY_INVALID",
                f"the kept checkpoint ({earlier.size}) is larger than this one ({checkpoint.size})",
            )
        _check_tiles(directory, checkpoint, earlier)
        tree = CompactRange()
        for (index, entry), expected in zip(
            _entries(directory, checkpoint.size),
            _leaf_hashes(directory, checkpoint.size),
            strict=True,
        ):
            try:
                check_any_entry(entry)
            except EntryError as exc:
                raise _Bad(index, exc.reason, str(exc)) from exc
            leaf = leaf_hash(entry)
            if leaf != expected:
                raise _Bad(
                    index, "LOG_ROOT_MISMATCH", f"entry {index} is not the leaf the tree holds"
                )
            tree.append(leaf)
            done = index + 1
            if progress is not None and (done % 1024 == 0 or done == checkpoint.size):
                progress(done)
        if tree.root() != checkpoint.root:  # pragma: no cover - implied by the tile checks
            raise _Bad(-1, "LOG_ROOT_MISMATCH", "the entries do not give the checkpoint root")
    except _Bad as bad:
        return VerifyResult(checkpoint, done, bad.finding)
    return VerifyResult(checkpoint, done, None)


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
        try:
            checkpoint = open_checkpoint(_read(directory / "checkpoint", -1), verifier)
            earlier = None if earlier_note is None else open_checkpoint(earlier_note, verifier)
        except CheckpointError as exc:
            raise _Bad(-1, exc.reason, str(exc)) from exc
        if earlier is not None and earlier.size > checkpoint.size:
            raise _Bad(
                -1,
                "PROOF_CONSISTENCY_INVALID",
                f"the kept checkpoint ({earlier.size}) is larger than this one ({checkpoint.size})",
            )
        _check_tiles(directory, checkpoint, earlier)
    except _Bad as bad:
        raise ExportCheckError(bad.finding) from None
    return checkpoint


def stated_size(directory: Path) -> int | None:
    """The tree size the export's checkpoint states, unverified; None if unreadable."""
    try:
        lines = (directory / "checkpoint").read_text(encoding="utf-8").split("\n")
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
