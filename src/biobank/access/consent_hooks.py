"""What a consent withdrawal does to access requests (registered with biobank.consent.withdrawal on import).

Revoked at once: active reservations of the donor's specimens are released (back in storage, through the
chain of custody) and the specimens leave every data grant. An agreement with nothing left to deliver
(no reservation, no shipment, no granted data) can no longer be honoured: it is revoked and
`request.revoke` goes on chain. Everything else the withdrawal touched is flagged for the provider's
review (shown on the request page); specimens already shipped get their recipient named for the
consent package's follow-up.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_models import (
    AccessAgreement,
    AccessDataGrant,
    AccessGrantItem,
    AccessReservation,
    AccessReviewFlag,
    AccessShipment,
    AgreementStatus,
    GrantStatus,
    ReservationStatus,
)
from biobank.access.models import AccessRequest, AccessRequestProvider, ProviderState, RequestStatus
from biobank.config import get_settings
from biobank.consent.withdrawal import (
    WithdrawnSpecimens,
    register_open_request_provider,
    register_recipient_provider,
)
from biobank.identity.principal import Principal, system_principal
from biobank.kit.db import utcnow
from biobank.kit.ids import new_uuid
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import commitment, institution_ref, new_salt

PROVIDER_NAME = "access.fulfilment"
OPEN = frozenset(
    {RequestStatus.ETHICS_APPROVED, RequestStatus.AGREED, RequestStatus.FULFILLED, RequestStatus.RESULTS_RETURNED}
)


def _remaining(session: Session, agreement: AccessAgreement) -> int:
    """What the agreement still delivers: live reservations (active or shipped) plus granted specimens."""
    reserved = session.scalars(
        select(AccessReservation.id).where(
            AccessReservation.agreement_id == agreement.id, AccessReservation.status != ReservationStatus.RELEASED
        )
    ).all()
    granted = session.scalars(
        select(AccessGrantItem.specimen_id)
        .join(AccessDataGrant, AccessDataGrant.id == AccessGrantItem.grant_id)
        .where(
            AccessDataGrant.agreement_id == agreement.id,
            AccessDataGrant.status == GrantStatus.ACTIVE,
            AccessGrantItem.revoked_at.is_(None),
        )
    ).all()
    return len(reserved) + len(granted)


def revoke_agreement(
    session: Session, actor: Principal, request: AccessRequest, agreement: AccessAgreement, withdrawal: str
) -> None:
    """Mark an agreement revoked, its provider tracks revoked, and queue `request.revoke` (reason committed)."""
    document = {"agreement": agreement.public_id, "reason": "consent_withdrawal", "withdrawal": withdrawal}
    salt = new_salt()
    agreement.status = AgreementStatus.REVOKED
    agreement.revoked_at = utcnow()
    agreement.revoke_salt = salt
    agreement.revoke_document = document
    agreement.revoke_hash = commitment(salt, document)
    for grant in session.scalars(
        select(AccessDataGrant).where(
            AccessDataGrant.agreement_id == agreement.id, AccessDataGrant.status == GrantStatus.ACTIVE
        )
    ):
        grant.status = GrantStatus.REVOKED
        grant.ended_at = utcnow()
    # The provider tracks of the agreement end as revoked (the state a revocation enters, see models.py).
    for track in session.scalars(
        select(AccessRequestProvider).where(
            AccessRequestProvider.request_id == request.id,
            AccessRequestProvider.biobank_id.in_(agreement.biobank_ids or []),
        )
    ):
        track.state = ProviderState.REVOKED
    common.mark_revoked_if_nothing_stands(session, request)
    session.flush()
    enqueue(
        session,
        "request.revoke",
        revoke_payload(request, agreement),
        dedupe_key=f"request.revoke:{agreement.public_id}",
    )
    audit.record(
        session,
        actor,
        "access.agreement.revoke",
        "access_request",
        [request.public_id, agreement.public_id, withdrawal],
        purpose=request.public_id,
        details={"reason": "consent_withdrawal"},
    )


def revoke_payload(request: AccessRequest, agreement: AccessAgreement) -> dict[str, Any]:
    """The `request.revoke` payload."""
    return {
        "request": request.chain_id,
        "provider": institution_ref(agreement.provider_institution),
        "reason_hash": agreement.revoke_hash,
    }


def on_withdrawal(session: Session, actor: Principal, info: WithdrawnSpecimens) -> list[str]:
    """Release, ungrant, revoke what must be; flag the rest. Returns the public ids of requests touched."""
    from biobank.access.reservations import release_one

    ids = list(info.specimen_ids)
    if not ids:
        return []
    node = system_principal(get_settings().institution_code)  # the node acts for the donor
    now = utcnow()
    reservations = list(
        session.scalars(
            select(AccessReservation).where(
                AccessReservation.specimen_id.in_(ids), AccessReservation.status != ReservationStatus.RELEASED
            )
        )
    )
    items = list(
        session.scalars(
            select(AccessGrantItem).where(AccessGrantItem.specimen_id.in_(ids), AccessGrantItem.revoked_at.is_(None))
        )
    )
    grants = (
        {
            g.id: g
            for g in session.scalars(select(AccessDataGrant).where(AccessDataGrant.id.in_({i.grant_id for i in items})))
        }
        if items
        else {}
    )
    touched: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    biobank_of: dict[int, int] = {}
    agreement_ids: set[int] = set()
    request_public: dict[int, str] = {}
    requests = {
        r.id: r
        for r in session.scalars(
            select(AccessRequest).where(
                AccessRequest.id.in_({x.request_id for x in reservations} | {g.request_id for g in grants.values()})
            )
        )
    }
    for request in requests.values():
        request_public[request.id] = request.public_id
    for r in reservations:
        biobank_of.setdefault(r.request_id, r.biobank_id)
        if r.status == ReservationStatus.ACTIVE:
            release_one(
                session,
                node,
                r,
                f"consent withdrawn ({info.withdrawal})",
                request_public_id=request_public[r.request_id],
            )
            touched[r.request_id]["released"] += 1
            agreement_ids.add(r.agreement_id)
        else:
            touched[r.request_id]["shipped"] += 1
    for item in items:
        grant = grants[item.grant_id]
        item.revoked_at = now
        item.revoke_reason = f"consent withdrawn ({info.withdrawal})"
        biobank_of.setdefault(grant.request_id, item.biobank_id)
        touched[grant.request_id]["ungranted"] += 1
        agreement_ids.add(grant.agreement_id)
    session.flush()
    revoked: set[int] = set()
    for agreement in session.scalars(select(AccessAgreement).where(AccessAgreement.id.in_(agreement_ids))):
        request = requests[agreement.request_id]
        if agreement.status == AgreementStatus.SIGNED and _remaining(session, agreement) == 0:
            revoke_agreement(session, actor, request, agreement, info.withdrawal)
            revoked.add(request.id)
            touched[request.id]["revoked"] += 1
    flagged: list[str] = []
    for request_id, counts in touched.items():
        request = requests[request_id]
        if request.status not in OPEN and request_id not in revoked:
            continue
        summary = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
        session.add(
            AccessReviewFlag(
                public_id=new_uuid(),
                request_id=request_id,
                biobank_id=biobank_of[request_id],
                withdrawal=info.withdrawal,
                summary=f"consent withdrawal {info.withdrawal} — {summary}"[:500],
            )
        )
        flagged.append(request.public_id)
        audit.record(
            session,
            actor,
            "access.request.flag",
            "access_request",
            [request.public_id, info.withdrawal],
            purpose=request.public_id,
            details={k: int(v) for k, v in counts.items()},
        )
    session.flush()
    return flagged


def recipients(session: Session, specimen_ids: list[int]) -> dict[int, str]:
    """Who received each shipped specimen: the requester's institution, the request and the shipment."""
    if not specimen_ids:
        return {}
    stmt = (
        select(
            AccessReservation.specimen_id,
            AccessRequest.public_id,
            AccessRequest.requester_institution,
            AccessShipment.public_id,
        )
        .join(AccessRequest, AccessRequest.id == AccessReservation.request_id)
        .join(AccessShipment, AccessShipment.id == AccessReservation.shipment_id)
        .where(AccessReservation.specimen_id.in_(specimen_ids), AccessReservation.status == ReservationStatus.SHIPPED)
    )
    return {
        sid: f"{institution} (access request {request}, shipment {shipment})"
        for sid, request, institution, shipment in session.execute(stmt)
    }


def review_flags(session: Session, principal: Principal, request: AccessRequest) -> list[AccessReviewFlag]:
    """Open review flags of a request the principal may see (requester: all; provider staff: their biobanks')."""
    rows = list(
        session.scalars(
            select(AccessReviewFlag)
            .where(AccessReviewFlag.request_id == request.id, AccessReviewFlag.resolved_at.is_(None))
            .order_by(AccessReviewFlag.id)
        )
    )
    if common.is_requester(principal, request) or principal.is_admin:
        return rows
    return [f for f in rows if principal.can_read(f.biobank_id)]


register_open_request_provider(PROVIDER_NAME, on_withdrawal)
register_recipient_provider(PROVIDER_NAME, recipients)
