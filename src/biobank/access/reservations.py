"""Step 6a: reserve specimens for a request (eligible, stored, of the provider biobank), release them,
and print the pick list. Reservations go through the specimens lifecycle, so the chain of custody
records them; a partial unique index keeps a specimen in at most one active reservation."""

from __future__ import annotations

import io
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_models import AccessAgreement, AccessReservation, ReservationStatus
from biobank.access.fulfilment_schemas import ReservationCreate, ReservationRead, ReservationRelease
from biobank.access.models import AccessRequest, AccessRequestItem, ItemKind, RequestStatus
from biobank.consent.eligibility import eligible_specimen_filter
from biobank.identity.principal import Principal
from biobank.institutions.models import Biobank
from biobank.kit.db import flush_or_conflict, utcnow
from biobank.kit.errors import Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_uuid
from biobank.specimens.models import Specimen, Status

UNIQUE_RESERVATION = {
    "uq_access_reservation_active": ("AlreadyReserved", "a specimen is already reserved for another request"),
    "access_reservations.specimen_id": ("AlreadyReserved", "a specimen is already reserved for another request"),
}


def provider_biobank(
    session: Session, principal: Principal, request: AccessRequest, code: str | None, *, action: str
) -> Biobank:
    """The provider biobank the principal works in (named, or the only one), or 403/422."""
    providers = common.provider_institutions(session, request)
    biobanks = [b for p in providers.values() for b in p.biobanks]
    if code is not None:
        found = [b for b in biobanks if code in (b.code, b.public_id)]
        if not found:
            raise Invalid.field("biobank", "not a provider biobank of this request", value=code)
        if not principal.can_write(found[0].id):
            raise NotPermitted(f"only the provider biobank's staff may {action}", name="NotProvider")
        return found[0]
    mine = [b for b in biobanks if principal.can_write(b.id)]
    if not mine:
        raise NotPermitted(f"only the provider biobank's staff may {action}", name="NotProvider")
    if len(mine) > 1:
        raise Invalid.field("biobank", "you work in several provider biobanks: name one")
    return mine[0]


def _agreement_for(session: Session, request: AccessRequest, biobank: Biobank, action: str) -> AccessAgreement:
    agreement = common.agreement_for_biobank(session, request, biobank.id)
    if agreement is None:
        raise Conflict(f"cannot {action}: biobank {biobank.code} has no agreement yet", name="NoAgreement")
    common.require_signed(agreement, action)
    return agreement


def eligible_ids(session: Session, request: AccessRequest, specimen_ids: list[int]) -> set[int]:
    """The specimens among these whose donor's current consent approves the request's purpose (now)."""
    if not specimen_ids:
        return set()
    condition = eligible_specimen_filter(session, common.purpose_of(request))
    out: set[int] = set()
    for i in range(0, len(specimen_ids), 900):
        part = specimen_ids[i : i + 900]
        out.update(session.scalars(select(Specimen.id).where(Specimen.id.in_(part), condition)))
    return out


def active_for_specimens(session: Session, specimen_ids: list[int]) -> dict[int, AccessReservation]:
    """Active reservations of these specimens (any request), by specimen id."""
    if not specimen_ids:
        return {}
    stmt = select(AccessReservation).where(
        AccessReservation.specimen_id.in_(specimen_ids), AccessReservation.status == ReservationStatus.ACTIVE
    )
    return {r.specimen_id: r for r in session.scalars(stmt)}


