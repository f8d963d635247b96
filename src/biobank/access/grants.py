"""Step 6c: time-bounded data access. A provider manager grants the requester access, until a date, to the
pseudonymised data of some specimens; the requester downloads a CSV whose pseudonyms are keyed per
project (the request), so they never equal the donor's own pseudonym and cannot be linked across
projects. Access after `until`, after the request closes or for specimens whose donor withdrew is refused."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
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
    AgreementStatus,
    GrantStatus,
    ReservationStatus,
)
from biobank.access.fulfilment_schemas import GrantCreate, GrantRead
from biobank.access.models import AccessRequest, ItemKind, RequestStatus
from biobank.access.reservations import eligible_ids
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.kit.crypto import derive_key, pseudonym
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import institution_ref

EXPORT_COLUMNS = (
    "donor",
    "specimen",
    "collection",
    "material",
    "diagnosis",
    "collected",
    "storage_temperature",
    "sex",
    "age_at_collection",
)


def project_key(request: AccessRequest) -> bytes:
    """The pseudonym key of one project export: derived from the node's pseudonym key and the request."""
    return derive_key(get_settings().secret("pseudonym_key"), f"access-project-export/{request.public_id}")


def _agreement(session: Session, principal: Principal, request: AccessRequest, ref: str | None) -> AccessAgreement:
    agreements = common.agreements_of(session, request)
    if ref is not None:
        found = [a for a in agreements if a.public_id == ref]
        if not found:
            raise Invalid.field("agreement", "not an agreement of this request", value=ref)
        if not any(principal.can_manage(b) for b in found[0].biobank_ids or []):
            raise NotPermitted("only a manager of a provider biobank grants data access", name="NotProvider")
        return found[0]
    mine = [a for a in agreements if any(principal.can_manage(b) for b in a.biobank_ids or [])]
    if not mine:
        raise NotPermitted("only a manager of a provider biobank grants data access", name="NotProvider")
    if len(mine) > 1:
        raise Invalid.field("agreement", "you manage biobanks of several provider institutions: name the agreement")
    return mine[0]


def _default_specimens(session: Session, request: AccessRequest, agreement: AccessAgreement) -> list[int]:
    """The agreement's reserved or shipped specimens, plus eligible specimens of the request's data lines."""
    from biobank.specimens.models import Specimen

    ids = list(
        session.scalars(
            select(AccessReservation.specimen_id).where(
                AccessReservation.agreement_id == agreement.id,
                AccessReservation.status != ReservationStatus.RELEASED,
            )
        )
    )
    for item in common.items_of(session, request):
        if item.kind != ItemKind.DATA or item.biobank_id not in (agreement.biobank_ids or []):
            continue
        rows = session.scalars(
            select(Specimen.id)
            .where(Specimen.collection_id == item.collection_id, Specimen.biobank_id == item.biobank_id)
            .order_by(Specimen.id)
        )
        candidates = list(rows)
        approved = eligible_ids(session, request, candidates)
        ids += [i for i in candidates if i in approved][: max(item.quantity, 0)]
    return list(dict.fromkeys(ids))


def _named_specimens(
    session: Session, request: AccessRequest, agreement: AccessAgreement, refs: list[str]
) -> list[tuple[int, int]]:
    """(specimen id, biobank id) of named specimens of the agreement's biobanks, or 422 naming the unknown."""
    from biobank.specimens import service as specimens

    found: dict[str, Any] = {}
    for biobank_id in agreement.biobank_ids or []:
        found.update(specimens.by_refs_in_biobank(session, biobank_id, refs))
    errors = [
        FieldError(["specimens", i], "not a specimen of the agreement's biobanks", value=ref)
        for i, ref in enumerate(refs)
        if ref not in found
    ]
    if errors:
        raise Invalid(errors)
    approved = eligible_ids(session, request, [s.id for s in found.values()])
    errors = [
        FieldError(["specimens", i], "the donor's consent does not approve this request's purpose", value=ref)
        for i, ref in enumerate(refs)
        if found[ref].id not in approved
    ]
    if errors:
        raise Invalid(errors, name="NotEligible")
    return list(dict.fromkeys((s.id, s.biobank_id) for s in found.values()))


