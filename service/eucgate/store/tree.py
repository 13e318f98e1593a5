"""The committed audit-log tree, read back from the perfect-subtree hashes a store keeps.

Both drivers store every completed node as (level, node_index, hash); this module turns
those rows into what the writer and the proofs need (the compact tree, inclusion and
consistency proofs). A driver supplies the one read, `nodes(keys)`: the stored hashes of
the perfect subtrees named, in one query with its own SQL (a tree's peaks or a proof's
nodes are O(log n) rows, one round trip); nothing here opens a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from eucgate_client.tlog import CompactRange

from eucgate.errors import InvalidSubmission, StoreError
from eucgate.log import merkle
from eucgate.store.base import check_log_index, check_log_size

# Reads the stored hashes of the perfect subtrees (level, index) named, at once; a node
# the store does not have is absent from the answer.
NodeReader = Callable[[Sequence[merkle.NodeKey]], Mapping[merkle.NodeKey, bytes]]


def stored_tree(size: int, root: bytes, node: NodeReader) -> CompactRange:
    """The tree of (size, root) as a compact range of its peaks' stored hashes.

    Raises StoreError if a peak is missing or the stored nodes do not give `root` (a
    damaged store).
    """
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    found = read_nodes(keys, node)
    tree = CompactRange(size, [found[key] for key in keys])
    if tree.root() != root:
        raise StoreError("the stored tree nodes do not give the stored root")
    return tree


def checkpoint_ahead(signed: int | None, size: int, holder: str = "the store") -> str:
    """What is wrong when the log signed a checkpoint of `signed` leaves but `holder`
    keeps a tree of `size`, else "": the tree was rolled back or replaced under a log
    that already signed more, and signing on would fork the log. Open refuses it, and
    `db check` reports it."""
    if signed is None or signed <= size:
        return ""
    return (
        f"the log signed a checkpoint of size {signed} but {holder} holds {size} leaves: "
        "it was rolled back or replaced"
    )


def read_nodes(keys: Sequence[merkle.NodeKey], node: NodeReader) -> dict[merkle.NodeKey, bytes]:
    """The stored hashes of `keys`, in one read. Raises StoreError if one is absent."""
    nodes = dict(node(keys)) if keys else {}
    for key in keys:
        if key not in nodes:
            raise StoreError(f"tree node {key} is missing")
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