def reserve(
    session: Session, principal: Principal, request: AccessRequest, data: ReservationCreate
) -> list[AccessReservation]:
    """Reserve specimens of a provider biobank for the request: all of them or none."""
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import StatusChange

    biobank = provider_biobank(session, principal, request, data.biobank, action="reserve specimens")
    agreement = _agreement_for(session, request, biobank, "reserve specimens")
    if not agreement.includes_specimens:
        raise Conflict(f"agreement {agreement.public_id} is a DTA: it covers data only", name="DataOnlyAgreement")
    common.require_status(request, {RequestStatus.AGREED}, "reserve specimens")
    refs = list(dict.fromkeys(data.specimens))
    found = specimens.by_refs_in_biobank(session, biobank.id, refs)
    errors = [
        FieldError(["specimens", i], f"not a specimen of biobank {biobank.code}", value=ref)
        for i, ref in enumerate(refs)
        if ref not in found
    ]
    if errors:
        raise Invalid(errors)
    rows = list({s.id: s for s in found.values()}.values())
    asked = set(session.scalars(select(Specimen.id).where(
        Specimen.id.in_([s.id for s in rows]), requested(session, request, biobank.id))))
    errors = [
        FieldError(["specimens", i], "not asked for by this request (collection, material or named specimen)",
                   value=ref)
        for i, ref in enumerate(refs)
        if found[ref].id not in asked
    ]
    if errors:
        raise Invalid(errors, name="NotRequested")
    approved = eligible_ids(session, request, [s.id for s in rows])
    errors = [
        FieldError(["specimens", i], "the donor's consent does not approve this request's purpose", value=ref)
        for i, ref in enumerate(refs)
        if found[ref].id not in approved
    ]
    if errors:
        raise Invalid(errors, name="NotEligible")
    held = active_for_specimens(session, [s.id for s in rows])
    for s in rows:
        if s.id in held:
            whose = "this request" if held[s.id].request_id == request.id else "another request"
            raise Conflict(f"specimen {s.public_id} is already reserved for {whose}", name="AlreadyReserved")
        if s.status != Status.STORED or s.checked_out_at is not None:
            state = "checked out" if s.checked_out_at is not None else s.status
            raise Conflict(f"specimen {s.public_id} is {state} (it must be stored)", name="NotAvailable")
    out = []
    for s in rows:
        specimens.change_status(
            session,
            principal,
            s,
            StatusChange(status=Status.RESERVED, reason=f"reserved for access request {request.public_id}"),
        )
        reservation = AccessReservation(
            public_id=new_uuid(),
            request_id=request.id,
            agreement_id=agreement.id,
            biobank_id=biobank.id,
            specimen_id=s.id,
            status=ReservationStatus.ACTIVE,
            reserved_by=principal.public_id,
        )
        session.add(reservation)
        out.append(reservation)
    flush_or_conflict(session, UNIQUE_RESERVATION)
    audit.record(
        session,
        principal,
        "access.reservation.create",
        "specimen",
        [request.public_id, agreement.public_id, *(s.public_id for s in rows)],
        purpose=request.public_id,
        details={"biobank": biobank.code, "specimens": len(rows)},
    )
    return out


def release_one(
    session: Session, principal: Principal, reservation: AccessReservation, reason: str, *, request_public_id: str
) -> None:
    """Put a reserved specimen back in storage (custody event) and mark the reservation released."""
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import StatusChange

    specimen = specimens.by_ids(session, [reservation.specimen_id])[reservation.specimen_id]
    if specimen.status == Status.RESERVED:
        specimens.change_status(
            session,
            principal,
            specimen,
            StatusChange(status=Status.STORED, reason=f"reservation for {request_public_id} released: {reason}"[:500]),
        )
    reservation.status = ReservationStatus.RELEASED
    reservation.released_at = utcnow()
    reservation.release_reason = reason[:300]


def get_reservation(session: Session, request: AccessRequest, public_id: str) -> AccessReservation:
    """One reservation of the request, or 404."""
    row = session.scalars(
        select(AccessReservation).where(
            AccessReservation.public_id == public_id, AccessReservation.request_id == request.id
        )
    ).first()
    if row is None:
        raise NotFound(f"no reservation {public_id!r} in this request", name="ReservationNotFound")
    return row


def release(
    session: Session, principal: Principal, request: AccessRequest, public_id: str, data: ReservationRelease
) -> AccessReservation:
    """The provider releases a reservation before dispatch; the specimen is stored again."""
    reservation = get_reservation(session, request, public_id)
    if not principal.can_write(reservation.biobank_id):
        raise NotPermitted("only the provider biobank's staff release its reservations", name="NotProvider")
    if reservation.status != ReservationStatus.ACTIVE:
        raise Conflict(f"the reservation is {reservation.status} (it must be active)", name="WrongReservationStatus")
    release_one(session, principal, reservation, data.reason, request_public_id=request.public_id)
    session.flush()
    common.refresh_fulfilled(session, request)
    audit.record(
        session,
        principal,
        "access.reservation.release",
        "access_request",
        [request.public_id, reservation.public_id],
        purpose=request.public_id,
    )
    return reservation


