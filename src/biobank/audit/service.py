"""audit.record(): queue an entry in the caller's transaction; it is appended when that commits."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from biobank.audit.encoding import EntryEncodingError
from biobank.audit.log import leaf_template
from biobank.kit.db import utcnow

if TYPE_CHECKING:
    from biobank.identity.principal import Principal

PENDING_KEY = "audit_pending"

Scalar = str | int | bool | None


@dataclass
class PendingEntry:
    """An entry waiting for its transaction to commit."""

    at: datetime
    actor: str
    institution: str
    action: str
    resource_type: str
    resource_ids: list[str]
    purpose: str | None
    outcome: str
    client_hash: str | None
    details: dict[str, Scalar] = field(default_factory=dict)
    leaf: bytes = b""  # canonical bytes with index 0, filled in by record(); the append sets the index


# Column widths of audit_entries / audit_resources: checked when recording, not at commit.
_LIMITS = {"actor": 64, "institution": 64, "action": 64, "resource_type": 64, "purpose": 128, "outcome": 32}
_RESOURCE_ID_LIMIT = 128


def record(
    session: Session,
    actor: Principal | None,
    action: str,
    resource_type: str,
    resource_ids: Sequence[str],
    *,
    purpose: str | None = None,
    outcome: str = "success",
    details: Mapping[str, Scalar] | None = None,
    client_hash: str | None = None,
    institution: str | None = None,
) -> None:
    """Record who did what to which resources, why and with what outcome, in this transaction.

    Nothing personal goes in: the actor is a pseudonymous user id, resources are public ids, and
    details hold only codes, counts and flags. A rolled-back transaction leaves no entry.
    """
    from biobank.config import get_settings

    entry = PendingEntry(
        at=utcnow(),
        actor=actor.public_id if actor is not None else "anonymous",
        institution=institution or (actor.institution_code if actor else "") or get_settings().institution_code,
        action=action,
        resource_type=resource_type,
        resource_ids=[str(r) for r in resource_ids],
        purpose=purpose,
        outcome=outcome,
        client_hash=client_hash if client_hash is not None else (actor.client_hash if actor else None),
        details=dict(details or {}),
    )
    _check_widths(entry)
    entry.leaf = leaf_template(entry)  # validates every field now, where the caller can see the error
    if not session.in_transaction():
        session.begin()  # so that a rollback before any query still drops this entry
    session.info.setdefault(PENDING_KEY, []).append(entry)


def _check_widths(entry: PendingEntry) -> None:
    widths = (
        ("actor", entry.actor),
        ("institution", entry.institution),
        ("action", entry.action),
        ("resource_type", entry.resource_type),
        ("purpose", entry.purpose),
        ("outcome", entry.outcome),
    )
    for name, value in widths:
        if value is not None and len(value) > _LIMITS[name]:
            raise EntryEncodingError(f"{name} is longer than {_LIMITS[name]} characters")
    if any(len(rid) > _RESOURCE_ID_LIMIT for rid in entry.resource_ids):
        raise EntryEncodingError(f"resource id is longer than {_RESOURCE_ID_LIMIT} characters")


def pending_entries(session: Session) -> list[PendingEntry]:
    """Entries queued in this session's open transaction."""
    return list(session.info.get(PENDING_KEY, []))


# Savepoints: entries recorded inside a savepoint are dropped when it rolls back, and kept (for
# the outermost commit) when it is released. The queue length at each savepoint's start is kept here.
_savepoint_marks: weakref.WeakKeyDictionary[SessionTransaction, int] = weakref.WeakKeyDictionary()


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        _savepoint_marks[transaction] = len(session.info.get(PENDING_KEY, ()))


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint is released: its entries wait for the outermost commit
    pending: list[PendingEntry] | None = session.info.pop(PENDING_KEY, None)
    if pending:
        from biobank.audit.log import append_entries

        append_entries(session, pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        mark = _savepoint_marks.pop(previous_transaction, None)
        pending = session.info.get(PENDING_KEY)
        if mark is not None and pending is not None:
            del pending[mark:]
    elif previous_transaction.parent is None:
        session.info.pop(PENDING_KEY, None)


def discard_pending(session: Session) -> None:
    """Forget queued entries (used when a caller deliberately abandons a transaction)."""
    session.info.pop(PENDING_KEY, None)


def as_details(values: Mapping[str, Any]) -> dict[str, Scalar]:
    """Flatten criteria into audit details: scalars kept, lists joined, everything else as text."""
    out: dict[str, Scalar] = {}
    for key, value in values.items():
        if value is None or isinstance(value, bool | int | str):
            out[key] = value
        elif isinstance(value, list | tuple | set | frozenset):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out
