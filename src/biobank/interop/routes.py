"""REST exports (/api/v1/export/...): MIABIS JSON, BBMRI-ERIC Directory CSV, DCAT-AP, FHIR Bundles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from biobank.identity.deps import CurrentPrincipal
from biobank.interop import dcat, exports, fhir
from biobank.interop.fhir_routes import FHIR_JSON, respond
from biobank.interop.miabis import document
from biobank.kit.deps import DbSession
from biobank.kit.errors import Invalid

router = APIRouter(tags=["exports"])

Limit = Annotated[int, Query(ge=1, le=exports.MAX_PAGE)]


def _csv(text: str, name: str) -> Response:
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/api/v1/export/miabis/biobanks")
def miabis_biobanks(session: DbSession) -> dict[str, Any]:
    """Biobanks in MIABIS JSON (public)."""
    return document("biobank", exports.miabis_biobanks(session))


@router.get("/api/v1/export/miabis/collections")
def miabis_collections(session: DbSession) -> dict[str, Any]:
    """Listed collections in MIABIS JSON (public; donor counts thresholded)."""
    return document("collection", exports.miabis_collections(session))


@router.get("/api/v1/export/miabis/samples")
def miabis_samples(
    session: DbSession,
    principal: CurrentPrincipal,
    collection: str | None = None,
    cursor: str | None = None,
    limit: Limit = 500,
) -> dict[str, Any]:
    """The caller's samples in MIABIS JSON, a page at a time (audited)."""
    page = exports.miabis_samples(session, principal, collection=collection, cursor=cursor, limit=limit)
    return document("sample", page.items, next_cursor=page.next_cursor)


@router.get("/api/v1/export/miabis/donors")
def miabis_donors(
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: str | None = None,
    cursor: str | None = None,
    limit: Limit = 500,
) -> dict[str, Any]:
    """The caller's donors in MIABIS JSON (sex, birth year, dataset types, diagnoses; audited)."""
    page = exports.miabis_donors(session, principal, biobank=biobank, cursor=cursor, limit=limit)
    return document("donor", page.items, next_cursor=page.next_cursor)


@router.get("/api/v1/export/miabis/events")
def miabis_events(
    session: DbSession,
    principal: CurrentPrincipal,
    collection: str | None = None,
    cursor: str | None = None,
    limit: Limit = 500,
) -> dict[str, Any]:
    """Custody events of the caller's samples in MIABIS JSON (audited)."""
    page = exports.miabis_events(session, principal, collection=collection, cursor=cursor, limit=limit)
    return document("event", page.items, next_cursor=page.next_cursor)


@router.get("/api/v1/export/directory/biobanks.csv")
def directory_biobanks(session: DbSession) -> Response:
    """BBMRI-ERIC Directory biobanks table (public)."""
    return _csv(exports.directory_biobanks(session), "biobanks.csv")


@router.get("/api/v1/export/directory/collections.csv")
def directory_collections(request: Request, session: DbSession) -> Response:
    """BBMRI-ERIC Directory collections table (public; sizes thresholded)."""
    return _csv(exports.directory_collections(session, str(request.base_url)), "collections.csv")


@router.get("/api/v1/export/directory/facts.csv")
def directory_facts(session: DbSession) -> Response:
    """BBMRI-ERIC Directory collection facts (public; only cells with enough donors)."""
    return _csv(exports.directory_facts(session), "facts.csv")


def _dcat(request: Request, session: Any, fmt: str) -> Response:
    graph = exports.dcat_graph(session, str(request.base_url))
    if fmt in ("turtle", "ttl"):
        return Response(dcat.turtle(graph), media_type="text/turtle; charset=utf-8")
    if fmt in ("jsonld", "json-ld"):
        return Response(dcat.json_ld(graph), media_type="application/ld+json")
    raise Invalid.field("format", "use turtle or jsonld", value=fmt)


@router.get("/api/v1/export/dcat")
def dcat_export(request: Request, session: DbSession, format: str = "turtle") -> Response:
    """The public catalogue as DCAT-AP (Turtle or JSON-LD)."""
    return _dcat(request, session, format)


@router.get("/catalogue/dcat.ttl", include_in_schema=False)
def dcat_turtle(request: Request, session: DbSession) -> Response:
    """DCAT-AP in Turtle."""
    return _dcat(request, session, "turtle")


@router.get("/catalogue/dcat.jsonld", include_in_schema=False)
def dcat_jsonld(request: Request, session: DbSession) -> Response:
    """DCAT-AP in JSON-LD."""
    return _dcat(request, session, "jsonld")


@router.get("/api/v1/export/fhir", response_class=JSONResponse)
def fhir_bundle(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    collection: Annotated[str, Query()],
    validate: bool = False,
) -> JSONResponse:
    """A collection Bundle of a collection: organisations, specimens, patients, conditions (members; audited)."""
    resources: list[dict[str, Any]] = []
    for batch in exports.fhir_bundle_batches(session, principal, collection=collection):
        resources.extend(batch)
    base = str(request.base_url).rstrip("/") + "/fhir"
    response = respond(fhir.bundle(resources, base_url=base, kind="collection"), validate=validate)
    response.headers["Content-Disposition"] = 'attachment; filename="bundle.json"'
    response.media_type = FHIR_JSON
    return response
