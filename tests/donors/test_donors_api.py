"""Donors over the API: pseudonyms, the vault, scoping for the three personas, bad input."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import World

NEW_DONOR = {"patient_id": "H-0042-77", "sex": "Male", "birth_year": 1958, "name": "Zhang Wei",
             "contact": "+86 21 5555 0101", "diagnoses": [{"icd10": "C34.1", "is_primary": True}]}


def _create(world: World, **overrides: object):  # type: ignore[no-untyped-def]
    return world.owner.post("/api/v1/donors", json={"biobank": world.biobank_a, **NEW_DONOR, **overrides})


def test_register_returns_no_identifying_data(world: World) -> None:
    response = _create(world)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["public_id"].startswith("CN-SH-H01:DON-")
    assert body["diagnoses"][0]["icd10"] == "C34.1"
    text = response.text
    for secret in ("H-0042-77", "Zhang Wei", "5555"):
        assert secret not in text
    listing = world.owner.get("/api/v1/donors").text
    assert "Zhang Wei" not in listing and "H-0042-77" not in listing


def test_vault_is_encrypted_at_rest(db: Session, world: World) -> None:
    from biobank.donors.models import Donor, DonorVault

    _create(world)
    sealed = db.scalars(select(DonorVault.sealed)).one()
    assert b"Zhang" not in sealed and b"H-0042-77" not in sealed
    pseudonym = db.scalars(select(Donor.pseudonym)).one()
    db.rollback()
    assert "0042" not in pseudonym and len(pseudonym) == 32


def test_same_patient_twice_is_a_conflict(world: World) -> None:
    assert _create(world).status_code == 201
    again = _create(world, name="Someone Else")
    assert again.status_code == 409
    assert again.json()["error"] == "DonorExists"


def test_three_personas(world: World) -> None:
    public_id = _create(world).json()["public_id"]
    assert world.owner.get(f"/api/v1/donors/{public_id}").status_code == 200
    assert world.other.get(f"/api/v1/donors/{public_id}").status_code == 404
    assert world.outsider.get(f"/api/v1/donors/{public_id}").status_code == 404
    assert world.other.get("/api/v1/donors").json()["total"] == 0
    assert world.outsider.get("/api/v1/donors").json()["total"] == 0
    # Writing into biobank A: the other member and the outsider do not even see it.
    for persona in (world.other, world.outsider):
        response = persona.post("/api/v1/donors", json={"biobank": world.biobank_a, **NEW_DONOR, "patient_id": "X1"})
        assert response.status_code == 404
    assert world.technician.post("/api/v1/donors", json={"biobank": world.biobank_a, **NEW_DONOR,
                                                          "patient_id": "T-1"}).status_code == 201


def test_identity_only_for_managers_with_reason_and_audited(db: Session, world: World) -> None:
    from biobank.audit.models import AuditEntry, AuditResource

    public_id = _create(world).json()["public_id"]
    url = f"/api/v1/donors/{public_id}/identity"
    assert world.technician.post(url, json={"reason": "recontact"}).status_code == 403
    assert world.other.post(url, json={"reason": "recontact"}).status_code == 404
    missing = world.owner.post(f"/api/v1/donors/{public_id}/identity", json={})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["reason"]
    ok = world.owner.post(f"/api/v1/donors/{public_id}/identity", json={"reason": "recontact for consent"})
    assert ok.status_code == 200
    assert ok.json()["name"] == "Zhang Wei" and ok.json()["patient_id"] == "H-0042-77"
    actions = db.scalars(select(AuditEntry.action).join(AuditResource, AuditResource.entry_idx == AuditEntry.idx)
                         .where(AuditResource.resource_id == public_id)).all()
    db.rollback()
    assert "donor.identity.read" in actions


def test_lookup_by_patient_id_in_body(world: World) -> None:
    public_id = _create(world).json()["public_id"]
    found = world.owner.post("/api/v1/donors/lookup", json={"biobank": world.biobank_a, "patient_id": "H-0042-77"})
    assert found.status_code == 200 and found.json()["public_id"] == public_id
    other = world.other.post("/api/v1/donors/lookup", json={"biobank": world.biobank_a, "patient_id": "H-0042-77"})
    assert other.status_code == 404


def test_bad_input_names_the_field(world: World) -> None:
    cases = [
        ({"diagnoses": [{"icd10": "X99.99"}]}, ["diagnoses", 0, "icd10"]),
        ({"sex": "Robot"}, ["sex"]),
        ({"birth_year": 2999}, ["birth_year"]),
        ({"birth_year": "nineteen"}, ["birth_year"]),
        ({"patient_id": ""}, ["patient_id"]),
    ]
    for overrides, loc in cases:
        response = _create(world, **overrides)
        assert response.status_code == 422, overrides
        assert response.json()["error"] == "Invalid"
        assert response.json()["detail"][0]["loc"] == loc, response.json()
    assert world.owner.get("/api/v1/donors").json()["total"] == 0
