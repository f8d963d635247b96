"""Plain factories for access tests (also used by tests/access/fulfilment): requests through the services.

researcher = make_researcher(db)
request = make_access_request(db, researcher, collections=[world.collection_a], submit=True)
approve_ethics(db, request, make_reviewer(db))
move_provider(db, request, "BBA", "available", manager_user)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from biobank.access import providers, review, service
from biobank.access.models import AccessEthicsDecision, AccessRequest, AccessRequestProvider
from biobank.access.schemas import AccessRequestCreate, EthicsDecisionIn, ProviderStateChange
from biobank.access.service import Viewer
from biobank.identity import service as identity
from biobank.identity.models import User
from biobank.identity.principal import Principal
from tests.factories import make_user

PDF = b"%PDF-1.4\n% ethics approval of the test project\n%%EOF\n"
_seq = itertools.count(1)


def principal_of(session: Session, user: User) -> Principal:
    """The principal of a user, as a logged-in session would give it."""
    return identity.principal_for(session, user, via="session", csrf_token="test")


def viewer_of(session: Session, user: User) -> Viewer:
    return Viewer.of(session, principal_of(session, user))


def make_researcher(session: Session, username: str | None = None) -> User:
    """A researcher account (no biobank role)."""
    return make_user(session, username or f"researcher{next(_seq)}", kind="researcher")


def make_reviewer(session: Session, username: str | None = None) -> User:
    """A member of the ethics committee."""
    return make_user(session, username or f"ethics{next(_seq)}", is_ethics_reviewer=True)


def purpose(**overrides: Any) -> dict[str, Any]:
    """A general research use purpose that states its commitments (non-profit, not commercial)."""
    return {
        "category": "GRU",
        "commercial": False,
        "non_profit": True,
        "collaboration": True,
        "methods_development": False,
        "genetic": False,
        "data_linkage": False,
        "publication": True,
        "return_data": True,
    } | overrides


def request_body(
    collections: Sequence[str] = (),
    specimens: Sequence[str] = (),
    *,
    quantity: int = 10,
    **overrides: Any,
) -> dict[str, Any]:
    """The JSON body of POST /api/v1/access/requests."""
    items: list[dict[str, Any]] = [{"kind": "collection", "collection": c, "quantity": quantity} for c in collections]
    items += [{"kind": "specimen", "specimen": s} for s in specimens]
    return {
        "project_title": f"Serum proteomics of lung cancer {next(_seq)}",
        "project_summary": "Proteomic profiling of pre-treatment serum.",
        "purpose": purpose(),
        "ethics_reference": "IRB-2026-042",
        "shipment_country": "CN",
        "items": items,
    } | overrides


def make_access_request(
    session: Session,
    requester: User,
    *,
    collections: Sequence[str] = (),
    specimens: Sequence[str] = (),
    document: bool = True,
    submit: bool = False,
    **overrides: Any,
) -> AccessRequest:
    """A request of `requester` for collections and/or specimens (public ids); a draft unless submit=True."""
    principal = principal_of(session, requester)
    data = AccessRequestCreate.model_validate(request_body(collections, specimens, **overrides))
    request = service.create_request(session, principal, data)
    if document:
        service.attach_document(session, principal, request, PDF, "application/pdf", "approval.pdf")
    if submit:
        service.submit(session, principal, request)
    session.flush()
    return request


def approve_ethics(
    session: Session, request: AccessRequest, reviewer: User, *, approved: bool = True, comments: str = "Approved."
) -> AccessEthicsDecision:
    """The ethics committee's decision (reviewer must have is_ethics_reviewer)."""
    return review.decide(
        session, viewer_of(session, reviewer), request, EthicsDecisionIn(approved=approved, comments=comments)
    )


def move_provider(
    session: Session, request: AccessRequest, biobank: str, state: str, manager: User, note: str = ""
) -> AccessRequestProvider:
    """A provider biobank's manager moves its track one step."""
    viewer = viewer_of(session, manager)
    track = providers.get_track(session, request, biobank)
    if state == "conditions_indicated" and not note:
        note = "Co-authorship and return of derived data."
    return providers.change_state(session, viewer, request, track, ProviderStateChange(state=state, note=note))  # type: ignore[arg-type]
