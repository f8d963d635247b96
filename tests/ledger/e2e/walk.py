"""The whole access walk through the services, as the people who do each step, one commit per step.

request → submit → ethics approval → provider states → agreement generated and signed by both parties →
reservation → dispatch → receive → data grant → results → close. Each step commits, as a web request
would, so the outbox holds exactly what the node would publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access import agreements, grants, reservations, results, shipments
from biobank.access.fulfilment_models import AccessAgreement, AccessDataGrant, AccessShipment
from biobank.access.fulfilment_schemas import (
    AgreementCreate,
    AgreementSign,
    GrantCreate,
    ReservationCreate,
    ResultsCreate,
    ShipmentCreate,
    ShipmentReceive,
)
from biobank.access.models import AccessRequest
from biobank.identity.models import User
from tests.access.factories import approve_ethics, make_access_request, make_researcher, make_reviewer, move_provider
from tests.access.factories import principal_of as principal
from tests.access.fulfilment.conftest import stored_cohort
from tests.conftest import World
from tests.factories import PASSWORD

FEE = 900


@dataclass
class Cast:
    """Who acts: the researcher, the ethics reviewer, the managers of biobanks A and B."""

    researcher: User
    reviewer: User
    manager_a: User
    manager_b: User
    donors: dict[str, Any]
    specimens: dict[str, list[str]]


@dataclass
class Walked:
    """Public ids of what one walk made (rows are read again by id: the steps' sessions are gone)."""

    request_id: int
    public_id: str
    chain_id: str
    agreement: str = ""
    shipment: str = ""
    grant: str = ""
    steps: list[str] = field(default_factory=list)

    def request(self, session: Session) -> AccessRequest:
        row = session.get(AccessRequest, self.request_id)
        assert row is not None
        return row

    def agreement_row(self, session: Session) -> AccessAgreement:
        return session.scalars(select(AccessAgreement).where(AccessAgreement.public_id == self.agreement)).one()

    def shipment_row(self, session: Session) -> AccessShipment:
        return session.scalars(select(AccessShipment).where(AccessShipment.public_id == self.shipment)).one()

    def grant_row(self, session: Session) -> AccessDataGrant:
        return session.scalars(select(AccessDataGrant).where(AccessDataGrant.public_id == self.grant)).one()


def user(session: Session, username: str) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def cast(db: Session, world: World) -> Cast:
    """The researcher, a reviewer, the managers of A and B, and a consented, stored cohort (committed)."""
    donors, specimens = stored_cohort(db, world)
    researcher = make_researcher(db)
    reviewer = make_reviewer(db)
    db.commit()
    return Cast(researcher, reviewer, user(db, "owner"), user(db, "other"), donors, specimens)


def requested(db: Session, world: World, who: Cast, **overrides: Any) -> Walked:
    """Drafted, ethics document attached, submitted (eligibility runs), approved by the committee."""
    request = make_access_request(db, who.researcher, collections=[world.collection_a, world.collection_b],
                                  quantity=5, **overrides)
    db.commit()
    walked = Walked(request.id, request.public_id, request.chain_id, steps=["draft"])
    from biobank.access import service

    service.submit(db, principal(db, who.researcher), walked.request(db))
    db.commit()
    approve_ethics(db, walked.request(db), who.reviewer, comments="Sound protocol; consent covers the purpose.")
    db.commit()
    walked.steps += ["submit", "ethics"]
    return walked


def providers_answer(db: Session, walked: Walked, who: Cast) -> None:
    """Biobank A checks then says available; biobank B says available (one institution on chain)."""
    move_provider(db, walked.request(db), "BBA", "checking_availability", who.manager_a)
    db.commit()
    move_provider(db, walked.request(db), "BBA", "available", who.manager_a)
    db.commit()
    move_provider(db, walked.request(db), "BBB", "available", who.manager_b)
    db.commit()
    walked.steps.append("providers")


def agree(db: Session, walked: Walked, who: Cast, *, data: bool = True, fee: int = FEE) -> None:
    """Biobank A's manager generates the MTA (with a data section); the researcher then the manager sign."""
    body = AgreementCreate(fee_amount=fee, data=data, data_access_days=30 if data else None)
    agreement = agreements.generate(db, principal(db, who.manager_a), walked.request(db), body)
    walked.agreement = agreement.public_id
    db.commit()
    for signer in (who.researcher, who.manager_a):
        agreements.sign(db, principal(db, signer), walked.request(db), walked.agreement_row(db),
                        AgreementSign(password=PASSWORD))
        db.commit()
    walked.steps.append("agreement")


def reserve(db: Session, walked: Walked, who: Cast, specimens: list[str]) -> None:
    """Biobank A's manager reserves named specimens for the agreement."""
    reservations.reserve(db, principal(db, who.manager_a), walked.request(db), ReservationCreate(specimens=specimens))
    db.commit()
    walked.steps.append("reservation")


def ship(db: Session, walked: Walked, who: Cast) -> None:
    """Dispatched by biobank A, received in good condition by the researcher."""
    now = datetime.now(UTC)
    shipment = shipments.dispatch(db, principal(db, who.manager_a), walked.request(db), ShipmentCreate(
        courier="SF Express", tracking_number="SF1234567890", temperature_logger="TL-77",
        dispatched_at=now - timedelta(hours=2)))
    walked.shipment = shipment.public_id
    db.commit()
    shipments.receive(db, principal(db, who.researcher), walked.request(db), walked.shipment,
                      ShipmentReceive(received_at=now - timedelta(minutes=5), condition="good"))  # type: ignore[arg-type]
    db.commit()
    walked.steps += ["dispatch", "receive"]


def grant_data(db: Session, walked: Walked, who: Cast) -> None:
    """Biobank A's manager grants data access for ten days."""
    until = (datetime.now(UTC) + timedelta(days=10)).date()
    row = grants.grant(db, principal(db, who.manager_a), walked.request(db), GrantCreate(until=until))
    walked.grant = row.public_id
    db.commit()
    walked.steps.append("grant")


def finish(db: Session, walked: Walked, who: Cast) -> None:
    """The researcher returns a publication and a dataset, then closes the request."""
    results.return_results(db, principal(db, who.researcher), walked.request(db), ResultsCreate.model_validate({
        "publications": [{"doi": "10.1000/e2e.2026.001", "title": "Serum proteomics of lung cancer"}],
        "datasets": [{"url": "https://data.example.org/e2e-001", "description": "Protein abundance matrix"}],
    }))
    db.commit()
    results.close(db, principal(db, who.researcher), walked.request(db))
    db.commit()
    walked.steps += ["results", "close"]


def through_grant(db: Session, world: World, who: Cast) -> Walked:
    """Everything up to and including the data grant (the request is `fulfilled`)."""
    walked = requested(db, world, who)
    providers_answer(db, walked, who)
    agree(db, walked, who)
    reserve(db, walked, who, who.specimens["broad"])
    ship(db, walked, who)
    grant_data(db, walked, who)
    return walked
