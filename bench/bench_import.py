"""Benchmark: the bulk specimen import against the bare driver inserting the same rows.

Builds a node (migrated with Alembic) with the demo consortium's biobanks, collections and storage,
generates N realistic import rows with the demo generator (primaries with donors, aliquots and
DNA derivatives of earlier rows, positions in 9 × 9 boxes), then measures on SQLite and, when
BIOBANK_BENCH_POSTGRES_URL names a server, on PostgreSQL:

- reading the rows from a CSV file (``read_table``);
- a dry run (every check, nothing written);
- the import itself (``run_import`` + commit: donors with sealed vault rows, specimens, custody
  events, box occupancy, one audit entry), reported without and with the catalogue facts refresh
  of the affected collections that ``run_import`` runs in the same transaction (timed through its
  progress callback; "import s" and "import /s" leave it out, "import with facts /s" includes it);
- the bare floor: the very rows the import wrote (specimens only), inserted into the same table of
  a copy of the database taken just before the import, with ``sqlite3`` ``executemany`` on SQLite
  and ``COPY`` on PostgreSQL, committed; and the same with the custody events the import also writes
  (one per specimen), for the floor of the same database work.

Goals: ≥ 50,000 specimens/s on SQLite, and ≥ 1/3 of the bare rate on both databases.
Run: ``python -m bench import [--quick]`` or ``python bench/bench_import.py [N]``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

N_FULL = 200_000
N_QUICK = 20_000
SECRETS = {"secret_key": "bench-secret-" + "s" * 40, "vault_key": "bench-vault-" + "v" * 40,
           "pseudonym_key": "bench-pseudonym-" + "p" * 40}


# --------------------------------------------------------------------------------------------
# Scratch nodes (shared with bench_api)
# --------------------------------------------------------------------------------------------


@dataclass
class Node:
    """A migrated, initialised scratch node."""

    dialect: str
    url: str
    data_dir: Path
    engine: Engine
    make_session: sessionmaker[Session]


def postgres_server() -> str | None:
    """The PostgreSQL server to benchmark on (an existing one), if any."""
    return os.environ.get("BIOBANK_BENCH_POSTGRES_URL") or None


def _pg_admin(server: str, sql: str) -> None:
    from biobank.kit.db import null_pool_engine

    engine = null_pool_engine(server)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(sql))
    engine.dispose()


def _pg_url(server: str, database: str) -> str:
    base = server.rsplit("/", 1)[0]
    if base.startswith("postgresql://"):
        base = "postgresql+psycopg://" + base.removeprefix("postgresql://")
    return f"{base}/{database}"


@contextmanager
def scratch_node(dialect: str, label: str) -> Iterator[Node]:
    """A fresh node database: a SQLite file in a temporary folder, or a database created on the server."""
    from biobank.config import Environment, Settings, configure
    from biobank.kit.db import dispose_engines, get_engine, session_factory
    from biobank.kit.migrate import upgrade
    from biobank.model_registry import import_all_models
    from biobank.node import initialise_node

    import_all_models()
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    database = f"bench_{label}_{os.getpid()}"
    server = postgres_server()
    if dialect == "postgresql":
        assert server is not None
        _pg_admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _pg_admin(server, f'CREATE DATABASE "{database}"')
        url = _pg_url(server, database)
    else:
        url = f"sqlite:///{folder / 'node.sqlite3'}"
    settings = Settings(env=Environment.TEST, data_dir=folder, database_url=url, log_json=False, **SECRETS)
    configure(settings)
    try:
        engine = get_engine(url)
        upgrade(engine)
        make_session = session_factory(engine)
        with make_session() as session:
            initialise_node(session, settings)
            session.commit()
        yield Node(dialect, url, folder, engine, make_session)
    finally:
        dispose_engines()
        configure(None)
        if dialect == "postgresql" and server is not None:
            _pg_admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(folder, ignore_errors=True)


def dialects() -> list[str]:
    """SQLite always; PostgreSQL when a server is configured."""
    return ["sqlite", "postgresql"] if postgres_server() else ["sqlite"]


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def _rows(node: Node, n: int) -> tuple[list[dict[str, str]], Any]:
    """N import rows of the oncology biobank, placed in boxes (created here, before any timing)."""
    from biobank.demo.generator import DemoConfig, batches, build_consortium, place

    consortium = build_consortium(node.make_session)
    config = DemoConfig(donors=max(1, n // 10), specimens=int(n / 0.8) + 100, seed=11)
    rows: list[dict[str, str]] = []
    for code, batch in batches(config, consortium.collections):
        if code == "ONC":
            rows.extend(batch)
        if len(rows) >= n:
            break
    rows = rows[:n]
    with node.make_session() as session, session.begin():
        place(session, consortium, "ONC", rows)
    return rows, consortium


def _csv_bytes(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _snapshot(node: Node, label: str) -> Any:
    """A copy of the database as it is now (before the import), for the bare insert."""
    from biobank.kit.db import dispose_engines

    dispose_engines()  # the last connection to close checkpoints the WAL into the file
    if node.dialect == "sqlite":
        target = node.data_dir / "bare.sqlite3"
        shutil.copyfile(node.url.removeprefix("sqlite:///"), target)
        return target
    server = postgres_server()
    assert server is not None
    name = f"bench_{label}_bare_{os.getpid()}"
    _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{node.url.rsplit("/", 1)[1]}"')
    return name


def _written(node: Node) -> tuple[list[str], list[Any], list[Any], list[Any], list[Any]]:
    """The rows the import wrote, in stored form: specimens, donors, vault rows and custody events."""
    from biobank.specimens.import_write import DONOR_COLUMNS, EVENT_COLUMNS, SPECIMEN_COLUMNS

    columns = list(SPECIMEN_COLUMNS)
    with node.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        cursor.execute(f"SELECT {', '.join(columns)} FROM specimens ORDER BY id")
        specimens = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(f"SELECT {', '.join(DONOR_COLUMNS)} FROM donors ORDER BY id")
        donors = [tuple(r) for r in cursor.fetchall()]
        cursor.execute("SELECT donor_id, sealed, updated_at FROM donor_vault ORDER BY donor_id")
        vault = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM specimen_events ORDER BY id")
        events = [tuple(json.dumps(v) if isinstance(v, dict) else v for v in r) for r in cursor.fetchall()]
        cursor.close()
    return columns, specimens, donors, vault, events


def _bare_sqlite(
    path: Path,
    columns: list[str],
    specimens: list[Any],
    donors: list[Any],
    vault: list[Any],
    events: list[Any] | None = None,
) -> tuple[float, float]:
    """sqlite3 executemany of the specimens (and events; donors first, untimed); wall and CPU s with the commit."""
    from biobank.specimens.import_write import DONOR_COLUMNS, EVENT_COLUMNS

    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "cache_size=-65536"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        f"INSERT INTO donors ({', '.join(DONOR_COLUMNS)}) VALUES ({', '.join('?' * len(DONOR_COLUMNS))})", donors
    )
    connection.executemany("INSERT INTO donor_vault (donor_id, sealed, updated_at) VALUES (?, ?, ?)", vault)
    connection.execute("COMMIT")
    statement = f"INSERT INTO specimens ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    started, cpu = time.perf_counter(), time.process_time()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(statement, specimens)
    if events is not None:
        marks = ", ".join("?" * len(EVENT_COLUMNS))
        connection.executemany(f"INSERT INTO specimen_events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks})", events)
    connection.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    return seconds, cpu


def _bare_postgres(
    database: str,
    columns: list[str],
    specimens: list[Any],
    donors: list[Any],
    vault: list[Any],
    events: list[Any] | None = None,
    *,
    drop: bool = True,
) -> tuple[float, float]:
    """COPY of the specimens (and events; donors first, untimed); wall and this process's CPU s with the commit."""
    import psycopg

    from biobank.specimens.import_write import DONOR_COLUMNS, EVENT_COLUMNS

    server = postgres_server()
    assert server is not None
    url = _pg_url(server, database).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY donors ({', '.join(DONOR_COLUMNS)}) FROM STDIN") as copy:
                for row in donors:
                    copy.write_row(row)
            with cursor.copy("COPY donor_vault (donor_id, sealed, updated_at) FROM STDIN") as copy:
                for row in vault:
                    copy.write_row(row)
        connection.commit()
        started, cpu = time.perf_counter(), time.process_time()
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY specimens ({', '.join(columns)}) FROM STDIN") as copy:
                for row in specimens:
                    copy.write_row(row)
            if events is not None:
                with cursor.copy(f"COPY specimen_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                    for row in events:
                        copy.write_row(row)
        connection.commit()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if drop:
        _pg_admin(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return seconds, cpu


def measure(dialect: str, n: int) -> dict[str, Any]:
    """All figures for one database."""
    from biobank.demo.generator import import_table
    from biobank.specimens import importer
    from biobank.specimens.importer_io import read_table

    with scratch_node(dialect, "import") as node:
        rows, consortium = _rows(node, n)
        table = import_table(rows)
        data = _csv_bytes(rows, table.columns)
        started = time.perf_counter()
        parsed = read_table(data, "bench.csv")
        read_seconds = time.perf_counter() - started
        assert len(parsed) == len(rows)
        snapshot = _snapshot(node, "import")
        with node.make_session() as session:
            started = time.perf_counter()
            report = importer.validate(session, consortium.actor, "ONC", table)
            dry_seconds = time.perf_counter() - started
            session.rollback()
        assert report.errors == 0, report.entries[:5]
        stages: dict[str, float] = {}

        def progress(stage: str, _count: int) -> None:
            stages[stage] = time.perf_counter()

        with node.make_session() as session:
            started, cpu = time.perf_counter(), time.process_time()
            report = importer.run_import(session, consortium.actor, "ONC", table, dry_run=False, progress=progress)
            session.commit()
            import_seconds, import_cpu = time.perf_counter() - started, time.process_time() - cpu
        facts_seconds = stages["facts refreshed"] - stages["refreshing facts"]
        assert report.created == len(rows)
        columns, specimens, donors, vault, events = _written(node)
        if dialect == "sqlite":
            second = snapshot.with_name("bare-events.sqlite3")
            shutil.copyfile(snapshot, second)
            bare_seconds, bare_cpu = _bare_sqlite(snapshot, columns, specimens, donors, vault)
            with_events, _ = _bare_sqlite(second, columns, specimens, donors, vault, events)
            bare = "sqlite3 executemany"
        else:
            server = postgres_server()
            assert server is not None
            second = f"{snapshot}_events"
            _pg_admin(server, f'CREATE DATABASE "{second}" TEMPLATE "{snapshot}"')
            bare_seconds, bare_cpu = _bare_postgres(snapshot, columns, specimens, donors, vault)
            with_events, _ = _bare_postgres(second, columns, specimens, donors, vault, events)
            bare = "psycopg COPY"
    without_facts = import_seconds - facts_seconds
    import_rate = len(rows) / without_facts
    bare_rate = len(rows) / bare_seconds
    floor_rate = len(rows) / with_events
    return {
        "database": dialect,
        "specimens": len(rows),
        "donors created": report.donors_created,
        "csv read /s": round(len(rows) / read_seconds),
        "dry run /s": round(len(rows) / dry_seconds),
        "import s": round(without_facts, 2),
        "import /s": round(import_rate),
        "facts refresh s": round(facts_seconds, 2),
        "import with facts /s": round(len(rows) / import_seconds),
        "bare": bare,
        "bare s": round(bare_seconds, 2),
        "bare /s": round(bare_rate),
        "import / bare": round(import_rate / bare_rate, 3),
        "bare with events /s": round(floor_rate),
        "import / bare with events": round(import_rate / floor_rate, 3),
        "import with facts / bare": round(len(rows) / import_seconds / bare_rate, 3),
        "import cpu s": round(import_cpu, 2),
        "bare cpu s": round(bare_cpu, 2),
        "load average": round(os.getloadavg()[0], 1),
    }


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    """Import N specimens (200,000; 20,000 with quick) on each configured database."""
    n = n or (N_QUICK if quick else N_FULL)
    table = [measure(dialect, n) for dialect in dialects()]
    sqlite_rate = table[0]["import /s"]
    return {
        "name": "import",
        "description": "Bulk import of specimens (validate + write + commit) against the bare driver.",
        "table": table,
        "goal_sqlite_50k_per_s": sqlite_rate >= 50_000,
        "goal_third_of_bare": all(row["import / bare"] >= 1 / 3 for row in table),
        "goal_sqlite_50k_per_s_with_facts": table[0]["import with facts /s"] >= 50_000,
        "goal_third_of_bare_with_facts": all(row["import with facts / bare"] >= 1 / 3 for row in table),
    }


if __name__ == "__main__":
    result = run(n=int(sys.argv[1]) if len(sys.argv) > 1 else None)
    for line in result["table"]:
        print(line)
