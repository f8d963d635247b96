"""Step 6b: the shipment of an agreement's reserved specimens (one per provider institution, as on chain):
dispatched by the provider (specimens become distributed in the chain of custody), received with its
condition by the requester. Only salted commitments of the shipment and receipt documents go on chain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_models import (
    AccessAgreement,
    AccessReservation,
    AccessShipment,
    ReservationStatus,
)
from biobank.access.fulfilment_schemas import ShipmentCreate, ShipmentRead, ShipmentReceive
from biobank.access.models import AccessRequest, RequestStatus
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import commitment, institution_ref, new_salt
from biobank.specimens.models import Status

CLOCK_SKEW = timedelta(minutes=5)


def _agreement(session: Session, principal: Principal, request: AccessRequest, ref: str | None) -> AccessAgreement:
    agreements = common.agreements_of(session, request)
    if ref is not None:
        found = [a for a in agreements if a.public_id == ref]
        if not found:
            raise Invalid.field("agreement", "not an agreement of this request", value=ref)
        agreement = found[0]
        if not any(principal.can_write(b) for b in agreement.biobank_ids or []):
            raise NotPermitted("only the provider biobank's staff dispatch its shipment", name="NotProvider")
        return agreement
    mine = [a for a in agreements if any(principal.can_write(b) for b in a.biobank_ids or [])]
    if not mine:
        raise NotPermitted("only the provider biobank's staff dispatch its shipment", name="NotProvider")
    if len(mine) > 1:
        raise Invalid.field("agreement", "you work for several provider institutions: name the agreement")
    return mine[0]


def shipment_of(session: Session, agreement: AccessAgreement) -> AccessShipment | None:
    """The (single) shipment of an agreement."""
    return session.scalars(select(AccessShipment).where(AccessShipment.agreement_id == agreement.id)).first()


def dispatch(session: Session, principal: Principal, request: AccessRequest, data: ShipmentCreate) -> AccessShipment:
    """Record the dispatch of every active reservation of the agreement; they become distributed."""
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import StatusChange

    agreement = _agreement(session, principal, request, data.agreement)
    common.require_signed(agreement, "dispatch a shipment")
    if not agreement.includes_specimens:
        raise Conflict(f"agreement {agreement.public_id} is a DTA: nothing to ship", name="DataOnlyAgreement")
    common.require_status(request, {RequestStatus.AGREED}, "dispatch a shipment")
    existing = shipment_of(session, agreement)
    if existing is not None:
        raise Conflict(
            f"agreement {agreement.public_id} was already dispatched as shipment {existing.public_id}",
            name="AlreadyDispatched",
        )
    if data.dispatched_at > utcnow() + CLOCK_SKEW:
        raise Invalid.field("dispatched_at", "the dispatch time is in the future")
    reservations = list(
        session.scalars(
            select(AccessReservation)
            .where(AccessReservation.agreement_id == agreement.id, AccessReservation.status == ReservationStatus.ACTIVE)
            .order_by(AccessReservation.id)
        )
    )
    if not reservations:
        raise Conflict("nothing to dispatch: no specimen is reserved under this agreement", name="NothingReserved")
    for r in reservations:
        if not principal.can_write(r.biobank_id):
            raise NotPermitted("the shipment includes specimens of a biobank you do not work in", name="NotProvider")
    rows = specimens.by_ids(session, [r.specimen_id for r in reservations])
    settings = get_settings()
    (public_id,) = new_public_ids(session, settings.institution_code, "SHP")
    document: dict[str, Any] = {
        "shipment": public_id,
        "agreement": agreement.public_id,
        "courier": data.courier,
        "tracking_number": data.tracking_number,
        "temperature_logger": data.temperature_logger,
        "dispatched_at": data.dispatched_at.isoformat(),
        "specimens": sorted(rows[r.specimen_id].public_id for r in reservations),
    }
    salt = new_salt()
    shipment = AccessShipment(
        public_id=public_id,
        request_id=request.id,
        agreement_id=agreement.id,
        biobank_id=reservations[0].biobank_id,
        courier=data.courier,
        tracking_number=data.tracking_number,
        temperature_logger=data.temperature_logger,
        dispatched_at=data.dispatched_at,
        dispatched_by=principal.public_id,
        specimen_count=len(reservations),
        shipment_salt=salt,
        shipment_document=document,
        shipment_hash=commitment(salt, document),
    )
    session.add(shipment)
    session.flush()
    reason = f"shipped to {request.requester_institution} for access request {request.public_id}, shipment {public_id}"
    for r in reservations:
        specimen = rows[r.specimen_id]
        if specimen.checked_out_at is not None:
            raise Conflict(f"specimen {specimen.public_id} is checked out: check it in first", name="CheckedOut")
        specimens.change_status(session, principal, specimen, StatusChange(status=Status.DISTRIBUTED, reason=reason))
        r.status = ReservationStatus.SHIPPED
        r.shipment_id = shipment.id
    session.flush()
    enqueue(
        session,
        "request.dispatch",
        dispatch_payload(request, agreement, shipment),
        dedupe_key=f"request.dispatch:{public_id}",
    )
    audit.record(
        session,
        principal,
        "access.shipment.dispatch",
        "specimen",
        [request.public_id, public_id, *document["specimens"]],
        purpose=request.public_id,
        details={"specimens": len(reservations), "agreement": agreement.public_id},
    )
    return shipment


def dispatch_payload(request: AccessRequest, agreement: AccessAgreement, shipment: AccessShipment) -> dict[str, Any]:
    """The `request.dispatch` payload."""
    return {
        "request": request.chain_id,
        "provider": institution_ref(agreement.provider_institution),
        "shipment_hash": shipment.shipment_hash,
    }


def receive_payload(request: AccessRequest, agreement: AccessAgreement, shipment: AccessShipment) -> dict[str, Any]:
    """The `request.receive` payload."""
    return {
        "request": request.chain_id,
        "provider": institution_ref(agreement.provider_institution),
        "condition_hash": shipment.condition_hash,
    }


def get_shipment(session: Session, request: AccessRequest, public_id: str) -> AccessShipment:
    """One shipment of the request, or 404."""
    row = session.scalars(
        select(AccessShipment).where(AccessShipment.public_id == public_id, AccessShipment.request_id == request.id)
    ).first()
    if row is None:
        raise NotFound(f"no shipment {public_id!r} in this request", name="ShipmentNotFound")
    return row


def receive(
    session: Session, principal: Principal, request: AccessRequest, public_id: str, data: ShipmentReceive
) -> AccessShipment:
    """The requester records receipt and condition; the agreement (and request) may become fulfilled."""
    shipment = get_shipment(session, request, public_id)
    common.require_requester(principal, request, "record the receipt of a shipment")
    if shipment.received_at is not None:
        raise Conflict(f"shipment {shipment.public_id} was already received", name="AlreadyReceived")
    common.require_status(request, {RequestStatus.AGREED}, "record a receipt")
    if data.received_at < shipment.dispatched_at:
        raise Invalid.field("received_at", "received before it was dispatched")
    if data.received_at > utcnow() + CLOCK_SKEW:
        raise Invalid.field("received_at", "the receipt time is in the future")
    document = {
        "shipment": shipment.public_id,
        "condition": data.condition.value,
        "received_at": data.received_at.isoformat(),
        "notes": data.notes,
    }
    salt = new_salt()
    shipment.received_at = data.received_at
    shipment.received_by = principal.public_id
    shipment.condition = data.condition
    shipment.condition_notes = data.notes
    shipment.condition_salt = salt
    shipment.condition_document = document
    shipment.condition_hash = commitment(salt, document)
    agreement = session.get(AccessAgreement, shipment.agreement_id)
    assert agreement is not None
    common.refresh_agreement(session, agreement)
    common.refresh_fulfilled(session, request)
    session.flush()
    enqueue(
        session,
        "request.receive",
        receive_payload(request, agreement, shipment),
        dedupe_key=f"request.receive:{shipment.public_id}",
    )
    audit.record(
        session,
        principal,
        "access.shipment.receive",
        "access_request",
        [request.public_id, shipment.public_id],
        purpose=request.public_id,
        details={"condition": data.condition.value},
    )
    return shipment


def of_request(session: Session, request: AccessRequest) -> list[AccessShipment]:
    """A request's shipments, oldest first."""
    stmt = select(AccessShipment).where(AccessShipment.request_id == request.id).order_by(AccessShipment.id)
    return list(session.scalars(stmt))


