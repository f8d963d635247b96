"""Beacon v2: informational endpoints, count granularity at most (record requests downgraded and said so),
the catalogue's thresholds, descendant ICD-10 filters, and unsupported filters refused with their path."""

from __future__ import annotations

import pytest

from tests.catalogue.helpers import Cohort


@pytest.mark.parametrize("path", ["info", "service-info", "configuration", "map", "entry_types", "filtering_terms"])
def test_informational_endpoints_are_public(client, cohort: Cohort, path: str) -> None:
    response = client.get(f"/beacon/v2/{path}")
    assert response.status_code == 200


def test_configuration_says_count_is_the_default_granularity(client, cohort: Cohort) -> None:
    config = client.get("/beacon/v2/configuration").json()["response"]
    assert config["securityAttributes"]["defaultGranularity"] == "count"
    assert set(config["entryTypes"]) == {"biosample", "individual"}
    assert set(client.get("/beacon/v2/map").json()["response"]["endpointSets"]) == {"biosample", "individual"}


def test_filtering_terms_list_published_codes_only(client, cohort: Cohort) -> None:
    terms = {t["id"] for t in client.get("/beacon/v2/filtering_terms").json()["response"]["filteringTerms"]}
    assert {"ICD10:C34.1", "ICD10:C50.9", "ICD10:C34", "NCIT:C16576", "MIABIS:Serum", "ageAtCollection"} <= terms
    assert "ICD10:C61" not in terms and "ICD10:C18.7" not in terms


def test_counts_are_thresholded_and_descendants_included(client, cohort: Cohort) -> None:
    body = client.get("/beacon/v2/biosamples", params={"filters": "ICD10:C50"}).json()
    assert body["meta"]["returnedGranularity"] == "count"
    assert body["responseSummary"] == {"exists": True, "numTotalResults": 10}
    small = client.get("/beacon/v2/individuals", params={"filters": "ICD10:C61"}).json()
    assert small["responseSummary"] == {"exists": True, "numTotalResults": 10}
    assert small["info"]["resultCountDescription"] == {"minRange": 1, "maxRange": 9}
    none = client.get("/beacon/v2/individuals", params={"filters": "ICD10:C00"}).json()
    assert none["responseSummary"] == {"exists": False, "numTotalResults": 0}
    women = client.get("/beacon/v2/individuals", params={"filters": "NCIT:C16576,MIABIS:Serum"}).json()
    assert women["responseSummary"]["numTotalResults"] == 20  # 15 → 20


def test_record_requests_are_downgraded_and_say_so(client, cohort: Cohort) -> None:
    body = {
        "meta": {"apiVersion": "v2.0"},
        "query": {"filters": [{"id": "ICD10:C50", "includeDescendantTerms": True}], "requestedGranularity": "record"},
    }
    response = client.post("/beacon/v2/biosamples", json=body).json()
    assert response["meta"]["returnedGranularity"] == "count"
    assert response["meta"]["receivedRequestSummary"]["requestedGranularity"] == "record"
    assert "granularityDowngraded" in response["info"]
    assert "resultSets" not in str(response)
    boolean = client.post("/beacon/v2/individuals", json={"query": {"requestedGranularity": "boolean"}}).json()
    assert boolean["meta"]["returnedGranularity"] == "boolean"
    assert boolean["responseSummary"] == {"exists": True}


def test_age_filters(client, cohort: Cohort) -> None:
    body = {"query": {"filters": [{"id": "ageAtCollection", "operator": ">=", "value": "70"}]}}
    assert client.post("/beacon/v2/individuals", json=body).json()["responseSummary"]["numTotalResults"] == 10


def test_an_unsupported_filter_is_refused_naming_its_path(client, cohort: Cohort) -> None:
    body = {"query": {"filters": [{"id": "ICD10:C50"}, {"id": "HP:0001250"}]}}
    response = client.post("/beacon/v2/biosamples", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"]["errorCode"] == 400
    assert "query.filters[1].id" in error["error"]["errorMessage"]
    assert error["detail"][0]["loc"] == ["query", "filters", 1, "id"]
    get = client.get("/beacon/v2/individuals", params={"filters": "ICD10:C50,ICD10:NOPE"})
    assert get.status_code == 400 and "filters[1].id" in get.json()["error"]["errorMessage"]
    bad_operator = client.post(
        "/beacon/v2/individuals",
        json={"query": {"filters": [{"id": "ageAtCollection", "operator": "~", "value": "3"}]}},
    )
    assert bad_operator.status_code == 400
    assert (
        client.post("/beacon/v2/individuals", content=b"nope", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
