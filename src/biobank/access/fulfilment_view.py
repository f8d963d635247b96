"""The fulfilment part of a request as one read (API) and as template context (the request page includes
`access/_fulfilment.html` with `context(...)`): what there is, and which actions this user may take."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import agreements as agreements_service
from biobank.access import consent_hooks, grants, reservations, results, shipments
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_models import AgreementStatus, ReservationStatus, ShipmentCondition
from biobank.access.fulfilment_schemas import AgreementRead, FulfilmentRead, ReviewFlagRead
from biobank.access.models import AccessRequest, RequestStatus
from biobank.identity.principal import Principal
from biobank.web.forms import node_timezone


def agreement_reads(session: Session, rows: list[Any]) -> list[AgreementRead]:
    """API views of agreements."""
    from biobank.institutions import service as institutions

    codes = institutions.biobank_codes(session, sorted({b for a in rows for b in a.biobank_ids or []}))
    public = {}
    for rid in {a.request_id for a in rows}:
        req = session.get(AccessRequest, rid)
        public[rid] = req.public_id if req else ""
    return [
        AgreementRead.model_validate(
            {
                **{k: getattr(a, k) for k in AgreementRead.model_fields if hasattr(a, k)},
                "request": public[a.request_id],
                "biobanks": [codes[b] for b in a.biobank_ids or [] if b in codes],
            }
        )
        for a in rows
    ]


def _flag_reads(session: Session, rows: list[Any]) -> list[ReviewFlagRead]:
    from biobank.institutions import service as institutions

    codes = institutions.biobank_codes(session, sorted({f.biobank_id for f in rows}))
    return [
        ReviewFlagRead(
            public_id=f.public_id,
            biobank=codes[f.biobank_id],
            withdrawal=f.withdrawal,
            summary=f.summary,
            created_at=f.created_at,
            resolved_at=f.resolved_at,
        )
        for f in rows
    ]


def overview(session: Session, principal: Principal, request: AccessRequest) -> FulfilmentRead:
    """Everything of steps 5–7 the principal may see (one audited read)."""
    agreement_rows = common.agreements_of(session, request)
    reservation_rows = reservations.visible_rows(session, principal, request)
    shipment_rows = shipments.of_request(session, request)
    if not (common.is_requester(principal, request) or principal.is_admin):
        shipment_rows = [s for s in shipment_rows if principal.can_read(s.biobank_id)]
    out = FulfilmentRead(
        request=request.public_id,
        status=str(request.status),
        agreements=agreement_reads(session, agreement_rows),
        reservations=reservations.reads(session, reservation_rows),
        shipments=shipments.reads(session, shipment_rows),
        grants=grants.reads(session, request, grants.of_request(session, request)),
        results=results.of_request(session, request),
        review_flags=_flag_reads(session, consent_hooks.review_flags(session, principal, request)),
    )
    audit.record(
        session,
        principal,
        "access.fulfilment.read",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"agreements": len(out.agreements), "reservations": len(out.reservations)},
    )
    return out


def context(session: Session, principal: Principal, access_request: AccessRequest) -> dict[str, Any]:
    """Template context of `access/_fulfilment.html` for one request page."""
    request = access_request
    view = overview(session, principal, request)
    requester = common.is_requester(principal, request)
    status = RequestStatus(request.status)
    providers = common.provider_institutions(session, request)
    agreements_by_provider = {a.provider_institution: a for a in view.agreements}
    # Provider institutions for which this user may generate an agreement now.
    can_generate = [
        p.code
        for p in providers.values()
        if p.code not in agreements_by_provider
        and any(principal.can_manage(b.id) for b in p.biobanks)
        and any(t.state in common.READY_PROVIDER_STATES for t in p.tracks)
        and status in common.FULFILLING
    ]
    rows_by_id = {a.public_id: a for a in common.agreements_of(session, request)}
    sign_as: dict[str, list[str]] = {}
    for a in view.agreements:
        if a.status is not AgreementStatus.PENDING or status not in common.FULFILLING:
            continue
        sides = agreements_service.parties_of(principal, request, rows_by_id[a.public_id])
        todo = [
            s.value
            for s in sides
            if (s.value == "requester" and not a.requester_signature)
            or (s.value == "provider" and not a.provider_signature)
        ]
        if todo:
            sign_as[a.public_id] = sorted(todo)
    # Provider biobanks this user works in, with reservable candidates, for signed MTAs.
    work: list[dict[str, Any]] = []
    for a in view.agreements:
        row = rows_by_id[a.public_id]
        if a.status is not AgreementStatus.SIGNED:
            continue
        for p in providers.values():
            for b in p.biobanks:
                if b.id not in (row.biobank_ids or []) or not principal.can_write(b.id):
                    continue
                active = [r for r in view.reservations if r.biobank == b.code and r.status is ReservationStatus.ACTIVE]
                work.append(
                    {
                        "agreement": a,
                        "biobank": b,
                        "candidates": reservations.candidates(session, request, b.id)
                        if a.includes_specimens and status is RequestStatus.AGREED
                        else [],
                        "active": active,
                        "can_dispatch": a.includes_specimens
                        and status is RequestStatus.AGREED
                        and bool(active)
                        and not any(s.agreement == a.public_id for s in view.shipments),
                        "can_grant": a.includes_data and principal.can_manage(b.id),
                    }
                )
    base = "/access/requests/" + quote(request.public_id, safe=":")
    return {
        "fulfilment": view,
        "fulfilment_base": base + "/fulfilment",
        "fulfilment_api": "/api/v1/access/requests/" + quote(request.public_id, safe=":"),
        "is_requester": requester,
        "can_generate": can_generate,
        "sign_as": sign_as,
        "provider_work": work,
        "can_receive": requester and status is RequestStatus.AGREED,
        "conditions": [c.value for c in ShipmentCondition],
        "can_export": requester,
        "can_return_results": requester and status in results.RESULTS_OPEN,
        "can_close": requester
        and (
            status is RequestStatus.RESULTS_RETURNED
            or (status is RequestStatus.FULFILLED and not results.owes_results(request))
        ),
        "owes_results": results.owes_results(request),
        # forms start at the current minute in the node's time zone (datetime-local inputs)
        "now_local": datetime.now(node_timezone()).strftime("%Y-%m-%dT%H:%M"),
    }
