"""Clinical imports: mapping files, dry runs with a row/column report, atomic and idempotent imports,
code maps and unit conversion, FHIR Bundles, and every bad input naming its row/column or JSON path."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.clinical.models import ClinicalDiagnosis, ClinicalObservation, ClinicalOutcome, ClinicalTreatment
from biobank.institutions import service as institutions
from tests.catalogue.helpers import audit_entries
from tests.factories import make_donor, make_specimen

MAPPING: dict[str, Any] = {
    "format": "biobank-commons/clinical-mapping",
    "date_format": "%d/%m/%Y",
    "columns": [
        {"source": "MRN", "target": "donor.patient_id"},
        {"source": "Dx", "target": "diagnosis.icd10", "codes": "local_dx"},
        {"source": "Dx date", "target": "diagnosis.date"},
        {"source": "Site", "target": "diagnosis.topography"},
        {"source": "Histology", "target": "diagnosis.morphology"},
        {"source": "T", "target": "diagnosis.tnm_t"},
        {"source": "N", "target": "diagnosis.tnm_n"},
        {"source": "M", "target": "diagnosis.tnm_m"},
        {"source": "Therapy", "target": "treatment.kind"},
        {"source": "Therapy start", "target": "treatment.start"},
        {"source": "Status", "target": "outcome.vital_status", "codes": "vital"},
        {"source": "Last seen", "target": "outcome.date"},
        {"source": "Visit", "target": "observation.date"},
        {
            "source": "Weight (lb)",
            "target": "observation",
            "code": "29463-7",
            "display": "Body weight",
            "unit": "lb",
            "to_unit": "kg",
        },
        {"source": "Height", "target": "observation", "code": "8302-2", "unit_source": "Height unit", "to_unit": "cm"},
        {"source": "Height unit", "target": "ignore"},
    ],
    "codes": {
        "local_dx": {"map": {"LUAD": "C34.1", "CRC": "C18.7"}, "unmapped": "keep"},
        "vital": {"map": {"A": "alive", "D": "deceased"}},
    },
}
HEADER = (
    "MRN,Dx,Dx date,Site,Histology,T,N,M,Therapy,Therapy start,Status,Last seen,Visit,Weight (lb),Height,Height unit"
)
ROWS = [
    "MRN-001,LUAD,03/02/2024,C341,8140/3,T2a,N0,M0,surgery,10/02/2024,A,01/06/2025,03/02/2024,154,170,cm",
    "MRN-002,C18.7,15/05/2023,C187,81403,pT3,N1,M0,chemo,20/06/2023,D,01/01/2025,15/05/2023,200,5.5,ft",
    "MRN-003,CRC,,,,,,,,,A,01/09/2025,,,,",
]


def _csv(rows: list[str] = ROWS, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.fixture
def patients(db: Session, world) -> list[str]:  # type: ignore[no-untyped-def]
    biobank = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    out = []
    for n in (1, 2, 3):
        donor = make_donor(db, biobank, patient_id=f"MRN-00{n}", birth_year=1960)
        make_specimen(db, collection, donor=donor.public_id)
        out.append(donor.public_id)
    db.commit()
    return out


def _post(
    persona,
    data: bytes,
    mapping: Any = MAPPING,
    *,
    dry_run: bool = False,
    biobank: str = "BBA",
    name: str = "clinical.csv",
):  # type: ignore[no-untyped-def]
    files = {"file": (name, data), "mapping": ("mapping.json", json.dumps(mapping).encode())}
    return persona.post(
        "/api/v1/clinical/imports", files=files, data={"biobank": biobank, "dry_run": "true" if dry_run else "false"}
    )


def _counts(db: Session) -> tuple[int, ...]:
    db.rollback()
    out = tuple(
        db.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (ClinicalDiagnosis, ClinicalObservation, ClinicalTreatment, ClinicalOutcome)
    )
    db.rollback()
    return out


def test_a_dry_run_reports_rows_columns_and_records_without_writing(db: Session, world, patients) -> None:
    response = _post(world.technician, _csv(), dry_run=True)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] and not report["committed"]
    assert report["rows"] == 3 and report["donors"] == 3 and report["error_count"] == 0
    assert report["records"]["diagnosis"] == {"create": 3, "update": 0, "unchanged": 0}
    assert report["records"]["observation"]["create"] == 4
    columns = {c["source"]: c for c in report["columns"]}
    assert columns["Dx date"] == {
        "source": "Dx date",
        "target": "diagnosis.date",
        "filled": 2,
        "empty": 1,
        "unmapped": {},
    }
    assert columns["Dx"]["unmapped"] == {"C18.7": 1}
    assert _counts(db) == (0, 0, 0, 0)


def test_import_converts_codes_and_units_and_reimport_changes_nothing(db: Session, world, patients) -> None:
    first = _post(world.owner, _csv())
    assert first.status_code == 200, first.text
    assert first.json()["committed"] and first.json()["batch"]
    counts = _counts(db)
    assert counts == (3, 4, 2, 3)
    weights = db.scalars(select(ClinicalObservation).where(ClinicalObservation.code == "29463-7")).all()
    assert sorted(round(w.value_number, 2) for w in weights) == [69.85, 90.72]
    assert {w.unit for w in weights} == {"kg"}
    heights = sorted(
        round(h.value_number, 1)
        for h in db.scalars(select(ClinicalObservation).where(ClinicalObservation.code == "8302-2"))
    )
    assert heights == [167.6, 170.0]
    luad = db.scalars(select(ClinicalDiagnosis).where(ClinicalDiagnosis.icd10 == "C34.1")).one()
    assert (luad.topography, luad.morphology, luad.tnm_t) == ("C34.1", "8140/3", "T2a")
    db.rollback()
    again = _post(world.owner, _csv()).json()
    assert all(v["create"] == 0 and v["update"] == 0 for v in again["records"].values())
    assert sum(v["unchanged"] for v in again["records"].values()) == sum(counts)
    assert _counts(db) == counts


def test_a_changed_value_is_updated_in_place(db: Session, world, patients) -> None:
    _post(world.owner, _csv())
    changed = [ROWS[0].replace(",T2a,", ",T3,"), *ROWS[1:]]
    report = _post(world.owner, _csv(changed)).json()
    assert report["records"]["diagnosis"] == {"create": 0, "update": 1, "unchanged": 2}
    assert db.scalars(select(ClinicalDiagnosis.tnm_t).where(ClinicalDiagnosis.icd10 == "C34.1")).one() == "T3"
    db.rollback()


def test_a_mapping_pointing_at_a_missing_column_is_refused(world, patients) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["columns"][2]["source"] = "Diagnosis date"
    response = _post(world.owner, _csv(), mapping)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["mapping", "columns", 2, "source"]
    assert "Diagnosis date" in error["msg"]


def test_an_unknown_icd10_code_names_its_row_and_column(db: Session, world, patients) -> None:
    rows = [ROWS[0], ROWS[1].replace("C18.7", "C18.99"), ROWS[2]]
    response = _post(world.owner, _csv(rows))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["row"] == 3 and error["loc"] == ["Dx"] and error["value"] == "C18.99"
    assert "WHO ICD-10" in error["msg"]
    assert _counts(db) == (0, 0, 0, 0), "an import with one bad row writes nothing"


def test_a_unit_that_cannot_be_converted_is_refused(world, patients) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["columns"][13]["to_unit"] = "cm"
    response = _post(world.owner, _csv(), mapping)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["mapping", "columns", 13, "to_unit"]
    rows = [ROWS[0].replace(",170,cm", ",170,kg"), *ROWS[1:]]
    per_row = _post(world.owner, _csv(rows))
    assert per_row.status_code == 422
    (error,) = per_row.json()["detail"]
    assert error["row"] == 2 and error["loc"] == ["Height unit"] and "cannot convert kg" in error["msg"]


def test_an_unknown_patient_is_named_by_row_without_echoing_the_identifier(world, patients) -> None:
    response = _post(world.owner, _csv([ROWS[0], ROWS[1].replace("MRN-002", "MRN-999")]))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["row"] == 3 and error["loc"] == ["MRN"]
    assert "MRN-999" not in response.text


def test_xlsx_files_import_like_csv(db: Session, world, patients) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for line in [HEADER, *ROWS]:
        sheet.append(line.split(","))
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = _post(world.owner, buffer.getvalue(), name="clinical.xlsx")
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "xlsx"
    assert _counts(db)[0] == 3


@pytest.mark.parametrize(
    ("persona", "status"), [("owner", 200), ("technician", 200), ("other", 422), ("outsider", 422)]
)
def test_only_writers_of_the_biobank_import(world, patients, persona: str, status: int) -> None:
    assert _post(getattr(world, persona), _csv(), dry_run=True).status_code == status


def test_anonymous_callers_cannot_import(client, patients) -> None:
    files = {"file": ("c.csv", _csv()), "mapping": ("m.json", json.dumps(MAPPING).encode())}
    assert client.post("/api/v1/clinical/imports", files=files, data={"biobank": "BBA"}).status_code == 401


def test_an_import_is_audited_and_refreshes_the_catalogue(db: Session, client, world, patients) -> None:
    _post(world.owner, _csv())
    (entry,) = audit_entries(db, "clinical.import")
    assert entry.details["created"] == 12 and entry.details["rows"] == 3
    page = client.get(f"/api/v1/catalogue/collections/{world.collection_a}").json()
    assert "clinical" in page["data_available"]


def test_free_text_diagnoses_are_kept_when_the_code_map_says_so(db: Session, world, patients) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    mapping["codes"]["local_dx"]["unmapped"] = "text"
    rows = [ROWS[0], ROWS[1].replace("C18.7", "colon cancer NOS"), ROWS[2]]
    response = _post(world.owner, _csv(rows), mapping)
    assert response.status_code == 200, response.text
    texts = db.scalars(select(ClinicalDiagnosis.text).where(ClinicalDiagnosis.icd10.is_(None))).all()
    assert texts == ["colon cancer NOS"]
    db.rollback()


# -- FHIR Bundles -------------------------------------------------------------------------------------------


def _bundle(patient_id: str = "MRN-001", code: str = "C34.1", weight: Any = 70) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:p1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "gender": "female",
                    "identifier": [{"system": "urn:hospital:mrn", "value": patient_id}],
                },
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "urn:uuid:p1"},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
                    "bodySite": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.6.43.1", "code": "C34.1"}]}],
                    "stage": [{"summary": {"text": "T2 N0 M0"}}],
                    "onsetDateTime": "2024-02-03",
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
                    "valueQuantity": {
                        "value": weight,
                        "unit": "kg",
                        "system": "http://unitsofmeasure.org",
                        "code": "kg",
                    },
                    "effectiveDateTime": "2024-02-03",
                }
            },
            {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"}}},
        ],
    }


def _fhir(persona, bundle: Any, *, dry_run: bool = False):  # type: ignore[no-untyped-def]
    body = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    return persona.post(
        "/api/v1/clinical/imports/fhir",
        params={"biobank": "BBA", "dry_run": str(dry_run).lower()},
        content=body,
        headers={"Content-Type": "application/fhir+json"},
    )


def test_a_fhir_bundle_imports_conditions_and_observations_once(db: Session, world, patients) -> None:
    response = _fhir(world.owner, _bundle())
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["records"]["diagnosis"]["create"] == 1 and report["records"]["observation"]["create"] == 1
    assert report["ignored"] == {"Encounter": 1}
    dx = db.scalars(select(ClinicalDiagnosis)).one()
    assert (dx.icd10, dx.topography, dx.tnm_t, dx.tnm_n, dx.tnm_m) == ("C34.1", "C34.1", "T2", "N0", "M0")
    db.rollback()
    again = _fhir(world.owner, _bundle()).json()
    assert again["records"]["diagnosis"] == {"create": 0, "update": 0, "unchanged": 1}


def test_an_invalid_fhir_bundle_names_the_json_path(world, patients) -> None:
    response = _fhir(world.owner, _bundle(weight="heavy"))
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["entry", 2, "resource", "valueQuantity", "value"]
    assert error["msg"].startswith("entry[2].resource.valueQuantity.value")
    not_json = _fhir(world.owner, b"{not json")
    assert not_json.status_code == 422
    wrong_type = _fhir(world.owner, {"resourceType": "Patient"})
    assert wrong_type.json()["detail"][0]["loc"] == ["resourceType"]


def test_an_unknown_icd10_code_in_a_bundle_names_its_path(db: Session, world, patients) -> None:
    response = _fhir(world.owner, _bundle(code="C34.99"))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["entry", 1, "resource", "code", "coding", 0, "code"]


def test_a_bundle_of_an_unknown_patient_is_refused(world, patients) -> None:
    response = _fhir(world.owner, _bundle(patient_id="MRN-404"))
    assert response.status_code == 422
    assert "MRN-404" not in response.text


def test_donor_records_are_for_members(world, patients) -> None:
    _post(world.owner, _csv())
    assert world.technician.get(f"/api/v1/clinical/donors/{patients[0]}").json()["diagnoses"][0]["icd10"] == "C34.1"
    assert world.other.get(f"/api/v1/clinical/donors/{patients[0]}").status_code == 404
    assert world.outsider.get(f"/api/v1/clinical/donors/{patients[0]}").status_code == 404