def grant(session: Session, principal: Principal, request: AccessRequest, data: GrantCreate) -> AccessDataGrant:
    """Grant (or replace the grant of) data access under an agreement, until a date; goes on chain."""
    from biobank.specimens import service as specimens

    agreement = _agreement(session, principal, request, data.agreement)
    if AgreementStatus(agreement.status) not in (AgreementStatus.SIGNED, AgreementStatus.FULFILLED):
        raise Conflict(
            f"cannot grant data access: agreement {agreement.public_id} is {agreement.status} (it must be signed)",
            name="WrongAgreementStatus",
        )
    if not agreement.includes_data:
        raise Conflict(f"agreement {agreement.public_id} does not cover data", name="NoDataInAgreement")
    common.require_status(request, {RequestStatus.AGREED, RequestStatus.FULFILLED}, "grant data access")
    try:
        until = data.until_utc()
    except ValueError:
        raise Invalid.field("until", "give a date, or a time with its UTC offset") from None
    now = utcnow()
    if until <= now:
        raise Invalid.field("until", "the end of access must be in the future")
    signed_at = agreement.signed_at or now
    limit = signed_at + timedelta(days=agreement.data_access_days or 0)
    if until > limit + timedelta(days=1):
        raise Invalid.field("until", f"the agreement allows data access until {limit:%Y-%m-%d} at the latest")
    if data.specimens is not None:
        pairs = _named_specimens(session, request, agreement, list(dict.fromkeys(data.specimens)))
    else:
        ids = _default_specimens(session, request, agreement)
        approved = eligible_ids(session, request, ids)
        rows = specimens.by_ids(session, [i for i in ids if i in approved])
        pairs = [(i, rows[i].biobank_id) for i in ids if i in rows]
    if not pairs:
        raise Invalid.field("specimens", "no eligible specimens to grant data of: name them")
    for previous in session.scalars(
        select(AccessDataGrant).where(
            AccessDataGrant.agreement_id == agreement.id, AccessDataGrant.status == GrantStatus.ACTIVE
        )
    ):
        previous.status = GrantStatus.ENDED
        previous.ended_at = now
    (public_id,) = new_public_ids(session, get_settings().institution_code, "GRT")
    row = AccessDataGrant(
        public_id=public_id,
        request_id=request.id,
        agreement_id=agreement.id,
        until=until,
        status=GrantStatus.ACTIVE,
        granted_by=principal.public_id,
        granted_at=now,
    )
    session.add(row)
    session.flush()
    session.add_all(AccessGrantItem(grant_id=row.id, specimen_id=sid, biobank_id=bid) for sid, bid in pairs)
    session.flush()
    common.refresh_agreement(session, agreement)
    common.refresh_fulfilled(session, request)
    session.flush()
    enqueue(session, "request.grant", grant_payload(request, agreement, row), dedupe_key=f"request.grant:{public_id}")
    audit.record(
        session,
        principal,
        "access.grant.create",
        "access_request",
        [request.public_id, agreement.public_id, public_id],
        purpose=request.public_id,
        details={"specimens": len(pairs), "until": until.isoformat()},
    )
    return row


def grant_payload(request: AccessRequest, agreement: AccessAgreement, row: AccessDataGrant) -> dict[str, Any]:
    """The `request.grant` payload: `until` as unix seconds."""
    return {
        "request": request.chain_id,
        "provider": institution_ref(agreement.provider_institution),
        "until": int(row.until.timestamp()),
    }


def is_active(row: AccessDataGrant, request: AccessRequest, now: datetime | None = None) -> bool:
    """Whether the grant still gives access now."""
    now = now or utcnow()
    return (
        row.status == GrantStatus.ACTIVE
        and now < row.until
        and request.status not in (RequestStatus.CLOSED, RequestStatus.REVOKED, RequestStatus.EXPIRED)
    )


def of_request(session: Session, request: AccessRequest) -> list[AccessDataGrant]:
    """A request's grants, oldest first."""
    stmt = select(AccessDataGrant).where(AccessDataGrant.request_id == request.id).order_by(AccessDataGrant.id)
    return list(session.scalars(stmt))


