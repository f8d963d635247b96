"""Benchmark: the audit log in the database (biobank.audit): appends, request overhead, proofs, verification.

* Append throughput through the real path (``audit.record`` in a session, appended at commit under the
  head lock with the tree nodes): batched (1,000 entries per transaction) and one entry per
  transaction, on SQLite and, with ``BIOBANK_BENCH_POSTGRES_URL``, on PostgreSQL. In the same run,
  over the same leaves: bare ``hashlib`` leaf hashing (the floor), pymerkle's ``InmemoryTree`` and
  pymerkle's ``SqliteTree`` bulk append (which stores no interior nodes). Goal: ≥ 20,000 entries/s
  batched on SQLite.
* What recording adds to a specimen GET (in-process app, bearer token): p50 of the route as it is
  against the same route with ``audit.record`` replaced by a no-op. Goal: ≤ 1 ms at p50.
* Inclusion and consistency proofs at 1,000,000 entries read from the node table (log built with
  bulk inserts of entries and nodes). Goal: ≤ 2 ms.
* Full-log verification (``biobank audit verify`` against the local database) in entries/s.
  Goal: ≥ 200,000 entries/s.

Run: ``PYTHONPATH=src python bench/bench_audit.py [--quick]`` (or ``python -m bench audit``).
Writes bench/results/audit.json and prints a Markdown table.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from biobank import audit
from biobank.audit import repository as repo
from biobank.audit.checkpoints import make_checkpoint
from biobank.audit.log import leaf_template, with_index
from biobank.audit.merkle import (
    CompactRange,
    MemoryNodeStore,
    append_many,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
)
from biobank.audit.service import PendingEntry
from biobank.audit.verify import LocalSource, verify_log
from biobank.config import Environment, Settings, configure
from biobank.identity.principal import Principal
from biobank.kit.db import make_engine, session_factory
from biobank.kit.migrate import upgrade

RESULTS = Path(__file__).parent / "results" / "audit.json"
INSTITUTION = "CN-SH-H01"
BATCH = 1_000
GOALS = {
    "append_batched_sqlite": 20_000,
    "request_overhead_p50_ms": 1.0,
    "proof_ms": 2.0,
    "verify_per_second": 200_000,
}
ACTOR = Principal(
    user_id=1, public_id="0b6c3f5e-2b0e-4d7e-9a55-1f2d3c4b5a69", username="x", institution_code=INSTITUTION
)


# -- scratch databases ---------------------------------------------------------------------------------------


@contextmanager
def scratch(backend: str, folder: Path) -> Iterator[tuple[Engine, Settings]]:
    """A migrated, initialised node database (SQLite file or a new PostgreSQL database) and its settings."""
    name = None
    pg_url = os.environ.get("BIOBANK_BENCH_POSTGRES_URL", "")
    if backend == "sqlite":
        url = f"sqlite:///{folder}/audit-{time.monotonic_ns()}.sqlite3"
    else:
        name = f"biobank_bench_audit_{os.getpid()}_{time.monotonic_ns()}"
        _pg_admin(pg_url, f'CREATE DATABASE "{name}"')
        base, _, _ = pg_url.rpartition("/")
        url = f"{base}/{name}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    settings = Settings(
        env=Environment.TEST,
        data_dir=folder / f"node-{time.monotonic_ns()}",
        database_url=url,
        institution_code=INSTITUTION,
        audit_background=False,
        log_json=False,
        secret_key="bench-secret-" + "x" * 40,
        vault_key="bench-vault-" + "y" * 40,
        pseudonym_key="bench-pseudonym-" + "z" * 40,
    )
    configure(settings)
    engine = make_engine(url)
    upgrade(engine)
    from biobank.node import initialise_node

    with session_factory(engine)() as session:
        initialise_node(session, settings)
        session.commit()
    try:
        yield engine, settings
    finally:
        engine.dispose()
        from biobank.kit.db import dispose_engines

        dispose_engines()
        if name is not None:
            _pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_admin(url: str, sql: str) -> None:
    engine = make_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(sql))
    engine.dispose()


def _rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


def _latency_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 4),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 4),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 4),
    }


# -- appends ---------------------------------------------------------------------------------------------------


def _record(session: Any, number: int) -> None:
    audit.record(
        session,
        ACTOR,
        "specimen.read",
        "specimen",
        [f"{INSTITUTION}:SPC-{number % 1_000_000:06d}"],
        purpose="project:P-2026-004",
        client_hash="5f1c0a9e3d2b4c6a8e7f9d1b3a5c7e9f",
        details={"returned": 1},
    )


def bench_append(engine: Engine, batched: int, single: int) -> dict[str, Any]:
    """Entries/s through audit.record + commit: batches of 1,000, then one entry per transaction."""
    factory = session_factory(engine)
    started, cpu = time.perf_counter(), time.process_time()
    for batch in range(batched // BATCH):
        with factory() as session:
            for i in range(BATCH):
                _record(session, batch * BATCH + i)
            session.commit()
    batched_seconds, batched_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(single):
        with factory() as session:
            _record(session, i)
            session.commit()
    single_seconds, single_cpu = time.perf_counter() - started, time.process_time() - cpu
    with factory() as session:
        size, head_root = repo.tree_head(session)
        leaves = [leaf for _, leaf in repo.leaves(session, 0, size)]
    check = CompactRange()
    check.extend_entries(leaves)
    if check.root() != head_root:
        raise AssertionError("the stored head root differs from a recomputation over the stored leaves")
    return {
        "batched_per_second": _rate(batched, batched_seconds),
        "single_per_second": _rate(single, single_seconds),
        "single_ms_per_transaction": round(single_seconds / single * 1000, 3),
        # This process's CPU time only (for SQLite that is all the work; the machine may be shared).
        "batched_per_cpu_second": _rate(batched, batched_cpu),
        "single_cpu_ms_per_transaction": round(single_cpu / single * 1000, 3),
        "leaves": leaves[:batched],
    }


def bench_baselines(leaves: list[bytes], folder: Path) -> dict[str, Any]:
    """The same leaves through bare hashlib, pymerkle InmemoryTree and pymerkle SqliteTree."""
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for leaf in leaves:
        sha256(b"\x00" + leaf).digest()
    out: dict[str, Any] = {"hashlib_per_second": _rate(len(leaves), time.perf_counter() - started)}
    store = MemoryNodeStore()
    started = time.perf_counter()
    for chunk in range(0, len(leaves), BATCH):
        store.put(append_many(chunk, [leaf_hash(leaf) for leaf in leaves[chunk : chunk + BATCH]], store))
    out["merkle_memory_per_second"] = _rate(len(leaves), time.perf_counter() - started)
    try:
        from pymerkle import InmemoryTree, SqliteTree
    except ImportError:
        return out
    tree = InmemoryTree(algorithm="sha256")
    started = time.perf_counter()
    for leaf in leaves:
        tree.append_entry(leaf)
    out["pymerkle_inmemory_per_second"] = _rate(len(leaves), time.perf_counter() - started)
    check = CompactRange()
    check.extend_entries(leaves)
    if tree.get_root(len(leaves)) != check.root():
        raise AssertionError("pymerkle and biobank.audit disagree on the root")
    with SqliteTree(str(folder / f"pymerkle-{time.monotonic_ns()}.db"), algorithm="sha256") as sql_tree:
        started = time.perf_counter()
        for chunk in range(0, len(leaves), BATCH):
            sql_tree.append_entries(leaves[chunk : chunk + BATCH])
        out["pymerkle_sqlite_batched_per_second"] = _rate(len(leaves), time.perf_counter() - started)
    return out


# -- request overhead ----------------------------------------------------------------------------------------


def bench_request_overhead(engine: Engine, settings: Settings, requests: int) -> dict[str, Any]:
    """p50 of GET /api/v1/specimens/{id} as it is, and with audit.record made a no-op."""
    from fastapi.testclient import TestClient

    from biobank.app import create_app
    from biobank.identity import service as identity
    from biobank.identity.principal import system_principal
    from biobank.institutions import service as institutions
    from biobank.institutions.schemas import BiobankCreate, CollectionCreate
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import SpecimenCreate

    system = system_principal(INSTITUTION)
    with session_factory(engine)() as session:
        biobank = institutions.create_biobank(session, system, BiobankCreate(code="BBA", name="A", country="CN"))
        collection = institutions.create_collection(
            session, system, CollectionCreate(biobank=biobank.code, name="Cohort", diseases=["C34"])
        )
        now = datetime.now(UTC)
        specimen = specimens.register(
            session,
            system,
            SpecimenCreate(
                barcode="BENCH-0001",
                collection=collection.public_id,
                sample_type="Serum",
                container="SST",
                collected_at=now,
                processed_at=now,
                frozen_at=now,
                quantity=1.0,
                quantity_unit="mL",
                status="processed",
            ),
        )
        user = identity.create_user(session, system, "bench-admin", "correct horse battery", is_admin=True)
        token, _ = identity.create_token(session, system, user, "bench")
        public_id = specimen.public_id
        session.commit()
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/specimens/{public_id}"
    real_record = audit.record
    with_audit: list[float] = []
    without_audit: list[float] = []

    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    with TestClient(app) as client:
        for _ in range(50):
            client.get(url, headers=headers)  # warm up (and the token's once-a-minute use entry)
        # Alternate request by request, so that drift and other load on the machine hit both alike.
        for number in range(2 * requests):
            recording = number % 2 == 0
            audit.record = real_record if recording else noop  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                response = client.get(url, headers=headers)
                (with_audit if recording else without_audit).append(time.perf_counter() - started)
            finally:
                audit.record = real_record  # type: ignore[assignment]
            if response.status_code != 200:
                raise AssertionError(response.text)
    recorded = _latency_ms(with_audit)
    bare = _latency_ms(without_audit)
    service = _service_overhead(engine, public_id, system)
    return {
        "requests_each": len(with_audit),
        "p50_with_audit_ms": recorded["p50_ms"],
        "p50_without_audit_ms": bare["p50_ms"],
        "overhead_p50_ms": round(recorded["p50_ms"] - bare["p50_ms"], 4),
        "p95_with_audit_ms": recorded["p95_ms"],
        "p95_without_audit_ms": bare["p95_ms"],
        **service,
    }


def _service_overhead(engine: Engine, public_id: str, principal: Principal) -> dict[str, float]:
    """The same difference without HTTP: specimens.get + commit, with and without the entry."""
    from biobank.specimens import service as specimens

    factory = session_factory(engine)
    timings: dict[bool, list[float]] = {True: [], False: []}
    for number in range(2_000):
        recording = number % 2 == 0
        started = time.perf_counter()
        with factory() as session:
            specimens.get(session, principal, public_id, audit_read=recording)
            session.commit()
        timings[recording].append(time.perf_counter() - started)
    with_entry = statistics.median(timings[True]) * 1000
    without = statistics.median(timings[False]) * 1000
    return {
        "service_p50_with_ms": round(with_entry, 4),
        "service_p50_without_ms": round(without, 4),
        "service_overhead_p50_ms": round(with_entry - without, 4),
    }


# -- a million entries ---------------------------------------------------------------------------------------


def build_log(engine: Engine, n: int) -> tuple[bytes, float]:
    """Bulk insert n entries and their 2n - popcount(n) nodes; set the head. Returns (root, seconds).

    Uses the append path's own inserts (repository.insert_appended) in chunks of 50,000, without
    resource links (proofs and verification do not read them).
    """
    at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    template = PendingEntry(
        at=at,
        actor=ACTOR.public_id,
        institution=INSTITUTION,
        action="specimen.read",
        resource_type="specimen",
        resource_ids=[f"{INSTITUTION}:SPC-000123"],
        purpose="project:P-2026-004",
        outcome="success",
        client_hash="5f1c0a9e3d2b4c6a8e7f9d1b3a5c7e9f",
        details={"returned": 1},
    )
    leaf0 = leaf_template(template)
    ids = template.resource_ids
    started = time.perf_counter()
    store = MemoryNodeStore()
    chunk = 50_000
    factory = session_factory(engine)
    with factory() as session:
        for table in ("audit_resources", "audit_entries", "audit_nodes", "audit_checkpoints"):
            session.execute(text(f"DELETE FROM {table}"))
        session.commit()
    for start in range(0, n, chunk):
        leaves = [with_index(leaf0, i) for i in range(start, min(n, start + chunk))]
        nodes = append_many(start, [leaf_hash(leaf) for leaf in leaves], store)
        store.put(nodes)
        rows: list[repo.EntryRow] = [
            (
                start + offset,
                at,
                ACTOR.public_id,
                INSTITUTION,
                "specimen.read",
                "specimen",
                ids,
                template.purpose,
                "success",
                leaf,
            )
            for offset, leaf in enumerate(leaves)
        ]
        with factory() as session:
            repo.insert_appended(session, rows, [], nodes)
            session.commit()
    tree_root = root(n, store)
    with factory() as session:
        repo.set_head(session, n, tree_root)
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE audit_nodes"))
            connection.execute(text("VACUUM ANALYZE audit_entries"))
    return tree_root, time.perf_counter() - started


def bench_proofs(engine: Engine, n: int, samples: int) -> dict[str, Any]:
    """Inclusion and consistency proofs at size n from the node table: one SELECT each."""
    rng = random.Random(6962)
    factory = session_factory(engine)
    out: dict[str, Any] = {}
    with factory() as session:
        reader = repo.SqlNodeReader(session)
        for name, call in (
            ("inclusion", lambda: inclusion_proof(rng.randrange(n), n, reader)),
            ("consistency", lambda: consistency_proof(rng.randrange(1, n), n, reader)),
        ):
            for _ in range(50):
                call()
            timings = []
            for _ in range(samples):
                started = time.perf_counter()
                call()
                timings.append(time.perf_counter() - started)
            out[name] = _latency_ms(timings)
        session.rollback()
    return out


def bench_verify(engine: Engine, settings: Settings, folder: Path) -> dict[str, Any]:
    """Local full verification (what `biobank audit verify` does) of the whole log."""
    with session_factory(engine)() as session:
        make_checkpoint(session, settings, force=True)
        session.commit()
    source = LocalSource(session_factory(engine), settings)
    started, cpu = time.perf_counter(), time.process_time()
    report = verify_log(source, state_path=folder / f"verify-{time.monotonic_ns()}.json")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not report.ok:
        raise AssertionError(f"verification failed: {report.problems[:3]}")
    return {
        "entries": report.size,
        "seconds": round(seconds, 2),
        "per_second": _rate(report.size, seconds),
        "per_cpu_second": _rate(report.size, cpu),
    }


# -- the run ---------------------------------------------------------------------------------------------------


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("BIOBANK_BENCH_POSTGRES_URL") else ["sqlite"]


def run(quick: bool = False) -> dict[str, Any]:
    """Every measurement; returns figures and a table of rows (measurement, backend, result, goal)."""
    batched, single = (20_000, 500) if quick else (100_000, 2_000)
    million = 100_000 if quick else 1_000_000
    requests = 200 if quick else 1_000
    samples = 300 if quick else 1_000
    result: dict[str, Any] = {
        "name": "audit",
        "description": "Audit log in the database: appends vs pymerkle and hashlib, request overhead, "
        "proofs and verification at scale.",
        "rows": [],
    }
    rows: list[dict[str, Any]] = result["rows"]

    def row(measurement: str, backend: str, entries: int, value: str, goal: str = "", note: str = "") -> None:
        rows.append(
            {
                "measurement": measurement,
                "backend": backend,
                "entries": entries,
                "result": value,
                "goal": goal,
                "note": note,
            }
        )

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        folder = Path(tmp)
        for backend in _backends():
            with scratch(backend, folder) as (engine, settings):
                append = bench_append(engine, batched, single)
                leaves = append.pop("leaves")
                result[f"append_{backend}"] = append
                goal = f"≥ {GOALS['append_batched_sqlite']:,}/s" if backend == "sqlite" else ""
                row(
                    "append, 1,000 entries per transaction",
                    backend,
                    batched,
                    f"{append['batched_per_second']:,} entries/s",
                    goal,
                    "audit.record + commit: entries, nodes, links, head under the head lock; "
                    f"{append['batched_per_cpu_second']:,} per CPU-second of this process",
                )
                row(
                    "append, one entry per transaction",
                    backend,
                    single,
                    f"{append['single_per_second']:,} entries/s",
                    note=f"{append['single_ms_per_transaction']} ms per transaction "
                    f"({append['single_cpu_ms_per_transaction']} ms CPU of this process)",
                )
                if backend == "sqlite":
                    baselines = bench_baselines(leaves, folder)
                    result["baselines"] = baselines
                    row(
                        "bare hashlib leaf hashing (floor)",
                        "memory",
                        len(leaves),
                        f"{baselines['hashlib_per_second']:,} entries/s",
                        note="same leaves",
                    )
                    row(
                        "biobank.audit.merkle append_many, 1,000 per call",
                        "memory",
                        len(leaves),
                        f"{baselines['merkle_memory_per_second']:,} entries/s",
                        note="same leaves; the tree alone, no encoding and no database",
                    )
                    if "pymerkle_inmemory_per_second" in baselines:
                        row(
                            "pymerkle InmemoryTree.append_entry",
                            "memory",
                            len(leaves),
                            f"{baselines['pymerkle_inmemory_per_second']:,} entries/s",
                            note="same leaves, same root",
                        )
                        row(
                            "pymerkle SqliteTree.append_entries, 1,000 per call",
                            "sqlite",
                            len(leaves),
                            f"{baselines['pymerkle_sqlite_batched_per_second']:,} entries/s",
                            note="own SQLite file; stores leaves only, no interior nodes",
                        )
                    overhead = bench_request_overhead(engine, settings, requests)
                    result["request_overhead"] = overhead
                    row(
                        "specimen GET, p50 with audit.record",
                        backend,
                        0,
                        f"{overhead['p50_with_audit_ms']} ms",
                        note=f"in-process HTTP; without: {overhead['p50_without_audit_ms']} ms",
                    )
                    row(
                        "overhead of recording on a specimen GET (p50)",
                        backend,
                        0,
                        f"{overhead['overhead_p50_ms']} ms",
                        f"≤ {GOALS['request_overhead_p50_ms']} ms",
                        f"service level: {overhead['service_overhead_p50_ms']} ms",
                    )
            with scratch(backend, folder) as (engine, settings):
                tree_root, build_seconds = build_log(engine, million)
                result[f"build_{backend}_seconds"] = round(build_seconds, 1)
                proofs = bench_proofs(engine, million, samples)
                result[f"proofs_{backend}"] = proofs
                for name in ("inclusion", "consistency"):
                    figures = proofs[name]
                    row(
                        f"{name} proof from the node table",
                        backend,
                        million,
                        f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms",
                        f"≤ {GOALS['proof_ms']} ms",
                        f"{samples:,} random proofs, one SELECT each",
                    )
                verified = bench_verify(engine, settings, folder)
                result[f"verify_{backend}"] = verified
                row(
                    "full-log verification (local)",
                    backend,
                    verified["entries"],
                    f"{verified['per_second']:,} entries/s",
                    f"≥ {GOALS['verify_per_second']:,}/s",
                    f"{verified['seconds']} s: read, hash, root, signature; "
                    f"{verified['per_cpu_second']:,} per CPU-second",
                )
                del tree_root
    configure(None)
    return result


def markdown(result: dict[str, Any]) -> str:
    """The rows as a Markdown table."""
    lines = ["| measurement | backend | entries | result | goal | note |", "|---|---|---:|---|---|---|"]
    for r in result["rows"]:
        entries = f"{r['entries']:,}" if r["entries"] else ""
        lines.append(f"| {r['measurement']} | {r['backend']} | {entries} | {r['result']} | {r['goal']} | {r['note']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    started_at = time.perf_counter()
    figures = run(quick="--quick" in sys.argv[1:])
    figures["seconds"] = round(time.perf_counter() - started_at, 1)
    print(markdown(figures))
    print(f"\ntotal {figures['seconds']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS}")
