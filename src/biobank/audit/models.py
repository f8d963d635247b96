"""The audit log's tables: entries (the exact leaf bytes), tree nodes, the head, resource links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime


class AuditEntry(Base):
    """One log entry. `leaf` is the canonical encoding; the other columns index it for browsing."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_actor_at", "actor", "at"),
        Index("ix_audit_entries_action_at", "action", "at"),
        Index("ix_audit_entries_resource_type_at", "resource_type", "at"),
    )

    idx: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
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
    entry_idx: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


class AuditHead(Base):
    """The single row holding the tree size and root: its row lock orders concurrent appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    root: Mapped[bytes | None] = mapped_column(LargeBinary)
