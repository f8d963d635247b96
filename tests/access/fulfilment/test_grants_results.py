"""Step 6c and 7: time-bounded data grants with project pseudonyms; results; closing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from biobank.access.fulfilment_models import AccessDataGrant
from biobank.access.grants import project_key
from biobank.access.models import AccessRequest
from biobank.kit.crypto import pseudonym
from tests.access.fulfilment.conftest import Case
from tests.access.fulfilment.flow import agreed, fulfilled, outbox, reserve, status_of


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def granted(case: Case) -> dict:  # type: ignore[type-arg]
    agreed(case, data_access_days=30)
    assert reserve(case, case.specimens["broad"] + case.specimens["broad2"]).status_code == 201
    response = case.world.owner.post(f"{case.url}/grants", json={"until": in_days(20)})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_grant_personas_and_limits(case: Case, db: Session) -> None:
    agreed(case, data_access_days=30)
    reserve(case, case.specimens["broad"])
    assert case.researcher.post(f"{case.url}/grants", json={"until": in_days(5)}).status_code == 403
    assert case.world.technician.post(f"{case.url}/grants", json={"until": in_days(5)}).status_code == 403
    for persona in (case.world.other, case.world.outsider):
        assert persona.post(f"{case.url}/grants", json={"until": in_days(5)}).status_code == 404
    too_long = case.world.owner.post(f"{case.url}/grants", json={"until": in_days(60)})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["until"]
    past = case.world.owner.post(f"{case.url}/grants", json={"until": in_days(-1)})
    assert past.status_code == 422 and past.json()["detail"][0]["loc"] == ["until"]
    lung = case.world.owner.post(f"{case.url}/grants", json={"until": in_days(5), "specimens": case.specimens["lung"]})
    assert lung.status_code == 422 and lung.json()["detail"][0]["loc"] == ["specimens", 0]
    assert outbox(db, "request.grant") == []


def test_grant_goes_on_chain_and_the_export_uses_project_pseudonyms(case: Case, db: Session) -> None:
    grant = granted(case)
    assert grant["specimens"] == 5 and grant["active"]
    (row,) = outbox(db, "request.grant")
    assert row["payload"]["until"] == int(datetime.fromisoformat(grant["until"]).timestamp())
    assert row["payload"]["request"] == case.chain_id
    url = f"{case.url}/grants/{grant['public_id']}/export.csv"
    assert case.world.owner.get(url).status_code == 403
    assert case.world.outsider.get(url).status_code == 404
    response = case.researcher.get(url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 5
    request = db.get(AccessRequest, case.request_id)
    key = project_key(request)  # type: ignore[arg-type]
    db.rollback()
    broad = case.donors["broad"]
    expected = pseudonym(key, broad.public_id, namespace="project-donor")
    assert sum(1 for r in rows if r["donor"] == expected) == 3
    for donor in (case.donors["broad"], case.donors["broad2"]):
        for secret in (donor.pseudonym, donor.public_id):
            assert secret not in response.text
    for ref in case.specimens["broad"]:
        assert ref not in response.text
    assert "Test Person" not in response.text and "MRN" not in response.text


def test_access_after_until_is_refused(case: Case, db: Session) -> None:
    grant = granted(case)
    db.execute(update(AccessDataGrant).values(until=datetime.now(UTC) - timedelta(minutes=1)))
    db.commit()
    response = case.researcher.get(f"{case.url}/grants/{grant['public_id']}/export.csv")
    assert response.status_code == 403 and response.json()["error"] == "GrantExpired"
    assert "expired" in response.json()["detail"]


def test_results_need_a_fulfilled_request_and_valid_dois(case: Case, db: Session) -> None:
    agreed(case)
    early = case.researcher.post(f"{case.url}/results", json={"publications": [{"doi": "10.1038/nature12373"}]})
    assert early.status_code == 409 and "agreed" in early.json()["detail"]
    reserve(case, case.specimens["broad"])
    from tests.access.fulfilment.flow import dispatch, receive

    shipment = dispatch(case).json()
    receive(case, shipment["public_id"])
    bad = case.researcher.post(f"{case.url}/results", json={"publications": [{"doi": "doi-10/abc"}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-3:] == ["publications", 0, "doi"]
    empty = case.researcher.post(f"{case.url}/results", json={})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["publications"]
    body = {
        "publications": [{"doi": "https://doi.org/10.1038/nature12373", "title": "A paper"}],
        "datasets": [{"url": "https://zenodo.org/records/1", "description": "derived data"}],
    }
    assert case.world.owner.post(f"{case.url}/results", json=body).status_code == 403
    assert case.world.other.post(f"{case.url}/results", json=body).status_code == 404
    response = case.researcher.post(f"{case.url}/results", json=body)
    assert response.status_code == 201
    assert response.json()[0]["doi"] == "10.1038/nature12373"
    assert status_of(db, case.request_id) == "results_returned"
    (row,) = outbox(db, "request.results")
    assert set(row["payload"]) == {"request", "results_hash"}


def test_close_by_the_requester_only_and_once(case: Case, db: Session) -> None:
    fulfilled(case)
    assert case.world.owner.post(f"{case.url}/close", json={}).status_code == 403
    assert case.world.outsider.post(f"{case.url}/close", json={}).status_code == 404
    response = case.researcher.post(f"{case.url}/close", json={})
    assert response.status_code == 200 and response.json()["status"] == "closed"
    again = case.researcher.post(f"{case.url}/close", json={})
    assert again.status_code == 409 and "closed" in again.json()["detail"]
    assert outbox(db, "request.close") and status_of(db, case.request_id) == "closed"


def test_a_project_that_promised_results_returns_them_before_closing(case: Case, db: Session) -> None:
    request = db.get(AccessRequest, case.request_id)
    assert request is not None
    request.purpose = dict(request.purpose) | {"publication": True}
    db.commit()
    fulfilled(case)
    refused = case.researcher.post(f"{case.url}/close", json={})
    assert refused.status_code == 409 and refused.json()["error"] == "ResultsOwed"
