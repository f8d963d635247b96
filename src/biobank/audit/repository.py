"""Every query of the audit log: tree nodes, the head, entries, checkpoints and witness records."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from biobank.audit.merkle import EMPTY_ROOT, Node, NodeKey
from biobank.audit.models import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEntry,
    AuditHead,
    AuditResource,
    AuditVerifyRun,
    AuditWitnessEvent,
    AuditWitnessPeer,
    AuditWitnessState,
)

HEAD_ID = 1


class SqlNodeReader:
    """merkle.NodeReader over the audit_nodes table: one SELECT per call, primary-key seeks only.

    The statement text is built once per number of keys and sent with the driver's own execute:
    appends and proofs are on the request path, and SQLAlchemy's expression building would cost
    more than the query.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hash of each key found (absent keys are left out)."""
        if not keys:
            return {}
        sql = _nodes_query(len(keys), self.sqlite)
        params = tuple(part for key in keys for part in key)
        rows = self.session.connection().exec_driver_sql(sql, params)
        return {(level, idx): bytes(digest) for level, idx, digest in rows}


@lru_cache(maxsize=256)
def _nodes_query(count: int, sqlite: bool) -> str:
    """SELECT of ``count`` nodes by key. SQLite plans row-value IN (...) as a table scan, but an OR of
    (level = ? AND idx = ?) terms as index seeks; PostgreSQL uses the index for row values."""
    if sqlite:
        where = " OR ".join(["(level = ? AND idx = ?)"] * count)
    else:
        where = "(level, idx) IN (" + ", ".join(["(%s, %s)"] * count) + ")"
    return "SELECT level, idx, hash FROM audit_nodes WHERE " + where  # noqa: S608 (placeholders only)


# -- head and appends --------------------------------------------------------------------------------------


def lock_head(session: Session) -> tuple[int, bytes]:
    """The tree size and root, with the head row locked until commit (the lock that orders appends).

    PostgreSQL: a row lock (SELECT ... FOR UPDATE). SQLite: every transaction of this node begins
    IMMEDIATE, so the writer already holds the database's write lock.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    row = connection.exec_driver_sql(_LOCK_HEAD[sqlite]).first()
    if row is None:
        session.execute(insert(AuditHead).values(id=HEAD_ID, size=0, root=EMPTY_ROOT))
        return 0, EMPTY_ROOT
    return int(row[0]), bytes(row[1]) if row[1] is not None else EMPTY_ROOT


def set_head(session: Session, size: int, root: bytes) -> None:
    """Move the head to a new size and root (under the lock taken by lock_head)."""
    connection = session.connection()
    connection.exec_driver_sql(_SET_HEAD[connection.dialect.name == "sqlite"], (size, root))


_LOCK_HEAD = {
    True: "SELECT size, root FROM audit_head WHERE id = 1",
    False: "SELECT size, root FROM audit_head WHERE id = 1 FOR UPDATE",
}
_SET_HEAD = {
    True: "UPDATE audit_head SET size = ?, root = ? WHERE id = 1",
    False: "UPDATE audit_head SET size = %s, root = %s WHERE id = 1",
}


def tree_head(session: Session) -> tuple[int, bytes]:
    """The committed tree size and root (no lock)."""
    row = session.execute(select(AuditHead.size, AuditHead.root).where(AuditHead.id == HEAD_ID)).first()
    if row is None:
        return 0, EMPTY_ROOT
    return int(row.size), bytes(row.root) if row.root is not None else EMPTY_ROOT


