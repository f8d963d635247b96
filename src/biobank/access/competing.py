"""Competing requests: open requests that ask for the same specimens or collections, side by side.

A specimen competes when two open requests name it; a collection when two open requests ask for it and at
least one asks for the collection itself (a named specimen of it then competes too). Data lines never
compete (data are copied, not used up). Groups are ordered by `order_competing`, the seam the valuation
issue fills; until then, first submitted first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import repository as repo
from biobank.access.models import OPEN_STATUSES, AccessRequest, ItemKind
from biobank.access.schemas import CompetingGroup, CompetingRequest
from biobank.access.service import Viewer
from biobank.kit.errors import Invalid, NotFound


@dataclass
class _Group:
    kind: str
    resource_id: int
    biobank_id: int
    requests: dict[int, tuple[AccessRequest, int]] = field(default_factory=dict)
    whole: bool = False  # some request asks for the whole collection


def order_competing(
    session: Session, kind: str, resource: str, requests: Sequence[CompetingRequest]
) -> list[CompetingRequest]:
    """The order in which a manager should consider competing requests for one resource.

    The seam for the valuation issue (priority scores); for now, by submission time.
    """
    far = "9999"
    return sorted(requests, key=lambda r: (r.submitted_at.isoformat() if r.submitted_at else far, r.public_id))


def competing(session: Session, viewer: Viewer, *, biobank: str | None = None) -> list[CompetingGroup]:
    """Groups of open requests competing for the same specimens or collections of the caller's managed biobanks."""
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    principal = viewer.principal
    managed: list[int] | None = None if principal.is_admin else [b for b in principal.roles if principal.can_manage(b)]
    if biobank:
        try:
            wanted = institutions.get_biobank(session, biobank).id
        except NotFound:
            raise Invalid.field("biobank", "unknown biobank", value=biobank) from None
        managed = [wanted] if managed is None or wanted in managed else []
    statuses = sorted(s.value for s in OPEN_STATUSES)
    groups: dict[tuple[str, int], _Group] = {}
    for item, request in repo.open_items(session, statuses, managed):
        if item.kind == ItemKind.SPECIMEN and item.specimen_id is not None:
            g = groups.setdefault(("specimen", item.specimen_id), _Group("specimen", item.specimen_id, item.biobank_id))
            g.requests.setdefault(request.id, (request, 0))
            g.requests[request.id] = (request, g.requests[request.id][1] + item.quantity)
        c = groups.setdefault(
            ("collection", item.collection_id), _Group("collection", item.collection_id, item.biobank_id)
        )
        c.whole = c.whole or item.kind == ItemKind.COLLECTION
        c.requests[request.id] = (request, c.requests.get(request.id, (request, 0))[1] + item.quantity)
    kept = [g for g in groups.values() if len(g.requests) >= 2 and (g.kind == "specimen" or g.whole)]
    request_ids = sorted({rid for g in kept for rid in g.requests})
    providers = repo.providers_of(session, request_ids)
    collections = institutions.collections_by_ids(
        session, sorted({g.resource_id for g in kept if g.kind == "collection"})
    )
    specimen_ids = specimens.public_ids_of(session, sorted({g.resource_id for g in kept if g.kind == "specimen"}))
    codes = institutions.biobank_codes(session, sorted({g.biobank_id for g in kept}))
    out: list[CompetingGroup] = []
    for g in sorted(kept, key=lambda g: (g.kind, g.resource_id)):
        state_of: dict[int, Any] = {
            rid: next((str(p.state) for p in providers[rid] if p.biobank_id == g.biobank_id), None)
            for rid in g.requests
        }
        rows = [
            CompetingRequest(
                public_id=r.public_id,
                project_title=r.project_title,
                status=str(r.status),
                submitted_at=r.submitted_at,
                requester_institution=r.requester_institution,
                quantity=quantity,
                provider_state=state_of[rid],
            )
            for rid, (r, quantity) in g.requests.items()
        ]
        if g.kind == "collection":
            resource, name = collections[g.resource_id].public_id, collections[g.resource_id].name
        else:
            resource = name = specimen_ids[g.resource_id]
        out.append(
            CompetingGroup(
                kind=g.kind,
                resource=resource,
                name=name,
                biobank=codes[g.biobank_id],
                requests=order_competing(session, g.kind, resource, rows),
            )
        )
    if out:
        audit.record(
            session,
            principal,
            "access.request.competing",
            "access_request",
            sorted({r.public_id for g in out for r in g.requests}),
            details={"groups": len(out)},
        )
    return out
