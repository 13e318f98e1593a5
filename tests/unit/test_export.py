"""Log entries, the tlog-tiles export and its verifier, with a tamper suite."""

from __future__ import annotations

import base64
import json
import resource
import shutil
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eucgate.log.checkpoint import CheckpointSigner
from eucgate.log.entry import EntryError, check_entry, decode_entry, encode_entry
from eucgate.log.export import (
    MAX_ENTRY_BYTES,
    ExportCheckError,
    ExportError,
    ExportWriter,
    Finding,
    _leaf_row,
    _split_bundle,
    open_export,
    tile_path,
    verify_export,
    write_export,
)
from eucgate.log.merkle import mth
from eucgate_client.tlog import leaf_hash, root_of
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.logdata import entries, make_record

ORIGIN = "eucgate.example/log"


@pytest.fixture
def signer(service_key: ed25519.Ed25519PrivateKey) -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, service_key)


def export(directory: Path, signer: CheckpointSigner, items: list[bytes]) -> str:
    note = signer.sign(len(items), root_of(leaf_hash(e) for e in items))
    write_export(directory, items, note)
    return note


# --- entries ------------------------------------------------------------------------


def test_entry_round_trip_and_internal_digests() -> None:
    record = make_record(7)
    raw = encode_entry(record)
    entry = decode_entry(raw)
    assert (entry.decision_id, entry.envelope, entry.decision) == (
        record.decision_id,
        record.envelope,
        record.decision,
    )
    assert entry.ledger_reads == ()
    check_entry(entry)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(v=2),
        lambda d: d.update(extra=1),
        lambda d: d.pop("caller"),
        lambda d: d.update(decided_at="now"),
        lambda d: d.update(envelope="not base64!"),
        lambda d: d.update(ledger_reads=[{"licence_number": 1}]),
    ],
)
def test_malformed_entries_are_refused(mutate: object) -> None:
    body = json.loads(encode_entry(make_record(1)))
    mutate(body)  # type: ignore[operator]
    with pytest.raises(EntryError) as info:
        decode_entry(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    assert info.value.reason == "LOG_ENTRY_MALFORMED"


def test_non_canonical_bytes_of_a_valid_entry_are_refused() -> None:
    raw = encode_entry(make_record(1))
    with pytest.raises(EntryError, match="canonical"):
        decode_entry(json.dumps(json.loads(raw), indent=1, sort_keys=True).encode())
    with pytest.raises(EntryError, match="repeats"):
        decode_entry(raw[:-1] + b',"v":1}')


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("envelope_digest", "00" * 32),
        ("bundle_digest", "cd" * 32),
        ("decided_at", 1),
        ("decision_id", "dec_short"),
        ("decision", base64.b64encode(b'{"not":"a decision"}').decode()),
        ("envelope", base64.b64encode(b"\xff\xff").decode()),
    ],
)
def test_entries_whose_digests_disagree_fail_the_check(field: str, value: object) -> None:
    body = json.loads(encode_entry(make_record(1)))
    body[field] = value
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(EntryError) as info:
        check_entry(decode_entry(raw))
    assert info.value.reason == "LOG_ENTRY_DIGEST_MISMATCH"


# --- export layout ------------------------------------------------------------------


def test_tile_paths_follow_tlog_tiles() -> None:
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(1, 1234067) == "tile/1/x001/x234/067"
    assert tile_path("entries", 1000, 7) == "tile/entries/x001/000.p/7"


def test_export_layout_and_tiles(tmp_path: Path, signer: CheckpointSigner) -> None:
    items = list(entries(600))
    note = export(tmp_path, signer, items)
    assert (tmp_path / "checkpoint").read_text() == note
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert names == [
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/88",
    ]
    leaves = (tmp_path / "tile/0/001").read_bytes()
    assert leaves[:32] == leaf_hash(items[256])
    level8 = (tmp_path / "tile/1/000.p/2").read_bytes()
    assert level8[32:] == root_of(leaf_hash(e) for e in items[256:512])
    result = verify_export(tmp_path, signer.verifier)
    assert result.ok, result.finding
    assert result.entries == 600


def test_an_entry_too_large_for_tlog_tiles_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        ExportWriter(tmp_path).add(b"x" * (MAX_ENTRY_BYTES + 1))