def of_request(session: Session, request: AccessRequest) -> list[AccessReservation]:
    """A request's reservations, oldest first."""
    stmt = select(AccessReservation).where(AccessReservation.request_id == request.id).order_by(AccessReservation.id)
    return list(session.scalars(stmt))


def visible_rows(session: Session, principal: Principal, request: AccessRequest) -> list[AccessReservation]:
    """Reservations the principal may see: the requester sees all, provider staff their biobanks'."""
    rows = of_request(session, request)
    if common.is_requester(principal, request) or principal.is_admin:
        return rows
    return [r for r in rows if principal.can_read(r.biobank_id)]


def reads(session: Session, rows: list[AccessReservation]) -> list[ReservationRead]:
    """API views of reservations in a fixed number of queries."""
    from biobank.access.fulfilment_models import AccessShipment
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    if not rows:
        return []
    by_id = specimens.by_ids(session, sorted({r.specimen_id for r in rows}))
    codes = institutions.biobank_codes(session, sorted({r.biobank_id for r in rows}))
    agreements = {
        a.id: a.public_id
        for a in session.scalars(
            select(AccessAgreement).where(AccessAgreement.id.in_(sorted({r.agreement_id for r in rows})))
        )
    }
    shipment_ids = sorted({r.shipment_id for r in rows if r.shipment_id})
    shipments = (
        {s.id: s.public_id for s in session.scalars(select(AccessShipment).where(AccessShipment.id.in_(shipment_ids)))}
        if shipment_ids
        else {}
    )
    return [
        ReservationRead(
            public_id=r.public_id,
            agreement=agreements[r.agreement_id],
            biobank=codes[r.biobank_id],
            specimen=by_id[r.specimen_id].public_id,
            barcode=by_id[r.specimen_id].barcode,
            status=r.status,
            reserved_at=r.reserved_at,
            released_at=r.released_at,
            release_reason=r.release_reason,
            shipment=shipments.get(r.shipment_id) if r.shipment_id else None,
        )
        for r in rows
    ]


def list_for(session: Session, principal: Principal, request: AccessRequest) -> list[ReservationRead]:
    """The reservations the principal may see; the read is audited."""
    rows = visible_rows(session, principal, request)
    out = reads(session, rows)
    audit.record(
        session,
        principal,
        "access.reservation.list",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"reservations": len(rows)},
    )
    return out


def requested(session: Session, request: AccessRequest, biobank_id: int) -> ColumnElement[bool]:
    """Specimens the request's lines ask of this biobank: its named specimens, and specimens of its
    requested collections (of the requested material, when a line names one)."""
    items = session.scalars(
        select(AccessRequestItem).where(
            AccessRequestItem.request_id == request.id,
            AccessRequestItem.biobank_id == biobank_id,
            AccessRequestItem.kind.in_([ItemKind.COLLECTION, ItemKind.SPECIMEN]),
        )
    ).all()
    clauses: list[ColumnElement[bool]] = []
    for item in items:
        if item.kind == ItemKind.SPECIMEN and item.specimen_id is not None:
            clauses.append(Specimen.id == item.specimen_id)
        elif item.sample_type:
            clauses.append(and_(Specimen.collection_id == item.collection_id, Specimen.sample_type == item.sample_type))
        else:
            clauses.append(Specimen.collection_id == item.collection_id)
    return or_(*clauses) if clauses else false()


