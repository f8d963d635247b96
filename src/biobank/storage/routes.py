"""REST: /api/v1/storage — the unit tree, box grids, free positions and capacity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Page
from biobank.storage import service
from biobank.storage.models import UnitKind
from biobank.storage.positions import MAX_FREE_SLOTS
from biobank.storage.schemas import BoxView, CapacityRow, FreeSlot, UnitCreate, UnitDetail, UnitRead, UnitUpdate

router = APIRouter(prefix="/api/v1/storage", tags=["storage"])


@router.get("/units", response_model=Page[UnitRead])
def list_units(
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: str | None = None,
    kind: UnitKind | None = None,
    parent: Annotated[str | None, Query(description="public id of the containing unit")] = None,
    q: Annotated[str | None, Query(description="part of the unit's name")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: str | None = None,
) -> Page[UnitRead]:
    """A page of the storage units you may see."""
    params = PageParams(page, size, sort)
    rows, total = service.list_units(
        session, principal, params, biobank_code=biobank, kind=kind, parent=parent, name_contains=q
    )
    return Page(items=service.unit_reads(session, rows), total=total, page=page, size=size, sort=sort)


@router.post("/units", response_model=UnitRead, status_code=201)
def create_unit(data: UnitCreate, session: DbSession, principal: CurrentPrincipal) -> UnitRead:
    """Add a site, freezer, tank, rack, shelf or box."""
    (read,) = service.unit_reads(session, [service.create_unit(session, principal, data)])
    return read


@router.get("/units/{public_id}", response_model=UnitDetail)
def get_unit(public_id: str, session: DbSession, principal: CurrentPrincipal) -> UnitDetail:
    """One unit with the units directly inside it."""
    return service.unit_detail(session, principal, public_id)


@router.patch("/units/{public_id}", response_model=UnitRead)
def update_unit(public_id: str, data: UnitUpdate, session: DbSession, principal: CurrentPrincipal) -> UnitRead:
    """Rename a unit or move it, with its contents, to another parent."""
    unit = service.update_unit(session, principal, service.get_unit(session, principal, public_id), data)
    (read,) = service.unit_reads(session, [unit])
    return read


@router.delete("/units/{public_id}", status_code=204)
def delete_unit(public_id: str, session: DbSession, principal: CurrentPrincipal) -> Response:
    """Delete an empty unit (409 while it holds units or specimens)."""
    service.delete_unit(session, principal, service.get_unit(session, principal, public_id))
    return Response(status_code=204)


@router.get("/boxes/{public_id}", response_model=BoxView)
def get_box(public_id: str, session: DbSession, principal: CurrentPrincipal) -> BoxView:
    """A box as a grid, with the specimen in each occupied position."""
    return service.box_view(session, principal, public_id)


@router.get("/free-slots", response_model=list[FreeSlot])
def free_slots(
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: str | None = None,
    temperature: Annotated[str | None, Query(description="MIABIS storage temperature, or e.g. -80")] = None,
    count: Annotated[int, Query(ge=1, le=MAX_FREE_SLOTS)] = 1,
    within: Annotated[str | None, Query(description="public id or path of a unit to search in")] = None,
) -> list[FreeSlot]:
    """The first free positions, in path order, of boxes that match."""
    return service.free_slots(
        session, principal, biobank_code=biobank, temperature=temperature, count=count, within=within
    )


@router.get("/capacity", response_model=list[CapacityRow])
def capacity(session: DbSession, principal: CurrentPrincipal, biobank: str | None = None) -> list[CapacityRow]:
    """Boxes, positions and occupancy per freezer and tank."""
    return service.capacity_report(session, principal, biobank_code=biobank)
