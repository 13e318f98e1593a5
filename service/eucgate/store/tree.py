"""The committed audit-log tree, read back from the perfect-subtree hashes a store keeps.

Both drivers store every completed node as (level, node_index, hash); this module turns
those rows into what the writer and the proofs need. A driver supplies the one read,
`node(level, index)`, with its own SQL; nothing here opens a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eucgate_client.tlog import CompactRange

from eucgate.errors import StoreError
from eucgate.log import merkle

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