def test_an_empty_log_exports_and_verifies(tmp_path: Path, signer: CheckpointSigner) -> None:
    export(tmp_path, signer, [])
    assert verify_export(tmp_path, signer.verifier).ok


def test_consistency_with_a_kept_checkpoint(tmp_path: Path, signer: CheckpointSigner) -> None:
    items = list(entries(300))
    kept = signer.sign(100, root_of(leaf_hash(e) for e in items[:100]))
    export(tmp_path, signer, items)
    assert verify_export(tmp_path, signer.verifier, earlier_note=kept).ok
    forked = signer.sign(100, root_of(leaf_hash(e) for e in items[1:101]))
    result = verify_export(tmp_path, signer.verifier, earlier_note=forked)
    assert result.finding is not None
    assert result.finding.reason == "PROOF_CONSISTENCY_INVALID"
    bigger = signer.sign(400, root_of(leaf_hash(e) for e in items))
    result = verify_export(tmp_path, signer.verifier, earlier_note=bigger)
    assert result.finding is not None
    assert result.finding.reason == "PROOF_CONSISTENCY_INVALID"


def test_wrong_key_fails(tmp_path: Path, signer: CheckpointSigner) -> None:
    export(tmp_path, signer, list(entries(3)))
    other = CheckpointSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    result = verify_export(tmp_path, other.verifier)
    assert result.finding is not None
    assert result.finding.reason == "CHECKPOINT_UNSIGNED"


# --- tamper suite: always caught, with the index, never a crash -----------------------

SIZE = 300  # two entry bundles, one partial


def _bundle_entries(path: Path) -> list[bytes]:
    data, out = path.read_bytes(), []
    while data:
        n = int.from_bytes(data[:2], "big")
        out.append(data[2 : 2 + n])
        data = data[2 + n :]
    return out


def _write_bundle(path: Path, items: list[bytes]) -> None:
    path.write_bytes(b"".join(len(e).to_bytes(2, "big") + e for e in items))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CheckpointSigner]:
    directory = tmp_path_factory.mktemp("pristine")
    signer = CheckpointSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    export(directory, signer, list(entries(SIZE)))
    return directory, signer


@pytest.fixture
def copy(pristine: tuple[Path, CheckpointSigner], tmp_path: Path) -> Path:
    shutil.copytree(pristine[0], tmp_path / "export")
    return tmp_path / "export"


def _verify(copy: Path, pristine: tuple[Path, CheckpointSigner]) -> tuple[int, str]:
    result = verify_export(copy, pristine[1].verifier)
    assert result.finding is not None, "tampering went unnoticed"
    return result.finding.index, result.finding.reason


@pytest.mark.parametrize("offset", [0, 1, 37, 500, 1999, -200, -3, -1])
@pytest.mark.parametrize("bundle", ["tile/entries/000", "tile/entries/001.p/44"])
def test_byte_flip_in_an_entry_bundle(
    copy: Path, pristine: tuple[Path, CheckpointSigner], bundle: str, offset: int
) -> None:
    path = copy / bundle
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))
    index, reason = _verify(copy, pristine)
    assert reason in {
        "LOG_ENTRY_MALFORMED",
        "LOG_ENTRY_DIGEST_MISMATCH",
        "LOG_ROOT_MISMATCH",
        "LOG_EXPORT_INVALID",
    }
    first = 0 if bundle.endswith("000") else 256
    assert first <= index < first + 256


@pytest.mark.parametrize("name", ["checkpoint", "tile/0/000", "tile/0/001.p/44"])
def test_byte_flip_in_checkpoint_or_hash_tiles(
    copy: Path, pristine: tuple[Path, CheckpointSigner], name: str
) -> None:
    for offset in (0, 5, -1):
        path = copy / name
        original = path.read_bytes()
        data = bytearray(original)
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
        _verify(copy, pristine)
        path.write_bytes(original)


@pytest.mark.parametrize("at", [0, 100, 255])
def test_dropped_entry(copy: Path, pristine: tuple[Path, CheckpointSigner], at: int) -> None:
    path = copy / "tile/entries/000"
    items = _bundle_entries(path)
    del items[at]
    _write_bundle(path, items)
    index, _ = _verify(copy, pristine)
    assert index == at


