"""Queries over specimens, their events and QC, always starting from what the principal may see."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Integer, Select, cast, false, func, or_, select
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.specimens.models import PoolSource, QCResult, Specimen, SpecimenEvent


def visible(principal: Principal) -> Select[Specimen]:
    """Specimens of the principal's biobanks (all for node admins)."""
    stmt = select(Specimen)
    ids = principal.visible_biobank_ids()
    if ids is not None:
        stmt = stmt.where(Specimen.biobank_id.in_(ids))
    return stmt


def in_collection(collection_id: int) -> Select[Specimen]:
    """Specimens of one collection; only for callers that checked the collection's biobank is visible."""
    return select(Specimen).where(Specimen.collection_id == collection_id)


def nothing() -> Select[Specimen]:
    """An empty selection (a filter on something the principal may not see)."""
    return select(Specimen).where(false())


def by_ref(session: Session, principal: Principal, ref: str) -> Specimen | None:
    """A visible specimen by public id or barcode."""
    column = Specimen.public_id if ":" in ref else Specimen.barcode
    return session.scalars(visible(principal).where(column == ref)).first()


def by_refs(session: Session, principal: Principal, refs: Sequence[str]) -> dict[str, Specimen]:
    """Visible specimens by public id or barcode, keyed by the ref given."""
    if not refs:
        return {}
    rows = session.scalars(visible(principal).where(or_(Specimen.public_id.in_(refs), Specimen.barcode.in_(refs))))
    out: dict[str, Specimen] = {}
    for s in rows:
        out[s.public_id] = s
        out[s.barcode] = s
    return {r: out[r] for r in refs if r in out}


def barcodes_taken(session: Session, barcodes: Sequence[str]) -> set[str]:
    """Which of these barcodes exist anywhere on this node (barcodes are unique node-wide)."""
    if not barcodes:
        return set()
    taken: set[str] = set()
    chunk = 900
    for i in range(0, len(barcodes), chunk):
        part = list(barcodes[i : i + chunk])
        taken.update(session.scalars(select(Specimen.barcode).where(Specimen.barcode.in_(part))))
    return taken


def events_of(session: Session, specimen_id: int) -> list[SpecimenEvent]:
    stmt = select(SpecimenEvent).where(SpecimenEvent.specimen_id == specimen_id).order_by(SpecimenEvent.id)
    return list(session.scalars(stmt))


def qc_of(session: Session, specimen_id: int) -> list[QCResult]:
    stmt = select(QCResult).where(QCResult.specimen_id == specimen_id).order_by(QCResult.tested_at, QCResult.id)
    return list(session.scalars(stmt))


def children_of(session: Session, specimen_id: int) -> list[Specimen]:
    return list(session.scalars(select(Specimen).where(Specimen.parent_id == specimen_id).order_by(Specimen.id)))


def pool_sources_of(session: Session, pool_id: int) -> list[Specimen]:
    stmt = select(Specimen).join(PoolSource, PoolSource.source_id == Specimen.id).where(PoolSource.pool_id == pool_id)
    return list(session.scalars(stmt.order_by(Specimen.id)))


def in_box(session: Session, box_id: int) -> list[Specimen]:
    return list(session.scalars(select(Specimen).where(Specimen.box_id == box_id).order_by(Specimen.row, Specimen.col)))


def public_ids_by_id(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Specimen.id, Specimen.public_id).where(Specimen.id.in_(list(ids)))).all())


def pass_rates(session: Session, collection_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per collection: (specimens with a QC result, of which all results passed)."""
    if not collection_ids:
        return {}
    per_specimen = (
        select(Specimen.collection_id.label("cid"), func.min(cast(QCResult.passed, Integer)).label("ok"))
        .join(QCResult, QCResult.specimen_id == Specimen.id)
        .where(Specimen.collection_id.in_(list(collection_ids)))
        .group_by(Specimen.id, Specimen.collection_id)
        .subquery()
    )
    rows = session.execute(
        select(per_specimen.c.cid, func.count(), func.sum(per_specimen.c.ok)).group_by(per_specimen.c.cid)
    )
    return {cid: (int(tested), int(ok or 0)) for cid, tested, ok in rows}


def count_by_status(session: Session, principal: Principal) -> dict[str, int]:
    stmt = visible(principal).with_only_columns(Specimen.status, func.count()).group_by(Specimen.status)
    return {status: n for status, n in session.execute(stmt)}


def count_by_type(session: Session, principal: Principal) -> dict[str, int]:
    """Visible specimens per material type, most common first."""
    stmt = (
        visible(principal)
        .with_only_columns(Specimen.sample_type, func.count())
        .group_by(Specimen.sample_type)
        .order_by(func.count().desc(), Specimen.sample_type)
    )
    return {str(sample_type): int(n) for sample_type, n in session.execute(stmt)}
