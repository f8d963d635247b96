"""The public catalogue: faceted search without login, aggregate numbers only, descendants of ICD-10 codes,
collection and biobank pages with stable URLs, managers' edits."""

from __future__ import annotations

import re

import pytest

from tests.catalogue.helpers import Cohort

RECORD_IDS = re.compile(r"(SPC|DON)-\d{6}")


def _ids(body: dict) -> set[str]:
    return {item["public_id"] for item in body["items"]}


@pytest.mark.parametrize("persona", ["anonymous", "owner", "other", "outsider"])
def test_search_is_public_and_shows_only_aggregates(client, world, cohort: Cohort, persona: str) -> None:
    get = client.get if persona == "anonymous" else getattr(world, persona).get
    response = get("/api/v1/catalogue/collections")
    assert response.status_code == 200
    body = response.json()
    assert _ids(body) == set(cohort.collections.values())
    assert not RECORD_IDS.search(response.text), "no specimen or donor identifier is ever listed"
    by_id = {item["public_id"]: item for item in body["items"]}
    assert by_id[cohort.collections["A"]]["samples"] == {"value": 20, "display": "20", "suppressed": False}
    assert by_id[cohort.collections["C"]]["donors"] == {"value": 10, "display": "10", "suppressed": False}
    assert by_id[cohort.collections["D"]]["donors"] == {"value": None, "display": "< 10", "suppressed": True}
    assert by_id[cohort.collections["B"]]["samples"]["value"] == 0
    assert body["policy"]["min_donors_per_cell"] == 10


def test_a_code_finds_its_descendants(client, cohort: Cohort) -> None:
    found = client.get("/api/v1/catalogue/collections", params={"diagnoses": "C50"}).json()
    assert _ids(found) == {cohort.collections["C"]}
    assert found["items"][0]["matching_samples"] == 10
    block = client.get("/api/v1/catalogue/collections", params={"diagnoses": "C50-C50"}).json()
    assert _ids(block) == {cohort.collections["C"]}
    chapter = client.get("/api/v1/catalogue/collections", params={"diagnoses": "II"}).json()
    assert _ids(chapter) == {cohort.collections[k] for k in "ABC"}  # A and B declare C34; D's cell is hidden
    assert _ids(client.get("/api/v1/catalogue/collections", params={"diagnoses": "C51"}).json()) == set()


def test_a_hidden_cell_never_makes_a_collection_match(client, cohort: Cohort) -> None:
    assert _ids(client.get("/api/v1/catalogue/collections", params={"diagnoses": "C61"}).json()) == set()
    men = client.get("/api/v1/catalogue/collections", params={"sexes": "Male", "materials": "Plasma"}).json()
    assert cohort.collections["A"] not in _ids(men)


def test_facets_combine(client, cohort: Cohort) -> None:
    body = client.get(
        "/api/v1/catalogue/collections",
        params={
            "materials": "Serum",
            "sexes": "Female",
            "age_min": 40,
            "age_max": 60,
            "storage_temperatures": "−60 °C to −85 °C",
        },
    ).json()
    assert _ids(body) == {cohort.collections["A"]}
    assert body["items"][0]["matching_samples"] == 15
    materials = {f["value"]: f["collections"] for f in body["facets"]["material"]}
    # the material facet is counted without its own criterion: C's frozen tissue is offered too
    assert materials.get("Serum") == 1
    too_old = client.get("/api/v1/catalogue/collections", params={"materials": "Serum", "age_min": 70}).json()
    assert _ids(too_old) == set()


def test_full_text_and_data_and_access_filters(client, world, cohort: Cohort) -> None:
    assert _ids(client.get("/api/v1/catalogue/collections", params={"q": "frozen tumour"}).json()) == {
        cohort.collections["C"]
    }
    world.owner.patch(
        f"/api/v1/catalogue/collections/{cohort.collections['A']}",
        json={"use_access_conditions": ["Commercial use"], "dataset_types": ["Clinical", "Whole slide image"]},
    )
    assert _ids(client.get("/api/v1/catalogue/collections", params={"access": "Commercial use"}).json()) == {
        cohort.collections["A"]
    }
    body = client.get("/api/v1/catalogue/collections", params={"data": ["clinical", "wsi"]}).json()
    assert _ids(body) == {cohort.collections["A"]}
    assert {f["value"] for f in body["facets"]["data"]} >= {"clinical", "wsi"}


