"""RFC 6962 / RFC 9162 Merkle tree over stored perfect subtrees, independent of where nodes live.

Storage model: only hashes of *perfect aligned subtrees* are stored. Node ``(level, index)`` is the
hash of leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Every
range the RFC 6962 recursion ("split at the largest power of two k < n") ever hashes decomposes into
at most ~log2(n) such nodes, so roots and proofs for any tree size need O(log n) stored hashes, and
each function below reads them with a single ``NodeReader.get_nodes`` call (one SQL query).

Appending leaf ``n`` stores node ``(0, n)`` plus each perfect subtree it completes (a binary-counter
carry chain); the nodes that complete never change again, so the table is append-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""(level, index) of a perfect aligned subtree."""

Node = tuple[int, int, bytes]
"""(level, index, hash) of a perfect aligned subtree."""

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class MissingNodeError(LookupError):
    """Storage lacks a node the tree needs: the tree is smaller than asked, or storage is damaged."""

    def __init__(self, keys: Sequence[NodeKey]) -> None:
        shown = ", ".join(f"(level {lv}, index {ix})" for lv, ix in keys[:5])
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        super().__init__(f"missing Merkle tree node(s): {shown}{more}")
        self.keys = list(keys)


class NodeReader(Protocol):
    """Batch read access to stored perfect-subtree hashes."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the stored hash of each key found; absent keys are simply left out."""
        ...


class MemoryNodeStore:
    """A NodeReader kept in memory (one dict per level) with a batch ``put``, for tests and tools."""

    def __init__(self) -> None:
        self._levels: list[dict[int, bytes]] = []
        self.reads = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the stored hash of each key found (one 'query')."""
        self.reads += 1
        levels, found = self._levels, {}
        for key in keys:
            level, index = key
            if 0 <= level < len(levels):
                digest = levels[level].get(index)
                if digest is not None:
                    found[key] = digest
        return found

    def put(self, nodes: Iterable[Node]) -> None:
        """Store nodes; rewriting a node with a different hash is refused (the tree is append-only)."""
        levels = self._levels
        for level, index, digest in nodes:
            while level >= len(levels):
                levels.append({})
            old = levels[level].setdefault(index, digest)
            if old != digest:
                raise ValueError(f"node (level {level}, index {index}) already stored with another hash")

    @property
    def nodes(self) -> dict[NodeKey, bytes]:
        """A snapshot of every stored node."""
        return {(level, index): h for level, row in enumerate(self._levels) for index, h in row.items()}

    def __len__(self) -> int:
        return sum(len(row) for row in self._levels)


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || entry)."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_hash(digest: bytes, what: str = "hash") -> None:
    if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")


def range_keys(start: int, end: int) -> list[NodeKey]:
    """Node keys, left to right, whose fold is MTH(D[start:end]) for a range of the RFC recursion."""
    _check_size("start", start)
    if end <= start:
        raise ValueError(f"empty or reversed leaf range [{start}, {end})")
    width = end - start
    top_level = width.bit_length() - 1
    if start % (1 << top_level):
        raise ValueError(
            f"leaf range [{start}, {end}) is not a subtree of the RFC 6962 recursion "
            f"(start must be a multiple of {1 << top_level})"
        )
    keys: list[NodeKey] = []
    position = start
    for level in range(top_level, -1, -1):
        if width >> level & 1:
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def frontier_keys(size: int) -> list[NodeKey]:
    """Keys of the maximal perfect subtrees of a tree of ``size`` leaves, left to right."""
    _check_size("size", size)
    return range_keys(0, size) if size else []


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes (left to right) into the RFC 6962 hash of their union."""
    result = hashes[-1]
    for digest in reversed(hashes[:-1]):
        result = _sha256(_NODE_PREFIX + digest + result).digest()
    return result


