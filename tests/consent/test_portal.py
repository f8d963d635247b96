"""The donor portal through a real HTTP client: invitation, login, plain-language consent in English and
Chinese, changing choices (a new version), messages, access history, withdrawal; and the staff pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consent.conftest import Cohort
from tests.consent.factories import OPTIONS, purpose_body

DONOR_PASSWORD = "my own secret 123"
HTML = {"Accept": "text/html"}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def donor_client(app: Any) -> Iterator[TestClient]:
    """A browser of its own (own cookies) for the donor."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def invitation(cohort: Cohort, donor: str = "broad") -> str:
    response = cohort.world.owner.post(
        f"/api/v1/consent/donors/{cohort.donors[donor].public_id}/invitations", json={"days": 7}
    )
    assert response.status_code == 201, response.text
    return response.json()["code"]  # type: ignore[no-any-return]


def sign_up(client: TestClient, code: str, username: str = "donor.broad") -> Any:
    return client.post(
        "/portal/invite",
        data={"code": code, "username": username, "password": DONOR_PASSWORD, "password_again": DONOR_PASSWORD},
        headers=HTML,
    )


def test_invitation_creates_a_donor_account_once_and_the_portal_shows_the_consent(
    db: Session, cohort: Cohort, donor_client: TestClient
) -> None:
    donor_public = cohort.donors["broad"].public_id
    anonymous = donor_client.get("/portal", headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/portal/login")
    code = invitation(cohort)
    assert (
        cohort.world.other.post(
            f"/api/v1/consent/donors/{cohort.donors['broad'].public_id}/invitations", json={}
        ).status_code
        == 404
    )
    wrong = sign_up(donor_client, "AAAA-BBBB-CCCC")
    assert wrong.status_code == 422 and "unknown, expired or already used" in wrong.text
    page = sign_up(donor_client, code.lower())  # codes are typed case-insensitively
    assert page.status_code == 200, page.text
    assert "Your account is ready" in page.text
    assert "Version 1" in page.text
    assert "Your samples and data may be used for any kind of research." in page.text
    assert "Every study must be approved by an ethics committee." in page.text
    # The code works once; the password is stored only as an argon2 hash.
    with TestClient(donor_client.app) as other_browser:
        assert sign_up(other_browser, code, "someone.else").status_code == 422
    from biobank.identity.models import User

    user = db.scalars(select(User).where(User.username == "donor.broad")).one()
    assert user.kind == "donor" and user.password_hash.startswith("$argon2")
    assert DONOR_PASSWORD not in user.password_hash
    db.rollback()
    # A donor sees nothing of the staff API.
    assert donor_client.get(f"/api/v1/consent/donors/{donor_public}/records").status_code == 404
    assert donor_client.get(f"/api/v1/donors/{donor_public}").status_code == 404
    own = donor_client.get("/api/v1/consent/me").json()
    assert [r["version"] for r in own] == [1]


def test_portal_in_chinese(cohort: Cohort, donor_client: TestClient) -> None:
    sign_up(donor_client, invitation(cohort, "lung"), "donor.lung")
    page = donor_client.get("/portal?lang=zh", headers=HTML)
    assert "您的样本和数据仅可用于以下疾病的研究" in page.text
    assert "C34 (" in page.text  # the ICD-10 code with its WHO title
    assert "我的知情同意" in page.text
    # The choice is remembered.
    assert "更改我的选择" in donor_client.get("/portal", headers=HTML).text


def test_changing_choices_makes_a_new_version_that_the_next_count_follows(
    cohort: Cohort, donor_client: TestClient
) -> None:
    world = cohort.world
    sign_up(donor_client, invitation(cohort), "donor.broad")
    form = donor_client.get("/portal/consent/change", headers=HTML)
    assert form.status_code == 200
    token = csrf(form.text)
    choices = {
        "permission": "broad",
        "choice.commercial": "no",
        "choice.genetic": "yes",
        "choice.abroad": "yes",
        "choice.recontact": "yes",
    }
    unsigned = donor_client.post(
        "/portal/consent/change", data=choices | {"csrf_token": token, "confirm": "on"}, headers=HTML
    )
    assert unsigned.status_code == 422 and "field-error" in unsigned.text
    unconfirmed = donor_client.post(
        "/portal/consent/change", data=choices | {"csrf_token": token, "signed_name": "Li Hua"}, headers=HTML
    )
    assert unconfirmed.status_code == 422 and "tick the box" in unconfirmed.text
    forged = donor_client.post(
        "/portal/consent/change",
        data=choices | {"csrf_token": "nope", "confirm": "on", "signed_name": "Li Hua"},
        headers=HTML,
    )
    assert forged.status_code == 403
    before = world.outsider.post(
        "/api/v1/consent/eligibility",
        json={"purpose": purpose_body(commercial=True, non_profit=False), "collections": [world.collection_a]},
    ).json()
    saved = donor_client.post(
        "/portal/consent/change",
        data=choices | {"csrf_token": token, "confirm": "on", "signed_name": "Li Hua"},
        headers=HTML,
    )
    assert saved.status_code == 200, saved.text
    assert "your consent is now version 2" in saved.text
    assert "Only non-profit organisations may use them, and never for commercial purposes." in saved.text
    assert re.search(r'data-version="2"', saved.text) and re.search(r'data-version="1"', saved.text)
    after = world.outsider.post(
        "/api/v1/consent/eligibility",
        json={"purpose": purpose_body(commercial=True, non_profit=False), "collections": [world.collection_a]},
    ).json()
    assert after["counts"]["APPROVE"] == before["counts"]["APPROVE"] - 2
    timeline = world.owner.get(f"/api/v1/consent/donors/{cohort.donors['broad'].public_id}/records").json()
    assert [(r["version"], r["method"], r["channel"]) for r in timeline] == [
        (2, "electronic", "portal"),
        (1, "electronic", "portal"),
    ]
    assert "Li Hua" not in str(timeline)  # the typed signature is sealed


def test_messages_and_access_history_never_name_staff(db: Session, cohort: Cohort, donor_client: TestClient) -> None:
    world = cohort.world
    donor = cohort.donors["broad"].public_id
    sign_up(donor_client, invitation(cohort), "donor.broad")
    sent = world.owner.post(
        f"/api/v1/consent/donors/{donor}/notifications",
        json={"text_en": "Your sample was used in a study on lung cancer.", "text_zh": "您的样本被用于一项肺癌研究。"},
    )
    assert sent.status_code == 201
    assert world.other.post(f"/api/v1/consent/donors/{donor}/notifications", json={"text_en": "x"}).status_code == 404
    world.owner.get(f"/api/v1/specimens/{cohort.specimens['broad'][0]}")
    home = donor_client.get("/portal", headers=HTML)
    assert 'class="badge unread">1<' in home.text
    messages = donor_client.get("/portal/notifications", headers=HTML)
    assert "Your sample was used in a study on lung cancer." in messages.text
    assert 'class="badge unread">' not in donor_client.get("/portal", headers=HTML).text
    history = donor_client.get("/portal/history", headers=HTML)
    assert history.status_code == 200
    assert "Your sample&#39;s record was viewed" in history.text or "Your sample's record was viewed" in history.text
    assert cohort.specimens["broad"][0] in history.text
    assert "CN-SH-H01" in history.text  # the institution, never the person
    for page in (home, messages, history):
        assert "owner" not in page.text.lower().replace("donor.broad", "")
    zh = donor_client.get("/portal/history?lang=zh", headers=HTML)
    assert "您的样本记录被查看" in zh.text


def test_withdrawing_in_the_portal(cohort: Cohort, donor_client: TestClient) -> None:
    world = cohort.world
    sign_up(donor_client, invitation(cohort, "lung"), "donor.lung")
    page = donor_client.get("/portal/withdraw", headers=HTML)
    token = csrf(page.text)
    done = donor_client.post(
        "/portal/withdraw", data={"csrf_token": token, "kind": "destroy", "confirm": "on"}, headers=HTML
    )
    assert done.status_code == 200 and "You have withdrawn your consent" in done.text
    twice = donor_client.post(
        "/portal/withdraw", data={"csrf_token": token, "kind": "destroy", "confirm": "on"}, headers=HTML
    )
    assert twice.status_code == 422 and "already withdrawn" in twice.text
    work = world.owner.get("/api/v1/consent/withdrawal-work").json()
    assert len(work["destruction_tasks"]) == 3
    counts = world.outsider.post(
        "/api/v1/consent/eligibility", json={"purpose": purpose_body(), "collections": [world.collection_a]}
    ).json()["counts"]
    assert counts == {"APPROVE": 3, "DENY": 4, "NEEDS_REVIEW": 0}


def test_staff_cannot_use_the_portal_and_donors_cannot_use_staff_pages(
    cohort: Cohort, donor_client: TestClient
) -> None:
    refused = donor_client.post(
        "/portal/login", data={"username": "owner", "password": "correct horse battery"}, headers=HTML
    )
    assert refused.status_code == 403 and "This login is for donors" in refused.text
    sign_up(donor_client, invitation(cohort), "donor.broad")
    donor_client.post("/logout", data={"csrf_token": csrf(donor_client.get("/portal", headers=HTML).text)})
    login = donor_client.post(
        "/portal/login", data={"username": "donor.broad", "password": DONOR_PASSWORD}, headers=HTML
    )
    assert login.status_code == 200 and "Version 1" in login.text
    staff_page = donor_client.get(f"/consent/donors/{cohort.donors['broad'].public_id}", headers=HTML)
    assert staff_page.status_code == 404


# -- staff pages --------------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/login", data={"username": "owner", "password": "correct horse battery"})
        assert response.status_code == 200
        yield client


def test_staff_pages_forms_donor_timeline_paper_consent_reconsent_withdrawals(
    cohort: Cohort, staff_client: TestClient
) -> None:
    index = staff_client.get("/consent", headers=HTML)
    assert index.status_code == 200 and "MAIN" in index.text
    form_page = staff_client.get(f"/consent/forms/{cohort.form}", headers=HTML)
    assert "Lung cancer research only" in form_page.text and "C34" in form_page.text
    token = csrf(form_page.text)
    import json

    bad = staff_client.post(
        f"/consent/forms/{cohort.form}/versions",
        data={"csrf_token": token, "text_en": "v2", "options": "[not json"},
        headers=HTML,
    )
    assert bad.status_code == 422 and "not valid JSON" in bad.text
    published = staff_client.post(
        f"/consent/forms/{cohort.form}/versions",
        data={"csrf_token": token, "text_en": "Version two", "text_zh": "第二版", "options": json.dumps(OPTIONS)},
        headers=HTML,
    )
    assert published.status_code == 200 and "Version 2 published" in published.text
    # Everyone is now on an older version: the re-consent list shows them with "send invitation".
    listing = staff_client.get("/consent/reconsent", headers=HTML)
    donor = cohort.donors["broad"].public_id
    assert donor in listing.text and "Send invitation" in listing.text
    assert cohort.donors["b_broad"].public_id not in listing.text
    sent = staff_client.post("/consent/reconsent", data={"csrf_token": token, "donor": [donor]}, headers=HTML)
    assert sent.status_code == 200 and re.search(r'class="invitation-code">[0-9A-Z]{4}-', sent.text)
    # A donor's timeline, with a paper consent recorded from a scan.
    page = staff_client.get(f"/consent/donors/{donor}", headers=HTML)
    assert page.status_code == 200 and "Version 1" in page.text and "FHIR Consent" in page.text
    fields = {
        "csrf_token": token,
        "version": cohort.version.public_id,
        "permission": "health",
        "choice.commercial": "no",
        "choice.genetic": "yes",
        "choice.abroad": "no",
        "choice.recontact": "yes",
        "given_at": "2026-01-10T10:00",
    }
    no_scan = staff_client.post(f"/consent/donors/{donor}/paper", data=fields, headers=HTML)
    assert no_scan.status_code == 422 and "attach the scanned paper form" in no_scan.text
    recorded = staff_client.post(
        f"/consent/donors/{donor}/paper",
        data=fields,
        headers=HTML,
        files={"scan": ("form.pdf", b"%PDF-1.4 scan", "application/pdf")},
    )
    assert recorded.status_code == 200, recorded.text
    assert "Paper consent recorded as version 2" in recorded.text
    assert "may be used only in these countries: CN" in recorded.text
    invited = staff_client.post(f"/consent/donors/{donor}/invite", data={"csrf_token": token}, headers=HTML)
    assert re.search(r'id="invitation-code">[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}<', invited.text)
    withdrawn = staff_client.post(
        f"/consent/donors/{donor}/withdraw", data={"csrf_token": token, "kind": "destroy"}, headers=HTML
    )
    assert withdrawn.status_code == 200 and "Withdrawal recorded" in withdrawn.text
    work = staff_client.get("/consent/withdrawals", headers=HTML)
    assert cohort.specimens["broad"][0] in work.text
    task = re.search(r"/consent/tasks/([0-9a-f-]+)/complete", work.text)
    assert task
    done = staff_client.post(
        f"/consent/tasks/{task.group(1)}/complete", data={"csrf_token": token, "notes": "autoclaved"}, headers=HTML
    )
    assert "recorded in its chain of custody" in done.text
    other = cohort.world.other
    assert other.get(f"/api/v1/specimens/{cohort.specimens['broad'][0]}").status_code == 404


def test_reconsent_api_notifies_donors_with_accounts_and_gives_codes_to_the_others(
    cohort: Cohort, donor_client: TestClient
) -> None:
    world = cohort.world
    sign_up(donor_client, invitation(cohort), "donor.broad")
    assert world.owner.get("/api/v1/consent/reconsent").json()["total"] == 0
    v2 = world.owner.post(
        f"/api/v1/consent/forms/{cohort.form}/versions", json={"text_en": "v2", "options": OPTIONS}
    ).json()
    listing = world.owner.get("/api/v1/consent/reconsent").json()
    assert listing["total"] == 3  # broad, lung, nocommercial of biobank A
    assert {r["latest_version"] for r in listing["items"]} == {v2["public_id"]}
    assert world.other.get("/api/v1/consent/reconsent").json()["total"] == 0
    assert world.outsider.get("/api/v1/consent/reconsent").json()["total"] == 0
    donors = [cohort.donors["broad"].public_id, cohort.donors["lung"].public_id]
    assert world.other.post("/api/v1/consent/reconsent/invitations", json={"donors": donors}).status_code == 422
    sent = world.owner.post("/api/v1/consent/reconsent/invitations", json={"donors": donors})
    assert sent.status_code == 200, sent.text
    by_donor = {r["donor"]: r for r in sent.json()}
    assert by_donor[donors[0]]["notified"] and by_donor[donors[0]]["code"] is None
    assert not by_donor[donors[1]]["notified"] and re.match(
        r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$", by_donor[donors[1]]["code"]
    )
    home = donor_client.get("/portal", headers=HTML)
    assert "A new version of the consent form is available." in home.text
    assert 'class="badge unread">1<' in home.text
    # The donor signs the new version through the API too (their session, with its CSRF token).
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert token
    changed = donor_client.post(
        "/api/v1/consent/me/records",
        headers={"X-CSRF-Token": token.group(1)},
        json={
            "choices": {
                "broad": True,
                "health": False,
                "lung": False,
                "commercial": True,
                "genetic": False,
                "abroad": True,
                "recontact": False,
            },
            "signed_name": "Zhang Wei",
        },
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["form_version"] == v2["public_id"] and changed.json()["version"] == 2
    assert world.owner.get("/api/v1/consent/reconsent").json()["total"] == 2
    history = donor_client.get("/api/v1/consent/me/access-history").json()
    assert all("owner" not in str(event) for event in history)
    withdrawn = donor_client.post(
        "/api/v1/consent/me/withdrawal", headers={"X-CSRF-Token": token.group(1)}, json={"kind": "keep_results"}
    )
    assert withdrawn.status_code == 201 and withdrawn.json()["kind"] == "keep_results"
    assert world.owner.get("/api/v1/consent/me").status_code == 404  # staff have no donor account
