"""RFC 9162 proof generation from stored perfect-subtree hashes, in O(log n) reads.

A store keeps the hash of every perfect subtree ("node (level, index)" covers leaves
index * 2**level up to (index + 1) * 2**level), like the tiles of C2SP tlog-tiles. The
RFC's proofs are lists of MTH over leaf ranges (sections 2.1.3.1 and 2.1.4.1); each such
range is either a perfect subtree or the right edge of a tree, which splits into at most
log2(n) perfect subtrees. So a proof needs O(log n) stored hashes: `inclusion_nodes` and
`consistency_nodes` name them, the store fetches them in one query, and
`assemble` folds them into the proof. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eucgate_client.tlog import EMPTY_ROOT, leaf_hash, node_hash

__all__ = [
    "EMPTY_ROOT",
    "NodeKey",
    "assemble",
    "consistency_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "mth",
    "node_hash",
    "nodes_of",
    "perfect_nodes",
]

NodeKey = tuple[int, int]  # (level, index) of a perfect subtree
Range = tuple[int, int]  # leaves [start, end)


def _split(width: int) -> int:
    """k: the largest power of two smaller than `width` (width >= 2), RFC 9162 2.1.1."""
    return 1 << ((width - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose MTH make up PATH(index, D[size]), in proof order.

    RFC 9162 section 2.1.3.1, unrolled: the sibling ranges from the root down, reversed
    so the proof reads bottom-up. Raises ValueError unless 0 <= index < size.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not below tree size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The leaf ranges whose MTH make up PROOF(first, D[second]), in proof order.

    RFC 9162 section 2.1.4.1 (SUBPROOF with the flag b), unrolled. Empty when
    first == second or first == 0. Raises ValueError unless 0 <= first <= second.
    """
    if not 0 <= first <= second:
        raise ValueError(f"sizes must satisfy 0 <= {first} <= {second}")
    if first in (0, second):
        return []
    ranges: list[Range] = []
    start, m, n, whole = 0, first, second, True
    while m != n:
        k = _split(n)
        if m <= k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old subtree itself.
        ranges.append((start, start + m))
    ranges.reverse()
    return ranges


def perfect_nodes(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees that tile [start, end), left to right.

    `start` must be aligned as the RFC's ranges are (a multiple of the largest power of
    two not above end - start), which holds for every range the two functions above return.
    """
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def nodes_of(ranges: Sequence[Range]) -> list[NodeKey]:
    """Every stored node the ranges need, deduplicated, in a stable order."""
    seen: dict[NodeKey, None] = {}
    for start, end in ranges:
        for key in perfect_nodes(start, end):
            seen[key] = None
    return list(seen)


def assemble(ranges: Sequence[Range], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """The proof: MTH of each range, folded from the stored perfect-subtree hashes.

    Raises KeyError if `nodes` lacks a hash the ranges need.
    """
    proof = []
    for start, end in ranges:
        hashes = [nodes[key] for key in perfect_nodes(start, end)]
        node = hashes[-1]
        for left in reversed(hashes[:-1]):
            node = node_hash(left, node)
        proof.append(node)
    return proof


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes by the RFC's recursive definition (reference, tests)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))
