"""Factories of fulfilment tests: an ethics-approved request with an available provider, inserted directly,
and a small cohort of consented donors with stored specimens in biobank A."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank.access.models import (
    AccessRequest,
    AccessRequestItem,
    AccessRequestProvider,
    ItemKind,
    ProviderState,
    RequestStatus,
)
from biobank.config import get_settings
from biobank.institutions import service as institutions
from biobank.kit.ids import new_public_ids
from biobank.ledger.refs import object_ref


def purpose(**overrides: Any) -> dict[str, Any]:
    """General research use by a non-profit, with ethics approval; no promise of publication."""
    return {
        "category": "GRU",
        "diseases": [],
        "commercial": False,
        "non_profit": True,
        "country": "CN",
        "ethics_approval": True,
        "collaboration": True,
        "methods_development": False,
        "genetic": False,
        "data_linkage": False,
        "publication": False,
        "return_data": False,
    } | overrides


def make_request(
    session: Session,
    requester: Any,
    *,
    biobanks: tuple[str, ...] = ("BBA",),
    state: ProviderState = ProviderState.AVAILABLE,
    status: RequestStatus = RequestStatus.ETHICS_APPROVED,
    data_items: bool = False,
    **purpose_overrides: Any,
) -> AccessRequest:
    """An ethics-approved request of `requester` with its providers in `state` (inserted directly)."""
    settings = get_settings()
    (public_id,) = new_public_ids(session, settings.institution_code, "REQ")
    request = AccessRequest(
        public_id=public_id,
        chain_id=object_ref(settings, "request", public_id),
        requester_user_id=requester.id,
        requester_institution=settings.institution_code,
        project_title="Serum markers of lung cancer",
        project_summary="",
        purpose=purpose(**purpose_overrides),
        shipment_country="CN",
        ethics_reference="EC-2026-001",
        status=status,
    )
    session.add(request)
    session.flush()
    for n, code in enumerate(biobanks):
        biobank = institutions.get_biobank(session, code)
        session.add(AccessRequestProvider(request_id=request.id, biobank_id=biobank.id, state=state))
        first = next(c for c in institutions.all_collections(session) if c.biobank_id == biobank.id)
        session.add(
            AccessRequestItem(
                request_id=request.id,
                position=n * 2,
                kind=ItemKind.COLLECTION,
                biobank_id=biobank.id,
                collection_id=first.id,
                sample_type="Serum",
                quantity=5,
                amount=0.5,
                amount_unit="mL",
            )
        )
        if data_items:
            session.add(
                AccessRequestItem(
                    request_id=request.id,
                    position=n * 2 + 1,
                    kind=ItemKind.DATA,
                    biobank_id=biobank.id,
                    collection_id=first.id,
                    data_category="Clinical",
                    quantity=100,
                )
            )
    session.flush()
    return request
