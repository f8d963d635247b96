"""Shared pieces of fulfilment: finding the request a caller may see, who is which party, the request's
purpose for consent checks, the request status moves of steps 5–7, and ids on chain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access.fulfilment_models import AccessAgreement, AgreementStatus
from biobank.access.models import (
    AccessRequest,
    AccessRequestItem,
    AccessRequestProvider,
    ProviderState,
    RequestStatus,
)
from biobank.config import Settings
from biobank.consent.matcher import Purpose
from biobank.identity.principal import Principal
from biobank.institutions.models import Biobank, Institution
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, NotFound, NotPermitted
from biobank.ledger.refs import institution_ref

# Provider states in which a provider has said yes (and met its conditions, if it indicated any).
READY_PROVIDER_STATES = frozenset({ProviderState.AVAILABLE, ProviderState.CONDITIONS_MET, ProviderState.MADE_AVAILABLE})
# Request statuses in which agreements are made and fulfilled.
FULFILLING = frozenset({RequestStatus.ETHICS_APPROVED, RequestStatus.AGREED})


def request_by_public_id(session: Session, public_id: str) -> AccessRequest | None:
    """A request by public id, unscoped (callers check visibility)."""
    return session.scalars(select(AccessRequest).where(AccessRequest.public_id == public_id)).first()


def providers_of(session: Session, request: AccessRequest) -> list[AccessRequestProvider]:
    """The provider tracks of a request, by id."""
    stmt = select(AccessRequestProvider).where(AccessRequestProvider.request_id == request.id)
    return list(session.scalars(stmt.order_by(AccessRequestProvider.id)))


def items_of(session: Session, request: AccessRequest) -> list[AccessRequestItem]:
    """The lines of a request, in order."""
    stmt = select(AccessRequestItem).where(AccessRequestItem.request_id == request.id)
    return list(session.scalars(stmt.order_by(AccessRequestItem.position, AccessRequestItem.id)))


def is_requester(principal: Principal, request: AccessRequest) -> bool:
    """The researcher who made the request."""
    return principal.user_id == request.requester_user_id


def can_see(session: Session, principal: Principal, request: AccessRequest) -> bool:
    """The requester, members of a provider biobank and node administrators see a request's fulfilment."""
    if principal.is_admin or is_requester(principal, request):
        return True
    return any(principal.can_read(p.biobank_id) for p in providers_of(session, request))


def get_request(session: Session, principal: Principal, public_id: str) -> AccessRequest:
    """A request the principal may see, or 404."""
    request = request_by_public_id(session, public_id)
    if request is None or not can_see(session, principal, request):
        raise NotFound(f"no access request {public_id!r}", name="AccessRequestNotFound")
    return request


def require_requester(principal: Principal, request: AccessRequest, action: str) -> None:
    """Only the requester does this (403 for the providers who see the request)."""
    if not is_requester(principal, request):
        raise NotPermitted(f"only the researcher who made the request may {action}", name="NotRequester")


def require_status(request: AccessRequest, allowed: Iterable[RequestStatus], action: str) -> None:
    """409 naming the request's status when `action` is not possible in it."""
    allowed = frozenset(allowed)
    if RequestStatus(request.status) not in allowed:
        wanted = " or ".join(sorted(s.value for s in allowed))
        raise Conflict(
            f"cannot {action}: the request is {request.status} (it must be {wanted})", name="WrongRequestStatus"
        )


@dataclass(frozen=True)
class ProviderInstitution:
    """A provider institution of a request: its code and name and its biobanks in the request."""

    code: str
    name: str
    biobanks: tuple[Biobank, ...]
    tracks: tuple[AccessRequestProvider, ...]

    @property
    def ref(self) -> str:
        """bytes32 of the institution on chain."""
        return institution_ref(self.code)


def _institutions(session: Session, ids: set[int]) -> dict[int, Institution]:
    from biobank.institutions import repository as institutions_repo

    return {i.id: i for i in institutions_repo.list_institutions(session) if i.id in ids}


def provider_institutions(session: Session, request: AccessRequest) -> dict[str, ProviderInstitution]:
    """The request's providers grouped by institution (the legal party of an agreement), by code."""
    from biobank.institutions import service as institutions

    tracks = providers_of(session, request)
    biobanks = institutions.biobanks_by_ids(session, sorted({t.biobank_id for t in tracks}))
    insts = _institutions(session, {b.institution_id for b in biobanks.values()})
    grouped: dict[str, list[AccessRequestProvider]] = {}
    for track in tracks:
        grouped.setdefault(insts[biobanks[track.biobank_id].institution_id].code, []).append(track)
    out: dict[str, ProviderInstitution] = {}
    for code, rows in grouped.items():
        inst = insts[biobanks[rows[0].biobank_id].institution_id]
        out[code] = ProviderInstitution(
            code=code,
            name=inst.name,
            biobanks=tuple(biobanks[t.biobank_id] for t in rows),
            tracks=tuple(rows),
        )
    return out


