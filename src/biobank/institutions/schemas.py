"""API schemas of institutions, biobanks and collections (MIABIS attribute names)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator, model_validator

from biobank.kit.schemas import ReadSchema, Schema
from biobank.kit.validation import icd10_code
from biobank.kit.vocab import (
    AgeUnit,
    CollectionStatus,
    DatasetType,
    QualityStandard,
    SampleSource,
    SampleType,
    Sex,
    StorageTemperature,
    UseAccessCondition,
)


class InstitutionRead(ReadSchema):
    code: str
    name: str
    country: str
    city: str
    role: str
    is_local: bool


class BiobankCreate(Schema):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=200)
    acronym: str = Field(default="", max_length=32)
    url: str = Field(default="", max_length=300)
    juristic_person: str = Field(default="", max_length=200)
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")
    contact_email: str = Field(default="", max_length=200)
    description: str = ""
    infrastructural_capabilities: list[str] = Field(default_factory=list)
    organisational_capabilities: list[str] = Field(default_factory=list)
    bioprocessing_capabilities: list[str] = Field(default_factory=list)
    quality_standards: list[QualityStandard] = Field(default_factory=list)


class BiobankUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    acronym: str | None = Field(default=None, max_length=32)
    url: str | None = Field(default=None, max_length=300)
    juristic_person: str | None = None
    contact_email: str | None = None
    description: str | None = None
    quality_standards: list[QualityStandard] | None = None


class BiobankRead(ReadSchema):
    public_id: str
    code: str
    acronym: str
    name: str
    url: str
    juristic_person: str
    country: str
    contact_email: str
    description: str
    infrastructural_capabilities: list[str]
    organisational_capabilities: list[str]
    bioprocessing_capabilities: list[str]
    quality_standards: list[str]


class CollectionBase(Schema):
    name: str = Field(min_length=1, max_length=200)
    acronym: str = Field(default="", max_length=32)
    description: str = ""
    sample_source: SampleSource = SampleSource.HUMAN
    sexes: list[Sex] = Field(default_factory=list)
    age_low: int | None = Field(default=None, ge=0, le=150)
    age_high: int | None = Field(default=None, ge=0, le=150)
    age_unit: AgeUnit = AgeUnit.YEARS
    dataset_types: list[DatasetType] = Field(default_factory=list)
    sample_types: list[SampleType] = Field(default_factory=list)
    storage_temperatures: list[StorageTemperature] = Field(default_factory=list)
    diseases: list[str] = Field(default_factory=list, description="ICD-10 codes")
    design: list[str] = Field(default_factory=list)
    use_access_conditions: list[UseAccessCondition] = Field(default_factory=list)
    status: CollectionStatus = CollectionStatus.ACTIVE
    number_of_subjects: int | None = Field(default=None, ge=0)
    inclusion_criteria: list[str] = Field(default_factory=list)
    publications: list[str] = Field(default_factory=list)

    @field_validator("diseases")
    @classmethod
    def _icd10(cls, value: list[str]) -> list[str]:
        return [icd10_code(v) for v in value]

    @model_validator(mode="after")
    def _ages(self) -> CollectionBase:
        if self.age_low is not None and self.age_high is not None and self.age_low > self.age_high:
            raise ValueError("age_low must not exceed age_high")
        return self


class CollectionCreate(CollectionBase):
    biobank: str = Field(description="biobank code")


class CollectionUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    acronym: str | None = None
    description: str | None = None
    status: CollectionStatus | None = None
    diseases: list[str] | None = None
    use_access_conditions: list[UseAccessCondition] | None = None
    dataset_types: list[DatasetType] | None = None
    number_of_subjects: int | None = Field(default=None, ge=0)

    @field_validator("diseases")
    @classmethod
    def _icd10(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [icd10_code(v) for v in value]


class CollectionRead(ReadSchema):
    public_id: str
    biobank: str
    name: str
    acronym: str
    description: str
    sample_source: str
    sexes: list[str]
    age_low: int | None
    age_high: int | None
    age_unit: str
    dataset_types: list[str]
    sample_types: list[str]
    storage_temperatures: list[str]
    diseases: list[str]
    design: list[str]
    use_access_conditions: list[str]
    status: str
    number_of_subjects: int | None
    inclusion_criteria: list[str]
    publications: list[str]
    created_at: datetime
    updated_at: datetime
