"""MIABIS JSON (Core 3 and Sample/Donor/Event 1.1): pure mappers from our records to MIABIS terms.

Attribute names follow the MIABIS components in lowerCamelCase; values are the MIABIS vocabulary
terms we already store (kit/vocab.py), so nothing is translated. Identifiers are our public ids: the
sample and donor ids are pseudonymous, and a donor's birth date is its year only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from biobank.kit.validation import is_icd10

MIABIS_VERSION = {"core": "3", "sample": "1.1", "donor": "1.1", "event": "1.1"}
ICD10_VERSION = "2019"
ICDO3_VERSION = "3.2"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def biobank(b: Any, *, collections: Sequence[str] = ()) -> dict[str, Any]:
    """A MIABIS Biobank."""
    return {
        "@type": "MIABIS:Biobank",
        "id": b.public_id,
        "acronym": b.acronym or None,
        "name": b.name,
        "url": b.url or None,
        "juristicPerson": b.juristic_person or None,
        "country": b.country,
        "contact": {"email": b.contact_email} if b.contact_email else None,
        "description": b.description or None,
        "infrastructuralCapabilities": list(b.infrastructural_capabilities),
        "organisationalCapabilities": list(b.organisational_capabilities),
        "bioprocessingAndAnalyticalCapabilities": list(b.bioprocessing_capabilities),
        "qualityStandards": list(b.quality_standards),
        "collections": list(collections),
    }


def collection(c: Any, *, biobank_id: str, number_of_donors: int | None = None) -> dict[str, Any]:
    """A MIABIS Collection (number of subjects: the declared one, else the thresholded donor count)."""
    return {
        "@type": "MIABIS:Collection",
        "id": c.public_id,
        "biobank": biobank_id,
        "name": c.name,
        "acronym": c.acronym or None,
        "description": c.description or None,
        "sampleSource": str(c.sample_source),
        "sex": list(c.sexes),
        "ageLow": c.age_low,
        "ageHigh": c.age_high,
        "ageUnit": str(c.age_unit),
        "datasetType": list(c.dataset_types),
        "sampleType": list(c.sample_types),
        "storageTemperature": list(c.storage_temperatures),
        "disease": [{"ontology": "ICD-10", "version": ICD10_VERSION, "code": d} for d in c.diseases],
        "design": list(c.design),
        "useAndAccessConditions": list(c.use_access_conditions),
        "status": str(c.status),
        "numberOfSubjects": c.number_of_subjects if c.number_of_subjects is not None else number_of_donors,
        "inclusionCriteria": list(c.inclusion_criteria),
        "publications": list(c.publications),
    }


def sample(
    s: Any,
    *,
    biobank_id: str,
    collection_id: str,
    donor_id: str | None,
    use_access_conditions: Sequence[str] = (),
    sample_source: str = "Human",
) -> dict[str, Any]:
    """A MIABIS Sample (pseudonymised id, type, temperature, collection time, site, diagnosis)."""
    return {
        "@type": "MIABIS:Sample",
        "id": s.public_id,
        "biobank": biobank_id,
        "collection": collection_id,
        "donor": donor_id,
        "sampleType": str(s.sample_type),
        "detailedSampleType": s.detailed_type or None,
        "storageTemperature": str(s.storage_temperature) if s.storage_temperature else None,
        "sampleCollectionDateTime": _iso(s.collected_at),
        "anatomicalSite": (
            {"ontology": "ICD-O-3", "version": ICDO3_VERSION, "code": s.anatomical_site} if s.anatomical_site else None
        ),
        "diagnosis": (
            [{"ontology": "ICD-10", "version": ICD10_VERSION, "code": s.diagnosis}]
            if s.diagnosis and is_icd10(s.diagnosis)
            else []
        ),
        "useAndAccessConditions": list(use_access_conditions),
        "sampleSource": sample_source,
    }


def donor(d: Any, *, dataset_types: Sequence[str] = (), diagnoses: Sequence[str] = ()) -> dict[str, Any]:
    """A MIABIS Donor: pseudonymous id, sex, dataset types and birth year only."""
    return {
        "@type": "MIABIS:Donor",
        "id": d.public_id,
        "sex": str(d.sex),
        "datasetType": list(dataset_types),
        "birthDate": str(d.birth_year) if d.birth_year else None,
        "diagnosis": [{"ontology": "ICD-10", "version": ICD10_VERSION, "code": code} for code in diagnoses],
    }


def event(e: Any, *, sample_id: str, index: int) -> dict[str, Any]:
    """A MIABIS Event of a sample (one custody event: what happened, when, before → after)."""
    return {
        "@type": "MIABIS:Event",
        "id": f"{sample_id}#event-{index}",
        "sample": sample_id,
        "eventType": e.kind,
        "dateTime": _iso(e.at),
        "description": e.reason or None,
        "details": {"before": dict(e.before or {}), "after": dict(e.after or {})},
    }


def document(kind: str, items: list[dict[str, Any]], *, next_cursor: str | None = None) -> dict[str, Any]:
    """A page of MIABIS records with the versions they follow."""
    return {"miabis": MIABIS_VERSION, "type": kind, "items": items, "next": next_cursor}
