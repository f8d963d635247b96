"""Queries over omics datasets, files and specimen links (this package's tables only)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.omics.models import OmicsDataset, OmicsFile, OmicsSpecimen


def visible(session: Session, biobank_ids: Sequence[int] | None) -> list[OmicsDataset]:
    stmt = select(OmicsDataset).order_by(OmicsDataset.created_at.desc(), OmicsDataset.id.desc())
    if biobank_ids is not None:
        stmt = stmt.where(OmicsDataset.biobank_id.in_(list(biobank_ids)))
    return list(session.scalars(stmt))


def by_public_id(session: Session, public_id: str) -> OmicsDataset | None:
    return session.scalars(select(OmicsDataset).where(OmicsDataset.public_id == public_id)).first()


def files_of(session: Session, dataset_ids: Sequence[int]) -> dict[int, list[OmicsFile]]:
    out: dict[int, list[OmicsFile]] = {i: [] for i in dataset_ids}
    if dataset_ids:
        stmt = select(OmicsFile).where(OmicsFile.dataset_id.in_(list(dataset_ids))).order_by(OmicsFile.id)
        for f in session.scalars(stmt):
            out[f.dataset_id].append(f)
    return out


def links_of(session: Session, dataset_id: int) -> list[OmicsSpecimen]:
    stmt = select(OmicsSpecimen).where(OmicsSpecimen.dataset_id == dataset_id).order_by(OmicsSpecimen.id)
    return list(session.scalars(stmt))


def link_counts(session: Session, dataset_ids: Sequence[int]) -> dict[int, int]:
    if not dataset_ids:
        return {}
    stmt = (
        select(OmicsSpecimen.dataset_id, func.count())
        .where(OmicsSpecimen.dataset_id.in_(list(dataset_ids)))
        .group_by(OmicsSpecimen.dataset_id)
    )
    return {d: int(n) for d, n in session.execute(stmt)}


def linked_specimen_ids(session: Session, dataset_id: int) -> set[int]:
    return set(session.scalars(select(OmicsSpecimen.specimen_id).where(OmicsSpecimen.dataset_id == dataset_id)))


def file_by_uri(session: Session, dataset_id: int, uri: str) -> OmicsFile | None:
    stmt = select(OmicsFile).where(OmicsFile.dataset_id == dataset_id, OmicsFile.uri == uri)
    return session.scalars(stmt).first()


def coverage(session: Session, collection_ids: Sequence[int] | None) -> dict[int, tuple[int, dict[str, int]]]:
    """Per collection: distinct specimens with any layer, and distinct specimens per layer."""
    total = select(OmicsSpecimen.collection_id, func.count(OmicsSpecimen.specimen_id.distinct())).group_by(
        OmicsSpecimen.collection_id
    )
    per_kind = select(
        OmicsSpecimen.collection_id, OmicsSpecimen.kind, func.count(OmicsSpecimen.specimen_id.distinct())
    ).group_by(OmicsSpecimen.collection_id, OmicsSpecimen.kind)
    if collection_ids is not None:
        total = total.where(OmicsSpecimen.collection_id.in_(list(collection_ids)))
        per_kind = per_kind.where(OmicsSpecimen.collection_id.in_(list(collection_ids)))
    out: dict[int, tuple[int, dict[str, int]]] = {cid: (int(n), {}) for cid, n in session.execute(total)}
    for cid, kind, n in session.execute(per_kind):
        out[cid][1][kind] = int(n)
    return out


def datasets_by_collection(session: Session, collection_ids: Sequence[int]) -> dict[int, list[OmicsDataset]]:
    """Datasets with at least one specimen of each collection."""
    if not collection_ids:
        return {}
    pairs = (
        select(OmicsSpecimen.collection_id, OmicsSpecimen.dataset_id)
        .where(OmicsSpecimen.collection_id.in_(list(collection_ids)))
        .distinct()
    )
    rows = session.execute(pairs).all()
    datasets = {d.id: d for d in session.scalars(select(OmicsDataset).where(OmicsDataset.id.in_({r[1] for r in rows})))}
    out: dict[int, list[OmicsDataset]] = {}
    for cid, did in rows:
        out.setdefault(cid, []).append(datasets[did])
    return out
