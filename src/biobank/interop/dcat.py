"""DCAT-AP (3.0) of the public catalogue with rdflib: JSON-LD and Turtle.

Each biobank is a dcat:Catalog published by its juristic person; each listed collection is a
dcat:Dataset (title, description, keywords, ICD-10 subjects, licence, access rights, contact point,
landing page); each omics dataset covering a listed collection is a dcat:Dataset related to it, with
a distribution whose access URL is the collection's page — never the files' own URIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
ACCESS_RIGHTS = "http://publications.europa.eu/resource/authority/access-right/"
THEME_HEALTH = URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL")
ICD10_IRI = "http://purl.bioontology.org/ontology/ICD10/"
COUNTRY_IRI = "http://publications.europa.eu/resource/authority/country/"
ISO3 = {
    "CN": "CHN", "DE": "DEU", "FR": "FRA", "GB": "GBR", "IT": "ITA", "NL": "NLD", "SE": "SWE", "FI": "FIN",
    "AT": "AUT", "BE": "BEL", "CH": "CHE", "CZ": "CZE", "ES": "ESP", "NO": "NOR", "DK": "DNK", "PL": "POL",
    "US": "USA", "JP": "JPN", "KR": "KOR", "SG": "SGP", "HK": "HKG", "TW": "TWN",
}  # fmt: skip
CONTEXT = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "vcard": str(VCARD),
    "xsd": str(XSD),
}


@dataclass
class DatasetInfo:
    """An omics dataset as the catalogue may publish it."""

    public_id: str
    title: str
    kind: str
    platform: str
    description: str = ""


@dataclass
class CollectionInfo:
    """A listed collection with how it is published."""

    collection: Any
    entry: Any  # CatalogueEntryRead
    page_url: str
    keywords: list[str] = field(default_factory=list)
    datasets: list[DatasetInfo] = field(default_factory=list)


@dataclass
class CatalogueInfo:
    """A biobank and its listed collections."""

    biobank: Any
    page_url: str
    collections: list[CollectionInfo] = field(default_factory=list)


def _contact(graph: Graph, node: URIRef | BNode, name: str, email: str, url: str = "") -> None:
    contact = BNode()
    graph.add((contact, RDF.type, VCARD.Organization))
    graph.add((contact, VCARD.fn, Literal(name)))
    if email:
        graph.add((contact, VCARD.hasEmail, URIRef(f"mailto:{email}")))
    if url:
        graph.add((contact, VCARD.hasURL, URIRef(url)))
    graph.add((node, DCAT.contactPoint, contact))


def build(catalogues: Sequence[CatalogueInfo], base_url: str) -> Graph:
    """The DCAT-AP graph of the catalogues."""
    base = base_url.rstrip("/")
    graph = Graph()
    for prefix, namespace in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("vcard", VCARD), ("adms", ADMS)):
        graph.bind(prefix, namespace)
    for info in catalogues:
        b = info.biobank
        catalog = URIRef(base + info.page_url)
        publisher = URIRef(base + info.page_url + "#publisher")
        graph.add((catalog, RDF.type, DCAT.Catalog))
        graph.add((catalog, DCTERMS.identifier, Literal(b.public_id)))
        graph.add((catalog, DCTERMS.title, Literal(b.name)))
        graph.add((catalog, DCTERMS.description, Literal(b.description or b.name)))
        graph.add((catalog, DCTERMS.publisher, publisher))
        graph.add((catalog, FOAF.homepage, URIRef(b.url or base + info.page_url)))
        if b.country in ISO3:
            graph.add((catalog, DCTERMS.spatial, URIRef(COUNTRY_IRI + ISO3[b.country])))
        graph.add((publisher, RDF.type, FOAF.Organization))
        graph.add((publisher, FOAF.name, Literal(b.juristic_person or b.name)))
        _contact(graph, catalog, b.name, b.contact_email, b.url)
        for item in info.collections:
            c, entry = item.collection, item.entry
            dataset = URIRef(base + item.page_url)
            graph.add((catalog, DCAT.dataset, dataset))
            graph.add((dataset, RDF.type, DCAT.Dataset))
            graph.add((dataset, DCTERMS.identifier, Literal(c.public_id)))
            graph.add((dataset, DCTERMS.title, Literal(c.name)))
            graph.add((dataset, DCTERMS.description, Literal(c.description or c.name)))
            graph.add((dataset, DCTERMS.publisher, publisher))
            graph.add((dataset, DCAT.theme, THEME_HEALTH))
            graph.add((dataset, DCAT.landingPage, dataset))
            graph.add((dataset, DCTERMS.accessRights, URIRef(ACCESS_RIGHTS + entry.access_rights)))
            graph.add((dataset, DCTERMS.modified, Literal(c.updated_at.date().isoformat(), datatype=XSD.date)))
            if entry.licence:
                graph.add((dataset, DCTERMS.license, URIRef(entry.licence)))
            for keyword in sorted(set(item.keywords)):
                graph.add((dataset, DCAT.keyword, Literal(keyword)))
            for code in c.diseases:
                graph.add((dataset, DCTERMS.subject, URIRef(ICD10_IRI + quote(code))))
            _contact(graph, dataset, b.name, entry.contact_email or b.contact_email, entry.access_url)
            if entry.access_url:
                distribution = URIRef(base + item.page_url + "#access")
                graph.add((dataset, DCAT.distribution, distribution))
                graph.add((distribution, RDF.type, DCAT.Distribution))
                graph.add((distribution, DCAT.accessURL, URIRef(entry.access_url)))
                graph.add((distribution, DCTERMS.title, Literal(f"Access to {c.name}")))
                graph.add((distribution, DCTERMS.accessRights, URIRef(ACCESS_RIGHTS + entry.access_rights)))
                if entry.licence:
                    graph.add((distribution, DCTERMS.license, URIRef(entry.licence)))
            for omics in item.datasets:
                node = URIRef(f"{base}/catalogue/datasets/{quote(omics.public_id, safe=':')}")
                graph.add((catalog, DCAT.dataset, node))
                graph.add((node, RDF.type, DCAT.Dataset))
                graph.add((node, DCTERMS.identifier, Literal(omics.public_id)))
                graph.add((node, DCTERMS.title, Literal(omics.title)))
                graph.add(
                    (node, DCTERMS.description, Literal(omics.description or f"{omics.kind} data ({omics.platform})"))
                )
                graph.add((node, DCTERMS.type, Literal(omics.kind)))
                graph.add((node, DCAT.keyword, Literal(omics.kind)))
                graph.add((node, DCTERMS.publisher, publisher))
                graph.add((node, DCAT.theme, THEME_HEALTH))
                graph.add((node, DCTERMS.relation, dataset))
                graph.add((node, DCTERMS.accessRights, URIRef(ACCESS_RIGHTS + entry.access_rights)))
                if entry.licence:
                    graph.add((node, DCTERMS.license, URIRef(entry.licence)))
                _contact(graph, node, b.name, entry.contact_email or b.contact_email, entry.access_url)
                distribution = URIRef(f"{base}/catalogue/datasets/{quote(omics.public_id, safe=':')}#access")
                graph.add((node, DCAT.distribution, distribution))
                graph.add((distribution, RDF.type, DCAT.Distribution))
                graph.add((distribution, DCAT.accessURL, dataset))
                graph.add((distribution, DCTERMS.description, Literal("Request access through the collection's page")))
    return graph


def turtle(graph: Graph) -> str:
    """Turtle text."""
    return graph.serialize(format="turtle")


def json_ld(graph: Graph) -> str:
    """JSON-LD text with a compact context."""
    return graph.serialize(format="json-ld", context=CONTEXT, indent=2)
