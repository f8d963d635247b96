"""audit.record(): queue an entry in the caller's transaction; it is appended when that commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

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

    pending: list[PendingEntry] = session.info.setdefault(PENDING_KEY, [])
    pending.append(
        PendingEntry(
            at=utcnow(),
            actor=actor.public_id if actor is not None else "anonymous",
            institution=institution or (actor.institution_code if actor else "") or get_settings().institution_code,
            action=action,
            resource_type=resource_type,
            resource_ids=[str(r) for r in resource_ids],
            purpose=purpose,
            outcome=outcome,
            client_hash=client_hash if client_hash is not None else (actor.client_hash if actor else None),
            details={k: v for k, v in (details or {}).items()},
        )
    )


def pending_entries(session: Session) -> list[PendingEntry]:
    """Entries queued in this session's open transaction."""
    return list(session.info.get(PENDING_KEY, []))


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending: list[PendingEntry] | None = session.info.pop(PENDING_KEY, None)
    if pending:
        from biobank.audit.log import append_entries

        append_entries(session, pending)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
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