@pytest.mark.parametrize(("a", "b"), [(0, 1), (10, 200), (254, 255)])
def test_swapped_entries(
    copy: Path, pristine: tuple[Path, CheckpointSigner], a: int, b: int
) -> None:
    path = copy / "tile/entries/000"
    items = _bundle_entries(path)
    items[a], items[b] = items[b], items[a]
    _write_bundle(path, items)
    assert _verify(copy, pristine) == (a, "LOG_ROOT_MISMATCH")


@pytest.mark.parametrize("at", [0, 128, 254])
def test_duplicated_entry(copy: Path, pristine: tuple[Path, CheckpointSigner], at: int) -> None:
    path = copy / "tile/entries/000"
    items = _bundle_entries(path)
    items.insert(at, items[at])
    _write_bundle(path, items)
    index, _ = _verify(copy, pristine)
    assert index == at + 1


@pytest.mark.parametrize("keep", [0, 1, 2, 1000, -1])
def test_truncated_bundle(copy: Path, pristine: tuple[Path, CheckpointSigner], keep: int) -> None:
    path = copy / "tile/entries/001.p/44"
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    index, reason = _verify(copy, pristine)
    assert reason == "LOG_EXPORT_INVALID"
    assert 256 <= index <= SIZE


@pytest.mark.parametrize("name", ["tile/entries/000", "tile/0/001.p/44", "checkpoint"])
def test_missing_file(copy: Path, pristine: tuple[Path, CheckpointSigner], name: str) -> None:
    (copy / name).unlink()
    assert _verify(copy, pristine)[1] == "LOG_EXPORT_INVALID"


def test_replaced_entry_with_consistent_tiles_still_fails_the_checkpoint(
    copy: Path, pristine: tuple[Path, CheckpointSigner]
) -> None:
    """Rewriting an entry and its leaf hash too: the tiles no longer give the signed root."""
    path = copy / "tile/entries/000"
    items = _bundle_entries(path)
    items[5] = encode_entry(make_record(10_000))
    _write_bundle(path, items)
    leaves = bytearray((copy / "tile/0/000").read_bytes())
    leaves[5 * 32 : 6 * 32] = leaf_hash(items[5])
    (copy / "tile/0/000").write_bytes(bytes(leaves))
    assert _verify(copy, pristine)[1] == "LOG_ROOT_MISMATCH"


@pytest.mark.slow
def test_a_100k_entry_export_verifies_streaming(tmp_path: Path, signer: CheckpointSigner) -> None:
    # How fast is bench.audit's business; here, that a large export verifies whole.
    count = 100_000
    writer = ExportWriter(tmp_path)
    for entry in entries(count):
        writer.add(entry)
    writer.finish(signer.sign(count, writer.root()))
    seen: list[int] = []
    result = verify_export(tmp_path, signer.verifier, progress=seen.append, workers=2)
    assert result.ok, result.finding
    assert result.entries == count
    assert seen[-1] == count


# --- exact tile sizes: a tile of width W is W x 32 bytes, nothing more or less ---------


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("tile/1/000.p/1", b"\x00" * 32),  # a hash appended to the level-1 tile
        ("tile/1/000.p/1", b"\x00"),
        ("tile/0/001.p/44", b"\x00" * 32),  # an over-long leaf tile
        ("tile/0/000", b"\x00" * 32),
        ("tile/0/001.p/44", None),  # a short leaf tile: one hash cut off
        ("tile/1/000.p/1", None),
    ],
    ids=[
        "level1-hash-appended",
        "level1-byte-appended",
        "leaf-partial-hash-appended",
        "leaf-full-hash-appended",
        "leaf-hash-cut",
        "level1-hash-cut",
    ],
)
def test_a_hash_tile_of_the_wrong_size_fails_with_its_own_reason(
    copy: Path, pristine: tuple[Path, CheckpointSigner], name: str, change: bytes | None
) -> None:
    path = copy / name
    data = path.read_bytes()
    path.write_bytes(data[:-32] if change is None else data + change)
    result = verify_export(copy, pristine[1].verifier)
    assert result.finding is not None, "a tile of the wrong size passed"
    assert result.finding.reason == "LOG_TILE_SIZE_INVALID"
    assert name in result.finding.message
    with pytest.raises(ExportCheckError) as info:
        open_export(copy, pristine[1].verifier)
    assert info.value.finding.reason == "LOG_TILE_SIZE_INVALID"


