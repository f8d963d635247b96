"""Donor transparency: who (which institution, never which person) accessed a donor's data, when and why."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank.audit import repository as repo
from biobank.audit.schemas import AccessRead
from biobank.audit.service import record
from biobank.identity.models import UserKind
from biobank.identity.principal import Principal
from biobank.kit.errors import NotFound
from biobank.kit.pagination import PageParams

ACCESS_SORTS = {"index": None}


def access_history(
    session: Session, principal: Principal, donor_public_id: str, params: PageParams | None = None
) -> tuple[list[AccessRead], int]:
    """Accesses to a donor and to their specimens, newest first: time, institution, action, purpose.

    Staff who may read the donor see it (others get a 404); the read is itself recorded. Entries
    come from the log's resource links; actor ids are never returned, and other donors' resource ids
    are left out.
    """
    if principal.kind is not UserKind.STAFF and not principal.is_admin:
        raise NotFound(f"no donor {donor_public_id!r}", name="DonorNotFound")
    params = (params or PageParams(1, 50)).validated(ACCESS_SORTS)
    donor_id, items, total = _history(session, principal, donor_public_id, params)
    record(
        session,
        principal,
        "donor.access_history.read",
        "donor",
        [donor_id],
        details={"page": params.page, "returned": len(items)},
    )
    return items, total


def donor_access_history(
    session: Session, principal: Principal, donor_public_id: str, params: PageParams | None = None
) -> tuple[list[AccessRead], int]:
    """The same history for the donor portal, whose caller has established the donor and records the read."""
    params = (params or PageParams(1, 50)).validated(ACCESS_SORTS)
    _, items, total = _history(session, principal, donor_public_id, params)
    return items, total


def _history(
    session: Session, principal: Principal, donor_public_id: str, params: PageParams
) -> tuple[str, list[AccessRead], int]:
    from biobank.donors import service as donors
    from biobank.specimens import service as specimens

    donor = donors.get(session, principal, donor_public_id, audit_read=False)
    resource_ids = [donor.public_id, *specimens.public_ids_of_donor(session, donor.id)]
    wanted = set(resource_ids)
    offset = (params.page - 1) * params.size
    rows = repo.entries_naming(session, resource_ids, offset=offset, limit=params.size)
    total = repo.count_entries_naming(session, resource_ids)
    items = [
        AccessRead(
            index=row.idx,
            at=row.at,
            institution=row.institution,
            action=row.action,
            outcome=row.outcome,
            purpose=row.purpose,
            resource_ids=[rid for rid in row.resource_ids if rid in wanted],
        )
        for row in rows
    ]
    return donor.public_id, items, total