def _fetch(reader: NodeReader, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
    """Read all keys in one get_nodes call; raise MissingNodeError if any is absent."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    found = reader.get_nodes(wanted)
    missing = [key for key in wanted if key not in found]
    if missing:
        raise MissingNodeError(missing)
    return found


def _ranges_hashes(ranges: Sequence[tuple[int, int]], reader: NodeReader) -> list[bytes]:
    """Hash each leaf range with one batched read of every node they need."""
    range_node_keys = [range_keys(start, end) for start, end in ranges]
    found = _fetch(reader, (key for keys in range_node_keys for key in keys))
    return [_fold([found[key] for key in keys]) for keys in range_node_keys]


def root(size: int, reader: NodeReader) -> bytes:
    """RFC 6962 Merkle Tree Hash of the first ``size`` leaves."""
    _check_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    return _ranges_hashes([(0, size)], reader)[0]


def subtree_hash(start: int, end: int, reader: NodeReader) -> bytes:
    """RFC 6962 hash of leaves [start, end), a range produced by the RFC's split recursion."""
    return _ranges_hashes([(start, end)], reader)[0]


def _check_leaf_hashes(size_before: int, leaf_hashes: Sequence[bytes]) -> None:
    _check_size("size_before", size_before)
    for digest in leaf_hashes:
        if type(digest) is not bytes or len(digest) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")


def _needed_siblings(start: int, end: int) -> list[NodeKey]:
    """Stored nodes an append of leaves [start, end) combines with: the old tree's last node of
    level L when bit L of ``start`` is set and the batch completes that node's parent."""
    needed: list[NodeKey] = []
    level = 0
    while end >> (level + 1) > start >> (level + 1):
        if start >> level & 1:
            needed.append((level, (start >> level) - 1))
        level += 1
    return needed


def _new_nodes(start: int, leaf_hashes: Sequence[bytes], stored: dict[NodeKey, bytes]) -> list[Node]:
    """Every perfect subtree completed by appending ``leaf_hashes`` at leaf ``start``."""
    end = start + len(leaf_hashes)
    new_nodes: list[Node] = list(zip(repeat(0), range(start, end), leaf_hashes, strict=False))
    current = list(leaf_hashes)
    first = start  # index of current[0] within its level
    level = 0
    while True:
        parent_first, parent_end = start >> (level + 1), end >> (level + 1)
        if parent_end <= parent_first:
            break
        if first & 1:
            current.insert(0, stored[(level, first - 1)])
            first -= 1
        pairs = 2 * (parent_end - parent_first)
        parents = [
            _sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(current[0:pairs:2], current[1:pairs:2], strict=True)
        ]
        level += 1
        new_nodes.extend(zip(repeat(level), range(parent_first, parent_end), parents, strict=False))
        current, first = parents, parent_first
    return new_nodes


def append_many(size_before: int, leaf_hashes: Sequence[bytes], reader: NodeReader) -> list[Node]:
    """New nodes (level, index, hash) after appending ``leaf_hashes`` to a tree of ``size_before``.

    Reads only the stored left siblings the new subtrees need (at most one per level, in one call).
    """
    _check_leaf_hashes(size_before, leaf_hashes)
    if not leaf_hashes:
        return []
    stored = _fetch(reader, _needed_siblings(size_before, size_before + len(leaf_hashes)))
    return _new_nodes(size_before, leaf_hashes, stored)


def append_and_root(size_before: int, leaf_hashes: Sequence[bytes], reader: NodeReader) -> tuple[list[Node], bytes]:
    """Like append_many, and also the new tree's root, still with one read (the old frontier)."""
    _check_leaf_hashes(size_before, leaf_hashes)
    size_after = size_before + len(leaf_hashes)
    stored = _fetch(reader, frontier_keys(size_before))  # a superset of the needed siblings
    new_nodes = _new_nodes(size_before, leaf_hashes, stored)
    # Each node of the new frontier is either new or an untouched node of the old frontier.
    known = {(level, index): digest for level, index, digest in new_nodes}
    known.update(stored)
    frontier = [known[key] for key in frontier_keys(size_after)]
    return new_nodes, _fold(frontier) if frontier else EMPTY_ROOT


def append_nodes(size_before: int, leaf_hash: bytes, reader: NodeReader) -> list[Node]:
    """New nodes after appending one leaf hash to a tree of ``size_before`` leaves."""
    return append_many(size_before, [leaf_hash], reader)


def _largest_power_of_two_below(width: int) -> int:
    """k, the largest power of two strictly smaller than width (width >= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form RFC 6962 PATH(index, D[size]), in proof order."""
    _check_size("size", size)
    _check_size("index", index)
    if size == 0:
        raise ValueError("an empty tree has no inclusion proofs")
    if index >= size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form the RFC 6962 consistency proof PROOF(first, D[second])."""
    _check_size("first", first)
    _check_size("second", second)
    if first > second:
        raise ValueError(f"first size {first} is larger than second size {second}")
    if first == 0 or first == second:
        return []
    ranges: list[tuple[int, int]] = []
    start, end, old, include_own = 0, second, first, True
    while old != end - start:
        k = _largest_power_of_two_below(end - start)
        if old <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            old -= k
            include_own = False
    if not include_own:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """RFC 6962 §2.1.1 audit path of leaf ``index`` in the tree of ``size`` leaves (one read)."""
    return _ranges_hashes(inclusion_ranges(index, size), reader)


def consistency_proof(first: int, second: int, reader: NodeReader) -> list[bytes]:
    """RFC 6962 §2.1.2 consistency proof from tree size ``first`` to ``second`` (one read)."""
    return _ranges_hashes(consistency_ranges(first, second), reader)


def _valid_hashes(hashes: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` with ``leaf_hash`` under ``root``?"""
    if not (_is_size(index) and _is_size(size)) or index >= size:
        return False
    if not _valid_hashes([leaf_hash, root, *proof]):
        return False
    fn, sn, result = index, size - 1, leaf_hash
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree of size ``first`` is a prefix of ``second``?

    Edge cases: first == second needs an empty proof and equal roots; first == 0 needs an empty
    proof and ``first_root`` equal to the empty-tree hash (every tree extends the empty tree).
    """
    if not (_is_size(first) and _is_size(second)) or first > second:
        return False
    if not _valid_hashes([first_root, second_root, *proof]):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # first is an exact power of two
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_result = second_result = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(sibling, first_result)
            second_result = node_hash(sibling, second_result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second_result = node_hash(second_result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first_result == first_root and second_result == second_root


class CompactRange:
    """The perfect-subtree hashes covering a tree prefix: O(1) amortised appends and O(log n) root."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """A range for ``size`` leaves from its frontier hashes (left to right, see frontier_keys)."""
        _check_size("size", size)
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(hashes)}")
        for digest in hashes:
            _check_hash(digest)
        compact = cls()
        compact._size = size
        compact._hashes = list(hashes)
        return compact

    @classmethod
    def load(cls, size: int, reader: NodeReader) -> CompactRange:
        """The range for the first ``size`` leaves read from storage (one read)."""
        keys = frontier_keys(size)
        found = _fetch(reader, keys)
        return cls.from_hashes(size, [found[key] for key in keys])

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """Frontier hashes, left to right (keys given by ``frontier_keys(size)``)."""
        return list(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash."""
        _check_hash(leaf_hash, "leaf hash")
        size, hashes, digest = self._size, self._hashes, leaf_hash
        while size & 1:
            digest = _sha256(_NODE_PREFIX + hashes.pop() + digest).digest()
            size >>= 1
        hashes.append(digest)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes (a tight loop for streaming verification)."""
        hashes, total, sha256, prefix = self._hashes, self._size, _sha256, _NODE_PREFIX
        pop, push = hashes.pop, hashes.append
        try:
            for digest in leaf_hashes:
                if len(digest) != HASH_SIZE:
                    raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
                size = total
                while size & 1:
                    digest = sha256(prefix + pop() + digest).digest()
                    size >>= 1
                push(digest)
                total += 1
        finally:
            self._size = total

    def extend_entries(self, entries: Iterable[bytes]) -> None:
        """Hash raw entries as leaves and add them."""
        hashes, total, sha256 = self._hashes, self._size, _sha256
        pop, push = hashes.pop, hashes.append
        try:
            for entry in entries:
                digest = sha256(b"\x00" + entry).digest()
                size = total
                while size & 1:
                    digest = sha256(b"\x01" + pop() + digest).digest()
                    size >>= 1
                push(digest)
                total += 1
        finally:
            self._size = total

    def root(self) -> bytes:
        """RFC 6962 root of the covered prefix."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT
