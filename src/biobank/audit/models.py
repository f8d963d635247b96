"""The audit log's tables: entries (the exact leaf bytes), tree nodes, the head, checkpoints, witnesses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow

LogIndex = BigInteger().with_variant(Integer, "sqlite")
"""Tree sizes and leaf indexes: 64-bit on PostgreSQL, SQLite's INTEGER (also 64-bit) elsewhere."""


class AuditEntry(Base):
    """One log entry. `leaf` is the canonical encoding; the other columns index it for browsing."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_actor_at", "actor", "at"),
        Index("ix_audit_entries_action_at", "action", "at"),
        Index("ix_audit_entries_resource_type_at", "resource_type", "at"),
    )

    idx: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    institution: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_ids: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    leaf: Mapped[bytes] = mapped_column(LargeBinary)


class AuditResource(Base):
    """Which entries name a resource (specimen, donor), for a donor's access history."""

    __tablename__ = "audit_resources"

    resource_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    entry_idx: Mapped[int] = mapped_column(LogIndex, primary_key=True)


class AuditHead(Base):
    """The single row holding the tree size and root: its row lock orders concurrent appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(LogIndex, default=0)
    root: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditNode(Base):
    """The hash of one perfect aligned subtree: leaves [idx * 2**level, (idx + 1) * 2**level)."""

    __tablename__ = "audit_nodes"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 (SQLAlchemy reads a plain dict)

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A checkpoint this node signed: the C2SP note text (body, blank line, the node's signature)."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class AuditCosignature(Base):
    """A witness's verified cosignature line over one of this node's checkpoints."""

    __tablename__ = "audit_cosignatures"

    checkpoint_size: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(200), primary_key=True)
    line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditWitnessPeer(Base):
    """A witness this node submits checkpoints to: its pinned cosigner key and the last size it cosigned."""

    __tablename__ = "audit_witness_peers"

    url: Mapped[str] = mapped_column(String(500), primary_key=True)
    vkey: Mapped[str | None] = mapped_column(String(300))
    cosigned_size: Mapped[int] = mapped_column(LogIndex, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditWitnessEvent(Base):
    """A witness outcome: a peer cosigned or refused our checkpoint, or this node (as witness) refused a log."""

    __tablename__ = "audit_witness_events"
    __table_args__ = (Index("ix_audit_witness_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    role: Mapped[str] = mapped_column(String(16))  # "log": about our checkpoints; "witness": we judged a log
    peer: Mapped[str] = mapped_column(String(500))  # the witness URL (role log) or the log origin (role witness)
    size: Mapped[int] = mapped_column(LogIndex)
    outcome: Mapped[str] = mapped_column(String(32))
    status: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")


class AuditWitnessState(Base):
    """This node as a witness: the latest checkpoint it cosigned for one log (by origin)."""

    __tablename__ = "audit_witness_state"

    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    size: Mapped[int] = mapped_column(LogIndex, default=0)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditVerifyRun(Base):
    """A verification started from the auditor UI; progress is stored so any worker can show it."""

    __tablename__ = "audit_verify_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    size: Mapped[int] = mapped_column(LogIndex, default=0)
    done: Mapped[int] = mapped_column(LogIndex, default=0)
    first_bad: Mapped[int | None] = mapped_column(LogIndex)
    message: Mapped[str] = mapped_column(Text, default="")
