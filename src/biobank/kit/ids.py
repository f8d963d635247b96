"""Public identifiers: institution-prefixed, allocated in blocks from a counter table."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from biobank.kit.db import Base


class IdCounter(Base):
    """The last number handed out for one kind of public identifier (e.g. SPC, DON)."""

    __tablename__ = "id_counters"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


def allocate(session: Session, kind: str, count: int = 1) -> range:
    """Reserve `count` consecutive numbers for `kind`; the range is final once the transaction commits.

    One upsert, so the first allocations of a new kind racing each other do not collide.
    """
    if count < 1:
        raise ValueError("count must be positive")
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert_fn(IdCounter).values(kind=kind, value=count)
    stmt = stmt.on_conflict_do_update(index_elements=[IdCounter.kind], set_={"value": IdCounter.value + count})
    last: int = session.execute(stmt.returning(IdCounter.value)).scalar_one()
    return range(last - count + 1, last + 1)


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
