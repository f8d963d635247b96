"""Read schemas of requests, built with a fixed number of queries (no per-row lookups)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from biobank.access import repository as repo
from biobank.access.models import (
    ALLOWED_TRANSITIONS,
    MANAGER_TARGETS,
    PROVIDERS_WORKING,
    AccessNotice,
    AccessRequest,
    AccessRequestProvider,
    ProviderState,
    RequestStatus,
)
from biobank.access.schemas import (
    AccessRequestRead,
    AccessRequestSummary,
    EligibilityCounts,
    EthicsDecisionRead,
    EthicsDocumentRead,
    ItemRead,
    NoticeRead,
    ProviderEventRead,
    ProviderRead,
)
from biobank.access.service import Viewer
from biobank.consent.duo import duo_id
from biobank.identity.principal import Principal


def allowed_states(principal: Principal, request: AccessRequest, provider: AccessRequestProvider) -> list[str]:
    """The states this caller may move a provider's track to now (empty when none)."""
    if RequestStatus(request.status) not in PROVIDERS_WORKING or not principal.can_manage(provider.biobank_id):
        return []
    targets = ALLOWED_TRANSITIONS[ProviderState(provider.state)] & MANAGER_TARGETS
    return [s.value for s in ProviderState if s in targets]


def can_decide_ethics(viewer: Viewer, request: AccessRequest) -> bool:
    """Whether the caller may record the ethics decision now."""
    return (
        viewer.reviewer
        and request.status == RequestStatus.SUBMITTED
        and request.requester_user_id != viewer.principal.user_id
        and "write" in viewer.principal.scopes
    )


def summaries(session: Session, viewer: Viewer, requests: Sequence[AccessRequest]) -> list[AccessRequestSummary]:
    """List rows: the requests with their provider biobanks."""
    from biobank.institutions import service as institutions

    providers = repo.providers_of(session, [r.id for r in requests])
    codes = institutions.biobank_codes(session, sorted({p.biobank_id for ps in providers.values() for p in ps}))
    return [
        AccessRequestSummary(
            public_id=r.public_id,
            project_title=r.project_title,
            status=str(r.status),
            purpose_category=str(r.purpose.get("category", "")),
            shipment_country=r.shipment_country,
            requester_institution=r.requester_institution,
            created_at=r.created_at,
            submitted_at=r.submitted_at,
            providers=[codes[p.biobank_id] for p in providers[r.id]],
            is_mine=r.requester_user_id == viewer.principal.user_id,
        )
        for r in requests
    ]


def notice_reads(session: Session, notices: Sequence[AccessNotice]) -> list[NoticeRead]:
    """Notices with their request and biobank public names."""
    from biobank.institutions import service as institutions

    codes = institutions.biobank_codes(session, sorted({n.biobank_id for n in notices if n.biobank_id}))
    requests = {n.request_id: repo.by_id_unscoped(session, n.request_id) for n in notices}
    return [
        NoticeRead(
            request=requests[n.request_id].public_id if requests[n.request_id] else "",  # type: ignore[union-attr]
            biobank=codes.get(n.biobank_id) if n.biobank_id else None,
            kind=str(n.kind),
            days_waiting=n.days_waiting,
            message=n.message,
            created_at=n.created_at,
        )
        for n in notices
    ]


def request_read(session: Session, viewer: Viewer, request: AccessRequest) -> AccessRequestRead:
    """Everything about one request that its viewer may see."""
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    items = repo.items_of(session, [request.id])[request.id]
    providers = repo.providers_of(session, [request.id])[request.id]
    biobank_ids = sorted({p.biobank_id for p in providers} | {i.biobank_id for i in items})
    biobanks = institutions.biobanks_by_ids(session, biobank_ids)
    institution_codes = repo.institution_codes_of_biobanks(session, biobank_ids)
    collections = institutions.collections_by_ids(session, sorted({i.collection_id for i in items}))
    specimen_ids = specimens.public_ids_of(session, sorted({i.specimen_id for i in items if i.specimen_id}))
    events = repo.events_of(session, [p.id for p in providers])
    document = repo.document_meta(session, request.id)
    decision = repo.decision_of(session, request.id)
    notices = repo.notices_of_request(session, request.id)
    summary = summaries(session, viewer, [request])[0]
    category = str(request.purpose.get("category", ""))
    return AccessRequestRead(
        **summary.model_dump(),
        project_summary=request.project_summary,
        purpose=request.purpose,
        purpose_duo=duo_id(category) if category else "",
        ethics_reference=request.ethics_reference,
        ethics_document=EthicsDocumentRead.model_validate(document._mapping) if document else None,
        ethics_decision=EthicsDecisionRead.model_validate(decision) if decision else None,
        items=[
            ItemRead(
                kind=str(i.kind),
                biobank=biobanks[i.biobank_id].code,
                collection=collections[i.collection_id].public_id,
                collection_name=collections[i.collection_id].name,
                specimen=specimen_ids.get(i.specimen_id) if i.specimen_id else None,
                sample_type=i.sample_type,
                data_category=i.data_category,
                quantity=i.quantity,
                amount=i.amount,
                amount_unit=i.amount_unit,
                notes=i.notes,
            )
            for i in items
        ],
        provider_tracks=[
            ProviderRead(
                biobank=biobanks[p.biobank_id].code,
                biobank_name=biobanks[p.biobank_id].name,
                institution=institution_codes.get(p.biobank_id, ""),
                state=str(p.state),
                eligibility=EligibilityCounts(**p.eligibility) if p.eligibility else None,
                eligibility_at=p.eligibility_at,
                conditions=p.conditions,
                reminders_sent=p.reminders_sent,
                contacted_at=p.contacted_at,
                last_activity_at=p.last_activity_at,
                escalated_at=p.escalated_at,
                decided_at=p.decided_at,
                allowed_states=allowed_states(viewer.principal, request, p),
                events=[ProviderEventRead.model_validate(e) for e in events[p.id]],
            )
            for p in providers
        ],
        notices=notice_reads(session, notices),
        chain_id=request.chain_id,
        commitment=request.commitment,
        can_decide_ethics=can_decide_ethics(viewer, request),
    )
