"""FHIR R4 resources of the German Biobank Node / BBMRI.de profiles: pure mappers and validation.

- Specimen: material type, subject, collection time and body site (ICD-O-3), status, and the storage
  temperature, sample diagnosis (ICD-10) and custodian (the collection) extensions;
- Patient: gender and birth year only — never name, telecom, address, contact or photo;
- Condition: ICD-10 code, subject, onset, ICD-O-3 body site, stage;
- Organization: a biobank, or a collection (partOf its biobank).

`validate()` checks a resource with `fhir.resources.R4B` (equal to R4 for these resources). Ids are our
public ids made FHIR-safe (`CN-SH-H01:SPC-000001` → `CN-SH-H01-SPC-000001`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from biobank.kit.validation import is_icd10

BBMRI = "https://fhir.bbmri.de"
PROFILES = {
    "Specimen": f"{BBMRI}/StructureDefinition/Specimen",
    "Patient": f"{BBMRI}/StructureDefinition/Patient",
    "Condition": f"{BBMRI}/StructureDefinition/Condition",
    "Biobank": f"{BBMRI}/StructureDefinition/Biobank",
    "Collection": f"{BBMRI}/StructureDefinition/Collection",
}
MATERIAL_SYSTEM = f"{BBMRI}/CodeSystem/SampleMaterialType"
TEMPERATURE_SYSTEM = f"{BBMRI}/CodeSystem/StorageTemperature"
EXT_TEMPERATURE = f"{BBMRI}/StructureDefinition/StorageTemperature"
EXT_DIAGNOSIS = f"{BBMRI}/StructureDefinition/SampleDiagnosis"
EXT_CUSTODIAN = f"{BBMRI}/StructureDefinition/Custodian"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICDO3 = "urn:oid:2.16.840.1.113883.6.43.1"
SPECIMEN_ID_SYSTEM = "urn:biobank-commons:specimen"
DIRECTORY_SYSTEM = "http://www.bbmri-eric.eu/"
ORG_TYPE_SYSTEM = f"{BBMRI}/CodeSystem/OrganizationType"

MATERIALS = {
    "Blood": "whole-blood",
    "Buffy coat": "buffy-coat",
    "Plasma": "blood-plasma",
    "Serum": "blood-serum",
    "Saliva": "saliva",
    "Faeces": "stool-faeces",
    "Urine": "urine",
    "Swab": "swab",
    "Other body fluid": "liquid-other",
    "Tissue (FFPE)": "tissue-ffpe",
    "Tissue (Frozen)": "tissue-frozen",
    "Post-mortem tissue": "tissue-other",
    "Entire body organ": "tissue-other",
    "Embryo/fetal tissue": "tissue-other",
    "DNA": "dna",
    "RNA": "rna",
}
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
GENDERS = {"Male": "male", "Female": "female", "Undifferentiated": "other"}
FORBIDDEN_PATIENT_FIELDS = ("name", "telecom", "address", "contact", "photo")
HELD = frozenset({"collected", "received", "processed", "stored", "reserved"})


def fhir_id(public_id: str) -> str:
    """A FHIR logical id ([A-Za-z0-9-.]{1,64}) from a public id."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in public_id)[:64]


def public_id_from_fhir(resource_id: str, institution_code: str) -> str:
    """Our public id back from a FHIR id made by fhir_id() (institution code, then the local part)."""
    prefix = fhir_id(institution_code) + "-"
    if resource_id.startswith(prefix):
        return institution_code + ":" + resource_id[len(prefix) :]
    return resource_id


