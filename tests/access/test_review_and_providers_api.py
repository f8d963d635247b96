"""Ethics decision, provider state changes and eligibility recompute through the API, for every persona."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access.models import AccessRequest, AccessRequestProvider
from tests.access.conftest import AccessWorld, upload_pdf
from tests.access.factories import request_body
from tests.access.test_requests_api import API, actions, submitted
from tests.conftest import Persona
from tests.factories import make_token, make_user


def decide(persona: Any, public_id: str, approved: bool = True) -> Any:
    return persona.post(f"{API}/{public_id}/ethics", json={"approved": approved, "comments": "Protocol v2 approved."})


def move(persona: Any, public_id: str, biobank: str, state: str, note: str = "") -> Any:
    return persona.post(f"{API}/{public_id}/providers/{biobank}/state", json={"state": state, "note": note})


# -- ethics ----------------------------------------------------------------------------------------------


def test_ethics_decision_personas(aw: AccessWorld, db: Session) -> None:
    public_id = submitted(aw)
    for persona in (aw.other, aw.outsider):
        assert decide(persona, public_id).status_code == 404, persona.username
    for persona in (aw.owner, aw.technician, aw.requester):
        response = decide(persona, public_id)
        assert response.status_code == 403, persona.username
    response = decide(aw.reviewer, public_id)
    assert response.status_code == 200, response.text
    read = response.json()
    assert read["status"] == "ethics_approved"
    assert read["ethics_decision"]["approved"] is True
    assert read["ethics_decision"]["comments"] == "Protocol v2 approved."
    assert read["ethics_decision"]["decision_hash"].startswith("0x")
    assert all(t["contacted_at"] for t in read["provider_tracks"])
    again = decide(aw.reviewer, public_id, approved=False)
    assert again.status_code == 409 and "ethics_approved" in again.json()["detail"]
    assert "access.request.ethics" in actions(db, "access.request.ethics")


def test_a_reviewer_may_not_decide_their_own_request(aw: AccessWorld, db: Session) -> None:
    public_id = aw.reviewer.post(API, json=request_body([aw.collection_a])).json()["public_id"]
    upload_pdf(aw.reviewer, public_id)
    assert aw.reviewer.post(f"{API}/{public_id}/submit").status_code == 200
    response = decide(aw.reviewer, public_id)
    assert response.status_code == 403 and response.json()["error"] == "OwnRequest"
    second = make_user(db, "ethics2", is_ethics_reviewer=True)
    token = make_token(db, second)
    db.commit()
    other_reviewer = Persona("ethics2", token, aw.reviewer.client)
    assert decide(other_reviewer, public_id, approved=False).json()["status"] == "ethics_rejected"


def test_rejection_closes_the_request_and_providers_cannot_work(aw: AccessWorld) -> None:
    public_id = submitted(aw)
    assert decide(aw.reviewer, public_id, approved=False).json()["status"] == "ethics_rejected"
    response = move(aw.owner, public_id, aw.biobank_a, "checking_availability")
    assert response.status_code == 409 and "ethics_rejected" in response.json()["detail"]


def test_ethics_decision_needs_a_boolean(aw: AccessWorld) -> None:
    public_id = submitted(aw)
    response = aw.reviewer.post(f"{API}/{public_id}/ethics", json={"comments": "?"})
    assert response.status_code == 422
    assert ["approved"] in [[p for p in e["loc"] if p != "body"] for e in response.json()["detail"]]


# -- provider tracks -------------------------------------------------------------------------------------


def test_provider_state_personas(aw: AccessWorld, db: Session) -> None:
    public_id = submitted(aw)
    before_ethics = move(aw.owner, public_id, aw.biobank_a, "checking_availability")
    assert before_ethics.status_code == 409 and "submitted" in before_ethics.json()["detail"]
    decide(aw.reviewer, public_id)
    for persona in (aw.other, aw.outsider):
        assert move(persona, public_id, aw.biobank_a, "checking_availability").status_code == 404, persona.username
    for persona in (aw.technician, aw.requester, aw.reviewer):
        assert move(persona, public_id, aw.biobank_a, "checking_availability").status_code == 403, persona.username
    response = move(aw.owner, public_id, aw.biobank_a, "checking_availability", note="Looking in the freezers.")
    assert response.status_code == 200, response.text
    track = response.json()["provider_tracks"][0]
    assert track["state"] == "checking_availability"
    assert track["events"][0]["note"] == "Looking in the freezers."
    assert track["allowed_states"] == ["available", "unavailable"]
    assert "access.request.provider_state" in actions(db, "access.request.provider_state")


def test_wrong_state_is_409_naming_both_states(aw: AccessWorld, db: Session) -> None:
    public_id = submitted(aw)
    decide(aw.reviewer, public_id)
    response = move(aw.owner, public_id, aw.biobank_a, "made_available")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "ProviderStateConflict"
    assert "contacted" in body["detail"] and "made_available" in body["detail"]
    db.expire_all()
    assert db.scalars(select(AccessRequestProvider.state)).one() == "contacted"
    db.rollback()


def test_bad_state_or_biobank(aw: AccessWorld) -> None:
    public_id = submitted(aw)
    decide(aw.reviewer, public_id)
    response = move(aw.owner, public_id, aw.biobank_a, "teleported")
    assert response.status_code == 422
    assert ["state"] in [[p for p in e["loc"] if p != "body"] for e in response.json()["detail"]]
    revoked = move(aw.owner, public_id, aw.biobank_a, "revoked")
    assert revoked.status_code == 422 and revoked.json()["detail"][0]["loc"] == ["state"]
    assert move(aw.owner, public_id, aw.biobank_b, "available").status_code == 404
    assert move(aw.owner, public_id, "NOPE", "available").status_code == 404
    conditions = move(aw.owner, public_id, aw.biobank_a, "available")
    assert conditions.status_code == 200
    no_note = move(aw.owner, public_id, aw.biobank_a, "conditions_indicated")
    assert no_note.status_code == 422 and no_note.json()["detail"][0]["loc"] == ["note"]


def test_full_provider_walk(aw: AccessWorld) -> None:
    public_id = submitted(aw)
    decide(aw.reviewer, public_id)
    for state, note in [
        ("checking_availability", ""),
        ("available", ""),
        ("conditions_indicated", "Co-authorship; return derived data within 12 months."),
        ("conditions_met", ""),
        ("made_available", ""),
    ]:
        response = move(aw.owner, public_id, aw.biobank_a, state, note)
        assert response.status_code == 200, (state, response.text)
    track = response.json()["provider_tracks"][0]
    assert track["state"] == "made_available"
    assert track["conditions"].startswith("Co-authorship")
    assert track["decided_at"] is not None
    assert track["allowed_states"] == []
    assert [e["to_state"] for e in track["events"]][-1] == "made_available"


# -- eligibility recompute -------------------------------------------------------------------------------


def test_eligibility_recompute_personas(aw: AccessWorld, cohort: Any, db: Session) -> None:
    public_id = submitted(aw)
    url = f"{API}/{public_id}/eligibility"
    for persona in (aw.other, aw.outsider):
        assert persona.post(url).status_code == 404, persona.username
    for persona in (aw.requester, aw.owner, aw.reviewer):
        response = persona.post(url)
        assert response.status_code == 200, persona.username
        assert response.json()["provider_tracks"][0]["eligibility"] == {"approve": 3, "deny": 4, "review": 0}
    assert "access.request.eligibility" in actions(db, "access.request.eligibility")


def test_eligibility_of_a_draft_is_409(aw: AccessWorld, db: Session) -> None:
    public_id = aw.requester.post(API, json=request_body([aw.collection_a])).json()["public_id"]
    assert aw.requester.post(f"{API}/{public_id}/eligibility").status_code == 409
    db.expire_all()
    assert db.scalars(select(AccessRequest.status)).one() == "draft"
    db.rollback()
