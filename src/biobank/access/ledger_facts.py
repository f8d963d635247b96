"""The chain facts this node's fulfilment rows imply, for `biobank ledger verify` to compare with the chain.

Each fact is {"kind": outbox kind, "payload": what should be on chain, "label": for people}. Payloads are
rebuilt from the stored rows (hashes, signatures, times), not copied from the outbox, so a row changed
after it was queued shows up as a difference.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access.agreements import agreement_payload
from biobank.access.consent_hooks import revoke_payload
from biobank.access.fulfilment_models import (
    AccessAgreement,
    AccessDataGrant,
    AccessShipment,
    AgreementStatus,
)
from biobank.access.grants import grant_payload
from biobank.access.models import AccessRequest
from biobank.access.shipments import dispatch_payload, receive_payload
from biobank.config import Settings


def _short(public_id: str) -> str:
    return public_id.rsplit(":", 1)[-1]


def expected_chain_facts(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every signed agreement, dispatch, receipt, data grant and revocation of this node, as chain payloads.

    `settings` is the node's (the same keys made the refs when the rows were queued).
    """
    del settings  # the stored rows already hold the chain refs and hashes
    requests = {r.id: r for r in session.scalars(select(AccessRequest))}
    agreements = {a.id: a for a in session.scalars(select(AccessAgreement).order_by(AccessAgreement.id))}
    facts: list[dict[str, Any]] = []
    for agreement in agreements.values():
        request = requests[agreement.request_id]
        label = f"{_short(request.public_id)} / {agreement.provider_institution}"
        if agreement.requester_signature and agreement.provider_signature:
            facts.append(
                {
                    "kind": "request.agreement",
                    "payload": agreement_payload(request, agreement),
                    "label": f"agreement {label}",
                }
            )
        if agreement.status == AgreementStatus.REVOKED and agreement.revoke_hash:
            facts.append(
                {
                    "kind": "request.revoke",
                    "payload": revoke_payload(request, agreement),
                    "label": f"revocation {label}",
                }
            )
    for shipment in session.scalars(select(AccessShipment).order_by(AccessShipment.id)):
        agreement = agreements[shipment.agreement_id]
        request = requests[shipment.request_id]
        label = f"{_short(request.public_id)} / {agreement.provider_institution} ({_short(shipment.public_id)})"
        facts.append(
            {
                "kind": "request.dispatch",
                "payload": dispatch_payload(request, agreement, shipment),
                "label": f"dispatch {label}",
            }
        )
        if shipment.condition_hash:
            facts.append(
                {
                    "kind": "request.receive",
                    "payload": receive_payload(request, agreement, shipment),
                    "label": f"receipt {label}",
                }
            )
    for grant in session.scalars(select(AccessDataGrant).order_by(AccessDataGrant.id)):
        agreement = agreements[grant.agreement_id]
        request = requests[grant.request_id]
        facts.append(
            {
                "kind": "request.grant",
                "payload": grant_payload(request, agreement, grant),
                "label": f"data grant {_short(request.public_id)} / {agreement.provider_institution} "
                f"({_short(grant.public_id)})",
            }
        )
    return facts
