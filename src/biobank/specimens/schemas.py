"""API schemas of specimens, their events, QC results, aliquoting and pooling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field, field_validator

from biobank.kit.schemas import ReadSchema, Schema
from biobank.kit.vocab import SampleType, StorageTemperature
from biobank.specimens.models import ConcentrationUnit, Lineage, QuantityUnit, Status


class Placement(Schema):
    box: str = Field(description="box public id")
    position: str = Field(description='position label, e.g. "A1"')


class SpecimenCreate(Schema):
    barcode: str = Field(min_length=3, max_length=64)
    collection: str = Field(description="collection public id")
    donor: str | None = Field(default=None, description="donor public id")
    sample_type: SampleType
    detailed_type: str = Field(default="", max_length=100)
    sprec_code: str | None = Field(default=None, description="derived from the times when omitted")
    container: str | None = Field(default=None, max_length=8, description="SPREC primary container code, e.g. SST")
    anatomical_site: str | None = Field(default=None, description="ICD-O-3 topography, e.g. C34.1")
    diagnosis: str | None = Field(default=None, description="ICD-10")
    collected_at: AwareDatetime | None = None
    received_at: AwareDatetime | None = None
    processed_at: AwareDatetime | None = None
    frozen_at: AwareDatetime | None = None
    quantity: float | None = Field(default=None, ge=0)
    quantity_unit: QuantityUnit | None = None
    concentration: float | None = Field(default=None, ge=0)
    concentration_unit: ConcentrationUnit | None = None
    storage_temperature: StorageTemperature | None = None
    status: Status = Status.COLLECTED
    placement: Placement | None = None
    notes: str = ""


class SpecimenUpdate(Schema):
    detailed_type: str | None = Field(default=None, max_length=100)
    anatomical_site: str | None = None
    diagnosis: str | None = None
    sprec_code: str | None = None
    container: str | None = None
    collected_at: AwareDatetime | None = None
    received_at: AwareDatetime | None = None
    processed_at: AwareDatetime | None = None
    frozen_at: AwareDatetime | None = None
    quantity: float | None = Field(default=None, ge=0)
    quantity_unit: QuantityUnit | None = None
    concentration: float | None = Field(default=None, ge=0)
    concentration_unit: ConcentrationUnit | None = None
    storage_temperature: StorageTemperature | None = None
    notes: str | None = None
    reason: str = Field(default="", max_length=500)


class StatusChange(Schema):
    status: Status
    reason: str = Field(default="", max_length=500)


class MoveRequest(Schema):
    box: str | None = Field(default=None, description="box public id; null takes it out of storage")
    position: str | None = None
    reason: str = Field(default="", max_length=500)


class CheckRequest(Schema):
    reason: str = Field(default="", max_length=500)
    thawed: bool = Field(default=False, description="check-in: the specimen was thawed while out")


class AliquotRequest(Schema):
    """Split into `count` children of `quantity` each, placed from `start` in `box` (row by row)."""

    count: int = Field(ge=1, le=500)
    quantity: float = Field(gt=0)
    quantity_unit: QuantityUnit
    lineage: Lineage = Lineage.ALIQUOT
    sample_type: SampleType | None = Field(default=None, description="derivatives: the new material, e.g. DNA")
    detailed_type: str = ""
    barcodes: list[str] | None = Field(default=None, description="one per child; generated when omitted")
    box: str | None = None
    start: str | None = Field(default=None, description='first position, e.g. "A1"')
    concentration: float | None = Field(default=None, ge=0)
    concentration_unit: ConcentrationUnit | None = None
    reason: str = Field(default="", max_length=500)

    @field_validator("lineage")
    @classmethod
    def _child_lineage(cls, value: Lineage) -> Lineage:
        if value not in (Lineage.ALIQUOT, Lineage.DERIVATIVE):
            raise ValueError("aliquoting makes aliquots or derivatives")
        return value


class PoolRequest(Schema):
    sources: list[str] = Field(min_length=2, description="public ids or barcodes of the specimens pooled")
    quantity_each: float = Field(gt=0)
    quantity_unit: QuantityUnit
    barcode: str
    collection: str
    sample_type: SampleType | None = None
    box: str | None = None
    position: str | None = None
    reason: str = Field(default="", max_length=500)


class QCCreate(Schema):
    test: str = Field(min_length=1, max_length=64, description="e.g. RIN, DIN, A260/280, haemolysis, sterility")
    method: str = Field(default="", max_length=100)
    value: float | None = None
    value_text: str = Field(default="", max_length=100)
    unit: str = Field(default="", max_length=20)
    passed: bool
    tested_at: AwareDatetime
    notes: str = ""


class QCRead(ReadSchema):
    id: int
    test: str
    method: str
    value: float | None
    value_text: str
    unit: str
    passed: bool
    tested_at: datetime
    notes: str


class EventRead(ReadSchema):
    at: datetime
    actor: str
    kind: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]


class Location(ReadSchema):
    box: str
    path: str
    position: str


class SpecimenRead(ReadSchema):
    public_id: str
    barcode: str
    biobank: str
    collection: str
    donor: str | None
    parent: str | None
    lineage: Lineage
    sample_type: str
    detailed_type: str
    sprec_code: str | None
    container: str | None
    anatomical_site: str | None
    diagnosis: str | None
    collected_at: datetime | None
    received_at: datetime | None
    processed_at: datetime | None
    frozen_at: datetime | None
    quantity: float | None
    quantity_unit: str | None
    concentration: float | None
    concentration_unit: str | None
    freeze_thaw_count: int
    storage_temperature: str | None
    status: Status
    location: Location | None
    checked_out: bool
    notes: str
    created_at: datetime
    updated_at: datetime


class SpecimenBrief(ReadSchema):
    """What a box cell or a list row needs."""

    id: int
    public_id: str
    barcode: str
    sample_type: str
    status: Status
    row: int | None
    col: int | None


class PassRate(ReadSchema):
    collection: str
    tested: int
    passed: int
    rate: float | None
