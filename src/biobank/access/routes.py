"""REST: /api/v1/access — requests (list, create, read, ethics document, submit), the ethics decision,
provider tracks, eligibility, competing requests and the notices inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import Response

from biobank.access import competing as competing_service
from biobank.access import providers, review, service, views
from biobank.access.models import RequestStatus
from biobank.access.schemas import (
    AccessRequestCreate,
    AccessRequestRead,
    AccessRequestSummary,
    CompetingGroup,
    EthicsDecisionIn,
    EthicsDocumentRead,
    NoticeRead,
    ProviderStateChange,
)
from biobank.access.service import Viewer
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Page

router = APIRouter(prefix="/api/v1/access", tags=["access"])


@router.get("/requests", response_model=Page[AccessRequestSummary])
def list_requests(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: str | None = None,
    status: RequestStatus | None = None,
    role: Annotated[str | None, Query(description="mine, provider or ethics")] = None,
    biobank: str | None = None,
) -> Page[AccessRequestSummary]:
    """Requests the caller may see: their own, those to their biobanks, all submitted ones for ethics reviewers."""
    viewer = Viewer.of(session, principal)
    params = PageParams(page=page, size=size, sort=sort)
    rows, total = service.list_requests(session, viewer, params, status=status, role=role, biobank=biobank)
    return Page(items=views.summaries(session, viewer, rows), total=total, page=page, size=size, sort=sort)


@router.post("/requests", response_model=AccessRequestRead, status_code=201)
def create_request(data: AccessRequestCreate, session: DbSession, principal: CurrentPrincipal) -> AccessRequestRead:
    """Draft a request; attach the ethics approval, then submit."""
    viewer = Viewer.of(session, principal)
    return views.request_read(session, viewer, service.create_request(session, principal, data))


@router.get("/requests/{public_id}", response_model=AccessRequestRead)
def get_request(public_id: str, session: DbSession, principal: CurrentPrincipal) -> AccessRequestRead:
    """One request: lines, eligibility per provider, ethics decision, provider tracks and notices."""
    viewer = Viewer.of(session, principal)
    return views.request_read(session, viewer, service.get_request(session, viewer, public_id))


@router.put("/requests/{public_id}/ethics-document", response_model=EthicsDocumentRead)
def upload_document(
    public_id: str, session: DbSession, principal: CurrentPrincipal, document: Annotated[UploadFile, File()]
) -> EthicsDocumentRead:
    """Attach or replace the ethics approval document of a draft (PDF, PNG or JPEG)."""
    viewer = Viewer.of(session, principal)
    request = service.get_request(session, viewer, public_id, audit_read=False)
    content = document.file.read(service.MAX_DOCUMENT_BYTES + 1)
    stored = service.attach_document(
        session, principal, request, content, document.content_type or "", document.filename or ""
    )
    return EthicsDocumentRead.model_validate(stored)


@router.get("/requests/{public_id}/ethics-document")
def download_document(public_id: str, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The ethics approval document (checked against its SHA-256)."""
    viewer = Viewer.of(session, principal)
    request = service.get_request(session, viewer, public_id, audit_read=False)
    content, media_type, _filename = service.read_document(session, principal, request)
    return Response(content, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.post("/requests/{public_id}/submit", response_model=AccessRequestRead)
def submit(public_id: str, session: DbSession, principal: CurrentPrincipal) -> AccessRequestRead:
    """Submit a draft: consent eligibility runs per provider and the request goes to the ethics committee."""
    viewer = Viewer.of(session, principal)
    request = service.get_request(session, viewer, public_id, audit_read=False)
    return views.request_read(session, viewer, service.submit(session, principal, request))


@router.post("/requests/{public_id}/ethics", response_model=AccessRequestRead)
def ethics_decision(
    public_id: str, data: EthicsDecisionIn, session: DbSession, principal: CurrentPrincipal
) -> AccessRequestRead:
    """The ethics committee approves or rejects a submitted request, with comments."""
    viewer = Viewer.of(session, principal)
    request = service.get_request(session, viewer, public_id, audit_read=False)
    review.decide(session, viewer, request, data)
    return views.request_read(session, viewer, request)


@router.post("/requests/{public_id}/providers/{biobank}/state", response_model=AccessRequestRead)
def provider_state(
    public_id: str, biobank: str, data: ProviderStateChange, session: DbSession, principal: CurrentPrincipal
) -> AccessRequestRead:
    """A provider biobank's manager moves its track (contacted → checking availability → available ...)."""
    viewer = Viewer.of(session, principal)
    request = service.get_request(session, viewer, public_id, audit_read=False)
    track = providers.get_track(session, request, biobank)
    providers.change_state(session, viewer, request, track, data)
    return views.request_read(session, viewer, request)


@router.post("/requests/{public_id}/eligibility", response_model=AccessRequestRead)
def recompute_eligibility(public_id: str, session: DbSession, principal: CurrentPrincipal) -> AccessRequestRead:
    """Run consent eligibility again now (after consent changes)."""
    viewer = Viewer.of(session, principal)
    request = service.get_request(session, viewer, public_id, audit_read=False)
    return views.request_read(session, viewer, service.recompute_eligibility(session, principal, request))


@router.get("/competing", response_model=list[CompetingGroup])
def competing(session: DbSession, principal: CurrentPrincipal, biobank: str | None = None) -> list[CompetingGroup]:
    """Open requests competing for the same specimens or collections of the caller's managed biobanks."""
    return competing_service.competing(session, Viewer.of(session, principal), biobank=biobank)


@router.get("/notices", response_model=list[NoticeRead])
def notices(session: DbSession, principal: CurrentPrincipal) -> list[NoticeRead]:
    """Reminders and escalations about the tracks of the caller's biobanks (all for node administrators)."""
    return views.notice_reads(session, service.inbox(session, principal))
