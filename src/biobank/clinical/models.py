"""Clinical records of donors (diagnoses, observations, treatments, outcomes), import batches and
stored data-quality reports.

Every record carries a `source_key`, unique per donor: the same source row or FHIR resource always
yields the same key, which is what makes a re-import idempotent (unchanged records are left alone,
changed ones updated, nothing duplicated).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class TreatmentKind(StrEnum):
    SURGERY = "surgery"
    CHEMOTHERAPY = "chemotherapy"
    RADIOTHERAPY = "radiotherapy"
    IMMUNOTHERAPY = "immunotherapy"
    TARGETED = "targeted therapy"
    HORMONE = "hormone therapy"
    TRANSPLANT = "transplant"
    OTHER = "other"


class VitalStatus(StrEnum):
    ALIVE = "alive"
    DECEASED = "deceased"
    UNKNOWN = "unknown"


class DiseaseStatus(StrEnum):
    NO_EVIDENCE = "no evidence of disease"
    COMPLETE_REMISSION = "complete remission"
    PARTIAL_REMISSION = "partial remission"
    STABLE = "stable disease"
    PROGRESSION = "progressive disease"
    RECURRENCE = "recurrence"
    UNKNOWN = "unknown"


class ImportKind(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    FHIR = "fhir"


class ClinicalDiagnosis(Base):
    """A diagnosis: ICD-10 (WHO), ICD-O-3 topography and morphology, TNM and stage, date."""

    __tablename__ = "clinical_diagnoses"
    __table_args__ = (UniqueConstraint("donor_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)  # the FHIR Condition id
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"))
    source_key: Mapped[str] = mapped_column(String(200))
    icd10: Mapped[str | None] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text, default="")
    topography: Mapped[str | None] = mapped_column(String(8))
    morphology: Mapped[str | None] = mapped_column(String(10))
    tnm_t: Mapped[str | None] = mapped_column(String(8))
    tnm_n: Mapped[str | None] = mapped_column(String(8))
    tnm_m: Mapped[str | None] = mapped_column(String(8))
    stage: Mapped[str | None] = mapped_column(String(8))
    diagnosed_on: Mapped[date | None] = mapped_column(Date)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_import_batches.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClinicalObservation(Base):
    """A measured or coded observation (LOINC or another system), its value converted to the target unit."""

    __tablename__ = "clinical_observations"
    __table_args__ = (UniqueConstraint("donor_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"))
    specimen_id: Mapped[int | None] = mapped_column(ForeignKey("specimens.id", ondelete="SET NULL"))
    source_key: Mapped[str] = mapped_column(String(200))
    system: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(40))
    display: Mapped[str] = mapped_column(String(200), default="")
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(20), default="")
    observed_on: Mapped[date | None] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_import_batches.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClinicalTreatment(Base):
    """A treatment and when it started and ended."""

    __tablename__ = "clinical_treatments"
    __table_args__ = (UniqueConstraint("donor_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"))
    source_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(String(200), default="")
    started_on: Mapped[date | None] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_import_batches.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClinicalOutcome(Base):
    """Follow-up: vital status and disease status at a date, and the date of death."""

    __tablename__ = "clinical_outcomes"
    __table_args__ = (UniqueConstraint("donor_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"))
    source_key: Mapped[str] = mapped_column(String(200))
    vital_status: Mapped[str | None] = mapped_column(String(16))
    disease_status: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(200), default="")
    followed_up_on: Mapped[date | None] = mapped_column(Date)
    died_on: Mapped[date | None] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_import_batches.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClinicalImportBatch(Base):
    """One committed import: what file, by whom, and how many records it created, updated or left alone."""

    __tablename__ = "clinical_import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    kind: Mapped[ImportKind] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(200), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    mapping_sha256: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QualityReport(Base):
    """A data quality report of a collection's clinical data, kept with its date (valuation reads them)."""

    __tablename__ = "clinical_quality_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    computed_by: Mapped[str] = mapped_column(String(64))
    donors: Mapped[int] = mapped_column(Integer)
    minimum_dataset: Mapped[list[str]] = mapped_column(JSON, default=list)
    completeness: Mapped[float | None] = mapped_column(Float)
    code_validity: Mapped[float | None] = mapped_column(Float)
    consistency: Mapped[float | None] = mapped_column(Float)
    coded_share: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
