"""Step 5: agreements generated from a template, frozen, hashed and signed by both parties."""

from __future__ import annotations

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access.agreements import canonical_terms, fee_weights
from biobank.access.models import AccessRequest, AccessRequestProvider, ProviderState, RequestStatus
from biobank.config import get_settings
from biobank.ledger import keys
from biobank.ledger.refs import institution_ref, object_ref
from tests.access.fulfilment.conftest import Case
from tests.access.fulfilment.flow import agreed, generate, outbox, status_of
from tests.factories import PASSWORD


def test_provider_manager_generates_a_frozen_mta_with_the_requests_parameters(case: Case) -> None:
    body = generate(case, fee_amount=1200)
    assert body["kind"] == "MTA" and body["status"] == "pending"
    text = body["terms_text"]
    assert body["terms_hash"] == "0x" + keccak(canonical_terms(text)).hex()
    assert canonical_terms(text) == text.encode()
    for expected in (
        case.public_id,
        body["public_id"],
        "1200 accounting units",
        "Destination country: CN",
        "5 × Serum, 0.5 mL each",
        get_settings().institution_code,
        "GRU",
    ):
        assert expected in text
    again = case.world.owner.get(f"{case.url}/agreements/{body['public_id']}").json()
    assert again["terms_text"] == text and again["terms_hash"] == body["terms_hash"]


def test_data_access_makes_the_period_part_of_the_terms(case: Case) -> None:
    body = generate(case, data_access_days=90)
    assert body["includes_data"] and "for 90 days" in body["terms_text"]
    dta = case.world.owner.post(f"{case.url}/agreements", json={"specimens": False, "data": True})
    assert dta.status_code == 409  # one agreement per provider institution


def test_generate_personas_and_states(case: Case, db: Session) -> None:
    assert case.researcher.post(f"{case.url}/agreements", json={}).status_code == 403
    for persona in (case.world.other, case.world.outsider):
        response = persona.post(f"{case.url}/agreements", json={})
        assert response.status_code == 404 and response.json()["error"] == "AccessRequestNotFound"
    track = db.scalars(select(AccessRequestProvider)).one()
    track.state = ProviderState.CONDITIONS_INDICATED
    db.commit()
    refused = case.world.owner.post(f"{case.url}/agreements", json={})
    assert refused.status_code == 409 and "conditions_indicated" in refused.json()["detail"]
    track.state = ProviderState.AVAILABLE
    request = db.get(AccessRequest, case.request_id)
    assert request is not None
    request.status = RequestStatus.SUBMITTED
    db.commit()
    refused = case.world.owner.post(f"{case.url}/agreements", json={})
    assert refused.status_code == 409 and "submitted" in refused.json()["detail"]
    bad = case.world.owner.post(f"{case.url}/agreements", json={"fee_amount": -1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "fee_amount"
    assert outbox(db, "request.agreement") == []


def test_both_parties_sign_and_the_agreement_goes_on_chain(case: Case, db: Session) -> None:
    settings = get_settings()
    body = generate(case, fee_amount=1001)
    url = f"{case.url}/agreements/{body['public_id']}/sign"
    wrong = case.researcher.post(url, json={"password": "not my password"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["password"]
    first = case.researcher.post(url, json={"password": PASSWORD})
    assert first.status_code == 200 and first.json()["status"] == "pending"
    assert outbox(db, "request.agreement") == []
    again = case.researcher.post(url, json={"password": PASSWORD})
    assert again.status_code == 409 and again.json()["error"] == "AlreadySigned"
    for persona in (case.world.other, case.world.outsider):
        assert persona.post(url, json={"password": PASSWORD}).status_code == 404
    assert case.world.technician.post(url, json={"password": PASSWORD}).status_code == 403
    second = case.world.owner.post(url, json={"password": PASSWORD}).json()
    assert second["status"] == "signed"
    digest = bytes.fromhex(second["terms_hash"][2:])
    researcher = keys.role_account(settings, keys.Role.RESEARCHER)
    operator = keys.role_account(settings, keys.Role.BIOBANK_OPERATOR)
    assert keys.recover_signer(digest, bytes.fromhex(second["requester_signature"][2:])) == researcher.address
    assert keys.recover_signer(digest, bytes.fromhex(second["provider_signature"][2:])) == operator.address
    assert status_of(db, case.request_id) == "agreed"
    (row,) = outbox(db, "request.agreement")
    provider = institution_ref(settings.institution_code)
    assert row["payload"] == {
        "request": case.chain_id,
        "provider": provider,
        "terms_hash": second["terms_hash"],
        "requester_sig": second["requester_signature"],
        "provider_sig": second["provider_signature"],
    }
    (fee,) = outbox(db, "revenue.fee")
    assert fee["payload"] == {
        "agreement": object_ref(settings, "agreement", second["public_id"]),
        "amount": 1001,
        "institutions": [provider],
        "bps": [10000],
        "remainder_to": provider,
    }
    late = case.researcher.post(url, json={"password": PASSWORD})
    assert late.status_code == 409 and "signed" in late.json()["detail"]


def test_a_manager_cannot_sign_as_requester(case: Case) -> None:
    body = generate(case)
    url = f"{case.url}/agreements/{body['public_id']}/sign"
    response = case.world.owner.post(url, json={"password": PASSWORD, "party": "requester"})
    assert response.status_code == 403


def test_fee_weights_split_equally_with_the_remainder_to_the_first() -> None:
    assert fee_weights(["a"]) == [10000]
    assert fee_weights(["a", "b", "c"]) == [3334, 3333, 3333]
    assert sum(fee_weights(list("abcdefg"))) == 10000


def test_listing_agreements_per_persona(case: Case) -> None:
    agreed(case)
    assert len(case.researcher.get(f"{case.url}/agreements").json()) == 1
    assert len(case.world.owner.get(f"{case.url}/agreements").json()) == 1
    assert case.world.other.get(f"{case.url}/agreements").status_code == 404
    assert case.world.outsider.get(f"{case.url}/fulfilment").status_code == 404
