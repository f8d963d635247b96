"""The Merkle core against a naive RFC 6962 reference, the RFC 9162 verifiers and pymerkle."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import pytest

from biobank.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    MissingNodeError,
    NodeKey,
    append_and_root,
    append_many,
    append_nodes,
    consistency_proof,
    frontier_keys,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_keys,
    root,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_EXHAUSTIVE = 70


# --- naive reference, written straight from RFC 6962 §2.1 -------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw entries."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m < n; empty otherwise."""
    return ref_subproof(m, leaves, True) if 0 < m < len(leaves) else []


# --- helpers --------------------------------------------------------------------------------------------


def entries(n: int, seed: str = "e") -> list[bytes]:
    return [f"{seed}-{i}".encode() for i in range(n)]


def build_one_by_one(data: Sequence[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for size, entry in enumerate(data):
        store.put(append_nodes(size, leaf_hash(entry), store))
    return store


def build_batched(data: Sequence[bytes], rng: random.Random, max_batch: int = 17) -> MemoryNodeStore:
    store = MemoryNodeStore()
    size = 0
    while size < len(data):
        batch = [leaf_hash(e) for e in data[size : size + rng.randint(1, max_batch)]]
        store.put(append_many(size, batch, store))
        size += len(batch)
    return store


class CountingReader:
    """Wraps a store and counts get_nodes calls."""

    def __init__(self, store: MemoryNodeStore) -> None:
        self.store = store
        self.calls: list[list[NodeKey]] = []

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.calls.append(list(keys))
        return self.store.get_nodes(keys)


def tamper(digest: bytes) -> bytes:
    return bytes([digest[0] ^ 1]) + digest[1:]


@pytest.fixture(scope="module")
def data() -> list[bytes]:
    return entries(MAX_EXHAUSTIVE)


@pytest.fixture(scope="module")
def store(data: list[bytes]) -> MemoryNodeStore:
    return build_one_by_one(data)


# --- hashing primitives ------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != node_hash(b, a)


def test_rfc6962_known_root_for_the_certificate_transparency_test_vector() -> None:
    # The 8 leaves used by the RFC 6962 reference implementations' tests (Go merkle, CT).
    leaves = [
        bytes.fromhex(h)
        for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    ]
    store = build_one_by_one(leaves)
    expected = {
        1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    for size, hexroot in expected.items():
        assert root(size, store).hex() == hexroot


# --- roots ---------------------------------------------------------------------------------------------


def test_root_matches_reference_for_every_size(data: list[bytes], store: MemoryNodeStore) -> None:
    assert root(0, store) == EMPTY_ROOT == ref_mth([])
    for size in range(1, len(data) + 1):
        assert root(size, store) == ref_mth(data[:size]), size


def test_root_reads_once_and_only_log_n_nodes(store: MemoryNodeStore) -> None:
    reader = CountingReader(store)
    root(63, reader)
    assert len(reader.calls) == 1
    assert len(reader.calls[0]) == 6  # 63 = 0b111111
    reader.calls.clear()
    root(64, reader)
    assert reader.calls == [[(6, 0)]]


def test_batched_appends_store_exactly_the_same_nodes(data: list[bytes], store: MemoryNodeStore) -> None:
    rng = random.Random(1)
    for max_batch in (1, 2, 3, 7, 64, 100):
        assert build_batched(data, rng, max_batch).nodes == store.nodes


def test_store_holds_exactly_the_perfect_subtrees(data: list[bytes], store: MemoryNodeStore) -> None:
    n = len(data)
    expected = {(level, index) for level in range(n.bit_length()) for index in range(n >> level)}
    assert set(store.nodes) == expected
    for (level, index), digest in store.nodes.items():
        width = 1 << level
        assert digest == ref_mth(data[index * width : (index + 1) * width])


def test_append_reads_at_most_one_node_per_level_in_one_call(data: list[bytes]) -> None:
    store = build_one_by_one(data[:63])
    reader = CountingReader(store)
    nodes = append_nodes(63, leaf_hash(data[63]), reader)
    assert len(reader.calls) == 1
    assert sorted(reader.calls[0]) == [(0, 62), (1, 30), (2, 14), (3, 6), (4, 2), (5, 0)]
    assert [(lv, ix) for lv, ix, _ in nodes] == [(0, 63), (1, 31), (2, 15), (3, 7), (4, 3), (5, 1), (6, 0)]
    reader.calls.clear()
    assert [(lv, ix) for lv, ix, _ in append_nodes(0, leaf_hash(b"x"), reader)] == [(0, 0)]
    assert reader.calls == []  # nothing to read when no subtree completes


def test_append_many_reads_only_needed_left_siblings(data: list[bytes]) -> None:
    store = build_one_by_one(data[:5])  # 0b101: frontier (2,0), (0,4)
    reader = CountingReader(store)
    new = append_many(5, [leaf_hash(e) for e in data[5:8]], reader)
    assert reader.calls == [[(0, 4), (2, 0)]]
    assert {(lv, ix) for lv, ix, _ in new} == {(0, 5), (0, 6), (0, 7), (1, 2), (1, 3), (2, 1), (3, 0)}


def test_append_and_root_returns_the_same_nodes_and_the_new_root_with_one_read(data: list[bytes]) -> None:
    rng = random.Random(9)
    store = MemoryNodeStore()
    size = 0
    while size < len(data):
        batch = [leaf_hash(e) for e in data[size : size + rng.randint(1, 9)]]
        reader = CountingReader(store)
        nodes, new_root = append_and_root(size, batch, reader)
        assert len(reader.calls) == (1 if size else 0)
        assert nodes == append_many(size, batch, store)
        store.put(nodes)
        size += len(batch)
        assert new_root == ref_mth(data[:size])
    assert append_and_root(size, [], store) == ([], ref_mth(data))
    assert append_and_root(0, [], MemoryNodeStore()) == ([], EMPTY_ROOT)


def test_append_rejects_bad_input() -> None:
    store = MemoryNodeStore()
    with pytest.raises(ValueError, match="32 bytes"):
        append_nodes(0, b"short", store)
    with pytest.raises(ValueError, match="size_before must not be negative"):
        append_many(-1, [leaf_hash(b"a")], store)
    assert append_many(0, [], store) == []
    with pytest.raises(MissingNodeError, match="level 0, index 0"):
        append_nodes(1, leaf_hash(b"b"), store)  # the tree claims a leaf the store lacks


def test_store_refuses_to_rewrite_a_node() -> None:
    store = MemoryNodeStore()
    store.put([(0, 0, leaf_hash(b"a"))])
    store.put([(0, 0, leaf_hash(b"a"))])  # idempotent
    with pytest.raises(ValueError, match="already stored"):
        store.put([(0, 0, leaf_hash(b"b"))])


def test_subtree_hash_and_range_keys(data: list[bytes], store: MemoryNodeStore) -> None:
    assert range_keys(4, 10) == [(2, 1), (1, 4)]
    assert range_keys(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert frontier_keys(0) == []
    assert frontier_keys(6) == [(2, 0), (1, 2)]
    for start, end in [(0, 1), (4, 10), (8, 11), (32, 70), (64, 70), (3, 4), (16, 32)]:
        assert subtree_hash(start, end, store) == ref_mth(data[start:end])
    for start, end in [(1, 3), (2, 6), (5, 5), (6, 4)]:
        with pytest.raises(ValueError):
            subtree_hash(start, end, store)
    with pytest.raises(MissingNodeError):
        root(71, store)


# --- inclusion proofs -----------------------------------------------------------------------------------


def test_inclusion_proofs_match_reference_and_verify(data: list[bytes], store: MemoryNodeStore) -> None:
    for size in range(1, len(data) + 1):
        tree_root = ref_mth(data[:size])
        for index in range(size):
            proof = inclusion_proof(index, size, store)
            assert proof == ref_path(index, data[:size]), (index, size)
            assert verify_inclusion(leaf_hash(data[index]), index, size, proof, tree_root)


def test_inclusion_proof_is_one_read(store: MemoryNodeStore) -> None:
    reader = CountingReader(store)
    proof = inclusion_proof(5, 70, reader)
    assert len(reader.calls) == 1
    assert len(proof) == 7
    reader.calls.clear()
    assert inclusion_proof(0, 1, reader) == []
    assert reader.calls == []


def test_tampered_inclusion_proofs_are_rejected(data: list[bytes], store: MemoryNodeStore) -> None:
    size, index = 70, 37
    tree_root = root(size, store)
    leaf = leaf_hash(data[index])
    proof = inclusion_proof(index, size, store)
    assert verify_inclusion(leaf, index, size, proof, tree_root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = tamper(bad[i])
        assert not verify_inclusion(leaf, index, size, bad, tree_root)
    assert not verify_inclusion(tamper(leaf), index, size, proof, tree_root)
    assert not verify_inclusion(leaf, index, size, proof, tamper(tree_root))
    assert not verify_inclusion(leaf, index + 1, size, proof, tree_root)
    assert not verify_inclusion(leaf, index, 2 * size, proof, tree_root)  # 70 and 71 share this path
    assert not verify_inclusion(leaf, index, size, proof[:-1], tree_root)
    assert not verify_inclusion(leaf, index, size, [*proof, proof[0]], tree_root)
    assert not verify_inclusion(leaf, index, size, list(reversed(proof)), tree_root)
    assert not verify_inclusion(leaf, size, size, proof, tree_root)
    assert not verify_inclusion(leaf, -1, size, proof, tree_root)
    assert not verify_inclusion(leaf, index, size, [*proof[:-1], proof[-1][:31]], tree_root)
    one = leaf_hash(data[0])
    assert verify_inclusion(one, 0, 1, [], one)
    assert not verify_inclusion(one, 0, 1, [one], one)
    assert not verify_inclusion(one, 0, 0, [], EMPTY_ROOT)


def test_inclusion_proof_argument_errors(store: MemoryNodeStore) -> None:
    with pytest.raises(ValueError, match="empty tree"):
        inclusion_proof(0, 0, store)
    with pytest.raises(ValueError, match="not in a tree of size 5"):
        inclusion_proof(5, 5, store)
    with pytest.raises(ValueError, match="index"):
        inclusion_proof(-1, 5, store)
    with pytest.raises(TypeError):
        inclusion_proof(1.0, 5, store)  # type: ignore[arg-type]


# --- consistency proofs ---------------------------------------------------------------------------------


def test_consistency_proofs_match_reference_and_verify(data: list[bytes], store: MemoryNodeStore) -> None:
    roots = [ref_mth(data[:n]) for n in range(len(data) + 1)]
    for second in range(0, len(data) + 1):
        for first in range(0, second + 1):
            proof = consistency_proof(first, second, store)
            assert proof == ref_proof(first, data[:second]), (first, second)
            assert verify_consistency(first, second, roots[first], roots[second], proof), (first, second)


def test_c2sp_merkle_tree_examples(data: list[bytes], store: MemoryNodeStore) -> None:
    # c2sp.org/merkle-tree's 7-leaf example, labels a..g, h..l as in the spec.
    a, b, c, d, e, f, g = (leaf_hash(x) for x in data[:7])
    h, i, j = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l_ = node_hash(h, i), node_hash(j, g)
    assert inclusion_proof(0, 7, store) == [b, i, l_]
    assert inclusion_proof(3, 7, store) == [c, h, l_]
    assert inclusion_proof(4, 7, store) == [f, g, k]
    assert inclusion_proof(6, 7, store) == [j, k]
    assert consistency_proof(3, 7, store) == [c, d, h, l_]
    assert consistency_proof(4, 7, store) == [l_]
    assert consistency_proof(6, 7, store) == [j, g, k]


def test_consistency_proof_is_one_read(store: MemoryNodeStore) -> None:
    reader = CountingReader(store)
    consistency_proof(13, 70, reader)
    assert len(reader.calls) == 1
    reader.calls.clear()
    assert consistency_proof(7, 7, reader) == []
    assert consistency_proof(0, 7, reader) == []
    assert reader.calls == []


def test_tampered_consistency_proofs_are_rejected(store: MemoryNodeStore) -> None:
    for first, second in [(3, 7), (4, 7), (6, 7), (13, 70), (32, 64), (1, 70), (63, 64)]:
        r1, r2 = root(first, store), root(second, store)
        proof = consistency_proof(first, second, store)
        assert verify_consistency(first, second, r1, r2, proof)
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = tamper(bad[i])
            assert not verify_consistency(first, second, r1, r2, bad), (first, second, i)
        assert not verify_consistency(first, second, tamper(r1), r2, proof)
        assert not verify_consistency(first, second, r1, tamper(r2), proof)
        assert not verify_consistency(first, second, r1, r2, proof[:-1])
        assert not verify_consistency(first, second, r1, r2, [*proof, proof[0]])
        assert not verify_consistency(first, second, r1, r2, [])
        assert not verify_consistency(second, first, r2, r1, proof)
        assert not verify_consistency(first + 1, second, r1, r2, proof) or first + 1 == second


def test_consistency_edge_cases(store: MemoryNodeStore) -> None:
    r5 = root(5, store)
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, tamper(r5), [])
    assert not verify_consistency(5, 5, r5, r5, [r5])
    assert verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
    assert not verify_consistency(0, 5, r5, r5, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(-1, 5, r5, r5, [])
    with pytest.raises(ValueError, match="larger than second"):
        consistency_proof(6, 5, store)
    with pytest.raises(ValueError, match="first"):
        consistency_proof(-1, 5, store)


# --- larger random trees -------------------------------------------------------------------------------


def test_random_larger_trees() -> None:
    rng = random.Random(6962)
    data = entries(3000, "big")
    store = build_batched(data, rng, max_batch=300)
    leaves = [leaf_hash(e) for e in data]
    for _ in range(40):
        size = rng.randint(71, len(data))
        tree_root = root(size, store)
        compact = CompactRange()
        compact.extend(leaves[:size])
        assert compact.root() == tree_root
        index = rng.randrange(size)
        assert verify_inclusion(leaves[index], index, size, inclusion_proof(index, size, store), tree_root)
        first = rng.randint(1, size)
        proof = consistency_proof(first, size, store)
        assert verify_consistency(first, size, root(first, store), tree_root, proof)
    assert root(1500, store) == ref_mth(data[:1500])
    assert inclusion_proof(1234, 2049, store) == ref_path(1234, data[:2049])
    assert consistency_proof(1025, 2999, store) == ref_proof(1025, data[:2999])


# --- compact range ---------------------------------------------------------------------------------------


def test_compact_range_matches_stored_tree(data: list[bytes], store: MemoryNodeStore) -> None:
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for size, entry in enumerate(data, start=1):
        compact.append(leaf_hash(entry))
        assert compact.size == size
        assert compact.root() == root(size, store)
        loaded = CompactRange.load(size, store)
        assert loaded.hashes == compact.hashes
    streamed = CompactRange()
    streamed.extend_entries(data[:40])
    streamed.extend_entries(data[40:])
    assert streamed.hashes == compact.hashes


def test_compact_range_continues_from_loaded_frontier(data: list[bytes], store: MemoryNodeStore) -> None:
    compact = CompactRange.load(37, store)
    compact.extend(leaf_hash(e) for e in data[37:])
    assert compact.root() == root(70, store)
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange.from_hashes(6, [EMPTY_ROOT])
    with pytest.raises(ValueError, match="32 bytes"):
        compact.append(b"x")
    with pytest.raises(ValueError, match="32 bytes"):
        compact.extend([b"x"])
    assert compact.size == 70  # a rejected hash is not counted


# --- pymerkle cross-check ---------------------------------------------------------------------------------


def test_roots_and_paths_agree_with_pymerkle(data: list[bytes], store: MemoryNodeStore) -> None:
    pymerkle = pytest.importorskip("pymerkle")
    tree = pymerkle.InmemoryTree(algorithm="sha256")  # RFC 9162 settings: 0x00/0x01 prefixes on
    assert tree.security
    for entry in data:
        tree.append_entry(entry)
    for size in (1, 2, 3, 5, 8, 13, 31, 32, 33, 64, 70):
        assert tree.get_root(size) == root(size, store), size
        for index in (0, size // 2, size - 1):
            path = tree.prove_inclusion(index + 1, size).path  # pymerkle counts from 1; path[0] is the leaf
            assert path[0] == leaf_hash(data[index])
            assert path[1:] == inclusion_proof(index, size, store)
