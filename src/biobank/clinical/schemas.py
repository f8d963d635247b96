"""API schemas of clinical imports, records and data quality reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from biobank.kit.schemas import ReadSchema, Schema


class ImportIssue(ReadSchema):
    """One problem: the row (tables) and the column or JSON path it is about."""

    row: int | None = None
    loc: list[str | int]
    message: str
    value: Any = None


class ColumnReport(ReadSchema):
    """What one mapped source column held."""

    source: str
    target: str
    filled: int
    empty: int
    unmapped: dict[str, int] = Field(default_factory=dict, description="values not in the code map (top 20)")


class RecordCounts(ReadSchema):
    create: int
    update: int
    unchanged: int


class ImportReport(ReadSchema):
    """The outcome of a dry run or an import."""

    dry_run: bool
    committed: bool
    kind: str
    rows: int = Field(description="data rows (tables) or entries (FHIR)")
    donors: int
    errors: list[ImportIssue]
    error_count: int
    columns: list[ColumnReport] = Field(default_factory=list)
    records: dict[str, RecordCounts]
    ignored: dict[str, int] = Field(default_factory=dict, description="FHIR resource types not imported")
    batch: str | None = None
    collections_refreshed: int = 0
    seconds: float


class DiagnosisRead(ReadSchema):
    icd10: str | None
    text: str
    topography: str | None
    morphology: str | None
    tnm_t: str | None
    tnm_n: str | None
    tnm_m: str | None
    stage: str | None
    diagnosed_on: date | None
    is_primary: bool


class ObservationRead(ReadSchema):
    system: str
    code: str
    display: str
    value_number: float | None
    value_text: str
    unit: str
    observed_on: date | None


class TreatmentRead(ReadSchema):
    kind: str | None
    text: str
    started_on: date | None
    ended_on: date | None


class OutcomeRead(ReadSchema):
    vital_status: str | None
    disease_status: str | None
    text: str
    followed_up_on: date | None
    died_on: date | None


class DonorClinicalRead(ReadSchema):
    donor: str
    diagnoses: list[DiagnosisRead]
    observations: list[ObservationRead]
    treatments: list[TreatmentRead]
    outcomes: list[OutcomeRead]


class QualityRequest(Schema):
    minimum_dataset: list[str] | None = Field(
        default=None, description="fields of the minimum clinical dataset (default: the node's setting)"
    )


class QualityReportRead(ReadSchema):
    public_id: str
    collection: str
    computed_at: datetime
    computed_by: str
    donors: int
    minimum_dataset: list[str]
    completeness: float | None
    code_validity: float | None
    consistency: float | None
    coded_share: float | None
    details: dict[str, Any]


class BatchRead(ReadSchema):
    public_id: str
    kind: str
    filename: str
    sha256: str
    rows: int
    created: int
    updated: int
    unchanged: int
    imported_by: str
    imported_at: datetime