def test_the_pristine_export_has_exact_tiles(pristine: tuple[Path, CheckpointSigner]) -> None:
    """The writer's own tiles are exact: the check refuses only what was changed."""
    directory, signer = pristine
    sizes = {
        p.relative_to(directory).as_posix(): p.stat().st_size
        for p in directory.glob("tile/[0-9]*/**/*")
        if p.is_file()
    }
    assert sizes == {"tile/0/000": 256 * 32, "tile/0/001.p/44": 44 * 32, "tile/1/000.p/1": 32}
    assert verify_export(directory, signer.verifier).ok


# --- the root recomputed tile by tile, in one process or several -----------------------


def _tiny_export(directory: Path, signer: CheckpointSigner, count: int) -> list[bytes]:
    items = [b"entry %d" % i for i in range(count)]
    export(directory, signer, items)
    return items


@pytest.mark.parametrize("count", [1, 255, 256, 257, 511, 512, 65535, 65536, 65537, 70001])
def test_root_recomputed_across_tile_levels(
    tmp_path: Path, signer: CheckpointSigner, count: int
) -> None:
    """Full and partial tiles at levels 0, 1 and 2 fold into the checkpoint's root."""
    _tiny_export(tmp_path, signer, count)
    for workers in (0, 2):
        result = verify_export(tmp_path, signer.verifier, check_entries=False, workers=workers)
        assert result.ok, result.finding
        assert result.entries == count


def test_kept_checkpoints_at_tile_boundaries(tmp_path: Path, signer: CheckpointSigner) -> None:
    items = _tiny_export(tmp_path, signer, 66000)
    for size in (1, 255, 256, 257, 4096, 65535, 65536, 65537, 66000):
        kept = signer.sign(size, root_of(leaf_hash(e) for e in items[:size]))
        result = verify_export(tmp_path, signer.verifier, earlier_note=kept, check_entries=False)
        assert result.ok, (size, result.finding)
        forked = signer.sign(size, root_of(leaf_hash(e) for e in [b"x", *items[1:size]]))
        result = verify_export(tmp_path, signer.verifier, earlier_note=forked, check_entries=False)
        assert result.finding is not None
        assert result.finding.reason == "PROOF_CONSISTENCY_INVALID", size
        with pytest.raises(ExportCheckError):
            open_export(tmp_path, signer.verifier, earlier_note=forked)


@pytest.fixture(scope="module")
def three_chunks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CheckpointSigner]:
    """An export of real entries over three chunks of leaf tiles (workers share them)."""
    directory = tmp_path_factory.mktemp("chunks")
    signer = CheckpointSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    export(directory, signer, list(entries(9000)))
    return directory, signer


def _findings(directory: Path, signer: CheckpointSigner) -> set[tuple[int, str, int]]:
    found = set()
    for workers in (0, 2):
        result = verify_export(directory, signer.verifier, workers=workers)
        assert result.finding is not None, "tampering went unnoticed"
        found.add((result.finding.index, result.finding.reason, result.entries))
    return found


def test_workers_report_the_first_bad_entry(
    three_chunks: tuple[Path, CheckpointSigner], tmp_path: Path
) -> None:
    directory, signer = three_chunks
    assert verify_export(directory, signer.verifier, workers=2).ok
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    path = copy / tile_path("entries", 20)  # leaves 5120 to 5375, in the second chunk
    items = _bundle_entries(path)
    items[7], items[8] = items[8], items[7]
    _write_bundle(path, items)
    later = copy / tile_path("entries", 33)  # and a malformed entry in the third chunk
    items = _bundle_entries(later)
    items[0] = items[0][:-1]
    _write_bundle(later, items)
    assert _findings(copy, signer) == {(5127, "LOG_ROOT_MISMATCH", 5127)}


