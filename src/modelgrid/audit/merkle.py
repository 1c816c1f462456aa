"""Merkle trees as RFC 9162 (Certificate Transparency 2.0) section 2.1 defines them.

Leaf hash SHA-256(0x00 || d), node hash SHA-256(0x01 || left || right); the tree hash of n > 1
leaves splits them at the largest power of two smaller than n.

Everything here works from the hashes of complete (perfect) subtrees, addressed as
``(level, index)``: the subtree of the 2**level leaves from ``index * 2**level``, level 0 being
the leaf hashes. Every range the RFC's recursion reaches starts at a multiple of a power of two at
least its length, so its tree hash is a fold of at most log2(n) complete subtrees. A store that
keeps each subtree's hash once it completes (they never change after) therefore answers a root or
a proof in O(log n) reads, without the tree in memory: ask ``inclusion_nodes`` or
``consistency_nodes`` what to read, then build the proof from what was read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Node = tuple[int, int]  # (level, index)
NodeHash = Callable[[Node], bytes]  # a complete subtree's hash; KeyError when unknown

EMPTY_ROOT = hashlib.sha256(b"").digest()  # the tree hash of no leaves


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(start: int, end: int) -> list[Node]:
    """The complete subtrees, largest first, whose fold is the tree hash of leaves
    [start, end): its binary decomposition. ``subtrees(0, n)`` is a tree's frontier."""
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError(f"leaves [{start}, {end}) are not a subtree of any Merkle tree")
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The tree hash of consecutive complete subtrees given largest first, as ``subtrees``
    lists them: the RFC's split puts the largest on the left of each node."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def range_hash(start: int, end: int, node: NodeHash) -> bytes:
    return fold([node(n) for n in subtrees(start, end)])


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[0:size]) of RFC 9162 2.1.3.1 as leaf ranges, leaf end first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges[::-1]


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """PROOF(old, D[0:new]) of RFC 9162 2.1.4.1 (SUBPROOF) as leaf ranges, leaf end first."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} leaves to {new}")
    if old in (0, new):
        return []  # the empty tree and a tree itself are prefixes of it, with nothing to prove
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        ranges.append((lo, hi))
    return ranges[::-1]


def _nodes_of(ranges: Iterable[tuple[int, int]]) -> list[Node]:
    return [node for start, end in ranges for node in subtrees(start, end)]


def inclusion_nodes(index: int, size: int) -> list[Node]:
    """The complete subtrees an inclusion proof of leaf ``index`` in a tree of ``size`` reads."""
    return _nodes_of(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, node: NodeHash) -> list[bytes]:
    return [range_hash(start, end, node) for start, end in _inclusion_ranges(index, size)]


def consistency_nodes(old: int, new: int) -> list[Node]:
    """The complete subtrees a consistency proof from ``old`` leaves to ``new`` reads."""
    return _nodes_of(_consistency_ranges(old, new))


def consistency_proof(old: int, new: int, node: NodeHash) -> list[bytes]:
    return [range_hash(start, end, node) for start, end in _consistency_ranges(old, new)]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2, step by step; ``leaf`` is the leaf's hash."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2, step by step, for 0 < old_size < new_size. The RFC leaves the edges
    out: an empty proof shows the empty tree, or a tree itself, to be a prefix."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The complete subtrees covering leaves [begin, end), maximal and largest first at the
    left edge: all that extending the range by more leaves needs, O(log n) hashes. From 0 it is
    a tree's frontier, whose fold is the tree's root."""

    begin: int = 0
    end: int = 0
    nodes: tuple[Node, ...] = ()
    hashes: tuple[bytes, ...] = ()

    @classmethod
    def frontier(cls, size: int, node: NodeHash) -> CompactRange:
        """The frontier of a tree of ``size`` leaves, read through ``node``."""
        nodes = tuple(subtrees(0, size))
        return cls(0, size, nodes, tuple(node(n) for n in nodes))

    @property
    def root(self) -> bytes:
        """The tree hash of the range (the tree's root, from 0)."""
        return fold(self.hashes)

    def extend(self, leaves: Iterable[bytes]) -> tuple[CompactRange, list[tuple[Node, bytes]]]:
        """The range with ``leaves`` (leaf hashes) appended, and the complete subtrees above
        level 0 that they completed, in the order they completed."""
        nodes, hashes, end = list(self.nodes), list(self.hashes), self.end
        completed: list[tuple[Node, bytes]] = []
        for value in leaves:
            level, index = 0, end
            # A right child completes its parent when its left sibling is in the range.
            while index & 1 and nodes and nodes[-1] == (level, index - 1):
                nodes.pop()
                value = node_hash(hashes.pop(), value)
                level, index = level + 1, index >> 1
                completed.append(((level, index), value))
            nodes.append((level, index))
            hashes.append(value)
            end += 1
        return CompactRange(self.begin, end, tuple(nodes), tuple(hashes)), completed
