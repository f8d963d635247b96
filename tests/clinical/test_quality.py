"""Data quality reports: completeness of the minimum dataset, code validity, consistency, coded share;
stored with their date; members read them, writers compute them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from biobank.clinical import service as clinical
from biobank.clinical.models import QualityReport
from biobank.institutions import service as institutions
from tests.clinical.test_import import MAPPING, _csv
from tests.factories import make_donor, make_specimen

ROWS = [
    # complete and consistent
    "MRN-101,C34.1,03/02/2024,C341,8140/3,T2a,N0,M0,surgery,10/02/2024,A,01/06/2025,,,,",
    # diagnosed after the specimen was collected (inconsistent), no treatment
    "MRN-102,C18.7,15/05/2099,,,,,,,,D,01/01/2025,,,,",
]


@pytest.fixture
def cohort(db: Session, world):  # type: ignore[no-untyped-def]
    biobank = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    collected = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    for patient, birth_year in (("MRN-101", 1960), ("MRN-102", 1955), ("MRN-103", None)):
        donor = make_donor(db, biobank, patient_id=patient, birth_year=birth_year, sex="Female")
        make_specimen(
            db,
            collection,
            donor=donor.public_id,
            collected_at=collected,
            processed_at=collected + timedelta(minutes=30),
            frozen_at=collected + timedelta(hours=1),
        )
    db.commit()


def _import(world) -> None:  # type: ignore[no-untyped-def]
    files = {"file": ("c.csv", _csv(ROWS)), "mapping": ("m.json", json.dumps(MAPPING).encode())}
    response = world.owner.post("/api/v1/clinical/imports", files=files, data={"biobank": "BBA"})
    assert response.status_code == 200, response.text


def test_the_report_measures_and_is_stored_with_its_date(db: Session, world, cohort) -> None:
    _import(world)
    response = world.technician.post(f"/api/v1/clinical/quality/{world.collection_a}")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["donors"] == 3
    by_field = report["details"]["completeness_by_field"]
    assert by_field["diagnosis.icd10"] == pytest.approx(2 / 3, abs=1e-3)
    assert by_field["treatment"] == pytest.approx(1 / 3, abs=1e-3)
    assert by_field["birth_year"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["code_validity"] == 1.0
    consistency = report["details"]["consistency"]
    assert consistency["diagnosis on or before collection"] == {"failed": 1, "checked": 2}
    assert consistency["date not in the future"]["failed"] == 1
    assert 0 < report["consistency"] < 1
    assert report["coded_share"] == 1.0
    stored = db.get(QualityReport, 1)
    assert stored is not None and stored.computed_at is not None
    db.rollback()
    history = world.owner.get(f"/api/v1/clinical/quality/{world.collection_a}").json()
    assert [r["public_id"] for r in history] == [report["public_id"]]
    latest = clinical.latest_quality(db, [institutions.get_collection(db, world.collection_a).id])
    assert len(latest) == 1
    db.rollback()


def test_a_custom_minimum_dataset(world, cohort) -> None:
    _import(world)
    response = world.owner.post(
        f"/api/v1/clinical/quality/{world.collection_a}", json={"minimum_dataset": ["sex", "observation:29463-7"]}
    )
    assert response.json()["minimum_dataset"] == ["sex", "observation:29463-7"]
    bad = world.owner.post(f"/api/v1/clinical/quality/{world.collection_a}", json={"minimum_dataset": ["shoe size"]})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["minimum_dataset", 0]


@pytest.mark.parametrize(
    ("persona", "post", "get"),
    [
        ("owner", 201, 200),
        ("technician", 201, 200),
        ("other", 404, 404),
        ("outsider", 404, 404),
    ],
)
def test_quality_personas(world, cohort, persona: str, post: int, get: int) -> None:
    who = getattr(world, persona)
    assert who.post(f"/api/v1/clinical/quality/{world.collection_a}").status_code == post
    assert who.get(f"/api/v1/clinical/quality/{world.collection_a}").status_code == get


def test_quality_needs_login(client, world, cohort) -> None:
    assert client.get(f"/api/v1/clinical/quality/{world.collection_a}").status_code == 401
