"""Withdrawal: excluded from the very next count, destruction tracked in custody, distributed followed up,
open requests flagged through the provider registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.consent import withdrawal as withdrawal_service
from biobank.institutions import service as institutions
from tests.consent.conftest import Cohort
from tests.consent.factories import purpose_body
from tests.factories import make_box, make_specimen, system


def count(persona: Any, collection: str) -> dict[str, int]:
    response = persona.post(
        "/api/v1/consent/eligibility", json={"purpose": purpose_body(), "collections": [collection], "limit": 0}
    )
    assert response.status_code == 200, response.text
    return response.json()["counts"]  # type: ignore[no-any-return]


@pytest.fixture
def fake_requests() -> Iterator[list[Any]]:
    """An access package stand-in: every withdrawal flags request REQ-1 when it includes a specimen."""
    calls: list[Any] = []

    def provider(session: Session, actor: Any, info: withdrawal_service.WithdrawnSpecimens) -> list[str]:
        calls.append(info)
        return ["REQ-1", "REQ-1"] if info.specimen_public_ids else []

    withdrawal_service.register_open_request_provider("fake-access", provider)
    yield calls
    withdrawal_service.unregister_open_request_provider("fake-access")


def test_withdrawn_specimens_leave_the_very_next_count(cohort: Cohort, fake_requests: list[Any]) -> None:
    world = cohort.world
    before = count(world.outsider, world.collection_a)
    assert before == {"APPROVE": 6, "DENY": 1, "NEEDS_REVIEW": 0}
    donor = cohort.donors["lung"].public_id
    response = world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "no_further_use"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "no_further_use" and body["destruction_tasks"] == []
    assert body["flagged_requests"] == ["REQ-1"]
    assert fake_requests[0].specimen_public_ids == tuple(cohort.specimens["lung"])
    after = count(world.outsider, world.collection_a)
    assert after == {"APPROVE": 3, "DENY": 4, "NEEDS_REVIEW": 0}
    listed = world.owner.post(
        "/api/v1/consent/eligibility", json={"purpose": purpose_body(), "specimens": cohort.specimens["lung"]}
    ).json()["specimens"]
    assert {s["decision"] for s in listed} == {"DENY"}
    assert listed[0]["reasons"][0]["message"] == "the donor withdrew consent"
    again = world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "destroy"})
    assert again.status_code == 422
    assert again.json()["error"] == "AlreadyWithdrawn"
    assert again.json()["detail"][0]["loc"] == ["consent"]
    for persona in (world.other, world.outsider):
        assert (
            persona.post(
                f"/api/v1/consent/donors/{cohort.donors['broad'].public_id}/withdrawal", json={"kind": "destroy"}
            ).status_code
            == 404
        )
        assert persona.get(f"/api/v1/consent/withdrawals/{body['public_id']}").status_code == 404
    assert world.owner.get(f"/api/v1/consent/withdrawals/{body['public_id']}").json()["consent"] == body["consent"]


def test_withdrawal_bad_input(cohort: Cohort) -> None:
    world = cohort.world
    bad_kind = world.owner.post(
        f"/api/v1/consent/donors/{cohort.donors['broad'].public_id}/withdrawal", json={"kind": "forget_me"}
    )
    assert bad_kind.status_code == 422 and bad_kind.json()["detail"][0]["loc"] == ["kind"]
    none = world.owner.post(
        f"/api/v1/consent/donors/{cohort.donors['none'].public_id}/withdrawal", json={"kind": "destroy"}
    )
    assert none.status_code == 422 and none.json()["detail"][0]["loc"] == ["consent"]


def test_destruction_tasks_are_tracked_to_completion_in_the_chain_of_custody(db: Session, cohort: Cohort) -> None:
    world = cohort.world
    donor = cohort.donors["broad"].public_id
    response = world.owner.post(
        f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "destroy", "reason": "donor request by phone"}
    )
    assert response.status_code == 201, response.text
    tasks = response.json()["destruction_tasks"]
    assert sorted(t["specimen"] for t in tasks) == sorted(cohort.specimens["broad"])
    work = world.owner.get("/api/v1/consent/withdrawal-work").json()
    assert {t["public_id"] for t in work["destruction_tasks"]} == {t["public_id"] for t in tasks}
    assert world.other.get("/api/v1/consent/withdrawal-work").json()["destruction_tasks"] == []
    task = tasks[0]
    url = f"/api/v1/consent/destruction-tasks/{task['public_id']}/complete"
    assert world.other.post(url, json={}).status_code == 404
    assert world.outsider.post(url, json={}).status_code == 404
    done = world.technician.post(url, json={"notes": "autoclaved"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["completed_at"]
    assert world.owner.post(url, json={}).status_code == 409
    specimen = world.owner.get(f"/api/v1/specimens/{task['specimen']}").json()
    assert specimen["status"] == "destroyed"
    events = world.owner.get(f"/api/v1/specimens/{task['specimen']}/events").json()
    assert events[-1]["kind"] == "status" and events[-1]["after"]["status"] == "destroyed"
    assert response.json()["public_id"] in events[-1]["reason"]
    remaining = world.owner.get("/api/v1/consent/withdrawal-work").json()["destruction_tasks"]
    assert [t["public_id"] for t in remaining] == [tasks[1]["public_id"]]


def test_distributed_specimens_are_listed_for_follow_up_with_recipients(db: Session, cohort: Cohort) -> None:
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import StatusChange

    world = cohort.world
    bb_a = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    box = make_box(db, bb_a)
    donor = cohort.donors["nocommercial"]
    shipped = make_specimen(
        db, collection, donor=donor.public_id, status="stored", placement={"box": box.public_id, "position": "A1"}
    )
    specimens.change_status(
        db, system(), shipped, StatusChange(status="distributed", reason="shipped to Fudan proteomics lab")
    )
    db.commit()
    response = world.owner.post(f"/api/v1/consent/donors/{donor.public_id}/withdrawal", json={"kind": "destroy"})
    assert response.status_code == 201, response.text
    body = response.json()
    follow_ups = body["follow_ups"]
    assert [(f["specimen"], f["recipient"]) for f in follow_ups] == [
        (shipped.public_id, "shipped to Fudan proteomics lab")
    ]
    assert follow_ups[0]["distributed_at"] is not None
    # The distributed specimen is not destroyed here; the one still in the biobank is.
    assert [t["specimen"] for t in body["destruction_tasks"]] == cohort.specimens["nocommercial"]
    url = f"/api/v1/consent/follow-ups/{follow_ups[0]['public_id']}/resolve"
    assert world.other.post(url, json={"notes": "x"}).status_code == 404
    missing_notes = world.owner.post(url, json={})
    assert missing_notes.status_code == 422 and missing_notes.json()["detail"][0]["loc"] == ["notes"]
    resolved = world.owner.post(url, json={"notes": "lab confirmed destruction of the aliquot"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "done"


def test_recipient_providers_name_the_recipient(db: Session, cohort: Cohort) -> None:
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import StatusChange

    world = cohort.world
    bb_a = institutions.get_biobank(db, world.biobank_a)
    box = make_box(db, bb_a)
    donor = cohort.donors["lung"]
    shipped = make_specimen(
        db,
        institutions.get_collection(db, world.collection_a),
        donor=donor.public_id,
        status="stored",
        placement={"box": box.public_id, "position": "A1"},
    )
    specimens.change_status(db, system(), shipped, StatusChange(status="distributed"))
    db.commit()
    withdrawal_service.register_recipient_provider(
        "fake-shipments", lambda session, ids: {i: "Shipment SHP-7 to Peking University" for i in ids}
    )
    try:
        body = world.owner.post(
            f"/api/v1/consent/donors/{donor.public_id}/withdrawal", json={"kind": "keep_results"}
        ).json()
    finally:
        withdrawal_service.unregister_recipient_provider("fake-shipments")
    assert [f["recipient"] for f in body["follow_ups"]] == ["Shipment SHP-7 to Peking University"]


def test_withdrawal_is_audited_with_its_specimens_and_the_donor_is_notified(db: Session, cohort: Cohort) -> None:
    from biobank.audit.models import AuditEntry
    from biobank.consent.models import Notification

    world = cohort.world
    donor = cohort.donors["lung"]
    world.owner.post(f"/api/v1/consent/donors/{donor.public_id}/withdrawal", json={"kind": "no_further_use"})
    db.expire_all()
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "consent.withdraw")).one()
    assert donor.public_id in entry.resource_ids
    assert set(cohort.specimens["lung"]) <= set(entry.resource_ids)
    notes = db.scalars(select(Notification).where(Notification.donor_id == donor.id)).all()
    assert [n.kind for n in notes] == ["withdrawal"] and "withdrawal" in notes[0].text_en
    db.rollback()


def test_consenting_again_after_withdrawal_makes_a_new_active_version(db: Session, cohort: Cohort) -> None:
    from tests.consent.factories import BROAD, give_consent

    world = cohort.world
    donor = cohort.donors["lung"]
    world.owner.post(f"/api/v1/consent/donors/{donor.public_id}/withdrawal", json={"kind": "no_further_use"})
    give_consent(db, donor, cohort.version, BROAD, given_at=None)
    db.commit()
    timeline = world.owner.get(f"/api/v1/consent/donors/{donor.public_id}/records").json()
    assert [(r["version"], r["status"], r["is_current"]) for r in timeline] == [
        (2, "active", True),
        (1, "withdrawn", False),
    ]
    assert timeline[1]["withdrawal"]["kind"] == "no_further_use"
    assert count(world.outsider, world.collection_a)["APPROVE"] == 6