def get_grant(session: Session, request: AccessRequest, public_id: str) -> AccessDataGrant:
    """One grant of the request, or 404."""
    row = session.scalars(
        select(AccessDataGrant).where(AccessDataGrant.public_id == public_id, AccessDataGrant.request_id == request.id)
    ).first()
    if row is None:
        raise NotFound(f"no data grant {public_id!r} in this request", name="GrantNotFound")
    return row


def reads(session: Session, request: AccessRequest, rows: list[AccessDataGrant]) -> list[GrantRead]:
    """API views of grants with their specimen counts."""
    if not rows:
        return []
    items = list(session.scalars(select(AccessGrantItem).where(AccessGrantItem.grant_id.in_([g.id for g in rows]))))
    agreements = {a.id: a.public_id for a in common.agreements_of(session, request)}
    now = utcnow()
    return [
        GrantRead(
            public_id=g.public_id,
            agreement=agreements[g.agreement_id],
            until=g.until,
            status=g.status,
            active=is_active(g, request, now),
            specimens=sum(1 for i in items if i.grant_id == g.id and i.revoked_at is None),
            revoked_specimens=sum(1 for i in items if i.grant_id == g.id and i.revoked_at is not None),
            granted_at=g.granted_at,
            exports=g.exports,
        )
        for g in rows
    ]


def list_for(session: Session, principal: Principal, request: AccessRequest) -> list[GrantRead]:
    """The request's grants (requester and provider staff see the same list); audited."""
    rows = of_request(session, request)
    audit.record(
        session,
        principal,
        "access.grant.list",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"grants": len(rows)},
    )
    return reads(session, request, rows)


def export_csv(session: Session, principal: Principal, request: AccessRequest, public_id: str) -> tuple[str, str]:
    """The requester's pseudonymised CSV of a grant's specimens (project pseudonyms, no donor identifiers)."""
    from biobank.donors import service as donors
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    row = get_grant(session, request, public_id)
    common.require_requester(principal, request, "download the data of a grant")
    now = utcnow()
    if not is_active(row, request, now):
        audit.record(
            session,
            principal,
            "access.grant.export",
            "access_request",
            [request.public_id, row.public_id],
            purpose=request.public_id,
            outcome="refused",
        )
        when = f"{row.until:%Y-%m-%d %H:%M} UTC"
        state = row.status if row.status != GrantStatus.ACTIVE else f"request {request.status}"
        if row.status == GrantStatus.ACTIVE and now >= row.until:
            state = f"expired on {when}"
        raise NotPermitted(f"data access through grant {row.public_id} has ended ({state})", name="GrantExpired")
    ids = list(
        session.scalars(
            select(AccessGrantItem.specimen_id)
            .where(AccessGrantItem.grant_id == row.id, AccessGrantItem.revoked_at.is_(None))
            .order_by(AccessGrantItem.specimen_id)
        )
    )
    approved = eligible_ids(session, request, ids)  # consent is checked again at every download
    rows = specimens.by_ids(session, [i for i in ids if i in approved])
    donor_rows = donors.by_ids(session, sorted({s.donor_id for s in rows.values() if s.donor_id}))
    collections = institutions.collections_by_ids(session, sorted({s.collection_id for s in rows.values()}))
    key = project_key(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for sid in sorted(rows):
        s = rows[sid]
        donor = donor_rows.get(s.donor_id) if s.donor_id else None
        age = ""
        if donor is not None and donor.birth_year and s.collected_at is not None:
            age = str(s.collected_at.year - donor.birth_year)
        writer.writerow(
            [
                pseudonym(key, donor.public_id, namespace="project-donor") if donor else "",
                pseudonym(key, s.public_id, namespace="project-specimen"),
                collections[s.collection_id].public_id,
                str(s.sample_type),
                s.diagnosis or "",
                s.collected_at.strftime("%Y-%m") if s.collected_at else "",
                str(s.storage_temperature or ""),
                str(donor.sex) if donor else "",
                age,
            ]
        )
    row.exports += 1
    session.flush()
    audit.record(
        session,
        principal,
        "access.grant.export",
        "specimen",
        [request.public_id, row.public_id],
        purpose=request.public_id,
        details={"rows": len(rows), "withheld": len(ids) - len(rows)},
    )
    return out.getvalue(), f"{request.public_id.replace(':', '_')}-{row.public_id.replace(':', '_')}.csv"
