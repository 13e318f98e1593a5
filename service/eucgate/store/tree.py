"""The committed audit-log tree, read back from the perfect-subtree hashes a store keeps.

Both drivers store every completed node as (level, node_index, hash); this module turns
those rows into what the writer and the proofs need (the compact tree, inclusion and
consistency proofs). A driver supplies the one read,
`node(level, index)`, with its own SQL; nothing here opens a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eucgate_client.tlog import CompactRange

from eucgate.errors import InvalidSubmission, StoreError
from eucgate.log import merkle
from eucgate.store.base import check_log_index, check_log_size

# Reads the stored hash of one perfect subtree, or None if the store has no such node.
NodeReader = Callable[[int, int], bytes | None]


def stored_tree(size: int, root: bytes, node: NodeReader) -> CompactRange:
    """The tree of (size, root) as a compact range of its peaks' stored hashes.

    Raises StoreError if a peak is missing or the stored nodes do not give `root` (a
    damaged store).
    """
    peaks, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            peak = node(level, start >> level)
            if peak is None:
                raise StoreError(f"tree node ({level}, {start >> level}) is missing")
            peaks.append(peak)
            start += 1 << level
    tree = CompactRange(size, peaks)
    if tree.root() != root:
        raise StoreError("the stored tree nodes do not give the stored root")
    return tree


def read_nodes(keys: Sequence[merkle.NodeKey], node: NodeReader) -> dict[merkle.NodeKey, bytes]:
    """The stored hashes of `keys`, one read each. Raises StoreError if one is absent."""
    nodes = {}
    for key in keys:
        found = node(*key)
        if found is None:
            raise StoreError(f"tree node {key} is missing")
        nodes[key] = found
    return nodes


def inclusion_proof(
    node: NodeReader, integrated: int, index: int, size: int
) -> tuple[bytes, list[bytes]]:
    """(leaf hash, RFC 9162 inclusion proof) of leaf `index` in the tree of `size`, from
    a store whose committed tree has `integrated` leaves; O(log n) reads.

    Raises InvalidSubmission (see AuditLog.inclusion_proof), StoreError.
    """
    check_log_size(size, integrated)
    check_log_index(index, size)
    ranges = merkle.inclusion_ranges(index, size)
    nodes = read_nodes([(0, index), *merkle.nodes_of(ranges)], node)
    return nodes[(0, index)], merkle.assemble(ranges, nodes)


def consistency_proof(node: NodeReader, integrated: int, first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency proof from `first` to `second` leaves; O(log n) reads.

    Raises InvalidSubmission (see AuditLog.consistency_proof), StoreError.
    """
    check_log_size(first, integrated, field="first_size")
    check_log_size(second, integrated, field="second_size")
    if first > second:
        raise InvalidSubmission(
            f"first_size {first} is larger than second_size {second}",
            reason="PROOF_SIZES_INVALID",
            field="first_size",
        )
    ranges = merkle.consistency_ranges(first, second)
    return merkle.assemble(ranges, read_nodes(merkle.nodes_of(ranges), node))