def _instant(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _meta(profile: str) -> dict[str, Any]:
    return {"profile": [PROFILES[profile]]}


def specimen(
    s: Any,
    *,
    patient: str | None,
    collection_org: str,
    parent: str | None = None,
) -> dict[str, Any]:
    """A Specimen (BBMRI.de profile) of one of our specimens."""
    resource: dict[str, Any] = {
        "resourceType": "Specimen",
        "id": fhir_id(s.public_id),
        "meta": _meta("Specimen"),
        "identifier": [{"system": SPECIMEN_ID_SYSTEM, "value": s.public_id}],
        "status": "available" if str(s.status) in HELD else "unavailable",
        "type": {
            "coding": [{"system": MATERIAL_SYSTEM, "code": MATERIALS.get(str(s.sample_type), "derivative-other")}],
            "text": str(s.sample_type),
        },
    }
    extensions: list[dict[str, Any]] = []
    if s.storage_temperature:
        code = TEMPERATURES.get(str(s.storage_temperature), "temperatureOther")
        extensions.append(
            {"url": EXT_TEMPERATURE, "valueCodeableConcept": {"coding": [{"system": TEMPERATURE_SYSTEM, "code": code}]}}
        )
    if s.diagnosis and is_icd10(s.diagnosis):
        extensions.append(
            {
                "url": EXT_DIAGNOSIS,
                "valueCodeableConcept": {"coding": [{"system": ICD10, "version": "2019", "code": s.diagnosis}]},
            }
        )
    extensions.append({"url": EXT_CUSTODIAN, "valueReference": {"reference": f"Organization/{collection_org}"}})
    resource["extension"] = extensions
    if patient:
        resource["subject"] = {"reference": f"Patient/{patient}"}
    collection: dict[str, Any] = {}
    if s.collected_at is not None:
        collection["collectedDateTime"] = _instant(s.collected_at)
    if s.anatomical_site:
        collection["bodySite"] = {"coding": [{"system": ICDO3, "code": s.anatomical_site}]}
    if collection:
        resource["collection"] = collection
    if parent:
        resource["parent"] = [{"reference": f"Specimen/{fhir_id(parent)}"}]
    return resource


def patient(d: Any) -> dict[str, Any]:
    """A Patient with gender and birth year only (no name, telecom, address, contact or photo)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": fhir_id(d.public_id),
        "meta": _meta("Patient"),
        "gender": GENDERS.get(str(d.sex), "unknown"),
    }
    if d.birth_year:
        resource["birthDate"] = f"{int(d.birth_year):04d}"
    return resource


def condition(
    *,
    resource_id: str,
    patient_id: str,
    icd10: str | None,
    text: str = "",
    onset: date | None = None,
    topography: str | None = None,
    morphology: str | None = None,
    stage: str | None = None,
    tnm: Sequence[str | None] = (),
) -> dict[str, Any]:
    """A Condition: ICD-10 code (or text), onset, ICD-O-3 site and morphology, stage."""
    code: dict[str, Any] = {}
    codings = []
    if icd10:
        codings.append({"system": ICD10, "version": "2019", "code": icd10})
    if morphology:
        codings.append({"system": ICDO3, "code": morphology})
    if codings:
        code["coding"] = codings
    if text:
        code["text"] = text
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": resource_id,
        "meta": _meta("Condition"),
        "subject": {"reference": f"Patient/{patient_id}"},
        "code": code,
    }
    if onset is not None:
        resource["onsetDateTime"] = onset.isoformat()
    if topography:
        resource["bodySite"] = [{"coding": [{"system": ICDO3, "code": topography}]}]
    summary = " ".join(t for t in tnm if t) or stage
    if summary:
        resource["stage"] = [{"summary": {"text": summary}}]
    return resource


def biobank_organization(b: Any, *, directory_id: str) -> dict[str, Any]:
    """A biobank as an Organization (BBMRI.de Biobank profile)."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": fhir_id(b.public_id),
        "meta": _meta("Biobank"),
        "identifier": [{"system": DIRECTORY_SYSTEM, "value": directory_id}],
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": "BB"}]}],
        "name": b.name,
        "address": [{"country": b.country}],
    }
    if b.acronym:
        resource["alias"] = [b.acronym]
    if b.contact_email:
        resource["telecom"] = [{"system": "email", "value": b.contact_email}]
    return resource


def collection_organization(c: Any, *, biobank_public_id: str, directory_id: str) -> dict[str, Any]:
    """A collection as an Organization (BBMRI.de Collection profile), part of its biobank."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": fhir_id(c.public_id),
        "meta": _meta("Collection"),
        "identifier": [{"system": DIRECTORY_SYSTEM, "value": directory_id}],
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": "COLL"}]}],
        "name": c.name,
        "partOf": {"reference": f"Organization/{fhir_id(biobank_public_id)}"},
    }
    if c.acronym:
        resource["alias"] = [c.acronym]
    return resource


def bundle(
    resources: Sequence[dict[str, Any]],
    *,
    base_url: str,
    kind: str = "collection",
    total: int | None = None,
    next_url: str | None = None,
    self_url: str | None = None,
) -> dict[str, Any]:
    """A Bundle (collection for exports, searchset for searches) with full URLs."""
    result: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if kind == "searchset" and total is not None:
        result["total"] = total
    links = []
    if self_url:
        links.append({"relation": "self", "url": self_url})
    if next_url:
        links.append({"relation": "next", "url": next_url})
    if links:
        result["link"] = links
    entries = []
    for r in resources:
        entry: dict[str, Any] = {"fullUrl": f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}", "resource": r}
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    result["entry"] = entries
    return result


def capability_statement(base_url: str, version: str) -> dict[str, Any]:
    """What this FHIR endpoint serves (read and search, JSON only)."""
    types = ["Specimen", "Patient", "Condition", "Organization"]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date.today().isoformat(),
        "kind": "instance",
        "software": {"name": "Biobank Commons", "version": version},
        "implementation": {"description": "Biobank Commons FHIR R4 read API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": t,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "_count", "type": "number"}],
                    }
                    for t in types
                ],
            }
        ],
    }


_MODELS: dict[str, Any] = {}


def _model(resource_type: str) -> Any:
    if resource_type not in _MODELS:
        import importlib

        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
        _MODELS[resource_type] = getattr(module, resource_type)
    return _MODELS[resource_type]


def validate(resource: dict[str, Any]) -> None:
    """Validate with fhir.resources (R4B); raises pydantic.ValidationError. Patients must carry no identity."""
    if resource["resourceType"] == "Patient":
        leaked = [name for name in FORBIDDEN_PATIENT_FIELDS if name in resource]
        if leaked:
            raise ValueError(f"a Patient must not carry {', '.join(leaked)}")
    _model(resource["resourceType"]).model_validate(resource)
