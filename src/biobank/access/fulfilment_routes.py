"""REST: /api/v1/access/requests/{public_id}/… — agreements, reservations, shipments, grants, results, close.

Each route finds the request the caller may see (404 otherwise) and calls one service function."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from biobank.access import agreements, grants, reservations, results, shipments
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_schemas import (
    AgreementCreate,
    AgreementRead,
    AgreementSign,
    CloseRequest,
    FulfilmentRead,
    GrantCreate,
    GrantRead,
    RequestStatusRead,
    ReservationCreate,
    ReservationRead,
    ReservationRelease,
    ResultRead,
    ResultsCreate,
    ShipmentCreate,
    ShipmentRead,
    ShipmentReceive,
)
from biobank.access.fulfilment_view import agreement_reads, overview
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession

router = APIRouter(prefix="/api/v1/access/requests/{public_id}", tags=["access fulfilment"])


@router.get("/fulfilment", response_model=FulfilmentRead)
def get_fulfilment(public_id: str, session: DbSession, principal: CurrentPrincipal) -> FulfilmentRead:
    """Agreements, reservations, shipments, grants, results and review flags of a request."""
    return overview(session, principal, common.get_request(session, principal, public_id))


# -- agreements --------------------------------------------------------------------------------------------


@router.get("/agreements", response_model=list[AgreementRead])
def list_agreements(public_id: str, session: DbSession, principal: CurrentPrincipal) -> list[AgreementRead]:
    """The request's agreements with their frozen terms and signatures."""
    request = common.get_request(session, principal, public_id)
    return agreement_reads(session, agreements.list_for(session, principal, request))


@router.post("/agreements", response_model=AgreementRead, status_code=201)
def create_agreement(
    public_id: str, data: AgreementCreate, session: DbSession, principal: CurrentPrincipal
) -> AgreementRead:
    """Generate the MTA/DTA with your provider institution from its template (a provider biobank manager)."""
    request = common.get_request(session, principal, public_id)
    return agreement_reads(session, [agreements.generate(session, principal, request, data)])[0]


@router.get("/agreements/{agreement_id}", response_model=AgreementRead)
def get_agreement(public_id: str, agreement_id: str, session: DbSession, principal: CurrentPrincipal) -> AgreementRead:
    """One agreement."""
    request = common.get_request(session, principal, public_id)
    return agreement_reads(session, [agreements.get(session, principal, request, agreement_id)])[0]


@router.post("/agreements/{agreement_id}/sign", response_model=AgreementRead)
def sign_agreement(
    public_id: str, agreement_id: str, data: AgreementSign, session: DbSession, principal: CurrentPrincipal
) -> AgreementRead:
    """Sign the terms (re-enter your password): the requester, or a manager of a provider biobank."""
    request = common.get_request(session, principal, public_id)
    agreement = agreements.get(session, principal, request, agreement_id)
    return agreement_reads(session, [agreements.sign(session, principal, request, agreement, data)])[0]


# -- reservations ------------------------------------------------------------------------------------------


@router.get("/reservations", response_model=list[ReservationRead])
def list_reservations(public_id: str, session: DbSession, principal: CurrentPrincipal) -> list[ReservationRead]:
    """Reservations (the requester sees all; provider staff their biobanks')."""
    request = common.get_request(session, principal, public_id)
    return reservations.list_for(session, principal, request)


@router.post("/reservations", response_model=list[ReservationRead], status_code=201)
def create_reservations(
    public_id: str, data: ReservationCreate, session: DbSession, principal: CurrentPrincipal
) -> list[ReservationRead]:
    """Reserve eligible, stored specimens of your biobank for the request (all or none)."""
    request = common.get_request(session, principal, public_id)
    return reservations.reads(session, reservations.reserve(session, principal, request, data))


@router.post("/reservations/{reservation_id}/release", response_model=ReservationRead)
def release_reservation(
    public_id: str, reservation_id: str, data: ReservationRelease, session: DbSession, principal: CurrentPrincipal
) -> ReservationRead:
    """Release a reservation before dispatch; the specimen goes back to storage."""
    request = common.get_request(session, principal, public_id)
    return reservations.reads(session, [reservations.release(session, principal, request, reservation_id, data)])[0]


