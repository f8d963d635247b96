"""The fulfilment page and its forms: each party sees only the actions it may take."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from tests.access.fulfilment.conftest import Case
from tests.access.fulfilment.flow import generate, outbox
from tests.factories import PASSWORD
from tests.websession import WebUser


def test_each_party_signs_from_the_page(case: Case, web: Callable[[str], WebUser], db: Session) -> None:
    page_url = f"/access/requests/{case.public_id}/fulfilment"
    owner = web("owner")
    page = owner.get(page_url)
    assert page.status_code == 200 and "Generate from template" in page.text
    created = owner.post(f"{page_url}/agreements", {"fee_amount": "50", "next": page_url})
    assert created.status_code == 303 and created.headers["location"] == page_url
    page = owner.get(page_url).text
    assert "MATERIAL TRANSFER AGREEMENT" in page and "Sign as provider" in page and "Sign as requester" not in page
    researcher = web("researcher1")
    page = researcher.get(page_url).text
    assert "Sign as requester" in page and "Generate from template" not in page and "Sign as provider" not in page
    agreement = case.researcher.get(f"{case.url}/agreements").json()[0]["public_id"]
    wrong = researcher.post(f"{page_url}/agreements/{agreement}/sign", {"password": "nope", "party": "requester"})
    assert wrong.status_code == 303
    assert "password" in researcher.get(page_url).text
    ok = researcher.post(f"{page_url}/agreements/{agreement}/sign", {"password": PASSWORD, "party": "requester"})
    assert ok.status_code == 303
    owner.post(f"{page_url}/agreements/{agreement}/sign", {"password": PASSWORD, "party": "provider"})
    assert len(outbox(db, "request.agreement")) == 1
    page = owner.get(page_url).text
    assert "Reserve selected" in page and case.specimens["broad"][0] in page
    assert case.specimens["lung"][0] not in page  # not eligible for this purpose
    reserved = owner.post(f"{page_url}/reservations", {"biobank": "BBA", "specimens": case.specimens["broad"]})
    assert reserved.status_code == 303
    page = owner.get(page_url).text
    assert "Pick list (PDF)" in page and "Record dispatch" in page
    assert "Record dispatch" not in researcher.get(page_url).text


def test_the_page_is_hidden_from_outsiders(case: Case, web: Callable[[str], WebUser]) -> None:
    generate(case)
    page_url = f"/access/requests/{case.public_id}/fulfilment"
    for username in ("other", "outsider"):
        assert web(username).get(page_url).status_code == 404
    refused = web("other").post(f"{page_url}/agreements", {"fee_amount": "1"})
    assert refused.status_code == 404
