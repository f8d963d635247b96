"""Every query of the access requests: reads start from what the principal may see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from biobank.access.models import (
    AccessEthicsDecision,
    AccessEthicsDocument,
    AccessNotice,
    AccessProviderEvent,
    AccessRequest,
    AccessRequestItem,
    AccessRequestProvider,
    RequestStatus,
)
from biobank.identity.principal import Principal

SORTS: dict[str, Any] = {
    "id": AccessRequest.id,
    "created_at": AccessRequest.created_at,
    "submitted_at": AccessRequest.submitted_at,
    "status": AccessRequest.status,
    "project_title": AccessRequest.project_title,
}


def _provider_of(biobank_ids: Sequence[int]) -> Any:
    return exists().where(
        AccessRequestProvider.request_id == AccessRequest.id, AccessRequestProvider.biobank_id.in_(list(biobank_ids))
    )


def visible(principal: Principal, *, reviewer: bool) -> Select[AccessRequest]:
    """Requests the principal may see: their own, submitted ones of their biobanks, all submitted for reviewers.

    Drafts are the requester's alone (and node admins').
    """
    stmt = select(AccessRequest)
    if principal.is_admin:
        return stmt
    submitted = AccessRequest.status != RequestStatus.DRAFT.value
    clauses: list[Any] = [AccessRequest.requester_user_id == principal.user_id]
    if principal.roles:
        clauses.append(and_(submitted, _provider_of(sorted(principal.roles))))
    if reviewer:
        clauses.append(submitted)
    return stmt.where(or_(*clauses))


def filtered(
    stmt: Select[AccessRequest],
    principal: Principal,
    *,
    status: str | None = None,
    role: str | None = None,
    biobank_id: int | None = None,
    reviewer: bool = False,
) -> Select[AccessRequest]:
    """Narrow a visible statement: by status, by the caller's role in it (mine, provider, ethics), by biobank."""
    if status:
        stmt = stmt.where(AccessRequest.status == status)
    if role == "mine":
        stmt = stmt.where(AccessRequest.requester_user_id == principal.user_id)
    elif role == "provider":
        ids = principal.visible_biobank_ids()
        stmt = stmt.where(AccessRequest.status != RequestStatus.DRAFT.value)
        if ids is not None:
            stmt = stmt.where(_provider_of(ids) if ids else false())
    elif role == "ethics":
        stmt = stmt.where(AccessRequest.status == RequestStatus.SUBMITTED.value)
        if not (reviewer or principal.is_admin):
            stmt = stmt.where(false())
    if biobank_id is not None:
        stmt = stmt.where(_provider_of([biobank_id]))
    return stmt


def by_public_id(session: Session, stmt: Select[AccessRequest], public_id: str) -> AccessRequest | None:
    """One request of a visible statement."""
    return session.scalars(stmt.where(AccessRequest.public_id == public_id)).first()


def by_id_unscoped(session: Session, request_id: int) -> AccessRequest | None:
    """A request by row id (jobs and other access modules; callers check visibility)."""
    return session.get(AccessRequest, request_id)


def providers_of(session: Session, request_ids: Sequence[int]) -> dict[int, list[AccessRequestProvider]]:
    """Provider tracks per request, in row order."""
    out: dict[int, list[AccessRequestProvider]] = {i: [] for i in request_ids}
    if not request_ids:
        return out
    stmt = (
        select(AccessRequestProvider)
        .where(AccessRequestProvider.request_id.in_(list(request_ids)))
        .order_by(AccessRequestProvider.id)
    )
    for row in session.scalars(stmt):
        out[row.request_id].append(row)
    return out


def items_of(session: Session, request_ids: Sequence[int]) -> dict[int, list[AccessRequestItem]]:
    """Request lines per request, in the order they were given."""
    out: dict[int, list[AccessRequestItem]] = {i: [] for i in request_ids}
    if not request_ids:
        return out
    stmt = (
        select(AccessRequestItem)
        .where(AccessRequestItem.request_id.in_(list(request_ids)))
        .order_by(AccessRequestItem.request_id, AccessRequestItem.position)
    )
    for row in session.scalars(stmt):
        out[row.request_id].append(row)
    return out


