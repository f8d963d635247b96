"""Controlled vocabularies shared across packages (MIABIS Core 3 / Sample 1.1, SPREC storage).

Values are the standard's own terms, exactly as in STANDARDS.md, so exports need no translation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class Sex(StrEnum):
    MALE = "Male"
    FEMALE = "Female"
    UNKNOWN = "Unknown"
    UNDIFFERENTIATED = "Undifferentiated"
    NOT_APPLICABLE = "Not applicable"


class AgeUnit(StrEnum):
    YEARS = "Years"
    MONTHS = "Months"
    WEEKS = "Weeks"
    DAYS = "Days"
    GESTATIONAL_WEEKS = "Gestational weeks"


class SampleSource(StrEnum):
    HUMAN = "Human"
    ANIMAL = "Animal"
    ENVIRONMENT = "Environment"


class SampleType(StrEnum):
    """MIABIS material types (23)."""

    BLOOD = "Blood"
    BUFFY_COAT = "Buffy coat"
    CANCER_CELL_LINES = "Cancer cell lines"
    DIGITAL_SAMPLE = "Digital sample"
    DNA = "DNA"
    ENTIRE_BODY_ORGAN = "Entire body organ"
    FAECES = "Faeces"
    EMBRYO_FETAL_TISSUE = "Embryo/fetal tissue"
    IMMORTALIZED_CELL_LINES = "Immortalized cell lines"
    ISOLATED_MICROBES = "Isolated microbes"
    OTHER_BODY_FLUID = "Other body fluid"
    PLASMA = "Plasma"
    PRIMARY_CELLS = "Primary cells"
    POST_MORTEM_TISSUE = "Post-mortem tissue"
    RNA = "RNA"
    SALIVA = "Saliva"
    SERUM = "Serum"
    ENVIRONMENT_FOOD = "Environment/food specimen"
    SWAB = "Swab"
    TISSUE_FROZEN = "Tissue (Frozen)"
    TISSUE_FFPE = "Tissue (FFPE)"
    URINE = "Urine"
    OTHER = "Other"


class StorageTemperature(StrEnum):
    """MIABIS storage temperatures (from SPREC)."""

    RT = "RT"
    FRIDGE = "2 °C to 10 °C"
    MINUS_18_TO_35 = "−18 °C to −35 °C"
    MINUS_60_TO_85 = "−60 °C to −85 °C"
    BELOW_135 = "below −135 °C"
    LN2_VAPOUR = "LN2 vapour phase"
    LN2_LIQUID = "LN2 liquid phase"
    OTHER = "Other"


# Spellings people type in files, mapped to the standard term.
STORAGE_TEMPERATURE_ALIASES: dict[str, StorageTemperature] = {
    "room temperature": StorageTemperature.RT,
    "2 to 10": StorageTemperature.FRIDGE,
    "2c to 10c": StorageTemperature.FRIDGE,
    "-18 to -35": StorageTemperature.MINUS_18_TO_35,
    "-18 °c to -35 °c": StorageTemperature.MINUS_18_TO_35,
    "-20": StorageTemperature.MINUS_18_TO_35,
    "-60 to -85": StorageTemperature.MINUS_60_TO_85,
    "-60 °c to -85 °c": StorageTemperature.MINUS_60_TO_85,
    "-80": StorageTemperature.MINUS_60_TO_85,
    "below -135": StorageTemperature.BELOW_135,
    "below -135 °c": StorageTemperature.BELOW_135,
    "ln2 vapour": StorageTemperature.LN2_VAPOUR,
    "ln2 vapor phase": StorageTemperature.LN2_VAPOUR,
    "ln2 liquid": StorageTemperature.LN2_LIQUID,
}


class DatasetType(StrEnum):
    LIFESTYLE = "Lifestyle"
    ENVIRONMENTAL = "Environmental"
    PHYSIOLOGICAL = "Physiological"
    BIOCHEMICAL = "Biochemical"
    CLINICAL = "Clinical"
    PSYCHOLOGICAL = "Psychological"
    GENOMIC = "Genomic"
    PROTEOMIC = "Proteomic"
    METABOLOMIC = "Metabolomic"
    BODY_IMAGE = "Body (radiological) image"
    WHOLE_SLIDE_IMAGE = "Whole slide image"
    PHOTO_IMAGE = "Photo image"
    GENEALOGICAL_RECORDS = "Genealogical records"
    OTHER = "Other"


class UseAccessCondition(StrEnum):
    COMMERCIAL_USE = "Commercial use"
    COLLABORATION = "Collaboration"
    SPECIFIC_RESEARCH_USE = "Specific research use"
    GENETIC_DATA_USE = "Genetic data use"
    OUTSIDE_EU_ACCESS = "Outside EU access"
    XENOGRAFT = "Xenograft"
    OTHER_ANIMAL_WORK = "Other animal work"
    OTHER = "Other"


class QualityStandard(StrEnum):
    ISO_20387 = "ISO 20387"
    ISO_9001 = "ISO 9001"
    OTHER = "Other"


class CollectionStatus(StrEnum):
    ACTIVE = "Active"
    COMPLETED = "Completed"
    PLANNED = "Planned"
    CLOSED = "Closed"


def normalise_storage_temperature(text: str) -> StorageTemperature:
    """The standard term for a typed temperature ('-80', 'LN2 vapour', or the term itself)."""
    cleaned = text.strip()
    for member in StorageTemperature:
        if cleaned.casefold() == member.value.casefold():
            return member
    ascii_form = cleaned.replace("−", "-").casefold()
    for member in StorageTemperature:
        if ascii_form == member.value.replace("−", "-").casefold():
            return member
    alias = STORAGE_TEMPERATURE_ALIASES.get(ascii_form)
    if alias is None:
        raise ValueError(
            f"unknown storage temperature {text!r}; use one of: " + "; ".join(t.value for t in StorageTemperature)
        )
    return alias


def enum_by_value(enum: type[E], text: str) -> E:
    """Look an enum member up by its value, case-insensitively; ValueError lists the allowed values."""
    cleaned = text.strip().casefold()
    for member in enum:
        if member.value.casefold() == cleaned:
            return member
    raise ValueError(f"unknown value {text!r}; use one of: " + "; ".join(m.value for m in enum))
