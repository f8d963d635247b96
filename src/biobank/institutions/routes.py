"""REST: /api/v1/institutions, /api/v1/biobanks, /api/v1/collections."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from biobank.identity.deps import CurrentPrincipal
from biobank.institutions import repository as repo
from biobank.institutions import service
from biobank.institutions.models import Collection
from biobank.institutions.schemas import (
    BiobankCreate,
    BiobankRead,
    BiobankUpdate,
    CollectionCreate,
    CollectionRead,
    CollectionUpdate,
    InstitutionRead,
)
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["institutions"])


def collection_read(collection: Collection, biobank_code: str) -> CollectionRead:
    """The API view of a collection."""
    return CollectionRead.model_validate({**collection.__dict__, "biobank": biobank_code})


@router.get("/institutions", response_model=list[InstitutionRead])
def list_institutions(session: DbSession, principal: CurrentPrincipal) -> list[InstitutionRead]:
    """This node's institution and its consortium peers."""
    return [InstitutionRead.model_validate(i) for i in repo.list_institutions(session)]


@router.get("/biobanks", response_model=list[BiobankRead])
def list_biobanks(session: DbSession, principal: CurrentPrincipal) -> list[BiobankRead]:
    """This node's biobanks."""
    return [BiobankRead.model_validate(b) for b in service.list_biobanks(session)]


@router.post("/biobanks", response_model=BiobankRead, status_code=201)
def create_biobank(data: BiobankCreate, session: DbSession, principal: CurrentPrincipal) -> BiobankRead:
    """Create a biobank (node administrators)."""
    return BiobankRead.model_validate(service.create_biobank(session, principal, data))


@router.get("/biobanks/{code}", response_model=BiobankRead)
def get_biobank(code: str, session: DbSession, principal: CurrentPrincipal) -> BiobankRead:
    """One biobank by code or public id."""
    return BiobankRead.model_validate(service.get_biobank(session, code))


@router.patch("/biobanks/{code}", response_model=BiobankRead)
def update_biobank(code: str, data: BiobankUpdate, session: DbSession, principal: CurrentPrincipal) -> BiobankRead:
    """Edit a biobank's MIABIS attributes (its managers)."""
    biobank = service.get_biobank(session, code)
    return BiobankRead.model_validate(service.update_biobank(session, principal, biobank, data))


@router.get("/collections", response_model=Page[CollectionRead])
def list_collections(
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: str | None = None,
) -> Page[CollectionRead]:
    """A page of collections, optionally of one biobank."""
    bb = service.get_biobank(session, biobank) if biobank else None
    rows, total = service.list_collections(session, PageParams(page, size, sort), biobank=bb)
    codes = service.biobank_codes(session, sorted({c.biobank_id for c in rows}))
    return Page(
        items=[collection_read(c, codes[c.biobank_id]) for c in rows], total=total, page=page, size=size, sort=sort
    )


@router.post("/collections", response_model=CollectionRead, status_code=201)
def create_collection(data: CollectionCreate, session: DbSession, principal: CurrentPrincipal) -> CollectionRead:
    """Create a collection (the biobank's managers)."""
    collection = service.create_collection(session, principal, data)
    return collection_read(collection, data.biobank)


@router.get("/collections/{public_id}", response_model=CollectionRead)
def get_collection(public_id: str, session: DbSession, principal: CurrentPrincipal) -> CollectionRead:
    """One collection."""
    collection = service.get_collection(session, public_id)
    return collection_read(collection, service.biobank_codes(session, [collection.biobank_id])[collection.biobank_id])


@router.patch("/collections/{public_id}", response_model=CollectionRead)
def update_collection(
    public_id: str, data: CollectionUpdate, session: DbSession, principal: CurrentPrincipal
) -> CollectionRead:
    """Edit a collection (the biobank's managers)."""
    collection = service.update_collection(session, principal, service.get_collection(session, public_id), data)
    return collection_read(collection, service.biobank_codes(session, [collection.biobank_id])[collection.biobank_id])
