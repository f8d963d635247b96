"""Consent withdrawal effects, outbox payloads free of personal data, expected chain facts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from biobank.access.ledger_facts import expected_chain_facts
from biobank.config import get_settings
from tests.access.fulfilment.conftest import Case
from tests.access.fulfilment.flow import agreed, dispatch, fulfilled, outbox, receive, reserve, status_of

HEX = re.compile(r"^0x[0-9a-f]+$")


def withdraw(case: Case, donor: str) -> dict:  # type: ignore[type-arg]
    response = case.world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "no_further_use"})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def test_withdrawal_releases_reservations_and_revokes_an_agreement_left_empty(case: Case, db: Session) -> None:
    agreed(case)
    reserve(case, case.specimens["broad"])
    result = withdraw(case, case.donors["broad"].public_id)
    assert case.public_id in result["flagged_requests"]
    for ref in case.specimens["broad"]:
        assert case.world.owner.get(f"/api/v1/specimens/{ref}").json()["status"] == "stored"
    view = case.researcher.get(f"{case.url}/fulfilment").json()
    assert {r["status"] for r in view["reservations"]} == {"released"}
    assert view["agreements"][0]["status"] == "revoked"
    assert view["review_flags"] and "released: 3" in view["review_flags"][0]["summary"]
    (row,) = outbox(db, "request.revoke")
    assert HEX.match(row["payload"]["reason_hash"])
    assert status_of(db, case.request_id) == "revoked"


def test_a_partial_withdrawal_is_flagged_and_the_agreement_stands(case: Case, db: Session) -> None:
    agreed(case)
    reserve(case, case.specimens["broad"] + case.specimens["broad2"])
    withdraw(case, case.donors["broad2"].public_id)
    view = case.world.owner.get(f"{case.url}/fulfilment").json()
    statuses = {r["specimen"]: r["status"] for r in view["reservations"]}
    assert all(statuses[s] == "released" for s in case.specimens["broad2"])
    assert all(statuses[s] == "active" for s in case.specimens["broad"])
    assert view["agreements"][0]["status"] == "signed" and view["review_flags"]
    assert outbox(db, "request.revoke") == []
    assert case.world.other.get(f"{case.url}/fulfilment").status_code == 404


def test_withdrawn_donors_leave_data_grants(case: Case) -> None:
    agreed(case, data_access_days=30)
    reserve(case, case.specimens["broad"] + case.specimens["broad2"])
    until = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    grant = case.world.owner.post(f"{case.url}/grants", json={"until": until}).json()
    withdraw(case, case.donors["broad2"].public_id)
    grants = case.researcher.get(f"{case.url}/grants").json()
    assert grants[0]["specimens"] == 3 and grants[0]["revoked_specimens"] == 2
    export = case.researcher.get(f"{case.url}/grants/{grant['public_id']}/export.csv")
    assert len(export.text.strip().splitlines()) == 1 + 3


def test_shipped_specimens_name_their_recipient_for_follow_up(case: Case) -> None:
    fulfilled(case)
    result = withdraw(case, case.donors["broad"].public_id)
    recipients = {f["recipient"] for f in result["follow_ups"]}
    assert len(result["follow_ups"]) == 3
    assert all(case.public_id in r and "shipment" in r for r in recipients)


def test_outbox_payloads_hold_only_hashes_refs_and_numbers(case: Case, db: Session) -> None:
    agreed(case, data_access_days=30, fee_amount=10)
    reserve(case, case.specimens["broad"])
    shipment = dispatch(case).json()
    receive(case, shipment["public_id"])
    until = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    assert case.world.owner.post(f"{case.url}/grants", json={"until": until}).status_code == 201
    case.researcher.post(f"{case.url}/results", json={"publications": [{"doi": "10.1000/xyz123"}]})
    case.researcher.post(f"{case.url}/close", json={})
    rows = outbox(db)
    kinds = {r["kind"] for r in rows}
    assert {
        "request.agreement",
        "revenue.fee",
        "request.dispatch",
        "request.receive",
        "request.grant",
        "request.results",
        "request.close",
    } <= kinds

    def values(value: object) -> list[object]:
        if isinstance(value, dict):
            return [v for item in value.values() for v in values(item)]
        if isinstance(value, list):
            return [v for item in value for v in values(item)]
        return [value]

    secrets = [d.public_id for d in case.donors.values()] + [d.pseudonym for d in case.donors.values()]
    secrets += [s for refs in case.specimens.values() for s in refs] + ["SF1234567890", "TL-77", "researcher1"]
    for row in rows:
        text = json.dumps(row["payload"])
        assert not any(secret in text for secret in secrets), row
        for value in values(row["payload"]):
            assert isinstance(value, int) or HEX.match(str(value)), (row["kind"], value)


def test_expected_chain_facts_match_what_was_queued(case: Case, db: Session) -> None:
    fulfilled(case)
    facts = expected_chain_facts(db, get_settings())
    db.rollback()
    queued = {(r["kind"], json.dumps(r["payload"], sort_keys=True)) for r in outbox(db)}
    assert {f["kind"] for f in facts} == {"request.agreement", "request.dispatch", "request.receive"}
    for fact in facts:
        assert (fact["kind"], json.dumps(fact["payload"], sort_keys=True)) in queued
        assert case.public_id.rsplit(":", 1)[-1] in fact["label"]
    assert status_of(db, case.request_id) == "fulfilled"
