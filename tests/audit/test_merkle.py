"""RFC 9162 Merkle trees: published vectors, and a naive reference for every small tree."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache

import pytest

from modelgrid.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    consistency_nodes,
    consistency_proof,
    fold,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    node_hash,
    subtrees,
    verify_consistency,
    verify_inclusion,
)

# The test vectors of RFC 6962's reference implementations (certificate-transparency, and
# transparency-dev/merkle): eight leaves, the roots of their first n, and some proofs.
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243")] + [
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip

LARGEST = 70  # every tree up to this size, every index and pair of sizes


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Reference:
    """RFC 9162 2.1 as written: recursion over the leaves' data, nothing stored."""

    def __init__(self, data: list[bytes]) -> None:
        self.data = data

    @staticmethod
    def split(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    @cache  # noqa: B019 (a test's few instances)
    def mth(self, lo: int, hi: int) -> bytes:
        if hi == lo:
            return sha(b"")
        if hi - lo == 1:
            return sha(b"\x00" + self.data[lo])
        k = self.split(hi - lo)
        return sha(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = self.split(hi - lo)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [self.mth(lo, hi)]
        k = self.split(hi - lo)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, whole), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


def data(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() * (i % 3) for i in range(n)]


def stored(leaves: list[bytes]) -> tuple[CompactRange, dict[Node, bytes]]:
    """What a store keeps: every leaf hash and every subtree as it completes."""
    hashes = [leaf_hash(d) for d in leaves]
    tree, completed = CompactRange().extend(hashes)
    nodes = {(0, i): h for i, h in enumerate(hashes)}
    nodes.update(completed)
    return tree, nodes


def counting(nodes: dict[Node, bytes]) -> tuple[Callable[[Node], bytes], list[Node]]:
    reads: list[Node] = []

    def read(node: Node) -> bytes:
        reads.append(node)
        return nodes[node]

    return read, reads


def test_hashes_are_domain_separated_as_the_rfc_says() -> None:
    assert leaf_hash(b"abc") == sha(b"\x00abc")
    assert node_hash(b"l" * 32, b"r" * 32) == sha(b"\x01" + b"l" * 32 + b"r" * 32)
    assert EMPTY_ROOT == sha(b"") == fold([])
    assert leaf_hash(b"") != EMPTY_ROOT


def test_hand_computed_small_trees() -> None:
    a, b, c, d, e = (leaf_hash(x) for x in (b"a", b"b", b"c", b"d", b"e"))
    ab, cd = node_hash(a, b), node_hash(c, d)
    expected = {
        1: a,
        2: ab,
        3: node_hash(ab, c),
        4: node_hash(ab, cd),
        5: node_hash(node_hash(ab, cd), e),
    }
    for n, root in expected.items():
        tree, _ = stored([b"a", b"b", b"c", b"d", b"e"][:n])
        assert tree.root == root
    _, nodes = stored([b"a", b"b", b"c", b"d", b"e"])
    assert inclusion_proof(2, 5, nodes.__getitem__) == [d, ab, e]
    assert inclusion_proof(4, 5, nodes.__getitem__) == [node_hash(ab, cd)]
    assert consistency_proof(3, 5, nodes.__getitem__) == [c, d, ab, e]
    assert consistency_proof(4, 5, nodes.__getitem__) == [e]


def test_the_published_vectors() -> None:
    _, nodes = stored(LEAVES)
    for n, expected in enumerate(ROOTS, 1):
        assert CompactRange().extend(leaf_hash(d) for d in LEAVES[:n])[0].root.hex() == expected
        assert Reference(LEAVES).mth(0, n).hex() == expected
    for index, size, proof in INCLUSION:
        made = inclusion_proof(index, size, nodes.__getitem__)
        assert [p.hex() for p in made] == proof
        root = bytes.fromhex(ROOTS[size - 1])
        assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, made, root)
    for old, new, proof in CONSISTENCY:
        made = consistency_proof(old, new, nodes.__getitem__)
        assert [p.hex() for p in made] == proof
        roots = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
        assert verify_consistency(old, new, *roots, made)


def test_roots_frontiers_and_completed_subtrees_match_the_reference() -> None:
    leaves = data(LARGEST)
    ref = Reference(leaves)
    tree = CompactRange()
    for n in range(LARGEST + 1):
        assert tree.root == ref.mth(0, n)
        _, nodes = stored(leaves[:n])
        # The frontier read back from stored subtrees is the same, and so is its root.
        read, reads = counting(nodes)
        assert CompactRange.frontier(n, read) == tree
        assert len(reads) == bin(n).count("1")
        for (level, index), value in nodes.items():
            assert value == ref.mth(index << level, (index + 1) << level)
        if n < LARGEST:
            tree, _ = tree.extend([leaf_hash(leaves[n])])


