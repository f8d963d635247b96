"""REST: /api/v1/donors. Identifying data only through POST .../identity, with a reason, audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from biobank.donors import service
from biobank.donors.schemas import (
    DiagnosisIn,
    DiagnosisRead,
    DonorCreate,
    DonorIdentity,
    DonorRead,
    DonorUpdate,
)
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Page, Schema

router = APIRouter(prefix="/api/v1/donors", tags=["donors"])


class IdentityRequest(Schema):
    reason: str = Field(min_length=3, max_length=200)


class LookupRequest(Schema):
    biobank: str
    patient_id: str = Field(min_length=1, max_length=64)


@router.get("", response_model=Page[DonorRead])
def list_donors(
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: str | None = None,
) -> Page[DonorRead]:
    """A page of the donors the caller may see (never identifying data)."""
    rows, total = service.list_page(session, principal, PageParams(page, size, sort), biobank=biobank)
    return Page(items=service.to_read(session, rows), total=total, page=page, size=size, sort=sort)


@router.post("", response_model=DonorRead, status_code=201)
def create_donor(data: DonorCreate, session: DbSession, principal: CurrentPrincipal) -> DonorRead:
    """Register a donor; the patient id, name and contact are encrypted in the vault."""
    return service.to_read(session, [service.register(session, principal, data)])[0]


@router.post("/lookup", response_model=DonorRead)
def lookup(data: LookupRequest, session: DbSession, principal: CurrentPrincipal) -> DonorRead:
    """Find a donor by hospital patient id (sent in the body, never in a URL)."""
    return service.to_read(session, [service.find_by_patient_id(session, principal, data.biobank, data.patient_id)])[0]


@router.get("/{public_id}", response_model=DonorRead)
def get_donor(public_id: str, session: DbSession, principal: CurrentPrincipal) -> DonorRead:
    """One donor."""
    return service.to_read(session, [service.get(session, principal, public_id)])[0]


@router.patch("/{public_id}", response_model=DonorRead)
def update_donor(public_id: str, data: DonorUpdate, session: DbSession, principal: CurrentPrincipal) -> DonorRead:
    """Correct a donor's record."""
    donor = service.get(session, principal, public_id, audit_read=False)
    return service.to_read(session, [service.update(session, principal, donor, data)])[0]


@router.post("/{public_id}/diagnoses", response_model=DiagnosisRead, status_code=201)
def add_diagnosis(public_id: str, data: DiagnosisIn, session: DbSession, principal: CurrentPrincipal) -> DiagnosisRead:
    """Add an ICD-10 diagnosis."""
    donor = service.get(session, principal, public_id, audit_read=False)
    return DiagnosisRead.model_validate(service.add_diagnosis(session, principal, donor, data))


@router.post("/{public_id}/identity", response_model=DonorIdentity)
def reveal_identity(
    public_id: str, data: IdentityRequest, session: DbSession, principal: CurrentPrincipal
) -> DonorIdentity:
    """Decrypt identifying data (managers; the reason is audited)."""
    donor = service.get(session, principal, public_id, audit_read=False)
    return service.reveal_identity(session, principal, donor, reason=data.reason)
