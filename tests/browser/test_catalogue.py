"""The catalogue in a real browser: a visitor searches with facets and opens a collection page; a
logged-in user counts specimens (thresholded); staff import clinical data and read its quality report.

The data (a lung cohort of consenting donors with specimens, facts refreshed) is made through the API by
the biobank's manager, as the UI would, once for the module.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.websession import CSRF_INPUT

pytestmark = pytest.mark.browser

FEMALE_DONORS = 12  # a published facts cell (≥ 10 donors); counted as "10" after rounding
MALE_DONORS = 3  # a hidden cell; counted as "< 10"
OPTIONS = [
    {"code": "broad", "kind": "permission", "label_en": "Any research", "duo_permission": "GRU"},
    {"code": "ethics", "kind": "condition", "label_en": "Every study needs ethics approval", "duo_modifiers": ["IRB"]},
]
MAPPING = {
    "format": "biobank-commons/clinical-mapping",
    "columns": [
        {"source": "MRN", "target": "donor.patient_id"},
        {"source": "Dx", "target": "diagnosis.icd10"},
        {"source": "Dx date", "target": "diagnosis.date"},
        {"source": "Weight (lb)", "target": "observation", "code": "29463-7", "unit": "lb", "to_unit": "kg"},
    ],
}


@dataclass
class Cohort:
    """A listed lung cohort: its public id and name, the donors' patient ids (female first) and a tag."""

    collection: str
    name: str
    patient_ids: list[str]
    tag: str


def _api_as(live_server: LiveServer, username: str) -> httpx.Client:
    client = httpx.Client(base_url=live_server.url, timeout=60)
    response = client.post("/login", data={"username": username, "password": live_server.password})
    assert response.status_code == 303, response.text
    match = CSRF_INPUT.search(client.get("/").text)
    assert match
    client.headers["X-CSRF-Token"] = match.group(1)
    return client


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture(scope="module")
def cohort(live_server: LiveServer) -> Iterator[Cohort]:
    """15 consenting donors (12 female, 3 male), one serum specimen each with C34.1, facts refreshed."""
    tag = uuid.uuid4().hex[:6].upper()
    api = _api_as(live_server, "manager")
    try:
        name = f"Lung cohort {tag}"
        collection = _ok(
            api.post(
                "/api/v1/collections",
                json={
                    "biobank": live_server.biobank,
                    "name": name,
                    "description": f"Serum of lung cancer patients ({tag})",
                    "diseases": ["C34"],
                },
            )
        )
        form = _ok(
            api.post(
                "/api/v1/consent/forms",
                json={"biobank": live_server.biobank, "code": f"L{tag}", "title_en": "Biobank consent"},
            )
        )
        version = _ok(
            api.post(
                f"/api/v1/consent/forms/{form['public_id']}/versions",
                json={
                    "text_en": "We ask you to give samples for research.",
                    "options": OPTIONS,
                    "published_at": (datetime.now(UTC) - timedelta(days=400)).isoformat(),
                },
            )
        )
        patient_ids = []
        for i in range(FEMALE_DONORS + MALE_DONORS):
            patient_id = f"MRN-C-{tag}-{i:02d}"
            patient_ids.append(patient_id)
            donor = _ok(
                api.post(
                    "/api/v1/donors",
                    json={
                        "biobank": live_server.biobank,
                        "patient_id": patient_id,
                        "sex": "Female" if i < FEMALE_DONORS else "Male",
                        "birth_year": 1960,
                    },
                )
            )
            scan = _ok(
                api.post(
                    "/api/v1/consent/scans",
                    data={"biobank": live_server.biobank},
                    files={"scan": ("form.pdf", f"%PDF-1.4 signed form {tag} {i}".encode(), "application/pdf")},
                )
            )
            _ok(
                api.post(
                    f"/api/v1/consent/donors/{donor['public_id']}/records",
                    json={
                        "version": version["public_id"],
                        "scan": scan["public_id"],
                        "given_at": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
                        "choices": {"broad": True},
                    },
                )
            )
            _ok(
                api.post(
                    "/api/v1/specimens",
                    json={
                        "barcode": f"CAT-{tag}-{i:02d}",
                        "collection": collection["public_id"],
                        "donor": donor["public_id"],
                        "sample_type": "Serum",
                        "diagnosis": "C34.1",
                        "collected_at": "2024-05-02T09:00:00+08:00",
                    },
                )
            )
        _ok(api.post("/api/v1/catalogue/refresh", params={"collection": collection["public_id"]}))
        yield Cohort(collection=collection["public_id"], name=name, patient_ids=patient_ids, tag=tag)
    finally:
        api.close()


def test_public_search_with_facets_finds_the_collection_by_a_parent_code(page: Page, cohort: Cohort) -> None:
    page.goto("/catalogue")  # no login: the public catalogue
    expect(page.get_by_role("heading", name="Catalogue of collections")).to_be_visible()
    page.get_by_label("Search names and descriptions").fill(cohort.tag)
    page.get_by_label("Diagnosis (ICD-10, with sub-codes)").fill("C34")  # the specimens carry C34.1
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"diagnoses=C34"))
    card = page.locator("article", has=page.get_by_role("link", name=cohort.name))
    expect(card).to_have_count(1)
    # The material facet counts the one collection found and offers no material it does not hold.
    serum = page.locator("label", has_text="Serum")
    expect(serum.locator(".count")).to_have_text("(1)")
    expect(page.locator("label", has_text="Urine")).to_have_count(0)
    serum.locator('input[name="materials"]').check()
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"materials=Serum"))
    expect(card).to_have_count(1)
    # Another chapter finds nothing of it.
    page.get_by_label("Diagnosis (ICD-10, with sub-codes)").fill("C50")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=cohort.name)).to_have_count(0)