def test_inclusion_proofs_for_every_index_of_every_size() -> None:
    leaves = data(LARGEST)
    ref = Reference(leaves)
    for n in range(1, LARGEST + 1):
        tree, nodes = stored(leaves[:n])
        for m in range(n):
            read, reads = counting(nodes)
            proof = inclusion_proof(m, n, read)
            assert proof == ref.path(m, 0, n)
            assert sorted(set(reads)) == sorted(inclusion_nodes(m, n))
            assert len(reads) <= 2 * n.bit_length()  # O(log n) reads
            leaf = leaf_hash(leaves[m])
            assert verify_inclusion(leaf, m, n, proof, tree.root)
            assert not verify_inclusion(leaf, m, n, proof, ref.mth(0, n - 1))
            assert not verify_inclusion(leaf_hash(b"other"), m, n, proof, tree.root)
            assert not verify_inclusion(leaf, m, n, [*proof, leaf], tree.root)
            if n > 1:
                assert not verify_inclusion(leaf, (m + 1) % n, n, proof, tree.root)
                assert not verify_inclusion(leaf, m, n, proof[:-1], tree.root)
                for i in range(len(proof)):
                    bent = [*proof[:i], sha(proof[i]), *proof[i + 1 :]]
                    assert not verify_inclusion(leaf, m, n, bent, tree.root)
        assert not verify_inclusion(leaf_hash(leaves[0]), n, n, [], tree.root)


def test_consistency_proofs_for_every_pair_of_sizes() -> None:
    leaves = data(LARGEST)
    ref = Reference(leaves)
    _, nodes = stored(leaves)
    for new in range(1, LARGEST + 1):
        new_root = ref.mth(0, new)
        for old in range(1, new):
            old_root = ref.mth(0, old)
            read, reads = counting(nodes)
            proof = consistency_proof(old, new, read)
            assert proof == ref.subproof(old, 0, new, True)
            assert sorted(set(reads)) == sorted(consistency_nodes(old, new))
            assert len(reads) <= 2 * new.bit_length()
            assert verify_consistency(old, new, old_root, new_root, proof)
            assert not verify_consistency(old, new, new_root, new_root, proof)
            assert not verify_consistency(old, new, old_root, ref.mth(0, new - 1), proof)
            assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
            assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root])
            assert not verify_consistency(old, new, old_root, new_root, [])
            for i in range(len(proof)):
                bent = [*proof[:i], sha(proof[i]), *proof[i + 1 :]]
                assert not verify_consistency(old, new, old_root, new_root, bent)
        # The edges the RFC leaves out.
        assert consistency_proof(0, new, nodes.__getitem__) == []
        assert consistency_proof(new, new, nodes.__getitem__) == []
        assert verify_consistency(0, new, EMPTY_ROOT, new_root, [])
        assert verify_consistency(new, new, new_root, new_root, [])
        assert not verify_consistency(new, new, new_root, EMPTY_ROOT, [])
        assert not verify_consistency(new, new - 1, new_root, new_root, [])


def test_a_consistency_proof_needs_only_the_old_frontier_and_the_range_since() -> None:
    # What verify.py relies on to check successive checkpoints while it streams the leaves.
    hashes = [leaf_hash(d) for d in data(LARGEST)]
    for old in range(LARGEST + 1):
        frontier, _ = CompactRange().extend(hashes[:old])
        for new in range(old, LARGEST + 1):
            since, _ = CompactRange(old, old).extend(hashes[old:new])
            assert since.nodes == tuple(_compact(old, new))
            assert set(consistency_nodes(old, new)) <= {*frontier.nodes, *since.nodes}


def _compact(begin: int, end: int) -> list[Node]:
    """The maximal complete subtrees of [begin, end), naively."""
    found: list[Node] = []
    while begin < end:
        level = 0
        while begin % (2 << level) == 0 and begin + (2 << level) <= end:
            level += 1
        found.append((level, begin >> level))
        begin += 1 << level
    return found


def test_ranges_that_are_no_subtree_and_bad_indices_are_refused() -> None:
    assert subtrees(4, 7) == [(1, 2), (0, 6)]
    with pytest.raises(ValueError):
        subtrees(1, 4)
    with pytest.raises(ValueError):
        inclusion_nodes(3, 3)
    with pytest.raises(ValueError):
        consistency_nodes(4, 3)
    assert not verify_inclusion(leaf_hash(b"a"), -1, 3, [], EMPTY_ROOT)
