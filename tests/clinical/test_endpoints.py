"""Remaining clinical endpoints for the three personas: the import list, the mapping format, FHIR imports."""

from __future__ import annotations

import pytest

from tests.clinical.test_import import _bundle, _csv, _fhir, _post, patients  # noqa: F401


def test_the_import_list_shows_only_ones_own_biobanks(world, patients) -> None:  # noqa: F811
    _post(world.owner, _csv())
    assert len(world.technician.get("/api/v1/clinical/imports").json()) == 1
    assert world.other.get("/api/v1/clinical/imports").json() == []
    assert world.outsider.get("/api/v1/clinical/imports").json() == []


def test_the_mapping_format_is_for_logged_in_users(client, world) -> None:
    body = world.outsider.get("/api/v1/clinical/mapping-format").json()
    assert "diagnosis.icd10" in body["targets"] and "observation:<code>" in body["minimum_dataset_fields"]
    assert client.get("/api/v1/clinical/mapping-format").status_code == 401


@pytest.mark.parametrize(
    ("persona", "status"), [("owner", 200), ("technician", 200), ("other", 422), ("outsider", 422)]
)
def test_fhir_imports_are_for_the_biobanks_writers(world, patients, persona: str, status: int) -> None:  # noqa: F811
    assert _fhir(getattr(world, persona), _bundle(), dry_run=True).status_code == status


def test_a_mapping_that_is_not_json_is_refused(world, patients) -> None:  # noqa: F811
    files = {"file": ("c.csv", _csv()), "mapping": ("m.json", b"{nope")}
    response = world.owner.post("/api/v1/clinical/imports", files=files, data={"biobank": "BBA"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["mapping"]
    missing = world.owner.post("/api/v1/clinical/imports", files={"file": ("c.csv", _csv())}, data={"biobank": "BBA"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["mapping"]