def candidates(session: Session, request: AccessRequest, biobank_id: int, limit: int = 200) -> list[Specimen]:
    """Stored, not checked-out specimens of a biobank that the request asks for and its purpose may use."""
    stmt = (
        select(Specimen)
        .where(
            Specimen.biobank_id == biobank_id,
            Specimen.status == Status.STORED,
            Specimen.checked_out_at.is_(None),
            requested(session, request, biobank_id),
            eligible_specimen_filter(session, common.purpose_of(request)),
        )
        .order_by(Specimen.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


# -- pick list ---------------------------------------------------------------------------------------------


def pick_list_rows(session: Session, reservations: list[AccessReservation]) -> list[dict[str, str]]:
    """What a technician needs to pick each reserved specimen: where it is and its barcode. No donor data."""
    from biobank.specimens import service as specimens
    from biobank.storage import service as storage

    by_id = specimens.by_ids(session, sorted({r.specimen_id for r in reservations}))
    boxes = storage.boxes_by_ids(session, sorted({s.box_id for s in by_id.values() if s.box_id}))
    rows = []
    for r in reservations:
        s = by_id[r.specimen_id]
        box = boxes.get(s.box_id) if s.box_id else None
        rows.append(
            {
                "box": box.path if box else "not in storage",
                "position": storage.position_label(box, s.row, s.col)
                if box and s.row is not None and s.col is not None
                else "",
                "barcode": s.barcode,
                "specimen": s.public_id,
                "material": str(s.sample_type),
                "quantity": f"{s.quantity:g} {s.quantity_unit or ''}".strip() if s.quantity is not None else "",
            }
        )
    return sorted(rows, key=lambda row: (row["box"], row["position"], row["barcode"]))


def pick_list(
    session: Session, principal: Principal, request: AccessRequest, biobank_code: str | None
) -> tuple[bytes, str]:
    """A PDF pick list of the active reservations of a provider biobank, sorted by box and position."""
    biobank = provider_biobank(session, principal, request, biobank_code, action="print the pick list")
    reservations = [
        r for r in of_request(session, request) if r.biobank_id == biobank.id and r.status == ReservationStatus.ACTIVE
    ]
    rows = pick_list_rows(session, reservations)
    pdf = _pick_list_pdf(request.public_id, biobank.code, rows, utcnow())
    audit.record(
        session,
        principal,
        "access.picklist.print",
        "specimen",
        [request.public_id, *(row["specimen"] for row in rows)],
        purpose=request.public_id,
        details={"biobank": biobank.code, "specimens": len(rows)},
    )
    return pdf, f"pick-list-{request.public_id.replace(':', '_')}-{biobank.code}.pdf"


def _pick_list_pdf(request_id: str, biobank: str, rows: list[dict[str, str]], at: datetime) -> bytes:
    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=0)
    canvas.setTitle(f"Pick list {request_id} {biobank}")
    _width, height = A4
    columns = [("#", 10), ("Box", 62), ("Pos.", 14), ("Barcode", 58), ("Material", 24), ("Qty", 16)]

    def header(page: int) -> float:
        canvas.setFont("Helvetica-Bold", 13)
        canvas.drawString(15 * mm, height - 18 * mm, f"Pick list — access request {request_id}")
        canvas.setFont("Helvetica", 9)
        canvas.drawString(
            15 * mm,
            height - 24 * mm,
            f"Biobank {biobank} · {len(rows)} specimens · {at:%Y-%m-%d %H:%M} UTC · p. {page}",
        )
        y = height - 33 * mm
        x = 15 * mm
        canvas.setFont("Helvetica-Bold", 9)
        for title, w in columns:
            canvas.drawString(x, y, title)
            x += w * mm
        return float(y - 4 * mm)

    page = 1
    y = header(page)
    row_height = 13 * mm
    for n, row in enumerate(rows, start=1):
        if y - row_height < 15 * mm:
            canvas.showPage()
            page += 1
            y = header(page)
        x = 15 * mm
        canvas.setFont("Helvetica", 8)
        base = y - 5 * mm
        canvas.drawString(x, base, str(n))
        x += columns[0][1] * mm
        canvas.drawString(x, base, row["box"][:48])
        x += columns[1][1] * mm
        canvas.drawString(x, base, row["position"])
        x += columns[2][1] * mm
        barcode = Code128(row["barcode"], barHeight=7 * mm, barWidth=0.25 * mm, quiet=False)
        barcode.drawOn(canvas, x, y - 8 * mm)
        canvas.drawString(x, y - 11 * mm, row["barcode"])
        x += columns[3][1] * mm
        canvas.drawString(x, base, row["material"][:18])
        x += columns[4][1] * mm
        canvas.drawString(x, base, row["quantity"])
        y -= row_height
    if not rows:
        canvas.setFont("Helvetica", 10)
        canvas.drawString(15 * mm, y - 6 * mm, "No active reservations.")
    canvas.save()
    return buffer.getvalue()
