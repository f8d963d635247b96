"""GA4GH Beacon v2 (framework v2.0.0): pure builders of the informational responses, filter parsing and
the count/boolean result responses.

This Beacon answers at `count` granularity at most: a `record` request is answered with a count and
`meta.returnedGranularity` says so (with a note in `info`); a `boolean` request gets a boolean. Counts
are the catalogue's thresholded numbers: 1–9 are reported as the floor (10), larger ones rounded.

Filters (ANDed; ontology terms include their descendants):
- `ICD10:<code|block|chapter>` — the specimen's diagnosis (ontologyTerm);
- `NCIT:C16576` female, `NCIT:C20197` male, `NCIT:C17998` unknown sex (ontologyTerm);
- `MIABIS:<sample type>`, e.g. `MIABIS:Serum` (custom);
- `collection:<public id>` (custom);
- `ageAtCollection` with `=`, `<`, `<=`, `>`, `>=` and a number of years (alphanumeric).
Anything else is refused with a 400 naming the filter's JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from biobank.catalogue.codes import normalise_icd10
from biobank.kit.errors import FieldError, Invalid
from biobank.kit.vocab import SampleType

API_VERSION = "v2.0.0"
SCHEMAS = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main"
MODELS = f"{SCHEMAS}/models/json/beacon-v2-default-model"
GRANULARITIES = ("boolean", "count", "record")
SEX_TERMS = {"NCIT:C16576": "Female", "NCIT:C20197": "Male", "NCIT:C17998": "Unknown"}
SEX_LABELS = {"NCIT:C16576": "female", "NCIT:C20197": "male", "NCIT:C17998": "unknown"}
AGE_OPERATORS = ("=", "<", "<=", ">", ">=")
ENTRY_TYPES = {
    "biosample": {
        "id": "biosample",
        "name": "Biological sample",
        "ontologyTermForThisType": {"id": "NCIT:C70699", "label": "Biospecimen"},
        "partOfSpecification": "Beacon v2.0.0",
        "description": "A specimen held by the biobank (aliquots and derivatives included)",
        "defaultSchema": {
            "id": "ga4gh-beacon-biosample-v2.0.0",
            "name": "Default schema for a biological sample",
            "referenceToSchemaDefinition": f"{MODELS}/biosamples/defaultSchema.json",
            "schemaVersion": "v2.0.0",
        },
    },
    "individual": {
        "id": "individual",
        "name": "Individual",
        "ontologyTermForThisType": {"id": "NCIT:C25190", "label": "Person"},
        "partOfSpecification": "Beacon v2.0.0",
        "description": "A donor of specimens",
        "defaultSchema": {
            "id": "ga4gh-beacon-individual-v2.0.0",
            "name": "Default schema for an individual",
            "referenceToSchemaDefinition": f"{MODELS}/individuals/defaultSchema.json",
            "schemaVersion": "v2.0.0",
        },
    },
}
ENDPOINTS = {"biosample": "biosamples", "individual": "individuals"}


@dataclass
class BeaconQuery:
    """A parsed request: criteria for the count, the granularity asked for and the filters as received."""

    diagnoses: list[str] = field(default_factory=list)
    sexes: list[str] = field(default_factory=list)
    materials: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    age_min: int | None = None
    age_max: int | None = None
    requested_granularity: str = "count"
    filters: list[dict[str, Any]] = field(default_factory=list)
    skip: int = 0
    limit: int = 10


def _bad(loc: list[str | int], message: str, value: Any = None) -> FieldError:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return FieldError(loc, f"{path}: {message}", value=value)


def parse_request(
    body: dict[str, Any] | None, *, get_filters: list[str] | None = None, granularity: str | None = None
) -> BeaconQuery:
    """A POST body or GET parameters as a BeaconQuery; unsupported filters are Invalid with their path."""
    errors: list[FieldError] = []
    query_obj: dict[str, Any] = {}
    if body is not None:
        if not isinstance(body, dict):
            raise Invalid([_bad([], "the request body must be a JSON object")], name="BadBeaconRequest")
        query_obj = body.get("query") or {}
        if not isinstance(query_obj, dict):
            raise Invalid([_bad(["query"], "must be an object")], name="BadBeaconRequest")
        raw_filters = query_obj.get("filters") or []
        base: list[str | int] = ["query", "filters"]
        requested = query_obj.get("requestedGranularity", "count")
        pagination = query_obj.get("pagination") or {}
    else:
        raw_filters = [{"id": f} for f in (get_filters or [])]
        base = ["filters"]
        requested = granularity or "count"
        pagination = {}
    result = BeaconQuery(requested_granularity=str(requested))
    if requested not in GRANULARITIES:
        errors.append(_bad([*base[:-1], "requestedGranularity"], "use boolean, count or record", requested))
    if not isinstance(raw_filters, list):
        errors.append(_bad(base, "filters must be a list"))
        raw_filters = []
    for i, item in enumerate(raw_filters):
        loc = [*base, i]
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            errors.append(_bad(loc, "a filter is an object with an id"))
            continue
        result.filters.append(item)
        term = item["id"].strip()
        operator = item.get("operator")
        if term == "ageAtCollection":
            value = item.get("value")
            if operator not in AGE_OPERATORS:
                errors.append(_bad([*loc, "operator"], "use one of = < <= > >=", operator))
                continue
            try:
                years = int(str(value))
            except (TypeError, ValueError):
                errors.append(_bad([*loc, "value"], "give the age in whole years", value))
                continue
            if operator in ("=", ">=", ">"):
                low = years + (1 if operator == ">" else 0)
                result.age_min = low if result.age_min is None else max(result.age_min, low)
            if operator in ("=", "<=", "<"):
                high = years - (1 if operator == "<" else 0)
                result.age_max = high if result.age_max is None else min(result.age_max, high)
            continue
        if operator not in (None, "="):
            errors.append(_bad([*loc, "operator"], f"the filter {term!r} takes no operator", operator))
            continue
        prefix, _, value = term.partition(":")
        if prefix.upper() == "ICD10" and value:
            try:
                result.diagnoses.append(normalise_icd10(value))
            except ValueError as exc:
                errors.append(_bad([*loc, "id"], str(exc), term))
            continue
        if term in SEX_TERMS:
            result.sexes.append(SEX_TERMS[term])
            continue
        if prefix == "MIABIS" and value:
            match = next((t.value for t in SampleType if t.value.casefold() == value.casefold()), None)
            if match is None:
                errors.append(_bad([*loc, "id"], "unknown MIABIS sample type", term))
                continue
            result.materials.append(match)
            continue
        if prefix == "collection" and value:
            result.collections.append(value)
            continue
        errors.append(_bad([*loc, "id"], "unsupported filter; see /beacon/v2/filtering_terms", term))
    try:
        result.skip = max(0, int(pagination.get("skip", 0)))
        result.limit = max(0, int(pagination.get("limit", 10)))
    except (TypeError, ValueError):
        errors.append(_bad([*base[:-1], "pagination"], "skip and limit are whole numbers"))
    if errors:
        raise Invalid(errors, name="BadBeaconRequest")
    return result


def meta(
    beacon_id: str,
    *,
    entity: str | None = None,
    query: BeaconQuery | None = None,
    returned: str | None = None,
) -> dict[str, Any]:
    """The `meta` section of a response."""
    out: dict[str, Any] = {"beaconId": beacon_id, "apiVersion": API_VERSION}
    if entity:
        out["returnedSchemas"] = [{"entityType": entity, "schema": f"beacon-{entity}-v2.0.0"}]
    if returned:
        out["returnedGranularity"] = returned
    if query is not None:
        out["receivedRequestSummary"] = {
            "apiVersion": API_VERSION,
            "requestedSchemas": [],
            "filters": [f["id"] for f in query.filters],
            "requestedGranularity": query.requested_granularity,
            "pagination": {"skip": query.skip, "limit": query.limit},
            "includeResultsetResponses": "HIT",
        }
    return out


def info(
    beacon_id: str, name: str, *, organization: dict[str, Any], base_url: str, version: str, environment: str
) -> dict[str, Any]:
    """/info."""
    return {
        "meta": meta(beacon_id),
        "response": {
            "id": beacon_id,
            "name": name,
            "apiVersion": API_VERSION,
            "environment": environment,
            "organization": organization,
            "description": "Counts of biobank specimens and donors by diagnosis (ICD-10), sex, material and age, "
            "thresholded and rounded; no records are returned.",
            "version": version,
            "welcomeUrl": base_url.rstrip("/") + "/catalogue",
            "alternativeUrl": base_url.rstrip("/") + "/beacon/v2",
        },
    }


def service_info(
    beacon_id: str, name: str, *, organization: dict[str, Any], version: str, environment: str
) -> dict[str, Any]:
    """/service-info (GA4GH service-info)."""
    return {
        "id": beacon_id,
        "name": name,
        "type": {"group": "org.ga4gh", "artifact": "beacon", "version": API_VERSION},
        "organization": {"name": organization["name"], "url": organization.get("welcomeUrl", "")},
        "version": version,
        "environment": environment,
    }


def configuration(beacon_id: str) -> dict[str, Any]:
    """/configuration."""
    return {
        "meta": meta(beacon_id),
        "response": {
            "$schema": f"{SCHEMAS}/framework/json/configuration/beaconConfigurationSchema.json",
            "maturityAttributes": {"productionStatus": "PROD"},
            "securityAttributes": {"defaultGranularity": "count", "securityLevels": ["PUBLIC"]},
            "entryTypes": ENTRY_TYPES,
        },
    }


def beacon_map(beacon_id: str, base_url: str) -> dict[str, Any]:
    """/map."""
    root = base_url.rstrip("/") + "/beacon/v2"
    return {
        "meta": meta(beacon_id),
        "response": {
            "$schema": f"{SCHEMAS}/framework/json/configuration/beaconMapSchema.json",
            "endpointSets": {
                entity: {
                    "entryType": entity,
                    "rootUrl": f"{root}/{path}",
                    "filteringTermsUrl": f"{root}/filtering_terms",
                }
                for entity, path in ENDPOINTS.items()
            },
        },
    }


def entry_types(beacon_id: str) -> dict[str, Any]:
    """/entry_types."""
    return {"meta": meta(beacon_id), "response": {"entryTypes": ENTRY_TYPES}}


def filtering_terms(beacon_id: str, icd10: dict[str, str], collections: dict[str, str]) -> dict[str, Any]:
    """/filtering_terms: the ICD-10 codes and collections the catalogue publishes, sexes, materials, age."""
    scopes = ["biosample", "individual"]
    terms: list[dict[str, Any]] = [
        {"type": "ontologyTerm", "id": f"ICD10:{code}", "label": label, "scopes": scopes}
        for code, label in sorted(icd10.items())
    ]
    terms += [{"type": "ontologyTerm", "id": t, "label": SEX_LABELS[t], "scopes": scopes} for t in SEX_TERMS]
    terms += [
        {
            "type": "custom",
            "id": f"MIABIS:{t.value}",
            "label": f"MIABIS sample type: {t.value}",
            "scopes": ["biosample"],
        }
        for t in SampleType
    ]
    terms += [
        {"type": "custom", "id": f"collection:{pid}", "label": name, "scopes": scopes}
        for pid, name in sorted(collections.items())
    ]
    terms.append(
        {
            "type": "alphanumeric",
            "id": "ageAtCollection",
            "label": "age at collection in years (= < <= > >=)",
            "scopes": scopes,
        }
    )
    return {
        "meta": meta(beacon_id),
        "response": {
            "filteringTerms": terms,
            "resources": [
                {
                    "id": "ICD10",
                    "name": "ICD-10 (WHO)",
                    "url": "https://icd.who.int/browse10",
                    "version": "2019",
                    "namespacePrefix": "ICD10",
                    "iriPrefix": "http://purl.bioontology.org/ontology/ICD10/",
                },
                {
                    "id": "NCIT",
                    "name": "NCI Thesaurus",
                    "url": "http://purl.obolibrary.org/obo/ncit.owl",
                    "namespacePrefix": "NCIT",
                    "iriPrefix": "http://purl.obolibrary.org/obo/NCIT_",
                },
            ],
        },
    }


def result_response(
    beacon_id: str,
    entity: str,
    query: BeaconQuery,
    *,
    exists: bool,
    reported: int,
    min_range: int,
    max_range: int,
    policy: dict[str, Any],
) -> dict[str, Any]:
    """A boolean or count response; record requests are downgraded to count and say so."""
    returned = "boolean" if query.requested_granularity == "boolean" else "count"
    summary: dict[str, Any] = {"exists": exists}
    notes: dict[str, Any] = {"countPolicy": policy}
    if returned == "count":
        summary["numTotalResults"] = reported
        notes["resultCountDescription"] = {"minRange": min_range, "maxRange": max_range}
    if query.requested_granularity == "record":
        notes["granularityDowngraded"] = (
            "record granularity was requested; this Beacon returns count granularity at most"
        )
    return {
        "meta": meta(beacon_id, entity=entity, query=query, returned=returned),
        "responseSummary": summary,
        "info": notes,
        "beaconHandovers": [],
    }


def error_response(beacon_id: str, status: int, message: str, detail: Any = None) -> dict[str, Any]:
    """A Beacon error response."""
    body: dict[str, Any] = {"meta": meta(beacon_id), "error": {"errorCode": status, "errorMessage": message}}
    if detail is not None:
        body["detail"] = detail
    return body
