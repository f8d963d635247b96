"""Step 7: the requester returns results (publications with a DOI, datasets with URL and description) and
closes the request. Each return goes on chain as a salted commitment; closing ends data access."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_models import (
    AccessDataGrant,
    AccessResult,
    AccessResultReturn,
    GrantStatus,
    ResultKind,
)
from biobank.access.fulfilment_schemas import ResultRead, ResultsCreate
from biobank.access.models import AccessRequest, RequestStatus
from biobank.identity.principal import Principal
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, Invalid
from biobank.kit.ids import new_uuid
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import commitment, new_salt

RESULTS_OPEN = frozenset({RequestStatus.FULFILLED, RequestStatus.RESULTS_RETURNED})


def return_results(
    session: Session, principal: Principal, request: AccessRequest, data: ResultsCreate
) -> AccessResultReturn:
    """Record publications and datasets of the project; fulfilled → results_returned."""
    common.require_requester(principal, request, "return results")
    common.require_status(request, RESULTS_OPEN, "return results")
    if not data.publications and not data.datasets:
        raise Invalid.field("publications", "give at least one publication (DOI) or dataset")
    public_id = new_uuid()
    document = {
        "return": public_id,
        "publications": [{"doi": p.doi, "title": p.title} for p in data.publications],
        "datasets": [{"url": d.url, "description": d.description} for d in data.datasets],
    }
    salt = new_salt()
    row = AccessResultReturn(
        public_id=public_id,
        request_id=request.id,
        returned_by=principal.public_id,
        returned_at=utcnow(),
        salt=salt,
        document=document,
        results_hash=commitment(salt, document),
    )
    session.add(row)
    session.flush()
    session.add_all(
        [
            *(
                AccessResult(
                    return_id=row.id, request_id=request.id, kind=ResultKind.PUBLICATION, doi=p.doi, title=p.title
                )
                for p in data.publications
            ),
            *(
                AccessResult(
                    return_id=row.id,
                    request_id=request.id,
                    kind=ResultKind.DATASET,
                    url=d.url,
                    description=d.description,
                )
                for d in data.datasets
            ),
        ]
    )
    common.mark_results_returned(request)
    session.flush()
    enqueue(
        session,
        "request.results",
        {"request": request.chain_id, "results_hash": row.results_hash},
        dedupe_key=f"request.results:{public_id}",
    )
    audit.record(
        session,
        principal,
        "access.results.return",
        "access_request",
        [request.public_id, public_id],
        purpose=request.public_id,
        details={"publications": len(data.publications), "datasets": len(data.datasets)},
    )
    return row


def of_request(session: Session, request: AccessRequest) -> list[ResultRead]:
    """Every result returned for a request, oldest first."""
    returns = {
        r.id: r for r in session.scalars(select(AccessResultReturn).where(AccessResultReturn.request_id == request.id))
    }
    rows = session.scalars(select(AccessResult).where(AccessResult.request_id == request.id).order_by(AccessResult.id))
    return [
        ResultRead(
            kind=r.kind,
            doi=r.doi,
            title=r.title,
            url=r.url,
            description=r.description,
            returned_at=returns[r.return_id].returned_at,
            results_hash=returns[r.return_id].results_hash,
        )
        for r in rows
    ]


def list_for(session: Session, principal: Principal, request: AccessRequest) -> list[ResultRead]:
    """Results of a request (requester and providers); audited."""
    out = of_request(session, request)
    audit.record(
        session,
        principal,
        "access.results.list",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"results": len(out)},
    )
    return out


def owes_results(request: AccessRequest) -> bool:
    """Whether the requester committed to publishing or returning data (DUO PUB / RTN)."""
    purpose = request.purpose or {}
    return bool(purpose.get("publication")) or bool(purpose.get("return_data"))


def close(session: Session, principal: Principal, request: AccessRequest) -> AccessRequest:
    """The requester closes the request: data access ends; on chain `request.close`."""
    common.require_requester(principal, request, "close the request")
    allowed = RESULTS_OPEN if not owes_results(request) else {RequestStatus.RESULTS_RETURNED}
    if request.status == RequestStatus.FULFILLED and owes_results(request):
        raise Conflict(
            "cannot close the request: it is fulfilled, and the project committed to returning results first",
            name="ResultsOwed",
        )
    common.require_status(request, allowed, "close the request")
    now = utcnow()
    for grant in session.scalars(
        select(AccessDataGrant).where(
            AccessDataGrant.request_id == request.id, AccessDataGrant.status == GrantStatus.ACTIVE
        )
    ):
        grant.status = GrantStatus.ENDED
        grant.ended_at = now
    common.mark_closed(request)
    session.flush()
    enqueue(session, "request.close", {"request": request.chain_id}, dedupe_key=f"request.close:{request.public_id}")
    audit.record(
        session, principal, "access.request.close", "access_request", [request.public_id], purpose=request.public_id
    )
    return request