def document_of(session: Session, request_id: int) -> AccessEthicsDocument | None:
    return session.scalars(select(AccessEthicsDocument).where(AccessEthicsDocument.request_id == request_id)).first()


def document_meta(session: Session, request_id: int) -> Any:
    """The ethics document's metadata without its content."""
    d = AccessEthicsDocument
    stmt = select(d.filename, d.media_type, d.size_bytes, d.sha256, d.uploaded_at).where(d.request_id == request_id)
    return session.execute(stmt).first()


def decision_of(session: Session, request_id: int) -> AccessEthicsDecision | None:
    return session.scalars(select(AccessEthicsDecision).where(AccessEthicsDecision.request_id == request_id)).first()


def events_of(session: Session, provider_ids: Sequence[int]) -> dict[int, list[AccessProviderEvent]]:
    out: dict[int, list[AccessProviderEvent]] = {i: [] for i in provider_ids}
    if not provider_ids:
        return out
    stmt = (
        select(AccessProviderEvent)
        .where(AccessProviderEvent.provider_id.in_(list(provider_ids)))
        .order_by(AccessProviderEvent.id)
    )
    for row in session.scalars(stmt):
        out[row.provider_id].append(row)
    return out


def notices_of_request(session: Session, request_id: int) -> list[AccessNotice]:
    stmt = select(AccessNotice).where(AccessNotice.request_id == request_id).order_by(AccessNotice.id.desc())
    return list(session.scalars(stmt))


def notices_for(session: Session, biobank_ids: Sequence[int] | None, limit: int = 50) -> list[AccessNotice]:
    """The newest notices about the given biobanks' tracks (None: every biobank)."""
    stmt = select(AccessNotice).order_by(AccessNotice.id.desc()).limit(limit)
    if biobank_ids is not None:
        stmt = stmt.where(AccessNotice.biobank_id.in_(list(biobank_ids)) if biobank_ids else false())
    return list(session.scalars(stmt))


def notice_exists(session: Session, provider_id: int, kind: str, due_at: Any) -> bool:
    stmt = select(AccessNotice.id).where(
        AccessNotice.provider_id == provider_id, AccessNotice.kind == kind, AccessNotice.due_at == due_at
    )
    return session.execute(stmt).first() is not None


def waiting_tracks(session: Session, states: Sequence[str]) -> list[tuple[AccessRequestProvider, AccessRequest]]:
    """Contacted provider tracks in the given states of requests whose providers are working."""
    stmt = (
        select(AccessRequestProvider, AccessRequest)
        .join(AccessRequest, AccessRequest.id == AccessRequestProvider.request_id)
        .where(
            AccessRequest.status == RequestStatus.ETHICS_APPROVED.value,
            AccessRequestProvider.contacted_at.is_not(None),
            AccessRequestProvider.state.in_(list(states)),
        )
        .order_by(AccessRequestProvider.id)
    )
    return [(p, r) for p, r in session.execute(stmt).all()]


def open_items(session: Session, statuses: Sequence[str], biobank_ids: Sequence[int] | None) -> list[Any]:
    """(item, request) rows of open requests, for specimen and collection lines of the given biobanks."""
    stmt = (
        select(AccessRequestItem, AccessRequest)
        .join(AccessRequest, AccessRequest.id == AccessRequestItem.request_id)
        .where(AccessRequest.status.in_(list(statuses)), AccessRequestItem.kind.in_(("collection", "specimen")))
        .order_by(AccessRequestItem.id)
    )
    if biobank_ids is not None:
        stmt = stmt.where(AccessRequestItem.biobank_id.in_(list(biobank_ids)) if biobank_ids else false())
    return list(session.execute(stmt).all())


def institution_codes_of_biobanks(session: Session, biobank_ids: Sequence[int]) -> dict[int, str]:
    """The legal entity (institution code) of each biobank, through the biobanks.institution_id key."""
    from biobank.institutions.models import Biobank, Institution

    if not biobank_ids:
        return {}
    stmt = (
        select(Biobank.id, Institution.code)
        .join(Institution, Institution.id == Biobank.institution_id)
        .where(Biobank.id.in_(list(biobank_ids)))
    )
    return {bid: code for bid, code in session.execute(stmt).all()}
