"""Outbox rows of the request workflow: the right kinds and keys, enqueued once, with no personal data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access import chain
from biobank.access.models import AccessEthicsDecision, AccessRequest
from biobank.config import get_settings
from biobank.ledger import refs
from biobank.ledger.models import LedgerOutbox
from tests.access.conftest import AccessWorld
from tests.access.factories import approve_ethics, make_access_request, move_provider


def outbox(db: Session) -> list[LedgerOutbox]:
    stmt = select(LedgerOutbox).where(LedgerOutbox.kind.startswith("request.")).order_by(LedgerOutbox.id)
    return list(db.scalars(stmt))


def personal_strings(db: Session, cohort: Any, aw: AccessWorld) -> list[str]:
    """Donor pseudonyms, names and patient ids of the cohort, and the people's usernames and ids."""
    from biobank.donors.models import Donor

    out: list[str] = []
    for donor in cohort.donors.values():
        out.append(donor.public_id)
        row = db.get(Donor, donor.id)
        for attribute in ("pseudonym", "public_id"):
            value = getattr(row, attribute, None)
            if value:
                out.append(str(value))
    out += ["Test Person", "MRN"]  # every factory donor's name and patient id start so
    for user in aw.users.values():
        out += [user.public_id] + ([user.display_name] if user.display_name else [])
    out += [s for specimens in cohort.specimens.values() for s in specimens]
    return out


def test_submit_ethics_and_providers_enqueue_their_kinds(aw: AccessWorld, cohort: Any, db: Session) -> None:
    settings = get_settings()
    request = make_access_request(
        db,
        aw.users["researcher"],
        collections=[aw.collection_a, aw.collection_b],
        specimens=cohort.specimens["broad"][:1],
        submit=True,
    )
    rows = outbox(db)
    assert [r.kind for r in rows] == ["request.submit"]
    submit = rows[0].payload
    assert submit["request"] == refs.object_ref(settings, "request", request.public_id) == request.chain_id
    local = refs.institution_ref(settings.institution_code)
    assert submit["providers"] == [local]  # both biobanks belong to this node's institution: one legal entity
    assert submit["ethics"] == local
    assert submit["commitment"] == request.commitment
    # The commitment opens with the stored salt and the canonical document.
    from biobank.access import service

    items = service.repo.items_of(db, [request.id])[request.id]
    document = chain.request_document(
        request,
        items,
        service._item_refs(db, items),
        sorted(service._biobank_public_ids(db, [i.biobank_id for i in items]).values()),
        service.repo.document_meta(db, request.id).sha256,
    )
    assert refs.commitment(request.salt, document) == request.commitment

    decision = approve_ethics(db, request, aw.users["ethics"])
    ethics = outbox(db)[-1]
    assert ethics.kind == "request.ethics"
    assert ethics.payload == {"request": request.chain_id, "approved": True, "decision_hash": decision.decision_hash}

    move_provider(db, request, aw.biobank_a, "available", aw.users["owner"])
    assert [r.kind for r in outbox(db)].count("request.provider") == 0, "B (same institution) has not decided"
    move_provider(db, request, aw.biobank_b, "unavailable", aw.users["other"])
    provider_rows = [r for r in outbox(db) if r.kind == "request.provider"]
    assert len(provider_rows) == 1
    assert provider_rows[0].payload == {"request": request.chain_id, "provider": local, "available": True}
    move_provider(db, request, aw.biobank_a, "conditions_indicated", aw.users["owner"])
    assert len([r for r in outbox(db) if r.kind == "request.provider"]) == 1, "once per institution"

    blob = json.dumps([list(r.payload.values()) for r in outbox(db)])
    for needle in personal_strings(db, cohort, aw):
        assert needle not in blob, needle
    assert request.project_title not in blob and request.public_id not in blob
    db.rollback()


def test_an_unavailable_institution_reports_unavailable(aw: AccessWorld, db: Session) -> None:
    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    approve_ethics(db, request, aw.users["ethics"], approved=True)
    move_provider(db, request, aw.biobank_a, "checking_availability", aw.users["owner"])
    assert not [r for r in outbox(db) if r.kind == "request.provider"]
    move_provider(db, request, aw.biobank_a, "unavailable", aw.users["owner"])
    (row,) = [r for r in outbox(db) if r.kind == "request.provider"]
    assert row.payload["available"] is False
    db.rollback()


def test_a_failed_submit_enqueues_nothing(aw: AccessWorld, db: Session) -> None:
    from biobank.kit.errors import Invalid

    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], document=False)
    from biobank.access import service
    from tests.access.factories import principal_of

    with pytest.raises(Invalid):
        service.submit(db, principal_of(db, aw.users["researcher"]), request)
    assert outbox(db) == []
    assert db.get(AccessRequest, request.id).status == "draft"  # type: ignore[union-attr]
    assert db.scalars(select(AccessEthicsDecision)).first() is None
    db.rollback()
