"""API schemas of the catalogue: search criteria, collection cards and pages, count queries, edits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from biobank.catalogue.codes import normalise_icd10
from biobank.catalogue.models import AccessRights
from biobank.consent.schemas import PurposeIn
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


class DataAvailable(StrEnum):
    """Kinds of data behind a collection's samples that the catalogue can be searched by."""

    CLINICAL = "clinical"
    OMICS = "omics"
    WSI = "wsi"


DATA_LABELS = {
    DataAvailable.CLINICAL: "Clinical data",
    DataAvailable.OMICS: "Omics data",
    DataAvailable.WSI: "Whole slide images",
}


def _codes(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        code = normalise_icd10(value)
        if code not in out:
            out.append(code)
    return out


class CellCriteria(Schema):
    """Criteria on a specimen's material, diagnosis and its donor's sex and age (facts dimensions)."""

    diagnoses: list[str] = Field(
        default_factory=list, description="ICD-10 codes, blocks or chapters (with descendants)"
    )
    materials: list[SampleType] = Field(default_factory=list)
    sexes: list[Sex] = Field(default_factory=list)
    age_min: int | None = Field(default=None, ge=0, le=150, description="age at collection, years")
    age_max: int | None = Field(default=None, ge=0, le=150)

    @field_validator("diagnoses")
    @classmethod
    def _icd10(cls, value: list[str]) -> list[str]:
        return _codes(value)

    @model_validator(mode="after")
    def _ages(self) -> CellCriteria:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError("age_min must not exceed age_max")
        return self

    @property
    def has_cell_criteria(self) -> bool:
        """Whether any facts dimension is constrained."""
        return (
            bool(self.diagnoses or self.materials or self.sexes)
            or self.age_min is not None
            or (self.age_max is not None)
        )


class SearchCriteria(CellCriteria):
    """The public faceted search."""

    q: str = Field(default="", max_length=200, description="words in names and descriptions")
    storage_temperatures: list[StorageTemperature] = Field(default_factory=list)
    data: list[DataAvailable] = Field(default_factory=list)
    access: list[UseAccessCondition] = Field(default_factory=list)
    biobank: str | None = None
    page: int = Field(default=1, ge=1)
    size: int = Field(default=20, ge=1, le=200)


class CountCriteria(CellCriteria):
    """What the researcher counts."""

    storage_temperatures: list[StorageTemperature] = Field(default_factory=list)
    collections: list[str] = Field(default_factory=list, description="collection public ids (default: all listed)")
    biobank: str | None = None


class CountRequest(Schema):
    """A count query: criteria and the purpose the specimens would be used for."""

    criteria: CountCriteria = Field(default_factory=CountCriteria)
    purpose: PurposeIn


class DisclosedCount(ReadSchema):
    """A published number: `value` is null when the true count is below the floor (see `display`)."""

    value: int | None
    display: str
    suppressed: bool


class FactCell(ReadSchema):
    sex: str
    age_range: str
    sample_type: str
    diagnosis: str
    number_of_samples: int
    number_of_donors: int


class Facet(ReadSchema):
    value: str
    label: str
    collections: int


class CollectionCard(ReadSchema):
    """A collection in search results: public metadata and thresholded numbers only."""

    public_id: str
    url: str
    name: str
    acronym: str
    description: str
    biobank: str
    biobank_name: str
    country: str
    status: str
    sample_types: list[str]
    storage_temperatures: list[str]
    sexes: list[str]
    age_low: int | None
    age_high: int | None
    age_unit: str
    diseases: list[str]
    data_available: list[str]
    use_access_conditions: list[str]
    access_rights: str
    samples: DisclosedCount
    donors: DisclosedCount
    matching_samples: int | None = Field(
        default=None, description="samples in the published facts cells matching the criteria (null: no criteria)"
    )


class SearchResult(ReadSchema):
    items: list[CollectionCard]
    total: int
    page: int
    size: int
    facets: dict[str, list[Facet]]
    policy: dict[str, object]


class CatalogueEntryRead(ReadSchema):
    listed: bool
    licence: str
    access_rights: str
    access_url: str
    contact_email: str
    access_description: str
    keywords: list[str]


class CoverageRead(ReadSchema):
    """Share of a collection's held specimens with one or more omics layers, and per layer."""

    specimens: DisclosedCount
    with_omics: DisclosedCount
    share: float | None
    by_layer: dict[str, DisclosedCount]


class CollectionPage(CollectionCard):
    """A collection's public page: every MIABIS attribute, published facts and how it is shared."""

    sample_source: str
    dataset_types: list[str]
    design: list[str]
    number_of_subjects: int | None
    inclusion_criteria: list[str]
    publications: list[str]
    entry: CatalogueEntryRead
    facts: list[FactCell]
    hidden_cells: int
    facts_refreshed_at: datetime | None
    omics_layers: list[str]
    coverage: CoverageRead | None
    updated_at: datetime


class BiobankPage(ReadSchema):
    public_id: str
    url: str
    code: str
    acronym: str
    name: str
    country: str
    juristic_person: str
    website: str
    contact_email: str
    description: str
    infrastructural_capabilities: list[str]
    organisational_capabilities: list[str]
    bioprocessing_capabilities: list[str]
    quality_standards: list[str]
    collections: list[CollectionCard]


class CollectionCount(ReadSchema):
    collection: str
    name: str
    specimens: DisclosedCount
    donors: DisclosedCount


class CountResult(ReadSchema):
    """Specimens (and their donors) matching the criteria that consent allows for the purpose."""

    specimens: DisclosedCount
    donors: DisclosedCount
    needs_review: DisclosedCount = Field(description="specimens whose consent needs a reviewer for this purpose")
    by_collection: list[CollectionCount]
    purpose: dict[str, object]
    policy: dict[str, object]


class CollectionEdit(Schema):
    """A manager's edit of a collection's MIABIS attributes and of how it is published."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    acronym: str | None = Field(default=None, max_length=32)
    description: str | None = None
    sample_source: SampleSource | None = None
    sexes: list[Sex] | None = None
    age_low: int | None = Field(default=None, ge=0, le=150)
    age_high: int | None = Field(default=None, ge=0, le=150)
    age_unit: AgeUnit | None = None
    dataset_types: list[DatasetType] | None = None
    sample_types: list[SampleType] | None = None
    storage_temperatures: list[StorageTemperature] | None = None
    diseases: list[str] | None = None
    design: list[str] | None = None
    use_access_conditions: list[UseAccessCondition] | None = None
    status: CollectionStatus | None = None
    number_of_subjects: int | None = Field(default=None, ge=0)
    inclusion_criteria: list[str] | None = None
    publications: list[str] | None = None
    # publication in the catalogue
    listed: bool | None = None
    licence: str | None = Field(default=None, max_length=300)
    access_rights: AccessRights | None = None
    access_url: str | None = Field(default=None, max_length=300)
    contact_email: str | None = Field(default=None, max_length=200)
    access_description: str | None = Field(default=None, max_length=4000)
    keywords: list[str] | None = None

    @field_validator("diseases")
    @classmethod
    def _icd10(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [icd10_code(v) for v in value]

    @field_validator("licence", "access_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("give an http(s) URL")
        return value


ENTRY_FIELDS = frozenset(
    {"listed", "licence", "access_rights", "access_url", "contact_email", "access_description", "keywords"}
)


class BiobankEdit(Schema):
    """A manager's edit of a biobank's MIABIS attributes."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    acronym: str | None = Field(default=None, max_length=32)
    url: str | None = Field(default=None, max_length=300)
    juristic_person: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=200)
    description: str | None = None
    infrastructural_capabilities: list[str] | None = None
    organisational_capabilities: list[str] | None = None
    bioprocessing_capabilities: list[str] | None = None
    quality_standards: list[QualityStandard] | None = None


class RefreshReport(ReadSchema):
    collections: int
    cells: int
    seconds: float