EntryRow = tuple[int, datetime, str, str, str, str, list[str], str | None, str, bytes]
"""idx, at, actor, institution, action, resource_type, resource_ids, purpose, outcome, leaf."""

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format of SQLite DATETIME
_INSERTS = {  # by the driver's placeholder: sqlite3 "?", psycopg "%s"
    "?": (
        "INSERT INTO audit_entries (idx, at, actor, institution, action, resource_type, resource_ids, purpose,"
        " outcome, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "INSERT INTO audit_resources (resource_id, entry_idx) VALUES (?, ?)",
        "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)",
    ),
    "%s": (
        "INSERT INTO audit_entries (idx, at, actor, institution, action, resource_type, resource_ids, purpose,"
        " outcome, leaf) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        "INSERT INTO audit_resources (resource_id, entry_idx) VALUES (%s, %s)",
        "INSERT INTO audit_nodes (level, idx, hash) VALUES (%s, %s, %s)",
    ),
}


def insert_appended(
    session: Session, entries: Sequence[EntryRow], links: Sequence[tuple[str, int]], nodes: Sequence[Node]
) -> None:
    """Insert new entries, their resource links and tree nodes with the driver's executemany.

    Appends are on every audited request's path, so the rows skip SQLAlchemy's per-row parameter
    processing; the conversions it would do (UTC text times on SQLite, JSON text) are done here.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    rows = [
        (
            i,
            at.astimezone(UTC).strftime(_SQLITE_TIME) if sqlite else at,
            actor,
            institution,
            action,
            resource_type,
            json.dumps(resource_ids),
            purpose,
            outcome,
            leaf,
        )
        for i, at, actor, institution, action, resource_type, resource_ids, purpose, outcome, leaf in entries
    ]
    insert_entries, insert_links, insert_nodes = _INSERTS[mark]
    connection.exec_driver_sql(insert_entries, rows)
    if links:
        connection.exec_driver_sql(insert_links, list(links))
    connection.exec_driver_sql(insert_nodes, list(nodes))


# -- entries -----------------------------------------------------------------------------------------------


def entry(session: Session, index: int) -> AuditEntry | None:
    """One entry by index."""
    return session.get(AuditEntry, index)


def leaves(session: Session, start: int, end: int) -> list[tuple[int, bytes]]:
    """(index, leaf bytes) of the stored entries with start <= index < end, in order (verifiers read
    the whole log through this, so it is plain SQL: no per-row expression or result processing)."""
    connection = session.connection()
    sql = _LEAVES[connection.dialect.name == "sqlite"]
    driver = connection.connection.driver_connection  # same transaction; twice as fast as a Result
    assert driver is not None
    rows: list[tuple[int, bytes]] = driver.execute(sql, (start, end)).fetchall()
    return rows


_LEAVES = {
    True: "SELECT idx, leaf FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
    False: "SELECT idx, leaf FROM audit_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
}


def iter_leaves(session: Session, start: int, end: int, batch: int = 10_000) -> Iterator[list[tuple[int, bytes]]]:
    """Stored (index, leaf) pairs of [start, end) in batches, by index ranges (each an index seek)."""
    position = start
    while position < end:
        upper = min(end, position + batch)
        yield leaves(session, position, upper)
        position = upper


@dataclass(frozen=True)
class EntryFilter:
    """What the auditor's log view filters on (all optional)."""

    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def filtered_entries(where: EntryFilter) -> Select[AuditEntry]:
    """Entries matching a filter (unordered)."""
    stmt = select(AuditEntry)
    if where.actor:
        stmt = stmt.where(AuditEntry.actor == where.actor)
    if where.action:
        stmt = stmt.where(AuditEntry.action.startswith(where.action, autoescape=True))
    if where.resource_type:
        stmt = stmt.where(AuditEntry.resource_type == where.resource_type)
    if where.resource_id:
        linked = select(AuditResource.entry_idx).where(AuditResource.resource_id == where.resource_id)
        stmt = stmt.where(AuditEntry.idx.in_(linked))
    if where.since:
        stmt = stmt.where(AuditEntry.at >= where.since)
    if where.until:
        stmt = stmt.where(AuditEntry.at < where.until)
    return stmt


