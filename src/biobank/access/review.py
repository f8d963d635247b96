"""The ethics committee's decision on a submitted request."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import chain
from biobank.access import repository as repo
from biobank.access.models import AccessEthicsDecision, AccessRequest, RequestStatus
from biobank.access.schemas import EthicsDecisionIn
from biobank.access.service import Viewer
from biobank.config import get_settings
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, NotPermitted
from biobank.ledger import refs


def decide(session: Session, viewer: Viewer, request: AccessRequest, data: EthicsDecisionIn) -> AccessEthicsDecision:
    """Approve or reject a submitted request (ethics reviewers; never the requester themself).

    On approval every provider biobank is contacted: its track's clock (reminders, escalation) starts now.
    """
    principal = viewer.principal
    if not viewer.reviewer:
        raise NotPermitted("only members of the ethics committee decide", name="NotEthicsReviewer")
    if "write" not in principal.scopes:
        raise NotPermitted("this token is read-only")
    if request.requester_user_id == principal.user_id:
        raise NotPermitted("a reviewer may not decide on their own request", name="OwnRequest")
    if request.status != RequestStatus.SUBMITTED:
        raise Conflict(
            f"the request is {request.status}; an ethics decision needs a submitted request",
            name="RequestNotSubmitted",
        )
    now = utcnow()
    decision = AccessEthicsDecision(
        request_id=request.id,
        reviewer_user_id=principal.user_id,
        approved=data.approved,
        comments=data.comments,
        decided_at=now,
        decision_hash="",
    )
    decision.decision_hash = refs.commitment(
        request.salt, chain.decision_document(request, decision, get_settings().institution_code)
    )
    session.add(decision)
    request.status = RequestStatus.ETHICS_APPROVED if data.approved else RequestStatus.ETHICS_REJECTED
    if not data.approved:
        request.closed_at = now
    else:
        for provider in repo.providers_of(session, [request.id])[request.id]:
            provider.contacted_at = now
            provider.last_activity_at = now
    session.flush()
    chain.enqueue_ethics(session, request, decision)
    audit.record(
        session,
        principal,
        "access.request.ethics",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"approved": data.approved},
    )
    return decision
