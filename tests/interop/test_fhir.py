"""FHIR R4: every resource validates with fhir.resources (R4B); Patients carry no identity; the record-level
endpoints are for members and audited; Organizations are public; the Bundle export."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from biobank.interop import fhir
from biobank.interop.fhir import FORBIDDEN_PATIENT_FIELDS
from tests.catalogue.helpers import Cohort, audit_entries


def _resources(bundle: dict) -> list[dict]:
    assert bundle["resourceType"] == "Bundle"
    return [e["resource"] for e in bundle["entry"]]


def test_specimens_validate_and_carry_the_bbmri_extensions(world, cohort: Cohort) -> None:
    response = world.owner.get("/fhir/Specimen", params={"collection": cohort.collections["C"], "_validate": "true"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    resources = _resources(response.json())
    assert len(resources) == 10
    for resource in resources:
        fhir.validate(resource)
        urls = {e["url"] for e in resource["extension"]}
        assert {fhir.EXT_TEMPERATURE, fhir.EXT_DIAGNOSIS, fhir.EXT_CUSTODIAN} <= urls
        assert resource["type"]["coding"][0]["code"] == "tissue-frozen"
        assert resource["subject"]["reference"].startswith("Patient/")


def test_patients_carry_gender_and_birth_year_only(world, cohort: Cohort) -> None:
    resources = _resources(world.owner.get("/fhir/Patient", params={"_count": 100}).json())
    assert len(resources) == 43
    for resource in resources:
        fhir.validate(resource)
        assert not set(FORBIDDEN_PATIENT_FIELDS) & set(resource), "no name, telecom, address, contact or photo"
        assert set(resource) <= {"resourceType", "id", "meta", "gender", "birthDate"}
        assert len(resource["birthDate"]) == 4


def test_validation_refuses_a_patient_with_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        fhir.validate({"resourceType": "Patient", "id": "x", "name": [{"family": "Doe"}]})


def test_paging_follows_the_next_link(world, cohort: Cohort) -> None:
    first = world.owner.get("/fhir/Patient", params={"_count": 40}).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = world.owner.get(next_url).json()
    ids = [r["id"] for r in _resources(first)] + [r["id"] for r in _resources(second)]
    assert len(ids) == len(set(ids)) == 43


def test_conditions_validate_and_resolve(db: Session, world, cohort: Cohort) -> None:
    from biobank.institutions import service as institutions
    from tests.factories import make_donor

    donor = make_donor(
        db, institutions.get_biobank(db, world.biobank_a), diagnoses=[{"icd10": "C34.1", "diagnosed_on": "2024-01-05"}]
    )
    db.commit()
    resources = _resources(world.owner.get("/fhir/Condition", params={"_count": 1000}).json())
    assert len(resources) == 1
    (condition,) = resources
    fhir.validate(condition)
    assert condition["code"]["coding"][0] == {"system": fhir.ICD10, "version": "2019", "code": "C34.1"}
    assert condition["subject"]["reference"] == f"Patient/{fhir.fhir_id(donor.public_id)}"
    assert world.owner.get(f"/fhir/Condition/{condition['id']}").json() == condition
    assert world.other.get(f"/fhir/Condition/{condition['id']}").status_code == 404


def test_record_level_resources_are_for_members_and_audited(db: Session, client, world, cohort: Cohort) -> None:
    specimen_id = fhir.fhir_id(cohort.specimens["women"][0])
    patient_id = fhir.fhir_id(cohort.donors["women"][0])
    assert world.owner.get(f"/fhir/Specimen/{specimen_id}").json()["id"] == specimen_id
    assert world.technician.get(f"/fhir/Patient/{patient_id}").json()["gender"] == "female"
    for persona in (world.other, world.outsider):
        assert persona.get(f"/fhir/Specimen/{specimen_id}").status_code == 404
        assert persona.get(f"/fhir/Patient/{patient_id}").status_code == 404
        assert _resources(persona.get("/fhir/Specimen").json()) == []
    assert client.get("/fhir/Specimen").status_code == 401
    assert client.get(f"/fhir/Patient/{patient_id}").status_code == 401
    assert any(cohort.specimens["women"][0] in e.resource_ids for e in audit_entries(db, "specimen.read"))


def test_organizations_are_public_and_validate(client, world, cohort: Cohort) -> None:
    resources = _resources(client.get("/fhir/Organization", params={"_validate": "true"}).json())
    assert len(resources) == 2 + 4
    collection = next(r for r in resources if r["id"] == fhir.fhir_id(cohort.collections["C"]))
    assert collection["partOf"]["reference"].startswith("Organization/")
    assert client.get(f"/fhir/Organization/{collection['id']}").json()["name"] == "Breast tissue bank"
    assert client.get("/fhir/metadata").json()["fhirVersion"] == "4.0.1"


def test_the_bundle_export_validates_every_resource(db: Session, world, cohort: Cohort) -> None:
    response = world.owner.get(
        "/api/v1/export/fhir", params={"collection": cohort.collections["A"], "validate": "true"}
    )
    assert response.status_code == 200, response.text
    bundle = response.json()
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Specimen") == 24 and kinds.count("Patient") == 24 and kinds.count("Organization") == 2
    assert world.other.get("/api/v1/export/fhir", params={"collection": cohort.collections["A"]}).status_code == 404
    (entry,) = audit_entries(db, "export.fhir.bundle")
    assert entry.details["specimens"] == 24
