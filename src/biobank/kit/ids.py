"""Public identifiers: institution-prefixed, allocated in blocks from a counter table."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from biobank.kit.db import Base


class IdCounter(Base):
    """The last number handed out for one kind of public identifier (e.g. SPC, DON)."""

    __tablename__ = "id_counters"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


def allocate(session: Session, kind: str, count: int = 1) -> range:
    """Reserve `count` consecutive numbers for `kind`; the range is final once the transaction commits."""
    if count < 1:
        raise ValueError("count must be positive")
    result = session.execute(
        update(IdCounter).where(IdCounter.kind == kind).values(value=IdCounter.value + count).returning(IdCounter.value)
    ).scalar_one_or_none()
    if result is None:
        session.add(IdCounter(kind=kind, value=count))
        session.flush()
        result = count
    return range(result - count + 1, result + 1)


def format_public_id(institution_code: str, kind: str, number: int) -> str:
    """A globally unique id such as CN-SH-H01:SPC-000123."""
    return f"{institution_code}:{kind}-{number:06d}"


def new_public_ids(session: Session, institution_code: str, kind: str, count: int = 1) -> list[str]:
    """Allocate and format `count` public ids of one kind."""
    return [format_public_id(institution_code, kind, n) for n in allocate(session, kind, count)]


def current_value(session: Session, kind: str) -> int:
    """The last number allocated for `kind` (0 when none)."""
    return session.execute(select(IdCounter.value).where(IdCounter.kind == kind)).scalar_one_or_none() or 0


def new_uuid() -> str:
    """A random UUID string for objects without a natural label."""
    return str(uuid.uuid4())


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)
