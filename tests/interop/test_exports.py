"""MIABIS JSON, BBMRI-ERIC Directory CSV and DCAT-AP (JSON-LD and Turtle): what each holds and who may read it."""

from __future__ import annotations

import csv
import io
import json

from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from sqlalchemy.orm import Session

from tests.catalogue.helpers import Cohort, audit_entries


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_miabis_biobanks_and_collections_are_public(client, world, cohort: Cohort) -> None:
    biobanks = client.get("/api/v1/export/miabis/biobanks").json()
    assert biobanks["miabis"]["core"] == "3"
    bba = next(b for b in biobanks["items"] if b["id"].endswith(":BBA"))
    assert set(bba["collections"]) == {cohort.collections[k] for k in "ACD"}
    collections = client.get("/api/v1/export/miabis/collections").json()["items"]
    a = next(c for c in collections if c["id"] == cohort.collections["A"])
    assert a["disease"] == [{"ontology": "ICD-10", "version": "2019", "code": "C34"}]
    assert a["numberOfSubjects"] == 20  # thresholded donor count (24 → 20)
    d = next(c for c in collections if c["id"] == cohort.collections["D"])
    assert d["numberOfSubjects"] is None  # 9 donors: below the floor


def test_miabis_samples_donors_and_events_are_for_members_and_audited(
    db: Session, client, world, cohort: Cohort
) -> None:
    samples = world.owner.get("/api/v1/export/miabis/samples", params={"collection": cohort.collections["C"]}).json()
    assert len(samples["items"]) == 10
    sample = samples["items"][0]
    assert sample["sampleType"] == "Tissue (Frozen)" and sample["storageTemperature"] == "LN2 vapour phase"
    assert sample["diagnosis"] == [{"ontology": "ICD-10", "version": "2019", "code": "C50.9"}]
    assert sample["donor"].startswith("CN-SH-H01:DON-")
    donors = world.owner.get("/api/v1/export/miabis/donors", params={"limit": 5}).json()
    assert len(donors["items"]) == 5 and donors["next"]
    assert set(donors["items"][0]) == {"@type", "id", "sex", "datasetType", "birthDate", "diagnosis"}
    assert donors["items"][0]["birthDate"] == "1970"
    page_two = world.owner.get("/api/v1/export/miabis/donors", params={"limit": 5, "cursor": donors["next"]}).json()
    assert page_two["items"][0]["id"] != donors["items"][0]["id"]
    events = world.owner.get("/api/v1/export/miabis/events", params={"collection": cohort.collections["C"]}).json()
    assert events["items"][0]["eventType"] == "created"
    assert (
        world.other.get("/api/v1/export/miabis/samples", params={"collection": cohort.collections["C"]}).status_code
        == 404
    )
    assert world.outsider.get("/api/v1/export/miabis/samples").json()["items"] == []
    assert client.get("/api/v1/export/miabis/donors").status_code == 401
    assert len(audit_entries(db, "export.miabis.samples")[0].resource_ids) == 10


def test_directory_tables(client, world, cohort: Cohort) -> None:
    biobanks = _rows(client.get("/api/v1/export/directory/biobanks.csv").text)
    assert {b["id"] for b in biobanks} == {"bbmri-eric:ID:CN_BBA", "bbmri-eric:ID:CN_BBB"}
    collections = {c["name"]: c for c in _rows(client.get("/api/v1/export/directory/collections.csv").text)}
    breast = collections["Breast tissue bank"]
    assert breast["biobank"] == "bbmri-eric:ID:CN_BBA"
    assert breast["materials"] == "TISSUE_FROZEN" and breast["storage_temperatures"] == "temperatureGN"
    assert (breast["size"], breast["order_of_magnitude"]) == ("10", "1")
    assert collections["Prostate series"]["number_of_donors"] == ""  # 9: below the floor
    facts = _rows(client.get("/api/v1/export/directory/facts.csv").text)
    assert {(f["sample_type"], f["disease"], f["number_of_donors"]) for f in facts} == {
        ("SERUM", "urn:miriam:icd:C34.1", "15"),
        ("TISSUE_FROZEN", "urn:miriam:icd:C50.9", "10"),
    }
    assert all(f["sex"] == "FEMALE" for f in facts)


def test_dcat_in_turtle_and_json_ld(client, world, cohort: Cohort) -> None:
    world.owner.patch(
        f"/api/v1/catalogue/collections/{cohort.collections['C']}",
        json={
            "licence": "https://creativecommons.org/licenses/by/4.0/",
            "access_rights": "RESTRICTED",
            "contact_email": "biobank@example.org",
            "access_url": "https://example.org/access",
        },
    )
    turtle = client.get("/catalogue/dcat.ttl")
    assert turtle.status_code == 200 and turtle.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=turtle.text, format="turtle")
    catalogs = set(graph.subjects(RDF.type, DCAT.Catalog))
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert len(catalogs) == 2 and len(datasets) == 4
    breast = next(d for d in datasets if str(d).endswith(cohort.collections["C"]))
    assert graph.value(breast, DCTERMS.license) == URIRef("https://creativecommons.org/licenses/by/4.0/")
    assert str(graph.value(breast, DCTERMS.accessRights)).endswith("/access-right/RESTRICTED")
    contact = graph.value(breast, DCAT.contactPoint)
    assert contact is not None
    assert (breast, DCAT.keyword, None) in graph
    jsonld = client.get("/api/v1/export/dcat", params={"format": "jsonld"})
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    json.loads(jsonld.text)
    again = Graph().parse(data=jsonld.text, format="json-ld")
    assert len(set(again.subjects(RDF.type, DCAT.Dataset))) == 4
    assert client.get("/api/v1/export/dcat", params={"format": "xml"}).status_code == 422
