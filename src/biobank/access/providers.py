"""Each provider biobank's own track through a request, moved by its managers along ALLOWED_TRANSITIONS.

On chain a provider is an institution: `request.provider` for an institution is enqueued once every one of
its biobanks in the request has decided, available when any of them is.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import chain
from biobank.access import repository as repo
from biobank.access.models import (
    ALLOWED_TRANSITIONS,
    MANAGER_TARGETS,
    NOT_AVAILABLE,
    PROVIDERS_WORKING,
    UNDECIDED,
    AccessProviderEvent,
    AccessRequest,
    AccessRequestProvider,
    ProviderState,
    RequestStatus,
)
from biobank.access.schemas import ProviderStateChange
from biobank.access.service import Viewer
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, Invalid, NotFound, NotPermitted


def get_track(session: Session, request: AccessRequest, biobank: str) -> AccessRequestProvider:
    """The track of one provider biobank (by code or public id) of a request the caller sees; else 404."""
    from biobank.institutions import service as institutions

    try:
        biobank_id = institutions.get_biobank(session, biobank).id
    except NotFound:
        biobank_id = None
    for provider in repo.providers_of(session, [request.id])[request.id]:
        if provider.biobank_id == biobank_id:
            return provider
    raise NotFound(f"biobank {biobank!r} is not a provider of {request.public_id}", name="ProviderNotFound")


def change_state(
    session: Session, viewer: Viewer, request: AccessRequest, provider: AccessRequestProvider, data: ProviderStateChange
) -> AccessRequestProvider:
    """Move a provider's track (its biobank's managers), checked against the transitions table."""
    principal = viewer.principal
    if not principal.can_manage(provider.biobank_id):
        raise NotPermitted("only the provider biobank's managers move its track", name="NotProviderManager")
    target = ProviderState(data.state)
    if target not in MANAGER_TARGETS:
        raise Invalid.field("state", "a track is revoked through revocation, not a state change", value=target.value)
    if RequestStatus(request.status) not in PROVIDERS_WORKING:
        raise Conflict(
            f"the request is {request.status}; providers work on it once ethics has approved it",
            name="RequestNotApproved",
        )
    current = ProviderState(provider.state)
    if target not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current] & MANAGER_TARGETS)) or "none"
        raise Conflict(
            f"the provider's track is {current.value} and cannot move to {target.value} (allowed: {allowed})",
            name="ProviderStateConflict",
        )
    if target is ProviderState.CONDITIONS_INDICATED and not data.note:
        raise Invalid.field("note", "say which access conditions apply")
    now = utcnow()
    session.add(
        AccessProviderEvent(
            provider_id=provider.id,
            actor=principal.public_id,
            from_state=current.value,
            to_state=target.value,
            note=data.note,
            at=now,
        )
    )
    provider.state = target
    provider.last_activity_at = now
    if target is ProviderState.CONDITIONS_INDICATED:
        provider.conditions = data.note
    if current in UNDECIDED and target not in UNDECIDED:
        provider.decided_at = now
    session.flush()
    _report_institution(session, request, provider)
    audit.record(
        session,
        principal,
        "access.request.provider_state",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"biobank": _code(session, provider.biobank_id), "from": current.value, "to": target.value},
    )
    return provider


def _code(session: Session, biobank_id: int) -> str:
    from biobank.institutions import service as institutions

    return institutions.biobank_codes(session, [biobank_id])[biobank_id]


def _report_institution(session: Session, request: AccessRequest, changed: AccessRequestProvider) -> None:
    """Enqueue `request.provider` for the changed track's institution once all its biobanks decided."""
    providers = repo.providers_of(session, [request.id])[request.id]
    institutions = repo.institution_codes_of_biobanks(session, [p.biobank_id for p in providers])
    institution = institutions[changed.biobank_id]
    siblings = [p for p in providers if institutions[p.biobank_id] == institution]
    if any(ProviderState(p.state) in UNDECIDED for p in siblings):
        return
    available = any(ProviderState(p.state) not in NOT_AVAILABLE for p in siblings)
    chain.enqueue_provider(session, request, institution, available)
