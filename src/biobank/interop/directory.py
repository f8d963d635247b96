"""BBMRI-ERIC Directory tables (biobanks, collections, facts) as CSV: pure mappers.

Columns and vocabularies follow the Directory's EMX model (eu_bbmri_eric): ids of the form
`bbmri-eric:ID:<CC>_<biobank>` and `…:collection:<collection>`, material types such as SERUM or
TISSUE_PARAFFIN_EMBEDDED, sexes FEMALE / MALE / UNKNOWN, diseases as `urn:miriam:icd:<code>`.
Sizes are the thresholded counts (disclose()); facts rows are only the published cells.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from biobank.catalogue.disclosure import Disclosed

MATERIALS = {
    "Blood": "WHOLE_BLOOD",
    "Buffy coat": "BUFFY_COAT",
    "Cancer cell lines": "CELL_LINES",
    "Immortalized cell lines": "CELL_LINES",
    "Primary cells": "CELL_LINES",
    "DNA": "DNA",
    "RNA": "RNA",
    "Faeces": "FECES",
    "Isolated microbes": "PATHOGEN",
    "Plasma": "PLASMA",
    "Serum": "SERUM",
    "Saliva": "SALIVA",
    "Urine": "URINE",
    "Swab": "NASAL_SWAB",
    "Tissue (Frozen)": "TISSUE_FROZEN",
    "Tissue (FFPE)": "TISSUE_PARAFFIN_EMBEDDED",
}
SEXES = {"Male": "MALE", "Female": "FEMALE", "Unknown": "UNKNOWN", "Undifferentiated": "UNDIFFERENTIAL"}
TEMPERATURES = {
    "RT": "temperatureRoom",
    "2 °C to 10 °C": "temperature2to10",
    "−18 °C to −35 °C": "temperature-18to-35",
    "−60 °C to −85 °C": "temperature-60to-85",
    "below −135 °C": "temperatureOther",
    "LN2 vapour phase": "temperatureGN",
    "LN2 liquid phase": "temperatureLN",
    "Other": "temperatureOther",
}
DATA_CATEGORIES = {
    "Clinical": "MEDICAL_RECORDS",
    "Lifestyle": "SURVEY_DATA",
    "Psychological": "SURVEY_DATA",
    "Environmental": "OTHER",
    "Physiological": "PHYSIOLOGICAL_BIOCHEMICAL_MEASUREMENTS",
    "Biochemical": "PHYSIOLOGICAL_BIOCHEMICAL_MEASUREMENTS",
    "Genomic": "GENOMIC_DATA",
    "Proteomic": "OTHER",
    "Metabolomic": "OTHER",
    "Body (radiological) image": "IMAGING_DATA",
    "Whole slide image": "IMAGING_DATA",
    "Photo image": "IMAGING_DATA",
    "Genealogical records": "GENEALOGICAL_RECORDS",
    "Other": "OTHER",
}
BIOBANK_COLUMNS = (
    "id",
    "name",
    "acronym",
    "description",
    "url",
    "juridical_person",
    "country",
    "contact_email",
    "capabilities",
    "quality",
    "collaboration_commercial",
    "collaboration_non_for_profit",
)
COLLECTION_COLUMNS = (
    "id",
    "name",
    "acronym",
    "description",
    "biobank",
    "country",
    "type",
    "data_categories",
    "materials",
    "sex",
    "age_low",
    "age_high",
    "age_unit",
    "diagnosis_available",
    "storage_temperatures",
    "size",
    "order_of_magnitude",
    "number_of_donors",
    "order_of_magnitude_donors",
    "commercial_use",
    "access_description",
    "url",
)
FACT_COLUMNS = (
    "id",
    "collection",
    "sex",
    "age_range",
    "sample_type",
    "disease",
    "number_of_samples",
    "number_of_donors",
    "last_update",
)


def _local(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def biobank_id(country: str, code: str) -> str:
    """The Directory id of a biobank."""
    return f"bbmri-eric:ID:{country}_{_local(code)}"


def collection_id(country: str, biobank_code: str, public_id: str) -> str:
    """The Directory id of a collection."""
    local = public_id.rsplit(":", 1)[-1]
    return f"{biobank_id(country, biobank_code)}:collection:{_local(local)}"


def _join(values: Iterable[str]) -> str:
    return ",".join(sorted({v for v in values if v}))


def _magnitude(n: int | None) -> str:
    return str(int(math.log10(n))) if n else ""


def biobank_row(b: Any) -> dict[str, Any]:
    """One row of the biobanks table."""
    return {
        "id": biobank_id(b.country, b.code),
        "name": b.name,
        "acronym": b.acronym,
        "description": b.description,
        "url": b.url,
        "juridical_person": b.juristic_person or b.name,
        "country": b.country,
        "contact_email": b.contact_email,
        "capabilities": _join([*b.infrastructural_capabilities, *b.bioprocessing_capabilities]),
        "quality": _join(b.quality_standards),
        "collaboration_commercial": "",
        "collaboration_non_for_profit": "",
    }


def collection_row(
    c: Any,
    b: Any,
    *,
    samples: Disclosed,
    donors: Disclosed,
    materials: Sequence[str],
    temperatures: Sequence[str],
    access_description: str = "",
    url: str = "",
) -> dict[str, Any]:
    """One row of the collections table (sizes thresholded: empty when below the floor)."""
    design = " ".join(c.design).casefold()
    kinds = [
        k
        for word, k in (("cohort", "COHORT"), ("case", "CASE_CONTROL"), ("population", "POPULATION_BASED"))
        if word in design
    ]
    if c.diseases:
        kinds.append("DISEASE_SPECIFIC")
    return {
        "id": collection_id(b.country, b.code, c.public_id),
        "name": c.name,
        "acronym": c.acronym,
        "description": c.description,
        "biobank": biobank_id(b.country, b.code),
        "country": b.country,
        "type": _join(kinds or ["OTHER"]),
        "data_categories": _join(["BIOLOGICAL_SAMPLES", *(DATA_CATEGORIES.get(d, "OTHER") for d in c.dataset_types)]),
        "materials": _join(MATERIALS.get(m, "OTHER") for m in materials),
        "sex": _join(SEXES.get(s, "NAV") for s in c.sexes),
        "age_low": "" if c.age_low is None else c.age_low,
        "age_high": "" if c.age_high is None else c.age_high,
        "age_unit": str(c.age_unit).upper() if c.age_low is not None or c.age_high is not None else "",
        "diagnosis_available": _join(f"urn:miriam:icd:{d}" for d in c.diseases),
        "storage_temperatures": _join(TEMPERATURES.get(t, "temperatureOther") for t in temperatures),
        "size": "" if samples.value is None else samples.value,
        "order_of_magnitude": _magnitude(samples.value),
        "number_of_donors": "" if donors.value is None else donors.value,
        "order_of_magnitude_donors": _magnitude(donors.value),
        "commercial_use": str("Commercial use" in c.use_access_conditions).lower(),
        "access_description": access_description,
        "url": url,
    }


def fact_row(cell: Any, c: Any, b: Any) -> dict[str, Any]:
    """One published facts cell."""
    cid = collection_id(b.country, b.code, c.public_id)
    parts = [cell.sex, cell.age_range, cell.sample_type, cell.diagnosis or "none"]
    return {
        "id": f"{cid}:fact:{_local('_'.join(parts))}",
        "collection": cid,
        "sex": SEXES.get(cell.sex, "NAV"),
        "age_range": cell.age_range,
        "sample_type": MATERIALS.get(cell.sample_type, "OTHER"),
        "disease": f"urn:miriam:icd:{cell.diagnosis}" if cell.diagnosis else "",
        "number_of_samples": cell.number_of_samples,
        "number_of_donors": cell.number_of_donors,
        "last_update": cell.refreshed_at.date().isoformat(),
    }


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """A CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()
