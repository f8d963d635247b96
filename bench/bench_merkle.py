"""Benchmark: the audit log's Merkle tree (biobank.audit.merkle) against pymerkle and bare hashlib.

Measures, over the same synthetic 200-byte entries: append throughput (``append_many`` in batches
of 1,000 into a MemoryNodeStore, leaf hashing included), pymerkle's in-memory appends, bare SHA-256
leaf hashing as the floor, inclusion and consistency proof times at the full size, and CompactRange
full-log verification (entries/s). Then the storage question: the same tree in an SQLite table of
perfect-subtree nodes (one SELECT per proof) against pymerkle's SqliteTree (a leaf table; subtree
hashes recomputed from leaves and kept in a per-process LRU cache, so a fresh process starts cold).

Run: ``PYTHONPATH=src python bench/bench_merkle.py [n] [--json PATH]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from biobank.audit.merkle import (
    CompactRange,
    MemoryNodeStore,
    Node,
    NodeKey,
    append_many,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

BATCH = 1_000
ENTRY_BYTES = 200
PYMERKLE_MAX = 1_000_000
PROOF_SAMPLES = 1_000
SQL_PROOF_SAMPLES = 300
COLD_PROOF_SAMPLES = 5


class SqliteNodeStore:
    """The shape the audit_nodes table will have: (level, idx) primary key, 32-byte hash."""

    def __init__(self, path: str) -> None:
        self.con = sqlite3.connect(path)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute(
            "CREATE TABLE nodes (level INTEGER, idx INTEGER, hash BLOB NOT NULL, PRIMARY KEY (level, idx))"
            " WITHOUT ROWID"
        )

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """One SELECT for all keys (OR of primary-key lookups: SQLite plans each as an index seek)."""
        where = " OR ".join("(level = ? AND idx = ?)" for _ in keys)
        params = [part for key in keys for part in key]
        rows = self.con.execute(f"SELECT level, idx, hash FROM nodes WHERE {where}", params)
        return {(level, idx): digest for level, idx, digest in rows}

    def put(self, nodes: Iterable[Node]) -> None:
        """Insert and commit (one transaction per batch, as one request or job would)."""
        with self.con:
            self.con.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)


def _entries(n: int) -> list[bytes]:
    pad = b"x" * (ENTRY_BYTES - 12)
    return [b"%012d" % i + pad for i in range(n)]


def _rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


def _latency_ms(call: Callable[[], object], samples: int) -> dict[str, float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "mean_ms": round(statistics.fmean(times), 4),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 4),
    }


def _bench_sqlite(entries: list[bytes], tree_root: bytes, workdir: str) -> dict[str, Any]:
    n = len(entries)
    store = SqliteNodeStore(os.path.join(workdir, "nodes.sqlite"))
    start = time.perf_counter()
    for offset in range(0, n, BATCH):
        batch = [leaf_hash(entry) for entry in entries[offset : offset + BATCH]]
        store.put(append_many(offset, batch, store))
    seconds = time.perf_counter() - start
    if root(n, store) != tree_root:
        raise AssertionError("SQLite-backed tree has another root")
    rng = random.Random(3)
    figures = {
        "append_per_second": _rate(n, seconds),
        "inclusion": _latency_ms(lambda: inclusion_proof(rng.randrange(n), n, store), SQL_PROOF_SAMPLES),
        "consistency": _latency_ms(lambda: consistency_proof(rng.randint(1, n), n, store), SQL_PROOF_SAMPLES),
        "root": _latency_ms(lambda: root(n, store), SQL_PROOF_SAMPLES),
    }
    store.con.close()
    return figures


def _bench_pymerkle_sqlite(entries: list[bytes], workdir: str) -> dict[str, Any] | None:
    try:
        from pymerkle import SqliteTree
    except ImportError:
        return None
    n = len(entries)
    path = os.path.join(workdir, "pymerkle.sqlite")
    tree = SqliteTree(path, algorithm="sha256")
    start = time.perf_counter()
    tree.append_entries(entries)
    seconds = time.perf_counter() - start
    rng = random.Random(5)
    tree.close()

    def cold_proof() -> None:
        fresh = SqliteTree(path, algorithm="sha256")  # a new API process: empty subroot cache
        fresh.prove_inclusion(rng.randint(1, n), n)
        fresh.close()

    cold = _latency_ms(cold_proof, COLD_PROOF_SAMPLES)
    warm_tree = SqliteTree(path, algorithm="sha256")
    for _ in range(50):
        warm_tree.prove_inclusion(rng.randint(1, n), n)
    warm = _latency_ms(lambda: warm_tree.prove_inclusion(rng.randint(1, n), n), 200)
    warm_tree.close()
    return {"append_per_second": _rate(n, seconds), "cold_inclusion": cold, "warm_inclusion": warm}


def _bench_pymerkle(entries: list[bytes]) -> dict[str, Any] | None:
    try:
        from pymerkle import InmemoryTree
    except ImportError:
        return None
    tree = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for entry in entries:
        tree.append_entry(entry)
    seconds = time.perf_counter() - start
    rng = random.Random(7)
    size = len(entries)
    for _ in range(50):  # warm the subroot cache first
        tree.prove_inclusion(rng.randint(1, size), size)
    proof = _latency_ms(lambda: tree.prove_inclusion(rng.randint(1, size), size), 200)
    return {
        "leaves": size,
        "seconds": round(seconds, 3),
        "per_second": _rate(size, seconds),
        "root": tree.get_root(size),
        "inclusion": proof,
    }


def _bench_memory(entries: list[bytes]) -> tuple[dict[str, Any], bytes]:
    n = len(entries)
    result: dict[str, Any] = {}
    store = MemoryNodeStore()
    start = time.perf_counter()
    for offset in range(0, n, BATCH):
        batch = [leaf_hash(entry) for entry in entries[offset : offset + BATCH]]
        store.put(append_many(offset, batch, store))
    append_seconds = time.perf_counter() - start
    result["append_per_second"] = _rate(n, append_seconds)
    result["append_seconds"] = round(append_seconds, 3)
    result["stored_nodes"] = len(store)
    result["append_reads"] = store.reads

    start = time.perf_counter()
    tree_root = root(n, store)
    result["root_ms"] = round((time.perf_counter() - start) * 1000, 4)

    rng = random.Random(1)
    result["inclusion_proof"] = _latency_ms(lambda: inclusion_proof(rng.randrange(n), n, store), PROOF_SAMPLES)
    result["consistency_proof"] = _latency_ms(lambda: consistency_proof(rng.randint(1, n), n, store), PROOF_SAMPLES)
    index = rng.randrange(n)
    proof = inclusion_proof(index, n, store)
    leaf = leaf_hash(entries[index])
    result["inclusion_verify"] = _latency_ms(lambda: verify_inclusion(leaf, index, n, proof, tree_root), 200)
    first = rng.randint(1, n - 1) if n > 1 else 1
    c_proof, first_root = consistency_proof(first, n, store), root(first, store)
    result["consistency_verify"] = _latency_ms(
        lambda: verify_consistency(first, n, first_root, tree_root, c_proof), 200
    )
    return result, tree_root


def run(n: int = 1_000_000) -> dict[str, Any]:
    """Run every measurement on ``n`` entries and return the figures."""
    entries = _entries(n)
    result: dict[str, Any] = {"name": "merkle", "entries": n, "entry_bytes": ENTRY_BYTES, "batch": BATCH}

    sha256 = hashlib.sha256
    start = time.perf_counter()
    leaves = [sha256(b"\x00" + entry).digest() for entry in entries]
    result["hashlib_leaf_per_second"] = _rate(n, time.perf_counter() - start)
    del leaves

    memory, tree_root = _bench_memory(entries)
    result.update(memory)

    compact = CompactRange()
    start = time.perf_counter()
    compact.extend_entries(entries)
    verify_seconds = time.perf_counter() - start
    if compact.root() != tree_root:
        raise AssertionError("CompactRange root differs from the stored tree's root")
    result["compact_verify_per_second"] = _rate(n, verify_seconds)

    py_entries = entries[: min(n, PYMERKLE_MAX)]
    pym = _bench_pymerkle(py_entries)
    if pym is not None:
        check = CompactRange()
        check.extend_entries(py_entries)
        if pym.pop("root") != check.root():
            raise AssertionError("pymerkle and biobank.audit.merkle disagree on the root")
        result["pymerkle"] = pym

    with tempfile.TemporaryDirectory(prefix="bench-merkle-") as workdir:
        result["sqlite"] = _bench_sqlite(entries, tree_root, workdir)
        pym_sql = _bench_pymerkle_sqlite(entries, workdir)
        if pym_sql is not None:
            result["pymerkle_sqlite"] = pym_sql
    return result


def _latency(figures: dict[str, float]) -> str:
    return f"mean {figures['mean_ms']} ms, p95 {figures['p95_ms']} ms"


def markdown(result: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    n = f"{result['entries']:,}"
    rows = [
        ("bare hashlib leaf hashing (floor)", n, f"{result['hashlib_leaf_per_second']:,} entries/s", ""),
        (
            f"append_many, batches of {result['batch']:,}, MemoryNodeStore",
            n,
            f"{result['append_per_second']:,} entries/s",
            f"leaf hashing + node hashing + put; {result['stored_nodes']:,} nodes, "
            f"{result['append_reads']:,} get_nodes calls",
        ),
    ]
    pym = result.get("pymerkle")
    if pym:
        leaves = f"{pym['leaves']:,}"
        rows.append(
            (
                "pymerkle InmemoryTree.append_entry",
                leaves,
                f"{pym['per_second']:,} entries/s",
                "same leaves, same root checked",
            )
        )
    proof_note = f"{PROOF_SAMPLES:,} random proofs, one get_nodes call each"
    rows.append(("inclusion proof, MemoryNodeStore", n, _latency(result["inclusion_proof"]), proof_note))
    rows.append(("consistency proof, MemoryNodeStore", n, _latency(result["consistency_proof"]), proof_note))
    rows.append(("verify_inclusion", n, _latency(result["inclusion_verify"]), ""))
    rows.append(("verify_consistency", n, _latency(result["consistency_verify"]), ""))
    if pym:
        rows.append(
            (
                "pymerkle InmemoryTree.prove_inclusion",
                leaves,
                _latency(pym["inclusion"]),
                "200 proofs, warm subroot cache",
            )
        )
    rows.append(("root from stored nodes", n, f"{result['root_ms']} ms", ""))
    rows.append(
        (
            "CompactRange full verification",
            n,
            f"{result['compact_verify_per_second']:,} entries/s",
            "leaf hash + frontier append over every entry, root compared",
        )
    )
    sql = result.get("sqlite")
    if sql:
        rows.append(
            (
                "append_many into SQLite node table",
                n,
                f"{sql['append_per_second']:,} entries/s",
                "one transaction per batch of 1,000, WAL",
            )
        )
        for key, label in (("inclusion", "inclusion proof"), ("consistency", "consistency proof")):
            rows.append((f"{label}, SQLite node table", n, _latency(sql[key]), "one SELECT"))
        rows.append(("root, SQLite node table", n, _latency(sql["root"]), "one SELECT"))
    pym_sql = result.get("pymerkle_sqlite")
    if pym_sql:
        rows.append(
            (
                "pymerkle SqliteTree.append_entries (bulk)",
                n,
                f"{pym_sql['append_per_second']:,} entries/s",
                "stores leaves (and entries) only",
            )
        )
        rows.append(
            (
                "pymerkle SqliteTree inclusion proof, cold cache",
                n,
                _latency(pym_sql["cold_inclusion"]),
                f"{COLD_PROOF_SAMPLES} proofs, each from a fresh tree object (new process)",
            )
        )
        rows.append(
            (
                "pymerkle SqliteTree inclusion proof, warm cache",
                n,
                _latency(pym_sql["warm_inclusion"]),
                "200 proofs after 50 warm-up proofs",
            )
        )
    lines = ["| measurement | leaves | result | note |", "|---|---:|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    json_path = None
    if "--json" in args:
        at = args.index("--json")
        json_path = args[at + 1]
        del args[at : at + 2]
    size = int(args[0]) if args else 1_000_000
    started = time.perf_counter()
    figures = run(size)
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    print(markdown(figures))
    print(f"\ntotal {figures['total_seconds']} s")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
