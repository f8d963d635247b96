"""The access pages through a logged-in browser session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.access.models import AccessRequest
from tests.access.conftest import AccessWorld
from tests.access.factories import PDF, approve_ethics, make_access_request
from tests.access.test_requests_api import API


def new_request_form(aw: AccessWorld, **overrides: Any) -> dict[str, Any]:
    return {
        "project_title": "Serum proteomics",
        "project_summary": "Pre-treatment serum.",
        "category": "GRU",
        "non_profit": "yes",
        "commercial": "no",
        "ethics_reference": "IRB-2026-042",
        "shipment_country": "CN",
        "items.0.kind": "collection",
        "items.0.collection": aw.collection_a,
        "items.0.quantity": "4",
    } | overrides


def test_nav_and_index(aw: AccessWorld, web: Any, db: Session) -> None:
    make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    db.commit()
    owner = web("owner")
    page = owner.get("/access")
    assert page.status_code == 200
    assert 'href="/access"' in page.text and "Requests to my biobanks" in page.text
    assert "Serum proteomics" in page.text
    assert "Ethics queue" not in page.text
    ethics = web("ethics").get("/access")
    assert "Ethics queue" in ethics.text and "Serum proteomics" in ethics.text
    other = web("other").get("/access")
    assert "Serum proteomics" not in other.text


def test_new_request_with_field_errors_then_created_and_submitted(aw: AccessWorld, web: Any, db: Session) -> None:
    researcher = web("researcher")
    form = researcher.get("/access/new")
    assert form.status_code == 200 and 'name="items.0.collection"' in form.text
    bad = researcher.post(
        "/access/new",
        new_request_form(aw, shipment_country="XX", **{"items.0.collection": "", "category": "DS"}),
    )
    assert bad.status_code == 422
    assert "is not an ISO 3166-1 alpha-2 country code" in bad.text
    assert "a DS (disease-specific) purpose needs at least one ICD-10 disease code" in bad.text
    assert 'value="Serum proteomics"' in bad.text, "typed values are kept"
    no_collection = researcher.post("/access/new", new_request_form(aw, **{"items.0.collection": ""}))
    assert no_collection.status_code == 422
    assert 'id="request-items.0.collection-error"' in no_collection.text
    assert "a collection line names its collection" in no_collection.text
    db.expire_all()
    assert db.execute(select(func.count()).select_from(AccessRequest)).scalar_one() == 0
    db.rollback()
    no_document = researcher.post("/access/new", new_request_form(aw, submit_now="true"))
    assert no_document.status_code == 422 and "attach the ethics approval document" in no_document.text
    created = researcher.client.post(
        "/access/new",
        data=new_request_form(aw, submit_now="true") | {"csrf_token": researcher.csrf},
        files={"ethics_document": ("approval.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    detail = researcher.get(created.headers["location"])
    assert detail.status_code == 200
    assert "submitted" in detail.text and "Consent eligibility per provider" in detail.text
    assert 'id="eligibility-chart"' in detail.text
    assert "approval.pdf" in detail.text


def test_detail_personas_and_forms(aw: AccessWorld, web: Any, db: Session) -> None:
    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    db.commit()
    url = f"/access/{request.public_id}"
    assert web("other").get(url).status_code == 404
    assert web("outsider").get(url).status_code == 404
    ethics = web("ethics")
    page = ethics.get(url)
    assert page.status_code == 200 and f"/access/{request.public_id}/ethics" in page.text
    owner = web("owner")
    assert 'action="' + url + '/ethics"' not in owner.get(url).text, "only reviewers see the decision form"
    decided = ethics.post(f"{url}/ethics", {"approved": "true", "comments": "Fine."})
    assert decided.status_code == 303
    page = owner.get(url)
    assert "Approved" in page.text and f"{url}/providers/{aw.biobank_a}/state" in page.text
    wrong = owner.post(f"{url}/providers/{aw.biobank_a}/state", {"state": "made_available"})
    assert wrong.status_code == 409 and "cannot move to made_available" in wrong.text
    ok = owner.post(f"{url}/providers/{aw.biobank_a}/state", {"state": "checking_availability", "note": "Looking."})
    assert ok.status_code == 303
    assert "Checking availability" in owner.get(url).text
    no_note = owner.post(f"{url}/providers/{aw.biobank_a}/state", {"state": "available"})
    assert no_note.status_code == 303
    conditions = owner.post(f"{url}/providers/{aw.biobank_a}/state", {"state": "conditions_indicated"})
    assert conditions.status_code == 422 and "say which access conditions apply" in conditions.text
    requester = web("researcher")
    assert f"{url}/providers/" not in requester.get(url).text
    assert requester.post(f"{url}/eligibility", {}).status_code == 303


def test_reminders_and_competing_pages(aw: AccessWorld, web: Any, db: Session) -> None:
    from datetime import timedelta

    from biobank.access.reminders import run_reminders

    first = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    second = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    approve_ethics(db, first, aw.users["ethics"])
    db.flush()
    from biobank.access.repository import providers_of

    contacted = providers_of(db, [first.id])[first.id][0].contacted_at
    run_reminders(db, contacted + timedelta(days=15))
    db.commit()
    owner = web("owner")
    index = owner.get("/access")
    assert "Reminders and escalations" in index.text and "Escalation" in index.text
    detail = owner.get(f"/access/{first.public_id}")
    assert "escalated" in detail.text and "Reminder" in detail.text
    competing = owner.get("/access/competing")
    assert competing.status_code == 200
    assert first.public_id in competing.text and second.public_id in competing.text
    assert competing.text.index(first.public_id) < competing.text.index(second.public_id)
    assert first.public_id not in web("other").get("/access/competing").text


def test_draft_upload_and_submit_from_the_page(aw: AccessWorld, web: Any, db: Session) -> None:
    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], document=False)
    db.commit()
    researcher = web("researcher")
    url = f"/access/{request.public_id}"
    refused = researcher.post(f"{url}/submit", {})
    assert refused.status_code == 422 and "attach the ethics approval document" in refused.text
    uploaded = researcher.client.post(
        f"{url}/document",
        data={"csrf_token": researcher.csrf},
        files={"ethics_document": ("approval.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303
    assert researcher.post(f"{url}/submit", {}).status_code == 303
    assert aw.requester.get(f"{API}/{request.public_id}").json()["status"] == "submitted"
    assert researcher.post(f"{url}/submit", {}, csrf=False).status_code == 403