@router.get("/reservations/pick-list.pdf", response_class=Response)
def pick_list(public_id: str, session: DbSession, principal: CurrentPrincipal, biobank: str | None = None) -> Response:
    """The pick list (PDF) of your biobank's active reservations: positions and barcodes, no donor data."""
    request = common.get_request(session, principal, public_id)
    pdf, filename = reservations.pick_list(session, principal, request, biobank)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


# -- shipments ---------------------------------------------------------------------------------------------


@router.get("/shipments", response_model=list[ShipmentRead])
def list_shipments(public_id: str, session: DbSession, principal: CurrentPrincipal) -> list[ShipmentRead]:
    """Shipments of the request."""
    request = common.get_request(session, principal, public_id)
    return shipments.list_for(session, principal, request)


@router.post("/shipments", response_model=ShipmentRead, status_code=201)
def dispatch(public_id: str, data: ShipmentCreate, session: DbSession, principal: CurrentPrincipal) -> ShipmentRead:
    """Dispatch the reserved specimens of your agreement (courier, tracking number, temperature logger)."""
    request = common.get_request(session, principal, public_id)
    return shipments.reads(session, [shipments.dispatch(session, principal, request, data)])[0]


@router.post("/shipments/{shipment_id}/receive", response_model=ShipmentRead)
def receive(
    public_id: str, shipment_id: str, data: ShipmentReceive, session: DbSession, principal: CurrentPrincipal
) -> ShipmentRead:
    """The requester records receipt and the condition of a shipment."""
    request = common.get_request(session, principal, public_id)
    return shipments.reads(session, [shipments.receive(session, principal, request, shipment_id, data)])[0]


# -- data grants -------------------------------------------------------------------------------------------


@router.get("/grants", response_model=list[GrantRead])
def list_grants(public_id: str, session: DbSession, principal: CurrentPrincipal) -> list[GrantRead]:
    """Data access grants of the request."""
    request = common.get_request(session, principal, public_id)
    return grants.list_for(session, principal, request)


@router.post("/grants", response_model=GrantRead, status_code=201)
def create_grant(public_id: str, data: GrantCreate, session: DbSession, principal: CurrentPrincipal) -> GrantRead:
    """Grant the requester access to pseudonymised data until a date (a provider biobank manager)."""
    request = common.get_request(session, principal, public_id)
    row = grants.grant(session, principal, request, data)
    return grants.reads(session, request, [row])[0]


@router.get("/grants/{grant_id}/export.csv", response_class=Response)
def export_grant(public_id: str, grant_id: str, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The requester's pseudonymised CSV (project-specific pseudonyms); refused after `until`."""
    request = common.get_request(session, principal, public_id)
    body, filename = grants.export_csv(session, principal, request, grant_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# -- results and close -------------------------------------------------------------------------------------


@router.get("/results", response_model=list[ResultRead])
def list_results(public_id: str, session: DbSession, principal: CurrentPrincipal) -> list[ResultRead]:
    """Results returned for the request."""
    request = common.get_request(session, principal, public_id)
    return results.list_for(session, principal, request)


@router.post("/results", response_model=list[ResultRead], status_code=201)
def return_results(
    public_id: str, data: ResultsCreate, session: DbSession, principal: CurrentPrincipal
) -> list[ResultRead]:
    """The requester returns publications (DOI) and datasets (URL, description)."""
    request = common.get_request(session, principal, public_id)
    results.return_results(session, principal, request, data)
    return results.of_request(session, request)


@router.post("/close", response_model=RequestStatusRead)
def close(
    public_id: str, session: DbSession, principal: CurrentPrincipal, data: CloseRequest | None = None
) -> RequestStatusRead:
    """The requester closes the request; data access ends."""
    request = common.get_request(session, principal, public_id)
    results.close(session, principal, request)
    return RequestStatusRead(public_id=request.public_id, status=str(request.status), closed_at=request.closed_at)