def entries_naming(session: Session, resource_ids: Sequence[str], *, offset: int, limit: int) -> list[AuditEntry]:
    """Entries naming any of the resources, newest first."""
    linked = select(AuditResource.entry_idx).where(AuditResource.resource_id.in_(list(resource_ids)))
    stmt = select(AuditEntry).where(AuditEntry.idx.in_(linked)).order_by(AuditEntry.idx.desc())
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def count_entries_naming(session: Session, resource_ids: Sequence[str]) -> int:
    """How many entries name any of the resources."""
    stmt = select(func.count(func.distinct(AuditResource.entry_idx))).where(
        AuditResource.resource_id.in_(list(resource_ids))
    )
    return int(session.execute(stmt).scalar_one())


# -- checkpoints and cosignatures ----------------------------------------------------------------------------


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The checkpoint with the largest tree size."""
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)).first()


def checkpoint_at(session: Session, size: int) -> AuditCheckpoint | None:
    """The checkpoint of one tree size."""
    return session.get(AuditCheckpoint, size)


def recent_checkpoints(session: Session, limit: int = 20) -> list[AuditCheckpoint]:
    """The newest checkpoints first."""
    return list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(limit)))


def cosignatures(session: Session, sizes: Sequence[int]) -> list[AuditCosignature]:
    """Cosignatures stored for checkpoints of these sizes."""
    if not sizes:
        return []
    stmt = select(AuditCosignature).where(AuditCosignature.checkpoint_size.in_(list(sizes)))
    return list(session.scalars(stmt.order_by(AuditCosignature.checkpoint_size, AuditCosignature.witness)))


def has_cosignature(session: Session, size: int, witness: str) -> bool:
    """Whether a witness's cosignature over a checkpoint is stored already."""
    return session.get(AuditCosignature, (size, witness)) is not None


# -- witnesses ------------------------------------------------------------------------------------------------


def peer(session: Session, url: str) -> AuditWitnessPeer | None:
    """What this node knows about one witness peer."""
    return session.get(AuditWitnessPeer, url)


def peers(session: Session) -> list[AuditWitnessPeer]:
    """Every witness peer this node has talked to."""
    return list(session.scalars(select(AuditWitnessPeer).order_by(AuditWitnessPeer.url)))


def recent_events(session: Session, limit: int = 50, *, role: str | None = None) -> list[AuditWitnessEvent]:
    """Witness outcomes, newest first."""
    stmt = select(AuditWitnessEvent)
    if role:
        stmt = stmt.where(AuditWitnessEvent.role == role)
    return list(session.scalars(stmt.order_by(AuditWitnessEvent.id.desc()).limit(limit)))


def witness_state(session: Session, origin: str, *, fresh: bool = False) -> AuditWitnessState | None:
    """This node's witness record of one log (``fresh``: re-read even if loaded in this session)."""
    return session.get(AuditWitnessState, origin, populate_existing=fresh)


def witness_states(session: Session) -> list[AuditWitnessState]:
    """Every log this node has witnessed."""
    return list(session.scalars(select(AuditWitnessState).order_by(AuditWitnessState.origin)))


def advance_witness_state(
    session: Session, origin: str, old_size: int, old_root: bytes | None, new_size: int, new_root: bytes, now: datetime
) -> bool:
    """Compare-and-swap the witness record from (old size, old root); False when another request won."""
    if old_root is None:
        session.add(AuditWitnessState(origin=origin, size=new_size, root=new_root, updated_at=now))
        session.flush()
        return True
    result = session.execute(
        update(AuditWitnessState)
        .where(
            AuditWitnessState.origin == origin,
            AuditWitnessState.size == old_size,
            AuditWitnessState.root == old_root,
        )
        .values(size=new_size, root=new_root, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


# -- verification runs -----------------------------------------------------------------------------------------


def verify_run(session: Session, run_id: int) -> AuditVerifyRun | None:
    """One verification run."""
    return session.get(AuditVerifyRun, run_id)


def recent_verify_runs(session: Session, limit: int = 10) -> list[AuditVerifyRun]:
    """The newest verification runs first."""
    return list(session.scalars(select(AuditVerifyRun).order_by(AuditVerifyRun.id.desc()).limit(limit)))