def reads(session: Session, rows: list[AccessShipment]) -> list[ShipmentRead]:
    """API views of shipments."""
    from biobank.institutions import service as institutions

    if not rows:
        return []
    codes = institutions.biobank_codes(session, sorted({s.biobank_id for s in rows}))
    agreements = {
        a.id: a.public_id
        for a in session.scalars(
            select(AccessAgreement).where(AccessAgreement.id.in_(sorted({s.agreement_id for s in rows})))
        )
    }
    return [
        ShipmentRead(
            public_id=s.public_id,
            agreement=agreements[s.agreement_id],
            biobank=codes[s.biobank_id],
            courier=s.courier,
            tracking_number=s.tracking_number,
            temperature_logger=s.temperature_logger,
            dispatched_at=s.dispatched_at,
            specimen_count=s.specimen_count,
            specimens=list(s.shipment_document.get("specimens", [])),
            shipment_hash=s.shipment_hash,
            received_at=s.received_at,
            condition=s.condition,
            condition_notes=s.condition_notes,
            condition_hash=s.condition_hash,
        )
        for s in rows
    ]


def list_for(session: Session, principal: Principal, request: AccessRequest) -> list[ShipmentRead]:
    """Shipments the principal may see (requester: all; provider staff: their biobanks'); audited."""
    rows = of_request(session, request)
    if not (common.is_requester(principal, request) or principal.is_admin):
        rows = [s for s in rows if principal.can_read(s.biobank_id)]
    audit.record(
        session,
        principal,
        "access.shipment.list",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"shipments": len(rows)},
    )
    return reads(session, rows)
