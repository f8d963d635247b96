"""Catalogue pages: public search and collection pages, managers' edit forms with CSRF, the count form."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy.orm import Session

from biobank.institutions import service as institutions
from tests.catalogue.helpers import Cohort, audit_entries

RECORD_IDS = re.compile(r"(SPC|DON)-\d{6}")


def test_the_search_page_is_public(anonymous, cohort: Cohort) -> None:
    page = anonymous.get("/catalogue")
    assert page.status_code == 200
    assert "Breast tissue bank" in page.text and "Lung cancer cohort" in page.text
    assert not RECORD_IDS.search(page.text)
    filtered = anonymous.get("/catalogue", params={"diagnoses": "C50", "materials": "Tissue (Frozen)"})
    assert "Breast tissue bank" in filtered.text and "Lung cancer cohort" not in filtered.text


def test_a_bad_code_on_the_search_page_is_shown_under_its_field(anonymous, cohort: Cohort) -> None:
    page = anonymous.get("/catalogue", params={"diagnoses": "ZZ99"})
    assert page.status_code == 200
    assert "diagnoses-error" in page.text


def test_collection_page_has_facts_and_a_chart_for_everyone(anonymous, web, cohort: Cohort) -> None:
    for client in (anonymous, web("outsider").client, web("owner").client):
        page = client.get(f"/catalogue/collections/{cohort.collections['C']}")
        assert page.status_code == 200
        assert 'id="facts-chart"' in page.text and "C50.9" in page.text
        assert not RECORD_IDS.search(page.text)
    hidden = anonymous.get(f"/catalogue/collections/{cohort.collections['D']}")
    assert "C61" not in hidden.text and "1 cell not published" in hidden.text


def test_only_managers_see_and_use_the_edit_form(anonymous, web, cohort: Cohort, db: Session) -> None:
    url = f"/catalogue/collections/{cohort.collections['A']}"
    assert 'action="' + url + '"' not in anonymous.get(url).text
    assert 'action="' + url + '"' not in web("other").get(url).text
    owner = web("owner")
    assert 'action="' + url + '"' in owner.get(url).text
    form = {
        "name": "Lung cancer cohort",
        "status": "Active",
        "sample_source": "Human",
        "age_unit": "Years",
        "access_rights": "PUBLIC",
        "listed": "true",
        "description": "Edited in the browser",
        "sample_types": ["Serum", "Plasma"],
        "diseases": "C34",
    }
    assert owner.post(url, form, csrf=False).status_code == 403
    saved = owner.post(url, form)
    assert saved.status_code == 303
    assert web("other").post(url, form).status_code == 403
    collection = institutions.get_collection(db, cohort.collections["A"])
    db.refresh(collection)
    assert collection.description == "Edited in the browser"
    assert collection.sample_types == ["Serum", "Plasma"]


def test_a_refused_edit_shows_its_errors(web, cohort: Cohort) -> None:
    owner = web("owner")
    url = f"/catalogue/collections/{cohort.collections['A']}"
    page = owner.post(
        url,
        {
            "name": "",
            "status": "Active",
            "sample_source": "Human",
            "age_unit": "Years",
            "access_rights": "PUBLIC",
            "diseases": "NOPE",
        },
    )
    assert page.status_code == 422
    assert "error-summary" in page.text


def test_the_count_page_needs_a_login(anonymous, cohort: Cohort) -> None:
    response = anonymous.get("/catalogue/count", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_the_count_form_shows_thresholded_counts_and_is_audited(web, cohort: Cohort, db: Session) -> None:
    researcher = web("outsider")
    page = researcher.post(
        "/catalogue/count",
        {"diagnoses": "C18", "category": "GRU", "ethics_approval": "yes", "project_id": "P-1"},
    )
    assert page.status_code == 200
    text = unescape(page.text)
    assert re.search(r'id="count-specimens">< 10<', text)
    (entry,) = audit_entries(db, "catalogue.count")
    assert entry.purpose == "P-1" and entry.details["diagnoses"] == "C18"
    assert researcher.post("/catalogue/count", {"category": "GRU"}, csrf=False).status_code == 403


def test_biobank_page_edit(web, world, cohort: Cohort) -> None:
    owner = web("owner")
    url = f"/catalogue/biobanks/{world.biobank_a}"
    assert owner.get(url).status_code == 200
    saved = owner.post(
        url,
        {"name": "Biobank A", "quality_standards": ["ISO 20387"], "infrastructural_capabilities": "-80 freezers\nLN2"},
    )
    assert saved.status_code == 303
    assert web("other").post(url, {"name": "Hijacked"}).status_code == 403
