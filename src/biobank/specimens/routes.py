"""REST: /api/v1/specimens — register, read, list, correct, status, move, check-out/in, lineage, QC."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Page
from biobank.specimens import custody, lineage, service
from biobank.specimens.schemas import (
    AliquotRequest,
    CheckRequest,
    EventRead,
    MoveRequest,
    PassRate,
    PoolRequest,
    QCCreate,
    QCRead,
    SpecimenCreate,
    SpecimenRead,
    SpecimenUpdate,
    StatusChange,
)

router = APIRouter(prefix="/api/v1", tags=["specimens"])


def _one(session: DbSession, specimen: object) -> SpecimenRead:
    return service.to_read(session, [specimen])[0]  # type: ignore[list-item]


@router.get("/specimens", response_model=Page[SpecimenRead])
def list_specimens(
    session: DbSession,
    principal: CurrentPrincipal,
    collection: str | None = None,
    sample_type: str | None = None,
    status: str | None = None,
    donor: str | None = None,
    barcode: Annotated[str | None, Query(description="barcode prefix")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: str | None = None,
) -> Page[SpecimenRead]:
    """A filtered, sorted page of the specimens the caller may see."""
    rows, total = service.list_page(
        session,
        principal,
        PageParams(page, size, sort),
        collection=collection,
        sample_type=sample_type,
        status=status,
        donor=donor,
        barcode_prefix=barcode,
    )
    return Page(items=service.to_read(session, rows), total=total, page=page, size=size, sort=sort)


@router.post("/specimens", response_model=SpecimenRead, status_code=201)
def create_specimen(data: SpecimenCreate, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Register a primary specimen."""
    return _one(session, service.register(session, principal, data))


@router.get("/specimens/{ref}", response_model=SpecimenRead)
def get_specimen(ref: str, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """One specimen by public id or barcode."""
    return _one(session, service.get(session, principal, ref))


@router.patch("/specimens/{ref}", response_model=SpecimenRead)
def update_specimen(ref: str, data: SpecimenUpdate, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Correct recorded facts (each change is a custody event)."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return _one(session, service.update(session, principal, specimen, data))


@router.post("/specimens/{ref}/status", response_model=SpecimenRead)
def change_status(ref: str, data: StatusChange, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Move the specimen along its lifecycle."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return _one(session, service.change_status(session, principal, specimen, data))


@router.post("/specimens/{ref}/move", response_model=SpecimenRead)
def move_specimen(ref: str, data: MoveRequest, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Move to a free position in a box."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return _one(session, custody.move(session, principal, specimen, data))


@router.post("/specimens/{ref}/check-out", response_model=SpecimenRead)
def check_out(ref: str, data: CheckRequest, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Take the specimen out of its box temporarily."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return _one(session, custody.check_out(session, principal, specimen, data))


@router.post("/specimens/{ref}/check-in", response_model=SpecimenRead)
def check_in(ref: str, data: CheckRequest, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Put a checked-out specimen back."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return _one(session, custody.check_in(session, principal, specimen, data))


@router.post("/specimens/{ref}/aliquots", response_model=list[SpecimenRead], status_code=201)
def make_aliquots(
    ref: str, data: AliquotRequest, session: DbSession, principal: CurrentPrincipal
) -> list[SpecimenRead]:
    """Split into aliquots or derivatives, placed in a box from a start position; all or nothing."""
    parent = service.get(session, principal, ref, audit_read=False)
    return service.to_read(session, lineage.aliquot(session, principal, parent, data))


@router.post("/specimens/pools", response_model=SpecimenRead, status_code=201)
def make_pool(data: PoolRequest, session: DbSession, principal: CurrentPrincipal) -> SpecimenRead:
    """Pool several specimens into a new one."""
    return _one(session, lineage.pool(session, principal, data))


@router.get("/specimens/{ref}/events", response_model=list[EventRead])
def specimen_history(ref: str, session: DbSession, principal: CurrentPrincipal) -> list[EventRead]:
    """The chain of custody, oldest first."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return service.history(session, principal, specimen)


@router.get("/specimens/{ref}/qc", response_model=list[QCRead])
def list_qc(ref: str, session: DbSession, principal: CurrentPrincipal) -> list[QCRead]:
    """QC results of a specimen."""
    specimen = service.get(session, principal, ref)
    return [QCRead.model_validate(q) for q in service.qc_results(session, specimen)]


@router.post("/specimens/{ref}/qc", response_model=QCRead, status_code=201)
def add_qc(ref: str, data: QCCreate, session: DbSession, principal: CurrentPrincipal) -> QCRead:
    """Attach a QC result."""
    specimen = service.get(session, principal, ref, audit_read=False)
    return QCRead.model_validate(service.add_qc(session, principal, specimen, data))


@router.get("/collections/{public_id}/qc-pass-rate", response_model=PassRate)
def pass_rate(public_id: str, session: DbSession, principal: CurrentPrincipal) -> PassRate:
    """Share of tested specimens in a collection whose QC passed."""
    return service.pass_rate(session, principal, public_id)
