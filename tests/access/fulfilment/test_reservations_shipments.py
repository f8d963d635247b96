"""Step 6: reservations (eligible, stored, one request at a time), the pick list, dispatch and receipt."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank.config import get_settings
from biobank.ledger.refs import institution_ref
from tests.access.fulfilment.conftest import Case
from tests.access.fulfilment.factories import make_request
from tests.access.fulfilment.flow import agreed, dispatch, generate, outbox, receive, reserve, status_of
from tests.conftest import Persona
from tests.factories import PASSWORD, make_token, make_user


def test_reservation_needs_a_signed_agreement(case: Case) -> None:
    generate(case)
    refused = reserve(case, case.specimens["broad"])
    assert refused.status_code == 409 and "pending" in refused.json()["detail"]


def test_reserve_eligible_stored_specimens_through_the_chain_of_custody(case: Case) -> None:
    agreed(case)
    refs = case.specimens["broad"]
    response = reserve(case, refs)
    assert response.status_code == 201, response.text
    assert {r["specimen"] for r in response.json()} == set(refs)
    specimen = case.world.owner.get(f"/api/v1/specimens/{refs[0]}").json()
    assert specimen["status"] == "reserved"
    history = case.world.owner.get(f"/api/v1/specimens/{refs[0]}/events").json()
    assert any(case.public_id in (e.get("reason") or "") for e in history)
    again = reserve(case, refs[:1])
    assert again.status_code == 409 and again.json()["error"] == "AlreadyReserved"
    listed = case.researcher.get(f"{case.url}/reservations").json()
    assert len(listed) == 3
    assert case.world.other.get(f"{case.url}/reservations").status_code == 404
    assert case.world.outsider.get(f"{case.url}/reservations").status_code == 404


def test_ineligible_unknown_and_foreign_specimens_are_refused_whole(case: Case) -> None:
    agreed(case)
    lung = reserve(case, [case.specimens["broad"][0], case.specimens["lung"][0]])
    assert lung.status_code == 422 and lung.json()["detail"][0]["loc"] == ["specimens", 1]
    foreign = reserve(case, case.specimens["b_broad"])
    assert foreign.status_code == 422 and foreign.json()["detail"][0]["loc"] == ["specimens", 0]
    assert case.world.owner.get(f"/api/v1/specimens/{case.specimens['broad'][0]}").json()["status"] == "stored"
    assert (
        case.researcher.post(f"{case.url}/reservations", json={"specimens": case.specimens["broad"]}).status_code == 403
    )
    assert case.world.other.post(f"{case.url}/reservations", json={"specimens": ["x"]}).status_code == 404


def test_specimens_the_request_did_not_ask_for_are_neither_offered_nor_reserved(case: Case, db: Session) -> None:
    from biobank.access import reservations
    from biobank.access.models import AccessRequest
    from biobank.institutions import service as institutions
    from tests.factories import make_box, make_collection, make_specimen

    agreed(case)
    biobank = institutions.get_biobank(db, case.world.biobank_a)
    other_collection = make_collection(db, biobank, name="Another cohort")
    donor = case.donors["broad"]
    box = make_box(db, biobank)
    stray = make_specimen(db, other_collection, donor=donor.public_id, diagnosis="C34.1", status="stored",
                          placement={"box": box.public_id, "position": "A1"})
    db.commit()
    refused = reserve(case, [case.specimens["broad"][0], stray.public_id])
    assert refused.status_code == 422 and refused.json()["error"] == "NotRequested"
    assert refused.json()["detail"][0]["loc"] == ["specimens", 1]
    request = db.query(AccessRequest).filter_by(public_id=case.public_id).one()
    offered = {s.public_id for s in reservations.candidates(db, request, biobank.id)}
    db.rollback()
    assert stray.public_id not in offered and set(case.specimens["broad"]) <= offered


def test_a_specimen_reserved_for_one_request_cannot_be_reserved_for_another(case: Case, db: Session) -> None:
    agreed(case)
    assert reserve(case, case.specimens["broad"][:1]).status_code == 201
    second_user = make_user(db, "researcher2", kind="researcher")
    second = make_request(db, second_user)
    db.commit()
    url = f"/api/v1/access/requests/{second.public_id}"
    other_researcher = Persona("researcher2", make_token(db, second_user), case.world.owner.client)
    db.commit()
    body = case.world.owner.post(f"{url}/agreements", json={}).json()
    assert (
        other_researcher.post(f"{url}/agreements/{body['public_id']}/sign", json={"password": PASSWORD}).status_code
        == 200
    )
    assert (
        case.world.owner.post(f"{url}/agreements/{body['public_id']}/sign", json={"password": PASSWORD}).status_code
        == 200
    )
    clash = case.world.owner.post(f"{url}/reservations", json={"specimens": case.specimens["broad"][:1]})
    assert clash.status_code == 409 and "another request" in clash.json()["detail"]


def test_release_puts_the_specimen_back_in_storage(case: Case) -> None:
    agreed(case)
    (row, *_) = reserve(case, case.specimens["broad"]).json()
    url = f"{case.url}/reservations/{row['public_id']}/release"
    assert case.researcher.post(url, json={"reason": "x"}).status_code == 403
    assert case.world.outsider.post(url, json={"reason": "x"}).status_code == 404
    released = case.world.owner.post(url, json={"reason": "tube cracked"})
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert case.world.owner.get(f"/api/v1/specimens/{row['specimen']}").json()["status"] == "stored"
    assert case.world.owner.post(url, json={"reason": "again"}).status_code == 409


def test_pick_list_pdf_has_positions_and_barcodes_but_no_donor_data(case: Case) -> None:
    agreed(case)
    reservations = reserve(case, case.specimens["broad"]).json()
    response = case.world.owner.get(f"{case.url}/reservations/pick-list.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    for r in reservations:
        assert r["barcode"].encode() in response.content
    assert b"A1" in response.content
    donor = case.donors["broad"]
    assert donor.public_id.encode() not in response.content and donor.pseudonym.encode() not in response.content
    assert case.researcher.get(f"{case.url}/reservations/pick-list.pdf").status_code == 403
    assert case.world.other.get(f"{case.url}/reservations/pick-list.pdf").status_code == 404


def test_dispatch_and_receipt_go_on_chain_and_fulfil_the_request(case: Case, db: Session) -> None:
    agreed(case)
    assert dispatch(case).status_code == 409  # nothing reserved yet
    reserve(case, case.specimens["broad"])
    assert (
        case.researcher.post(
            f"{case.url}/shipments",
            json={"courier": "x", "tracking_number": "y", "dispatched_at": "2026-01-01T00:00:00+00:00"},
        ).status_code
        == 403
    )
    bad = case.world.owner.post(
        f"{case.url}/shipments",
        json={"courier": "x", "tracking_number": "y", "dispatched_at": "2999-01-01T00:00:00+00:00"},
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["dispatched_at"]
    response = dispatch(case)
    assert response.status_code == 201, response.text
    shipment = response.json()
    assert shipment["specimen_count"] == 3
    for ref in case.specimens["broad"]:
        assert case.world.owner.get(f"/api/v1/specimens/{ref}").json()["status"] == "distributed"
    assert dispatch(case).status_code == 409
    (row,) = outbox(db, "request.dispatch")
    provider = institution_ref(get_settings().institution_code)
    assert row["payload"] == {
        "request": case.chain_id,
        "provider": provider,
        "shipment_hash": shipment["shipment_hash"],
    }
    url = f"{case.url}/shipments/{shipment['public_id']}/receive"
    assert (
        case.world.owner.post(url, json={"received_at": shipment["dispatched_at"], "condition": "good"}).status_code
        == 403
    )
    assert (
        case.world.outsider.post(url, json={"received_at": shipment["dispatched_at"], "condition": "good"}).status_code
        == 404
    )
    bad = case.researcher.post(url, json={"received_at": shipment["dispatched_at"], "condition": "melted"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "condition"
    received = receive(case, shipment["public_id"], "temperature_excursion")
    assert received.status_code == 200 and received.json()["condition"] == "temperature_excursion"
    assert receive(case, shipment["public_id"]).status_code == 409
    (row,) = outbox(db, "request.receive")
    assert row["payload"]["condition_hash"] == received.json()["condition_hash"]
    assert status_of(db, case.request_id) == "fulfilled"
    agreements = case.researcher.get(f"{case.url}/agreements").json()
    assert agreements[0]["status"] == "fulfilled"