def institution_name(session: Session, code: str) -> str:
    """The name of an institution by code (the code when unknown)."""
    from biobank.institutions import repository as institutions_repo

    inst = institutions_repo.institution_by_code(session, code)
    return inst.name if inst else code


def purpose_of(request: AccessRequest) -> Purpose:
    """The matcher's purpose of a request: what the requester stated, with facts the workflow established."""
    data = dict(request.purpose or {})
    fields = set(Purpose.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in fields}
    values["diseases"] = frozenset(values.get("diseases") or ())
    values.setdefault("category", "GRU")
    if values.get("country") is None:
        values["country"] = request.shipment_country
    if values.get("ethics_approval") is None:
        values["ethics_approval"] = True  # only ethics-approved requests reach fulfilment
    if not values.get("project_id"):
        values["project_id"] = request.public_id
    return Purpose(**values)


def agreements_of(session: Session, request: AccessRequest) -> list[AccessAgreement]:
    """A request's agreements, oldest first."""
    stmt = select(AccessAgreement).where(AccessAgreement.request_id == request.id).order_by(AccessAgreement.id)
    return list(session.scalars(stmt))


def agreement_for_biobank(session: Session, request: AccessRequest, biobank_id: int) -> AccessAgreement | None:
    """The agreement covering one provider biobank of the request (None before one is generated)."""
    for agreement in agreements_of(session, request):
        if biobank_id in (agreement.biobank_ids or []):
            return agreement
    return None


def require_signed(agreement: AccessAgreement, action: str) -> None:
    """409 naming the agreement's status unless both parties signed it."""
    if AgreementStatus(agreement.status) is not AgreementStatus.SIGNED:
        raise Conflict(
            f"cannot {action}: agreement {agreement.public_id} is {agreement.status} (it must be signed)",
            name="WrongAgreementStatus",
        )


# -- request status: the only places steps 5–7 change AccessRequest.status ------------------------------


def mark_agreed(request: AccessRequest) -> None:
    """The first agreement signed by both parties: ethics_approved → agreed."""
    if request.status == RequestStatus.ETHICS_APPROVED:
        request.status = RequestStatus.AGREED


def refresh_fulfilled(session: Session, request: AccessRequest) -> bool:
    """agreed → fulfilled once every agreement still standing is fulfilled; returns whether it moved."""
    if request.status != RequestStatus.AGREED:
        return False
    standing = [a for a in agreements_of(session, request) if a.status != AgreementStatus.REVOKED]
    if standing and all(a.status == AgreementStatus.FULFILLED for a in standing):
        request.status = RequestStatus.FULFILLED
        return True
    return False


def mark_results_returned(request: AccessRequest) -> None:
    """fulfilled → results_returned."""
    if request.status == RequestStatus.FULFILLED:
        request.status = RequestStatus.RESULTS_RETURNED


def mark_closed(request: AccessRequest) -> None:
    """→ closed, with the time."""
    request.status = RequestStatus.CLOSED
    request.closed_at = utcnow()


def mark_revoked_if_nothing_stands(session: Session, request: AccessRequest) -> bool:
    """→ revoked when every agreement of an agreed request was revoked; returns whether it moved."""
    if request.status not in (RequestStatus.AGREED, RequestStatus.FULFILLED):
        return False
    agreements = agreements_of(session, request)
    if agreements and all(a.status == AgreementStatus.REVOKED for a in agreements):
        request.status = RequestStatus.REVOKED
        return True
    return False


def local_institution_code(settings: Settings) -> str:
    """This node's institution code."""
    return settings.institution_code


def refresh_agreement(session: Session, agreement: AccessAgreement) -> bool:
    """signed → fulfilled once its specimens were shipped and received and its data granted."""
    from biobank.access.fulfilment_models import AccessDataGrant, AccessShipment, GrantStatus

    if agreement.status != AgreementStatus.SIGNED:
        return False
    if agreement.includes_specimens:
        shipment = session.scalars(select(AccessShipment).where(AccessShipment.agreement_id == agreement.id)).first()
        if shipment is None or shipment.received_at is None:
            return False
    if agreement.includes_data:
        grant = session.scalars(
            select(AccessDataGrant).where(
                AccessDataGrant.agreement_id == agreement.id, AccessDataGrant.status == GrantStatus.ACTIVE
            )
        ).first()
        if grant is None:
            return False
    agreement.status = AgreementStatus.FULFILLED
    agreement.fulfilled_at = utcnow()
    return True
