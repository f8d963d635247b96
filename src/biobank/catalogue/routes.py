"""REST: the public catalogue (/api/v1/catalogue/...), managers' edits, the count query, facts refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from biobank.catalogue import counts, search, service
from biobank.catalogue.disclosure import policy
from biobank.catalogue.schemas import (
    BiobankEdit,
    BiobankPage,
    CollectionEdit,
    CollectionPage,
    CountRequest,
    CountResult,
    RefreshReport,
    SearchCriteria,
    SearchResult,
)
from biobank.identity.deps import CurrentPrincipal, OptionalPrincipal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession

router = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])


@router.get("/collections", response_model=SearchResult)
def search_collections(session: DbSession, criteria: Annotated[SearchCriteria, Query()]) -> SearchResult:
    """Public faceted search over listed collections (no login; aggregate, thresholded numbers only)."""
    return search.search(session, criteria)


@router.get("/collections/{public_id}", response_model=CollectionPage)
def get_collection(public_id: str, session: DbSession, principal: OptionalPrincipal) -> CollectionPage:
    """A listed collection's public page (its managers also see it while unlisted)."""
    collection = institutions.get_collection(session, public_id)
    own = principal is not None and principal.can_read(collection.biobank_id)
    return search.collection_page(session, public_id, include_unlisted=own)


@router.patch("/collections/{public_id}", response_model=CollectionPage)
def edit_collection(
    public_id: str, data: CollectionEdit, session: DbSession, principal: CurrentPrincipal
) -> CollectionPage:
    """Edit a collection's MIABIS attributes and how it is published (its biobank's managers)."""
    collection = service.collection_for_edit(session, principal, public_id)
    service.edit_collection(session, principal, collection, data)
    return search.collection_page(session, public_id, include_unlisted=True)


@router.get("/biobanks", response_model=list[BiobankPage])
def list_biobanks(session: DbSession) -> list[BiobankPage]:
    """Every biobank of this node with its listed collections (public)."""
    return search.biobank_pages(session)


@router.get("/biobanks/{ref}", response_model=BiobankPage)
def get_biobank(ref: str, session: DbSession) -> BiobankPage:
    """A biobank's public page (by public id or code)."""
    return search.biobank_page(session, ref)


@router.patch("/biobanks/{ref}", response_model=BiobankPage)
def edit_biobank(ref: str, data: BiobankEdit, session: DbSession, principal: CurrentPrincipal) -> BiobankPage:
    """Edit a biobank's MIABIS attributes (its managers)."""
    biobank = institutions.get_biobank(session, ref)
    service.edit_biobank(session, principal, biobank, data)
    return search.biobank_page(session, ref)


@router.get("/policy")
def disclosure_policy() -> dict[str, object]:
    """The thresholds and rounding every published number follows."""
    return policy().describe()


@router.post("/count", response_model=CountResult)
def count(data: CountRequest, session: DbSession, principal: CurrentPrincipal) -> CountResult:
    """Registered researchers: thresholded specimen and donor counts consent allows for a purpose (audited)."""
    return counts.count(session, principal, data)


@router.post("/refresh", response_model=RefreshReport)
def refresh(
    session: DbSession, principal: CurrentPrincipal, collection: Annotated[str | None, Query()] = None
) -> RefreshReport:
    """Recompute collection facts: one collection (its managers) or all (node administrators)."""
    return service.refresh(session, principal, collection)