def test_a_bad_hash_tile_comes_before_any_bad_entry(
    three_chunks: tuple[Path, CheckpointSigner], tmp_path: Path
) -> None:
    directory, signer = three_chunks
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    path = copy / tile_path("entries", 1)
    items = _bundle_entries(path)
    items[3] = items[3][:-1]
    _write_bundle(path, items)
    upper = copy / tile_path(1, 0, 35)
    data = bytearray(upper.read_bytes())
    data[-1] ^= 1  # the level-8 node over leaves 8704 to 8959
    upper.write_bytes(bytes(data))
    assert _findings(copy, signer) == {(-1, "LOG_ROOT_MISMATCH", 0)}


# --- the fast path against the straightforward one ------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.binary(max_size=300), max_size=12),
    width=st.integers(0, 14),
    cut=st.integers(-40, 40),
    tail=st.binary(max_size=4),
)
def test_leaf_row_hashes_what_split_bundle_splits(
    items: list[bytes], width: int, cut: int, tail: bytes
) -> None:
    """`_leaf_row`, which hashes entries in place, gives the leaf hashes of exactly the
    entries `_split_bundle` finds, and the same finding, for any bundle bytes: whole,
    cut short anywhere, with bytes after, or of another width than stated."""
    data = b"".join(len(e).to_bytes(2, "big") + e for e in items)
    data = (data[:cut] if cut < 0 else data) + (tail if cut >= 0 else b"")
    split, finding = _split_bundle(data, 512, width)
    assert _leaf_row(data, 512, width) == (
        b"".join(leaf_hash(e) for e in split),
        finding,
    )


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 1800), seed=st.integers(0, 2**16))
def test_the_recomputed_root_is_rfc_9162s(size: int, seed: int) -> None:
    """Over tree sizes with and without a partial leaf tile, an export verifies exactly
    against a checkpoint of MTH computed by the RFC's recursive definition, and an entry
    changed anywhere is found at its index."""
    signer = CheckpointSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    items = [bytes([seed % 251]) * ((seed + 7 * i) % 97) + b"%d" % i for i in range(size)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        note = signer.sign(size, mth([leaf_hash(e) for e in items]))
        write_export(directory, items, note)
        result = verify_export(directory, signer.verifier, check_entries=False)
        assert result.ok, result.finding
        assert result.entries == size
        if size:
            at = seed % size
            path = directory / tile_path("entries", at // 256, min(256, size - at // 256 * 256))
            bundle = _bundle_entries(path)
            bundle[at % 256] += b"!"
            _write_bundle(path, bundle)
            result = verify_export(directory, signer.verifier, check_entries=False)
            assert result.finding == Finding(
                at, "LOG_ROOT_MISMATCH", f"entry {at} is not the leaf the tree holds"
            )


def test_entries_of_the_largest_size(tmp_path: Path, signer: CheckpointSigner) -> None:
    """Entries of the largest size tlog-tiles allows (their length prefix 0xFFFF): a
    bundle of 2.6 MB, in one process or in workers."""
    items = [bytes([i]) * MAX_ENTRY_BYTES for i in range(41)]
    export(tmp_path, signer, items)
    for workers in (0, 2):
        result = verify_export(tmp_path, signer.verifier, check_entries=False, workers=workers)
        assert result.ok, result.finding
        assert result.entries == 41


def test_a_bundle_longer_than_any_of_its_width_is_refused(
    tmp_path: Path, signer: CheckpointSigner
) -> None:
    export(tmp_path, signer, [b"only"])
    path = tmp_path / tile_path("entries", 0, 1)
    path.write_bytes(path.read_bytes() + b"\x00" * (2 * MAX_ENTRY_BYTES))
    result = verify_export(tmp_path, signer.verifier, check_entries=False)
    assert result.finding == Finding(1, "LOG_EXPORT_INVALID", "bytes after the last entry")


@pytest.mark.parametrize("name", ["tile/1/000.p/1", "tile/0/000", "tile/entries/000", "checkpoint"])
def test_a_file_of_many_gigabytes_is_refused_without_reading_it(
    copy: Path, pristine: tuple[Path, CheckpointSigner], name: str
) -> None:
    """An export is hostile input: a tile, bundle or checkpoint grown to 64 GiB (sparse:
    no disk is used) is read only as far as its largest legal size and refused."""
    with (copy / name).open("r+b") as f:
        f.truncate(64 << 30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = verify_export(copy, pristine[1].verifier)
    assert result.finding is not None, f"{name} of 64 GiB passed"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 << 10, f"verification took {grown_kib} KiB more memory"
