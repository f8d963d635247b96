"""Appending to the log: gap-free indexes under concurrency, exact leaf bytes, resource links."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from biobank.audit.models import AuditEntry, AuditHead, AuditResource

if TYPE_CHECKING:
    from biobank.audit.service import PendingEntry


def _lock_head(session: Session) -> AuditHead:
    """The head row, locked until commit (PostgreSQL row lock; SQLite holds its write lock already)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, size=0, root=None)
        session.add(head)
        session.flush()
    return head


def entry_fields(index: int, entry: PendingEntry) -> dict[str, object]:
    """The fields of an entry as they are encoded into its leaf."""
    return {
        "index": index,
        "time": entry.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": entry.actor,
        "institution": entry.institution,
        "action": entry.action,
        "resource_type": entry.resource_type,
        "resource_ids": entry.resource_ids,
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "client_hash": entry.client_hash,
        "details": entry.details,
    }


def append_entries(session: Session, entries: Sequence[PendingEntry]) -> range:
    """Append entries at the end of the log in this transaction; returns their indexes."""
    from biobank.audit.encoding import encode_entry

    head = _lock_head(session)
    start = head.size
    rows = []
    links = []
    for offset, entry in enumerate(entries):
        index = start + offset
        rows.append({
            "idx": index, "at": entry.at, "actor": entry.actor, "institution": entry.institution,
            "action": entry.action, "resource_type": entry.resource_type, "resource_ids": entry.resource_ids,
            "purpose": entry.purpose, "outcome": entry.outcome, "leaf": encode_entry(entry_fields(index, entry)),
        })
        links.extend({"resource_id": rid, "entry_idx": index} for rid in dict.fromkeys(entry.resource_ids))
    session.execute(insert(AuditEntry), rows)
    if links:
        session.execute(insert(AuditResource), links)
    head.size = start + len(rows)
    session.flush()
    return range(start, head.size)