def test_an_unknown_icd10_code_is_refused_naming_the_field(client, cohort: Cohort) -> None:
    response = client.get("/api/v1/catalogue/collections", params={"diagnoses": "Q99.99"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "diagnoses"


def test_collection_page_is_public_and_resolvable(client, cohort: Cohort) -> None:
    page = client.get(f"/api/v1/catalogue/collections/{cohort.collections['A']}").json()
    assert page["url"] == f"/catalogue/collections/{cohort.collections['A']}"
    assert page["facts"][0]["number_of_donors"] == 15
    html = client.get(page["url"], headers={"Accept": "text/html"})
    assert html.status_code == 200
    assert "Lung cancer cohort" in html.text and "chart.umd.min.js" in html.text
    assert not RECORD_IDS.search(html.text)


@pytest.mark.parametrize(
    ("persona", "status"), [("owner", 200), ("technician", 403), ("other", 403), ("outsider", 403), ("admin", 200)]
)
def test_only_managers_edit_collections(world, cohort: Cohort, persona: str, status: int) -> None:
    response = getattr(world, persona).patch(
        f"/api/v1/catalogue/collections/{cohort.collections['A']}",
        json={
            "description": "Serum and plasma of lung cancer patients",
            "licence": "https://creativecommons.org/licenses/by/4.0/",
        },
    )
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["entry"]["licence"].endswith("/by/4.0/")


def test_editing_needs_login(client, cohort: Cohort) -> None:
    assert client.patch(f"/api/v1/catalogue/collections/{cohort.collections['A']}", json={}).status_code == 401


def test_an_unlisted_collection_disappears_from_the_public_catalogue(client, world, cohort: Cohort) -> None:
    url = f"/api/v1/catalogue/collections/{cohort.collections['C']}"
    assert world.owner.patch(url, json={"listed": False}).status_code == 200
    assert client.get(url).status_code == 404
    assert world.other.get(url).status_code == 404
    assert world.owner.get(url).status_code == 200
    assert cohort.collections["C"] not in _ids(client.get("/api/v1/catalogue/collections").json())


def test_edit_validates_miabis_terms(world, cohort: Cohort) -> None:
    response = world.owner.patch(
        f"/api/v1/catalogue/collections/{cohort.collections['A']}", json={"sample_types": ["Blood", "Lava"]}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["sample_types", 1]


@pytest.mark.parametrize(("persona", "status"), [("owner", 200), ("other", 403), ("outsider", 403)])
def test_only_managers_edit_biobanks(world, cohort: Cohort, persona: str, status: int) -> None:
    response = getattr(world, persona).patch(
        f"/api/v1/catalogue/biobanks/{world.biobank_a}", json={"bioprocessing_capabilities": ["DNA extraction"]}
    )
    assert response.status_code == status


def test_biobank_pages_are_public(client, world, cohort: Cohort) -> None:
    page = client.get(f"/api/v1/catalogue/biobanks/{world.biobank_a}").json()
    assert {c["public_id"] for c in page["collections"]} == {cohort.collections[k] for k in "ACD"}
    assert client.get(page["url"], headers={"Accept": "text/html"}).status_code == 200
    assert len(client.get("/api/v1/catalogue/biobanks").json()) == 2


@pytest.mark.parametrize(
    ("persona", "status"), [("owner", 200), ("technician", 403), ("other", 403), ("outsider", 403)]
)
def test_refreshing_a_collection_is_for_its_managers(world, cohort: Cohort, persona: str, status: int) -> None:
    response = getattr(world, persona).post("/api/v1/catalogue/refresh", params={"collection": cohort.collections["A"]})
    assert response.status_code == status


def test_refreshing_everything_is_for_node_administrators(client, world, cohort: Cohort) -> None:
    assert world.owner.post("/api/v1/catalogue/refresh").status_code == 403
    assert world.admin.post("/api/v1/catalogue/refresh").json()["collections"] == 4
    assert client.post("/api/v1/catalogue/refresh").status_code == 401


def test_the_policy_is_public(client) -> None:
    assert client.get("/api/v1/catalogue/policy").json() == {
        "min_donors_per_cell": 10,
        "below_floor_reported_as": "< 10",
        "floor": 10,
        "rounded_to": 10,
        "rounding": "nearest",
    }


def test_editing_a_biobank_needs_login(client, world) -> None:
    assert client.patch(f"/api/v1/catalogue/biobanks/{world.biobank_a}", json={"name": "X"}).status_code == 401
