"""Enqueue chain writes in the caller's transaction; the publisher sends them after commit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.kit.db import utcnow
from biobank.ledger.models import LedgerOutbox, OutboxStatus


def enqueue(session: Session, kind: str, payload: Mapping[str, Any], *, dedupe_key: str) -> LedgerOutbox:
    """Queue one chain write (`kind` names the contract call, see ledger/operations.py); idempotent by key.

    The payload holds only what goes on chain: hashes, commitments, codes, numbers. Never personal data.
    """
    existing = session.scalars(select(LedgerOutbox).where(LedgerOutbox.dedupe_key == dedupe_key)).first()
    if existing is not None:
        return existing
    row = LedgerOutbox(
        kind=kind, payload=dict(payload), dedupe_key=dedupe_key, status=OutboxStatus.PENDING, next_attempt_at=utcnow()
    )
    session.add(row)
    session.flush()
    return row
