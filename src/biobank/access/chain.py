"""What access requests put on chain: keyed references, salted commitments, outbox rows. No personal data.

A request is known on chain by `refs.object_ref(settings, "request", public_id)` (stored as
access_requests.chain_id); its content only as a salted commitment of its canonical document, salt kept
on the row. A provider on chain is an institution (legal entity), `refs.institution_ref(code)`; the
ethics committee is this node's institution.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from biobank.access.models import AccessEthicsDecision, AccessRequest, AccessRequestItem
from biobank.config import get_settings
from biobank.ledger import outbox, refs


def request_ref(public_id: str) -> str:
    """bytes32 of a request on chain (keyed hash of its public id)."""
    return refs.object_ref(get_settings(), "request", public_id)


def institution_ref(code: str) -> str:
    """bytes32 of an institution on chain."""
    return refs.institution_ref(code)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def request_document(
    request: AccessRequest,
    items: Sequence[AccessRequestItem],
    item_refs: Sequence[dict[str, Any]],
    providers: Sequence[str],
    document_sha256: str | None,
) -> dict[str, Any]:
    """The canonical document a request's commitment is made of (what was asked, by which institution)."""
    return {
        "request": request.public_id,
        "requester_institution": request.requester_institution,
        "project_title": request.project_title,
        "project_summary": request.project_summary,
        "purpose": request.purpose,
        "ethics_reference": request.ethics_reference,
        "ethics_document_sha256": document_sha256,
        "shipment_country": request.shipment_country,
        "items": [
            {**ref, "quantity": i.quantity, "amount": i.amount, "amount_unit": i.amount_unit}
            for i, ref in zip(items, item_refs, strict=True)
        ],
        "providers": sorted(providers),
        "submitted_at": _iso(request.submitted_at),
    }


def decision_document(request: AccessRequest, decision: AccessEthicsDecision, committee: str) -> dict[str, Any]:
    """The canonical ethics decision (the committee's institution, not the reviewer's identity)."""
    return {
        "request": request.public_id,
        "committee": committee,
        "approved": decision.approved,
        "comments": decision.comments,
        "decided_at": _iso(decision.decided_at),
    }


def enqueue_submit(session: Session, request: AccessRequest, provider_institutions: Sequence[str]) -> None:
    """request.submit [request, commitment, providers[], ethics]."""
    assert request.commitment is not None
    payload = {
        "request": request.chain_id,
        "commitment": request.commitment,
        "providers": sorted({institution_ref(code) for code in provider_institutions}),
        "ethics": institution_ref(get_settings().institution_code),
    }
    outbox.enqueue(session, "request.submit", payload, dedupe_key=f"request.submit:{request.chain_id}")


def enqueue_ethics(session: Session, request: AccessRequest, decision: AccessEthicsDecision) -> None:
    """request.ethics [request, approved, decision_hash]."""
    payload = {"request": request.chain_id, "approved": decision.approved, "decision_hash": decision.decision_hash}
    outbox.enqueue(session, "request.ethics", payload, dedupe_key=f"request.ethics:{request.chain_id}")


def enqueue_provider(session: Session, request: AccessRequest, institution: str, available: bool) -> None:
    """request.provider [request, provider, available] for one institution (once all its biobanks decided)."""
    ref = institution_ref(institution)
    payload = {"request": request.chain_id, "provider": ref, "available": available}
    outbox.enqueue(session, "request.provider", payload, dedupe_key=f"request.provider:{request.chain_id}:{ref}")


def enqueue_expire(session: Session, request: AccessRequest) -> None:
    """request.expire [request]."""
    outbox.enqueue(
        session, "request.expire", {"request": request.chain_id}, dedupe_key=f"request.expire:{request.chain_id}"
    )