def test_collection_page_publishes_the_large_cell_and_hides_the_small_one(page: Page, cohort: Cohort) -> None:
    page.goto(f"/catalogue/collections/{quote(cohort.collection, safe=':')}")
    expect(page.get_by_role("heading", name=cohort.name, level=1)).to_be_visible()
    facts = page.locator("table.data").filter(has_text="Samples and donors per sex")
    row = facts.locator("tbody tr")
    expect(row).to_have_count(1)  # the male cell (3 donors) is not published
    for text in ("Serum", "C34.1", "Female", str(FEMALE_DONORS)):
        expect(row).to_contain_text(text)
    expect(page.locator("p.policy")).to_contain_text("1 cell not published (too few donors)")
    # Collection totals are rounded: 15 samples → 20.
    expect(page.locator(".numbers").first).to_contain_text("Samples 20")


def test_count_is_thresholded_and_rounded(page: Page, cohort: Cohort, log_in: Callable[..., None]) -> None:
    log_in(page, "manager")
    page.goto("/catalogue/count")
    expect(page.get_by_role("heading", name="Count specimens")).to_be_visible()
    page.get_by_label("Diagnoses (ICD-10, with sub-codes)").fill("C34")
    page.locator('select[name="collections"]').select_option(cohort.collection)
    page.get_by_label("Category (DUO)").select_option("HMB")
    page.get_by_label("Ethics approval").select_option("yes")
    page.locator('input[name="sexes"][value="Female"]').check()
    page.get_by_role("button", name="Count").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator("#count-specimens")).to_have_text("10")  # 12 rounded to the nearest 10
    expect(page.locator("#count-donors")).to_have_text("10")
    expect(page.get_by_role("link", name=cohort.name)).to_be_visible()

    page.locator('input[name="sexes"][value="Female"]').uncheck()
    page.locator('input[name="sexes"][value="Male"]').check()
    page.get_by_role("button", name="Count").click()
    expect(page.locator("#count-specimens")).to_have_text("< 10")  # 3 specimens are never shown as 3
    expect(page.locator("#count-donors")).to_have_text("< 10")


def test_staff_import_clinical_data_and_read_the_quality_report(
    page: Page, cohort: Cohort, log_in: Callable[..., None], tmp_path: Path
) -> None:
    log_in(page, "tech")
    page.goto("/clinical/import")
    expect(page.get_by_role("heading", name="Clinical data import")).to_be_visible()
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "MRN,Dx,Dx date,Weight (lb)\n"
        f"{cohort.patient_ids[0]},C34.1,2024-04-01,154\n"
        f"{cohort.patient_ids[1]},C34.99,2024-04-02,160\n"
    )
    form = page.locator("form", has=page.get_by_role("heading", name="Table with a mapping"))
    if not form.count():
        form = page.locator("form").filter(has=page.get_by_label("Mapping file (JSON)"))
    form.get_by_label("Biobank").select_option(cohort_biobank(page))
    form.get_by_label("Data file (CSV or XLSX)").set_input_files(str(bad))
    form.get_by_label("Mapping file (JSON)").set_input_files(str(mapping))
    form.get_by_role("button", name="Dry run").click()
    report = page.locator("table.data").filter(has_text="Problem").first
    expect(report).to_contain_text("Dx")  # the column
    expect(report).to_contain_text("C34.99")  # the value
    expect(report.locator("tbody tr").first).to_contain_text("3")  # spreadsheet row 3 (header is row 1)

    good = tmp_path / "good.csv"
    good.write_text(
        "MRN,Dx,Dx date,Weight (lb)\n"
        + "".join(f"{p},C34.1,2024-04-01,{150 + i}\n" for i, p in enumerate(cohort.patient_ids))
    )
    page.goto("/clinical/import")
    form = page.locator("form").filter(has=page.get_by_label("Mapping file (JSON)"))
    form.get_by_label("Biobank").select_option(cohort_biobank(page))
    form.get_by_label("Data file (CSV or XLSX)").set_input_files(str(good))
    form.get_by_label("Mapping file (JSON)").set_input_files(str(mapping))
    form.get_by_role("button", name="Import", exact=True).click()
    rows = len(cohort.patient_ids)
    expect(
        page.get_by_role("heading", name=re.compile(rf"Imported: {rows} rows, {rows} donors, 0 errors"))
    ).to_be_visible()

    page.goto(f"/clinical/quality/{quote(cohort.collection, safe=':')}")
    expect(page.get_by_role("heading", name="Clinical data quality")).to_be_visible()
    page.get_by_role("button", name="Compute a new report").click()
    expect(page.get_by_role("heading", name=re.compile(rf"Report of .* — {rows} donors"))).to_be_visible()
    completeness = page.locator("table", has=page.locator("code", has_text="diagnosis.icd10"))
    expect(completeness.locator("tr", has=page.locator("code", has_text="diagnosis.icd10"))).to_contain_text("100.0 %")
    expect(completeness.locator("tr", has=page.locator("code", has_text="diagnosis.morphology"))).to_contain_text(
        "0.0 %"
    )


def cohort_biobank(page: Page) -> str:
    """The browser biobank's code as the import form offers it."""
    options = page.locator('select[name="biobank"] option')
    values = [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert "BRW" in values, values
    return "BRW"
