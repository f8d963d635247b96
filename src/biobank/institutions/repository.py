"""Queries over institutions, biobanks and collections (catalogue metadata, readable by any member)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from biobank.institutions.models import Biobank, Collection, Institution


def local_institution(session: Session) -> Institution | None:
    return session.scalars(select(Institution).where(Institution.is_local)).first()


def institution_by_code(session: Session, code: str) -> Institution | None:
    return session.scalars(select(Institution).where(Institution.code == code)).first()


def list_institutions(session: Session) -> list[Institution]:
    return list(session.scalars(select(Institution).order_by(Institution.is_local.desc(), Institution.code)))


def biobank_by_code(session: Session, code: str) -> Biobank | None:
    return session.scalars(select(Biobank).where((Biobank.code == code) | (Biobank.public_id == code))).first()


def biobanks(session: Session, institution_id: int | None = None) -> list[Biobank]:
    stmt = select(Biobank).order_by(Biobank.code)
    if institution_id is not None:
        stmt = stmt.where(Biobank.institution_id == institution_id)
    return list(session.scalars(stmt))


def biobanks_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Biobank]:
    if not ids:
        return {}
    return {b.id: b for b in session.scalars(select(Biobank).where(Biobank.id.in_(ids)))}


def collections_stmt(biobank_id: int | None = None) -> Select[Collection]:
    stmt = select(Collection)
    if biobank_id is not None:
        stmt = stmt.where(Collection.biobank_id == biobank_id)
    return stmt


def collection_by_public_id(session: Session, public_id: str) -> Collection | None:
    return session.scalars(select(Collection).where(Collection.public_id == public_id)).first()


def collections_by_public_ids(session: Session, public_ids: Sequence[str]) -> dict[str, Collection]:
    if not public_ids:
        return {}
    rows = session.scalars(select(Collection).where(Collection.public_id.in_(list(public_ids))))
    return {c.public_id: c for c in rows}


def collections_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Collection]:
    if not ids:
        return {}
    return {c.id: c for c in session.scalars(select(Collection).where(Collection.id.in_(list(ids))))}


def collection_refs(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, int, str]]:
    """Collection id -> (public id, biobank id, biobank code): one join, columns only."""
    if not ids:
        return {}
    stmt = (
        select(Collection.id, Collection.public_id, Biobank.id, Biobank.code)
        .join(Biobank, Biobank.id == Collection.biobank_id)
        .where(Collection.id.in_(list(ids)))
    )
    return {cid: (public_id, biobank_id, code) for cid, public_id, biobank_id, code in session.execute(stmt)}
