"""Queries over clinical records, import batches and quality reports (this package's tables only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from biobank.clinical.models import (
    ClinicalDiagnosis,
    ClinicalImportBatch,
    ClinicalObservation,
    ClinicalOutcome,
    ClinicalTreatment,
    QualityReport,
)

RECORD_MODELS: dict[str, Any] = {
    "diagnoses": ClinicalDiagnosis,
    "observations": ClinicalObservation,
    "treatments": ClinicalTreatment,
    "outcomes": ClinicalOutcome,
}


def donor_ids_with_records() -> Any:
    """A selectable of the donor ids that have any clinical record."""
    return union(*[select(model.donor_id) for model in RECORD_MODELS.values()])


def records_of(session: Session, donor_ids: Sequence[int]) -> dict[str, list[Any]]:
    """Every clinical record of these donors, per kind, in id order."""
    out: dict[str, list[Any]] = {k: [] for k in RECORD_MODELS}
    ids = list(donor_ids)
    for kind, model in RECORD_MODELS.items():
        for i in range(0, len(ids), 900):
            stmt = select(model).where(model.donor_id.in_(ids[i : i + 900])).order_by(model.id)
            out[kind].extend(session.scalars(stmt))
    return out


def diagnoses_of(session: Session, donor_ids: Sequence[int]) -> list[ClinicalDiagnosis]:
    return records_of(session, donor_ids)["diagnoses"] if donor_ids else []


def diagnoses_after(
    session: Session, biobank_ids: Sequence[int] | None, after_id: int, limit: int
) -> list[ClinicalDiagnosis]:
    stmt = select(ClinicalDiagnosis).where(ClinicalDiagnosis.id > after_id)
    if biobank_ids is not None:
        stmt = stmt.where(ClinicalDiagnosis.biobank_id.in_(list(biobank_ids)))
    return list(session.scalars(stmt.order_by(ClinicalDiagnosis.id).limit(limit)))


def diagnosis_by_public_id(session: Session, public_id: str) -> ClinicalDiagnosis | None:
    return session.scalars(select(ClinicalDiagnosis).where(ClinicalDiagnosis.public_id == public_id)).first()


def batches(session: Session, biobank_ids: Sequence[int] | None, limit: int = 50) -> list[ClinicalImportBatch]:
    stmt = select(ClinicalImportBatch).order_by(ClinicalImportBatch.id.desc()).limit(limit)
    if biobank_ids is not None:
        stmt = stmt.where(ClinicalImportBatch.biobank_id.in_(list(biobank_ids)))
    return list(session.scalars(stmt))


def quality_reports(session: Session, collection_id: int, limit: int = 20) -> list[QualityReport]:
    stmt = (
        select(QualityReport)
        .where(QualityReport.collection_id == collection_id)
        .order_by(QualityReport.computed_at.desc(), QualityReport.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def latest_quality(session: Session, collection_ids: Sequence[int]) -> dict[int, QualityReport]:
    out: dict[int, QualityReport] = {}
    if not collection_ids:
        return out
    stmt = (
        select(QualityReport)
        .where(QualityReport.collection_id.in_(list(collection_ids)))
        .order_by(QualityReport.computed_at, QualityReport.id)
    )
    for report in session.scalars(stmt):
        out[report.collection_id] = report
    return out
