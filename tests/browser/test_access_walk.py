"""The whole access request walk in a real browser (issue #6): a researcher asks, the ethics committee
approves, the provider biobank says its material is available, both parties sign the agreement, the
specimens are reserved, picked, shipped and received, data access is granted and downloaded, results are
returned and the request is closed; an administrator then finds the request's chain writes on /ledger.

Everything is done through the pages. Only what the UI cannot make is arranged in the node's database
beforehand: a researcher, an ethics reviewer (`is_ethics_reviewer` has no UI), and consented donors with
stored specimens in a collection of the browser biobank.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PHONE_WIDTH = 390
PHONE = {
    "viewport": {"width": PHONE_WIDTH, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
# Kinds of chain writes this walk makes, in the order they are queued (docs/access.md, docs/access-fulfilment.md).
REQUEST_WRITES = (
    "request.submit",
    "request.ethics",
    "request.provider",
    "request.agreement",
    "request.dispatch",
    "request.receive",
    "request.grant",
    "request.results",
    "request.close",
)

ARRANGE = """
import json, sys
from biobank.institutions import service as institutions
from biobank.kit.db import unit_of_work
from tests.consent.factories import BROAD, LUNG_ONLY, give_consent, make_form
from tests.factories import make_box, make_collection, make_donor, make_specimen, make_user

tag, biobank, password = sys.argv[1:4]
with unit_of_work() as session:
    bb = institutions.get_biobank(session, biobank)
    make_user(session, f"researcher-{tag}", kind="researcher", password=password)
    make_user(session, f"ethics-{tag}", is_ethics_reviewer=True, password=password)
    collection = make_collection(session, bb, name=f"Lung cancer cohort {tag}", dataset_types=["Clinical"])
    _, version = make_form(session, bb, code=f"F{tag}")
    box = make_box(session, bb, name=f"Box {tag}")
    specimens = {"broad": [], "lung": []}
    n = 0
    for group, choices, count in (("broad", BROAD, 2), ("broad", BROAD, 1), ("lung", LUNG_ONLY, 1)):
        donor = make_donor(session, bb, patient_id=f"MRN-{tag}-{n}")
        give_consent(session, donor, version, choices)
        for _ in range(count):
            n += 1
            specimen = make_specimen(session, collection, donor=donor.public_id, barcode=f"AW{tag}{n:03d}",
                                     diagnosis="C34.1", status="stored",
                                     placement={"box": box.public_id, "position": f"A{n}"})
            specimens[group].append(specimen.public_id)
    print(json.dumps({"collection": collection.public_id, "specimens": specimens}))
"""


def _arrange(live_server: LiveServer, tag: str) -> dict[str, Any]:
    """Users, a consented cohort and its stored specimens, written with the node's own settings."""
    result = subprocess.run(
        [sys.executable, "-c", ARRANGE, tag, live_server.biobank, live_server.password],
        env=live_server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"arranging the cohort failed:\n{result.stdout}\n{result.stderr}"
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _local(hours_ago: float) -> str:
    """A datetime-local value as a person at the node would type it."""
    return (datetime.now().astimezone() - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


# Elements of the main content that stick out to the right of a `width`-pixel screen; wide tables scroll
# inside their own `.table-wrap` and do not count. (A mobile browser zooms out to fit a page wider than the
# screen, so window.innerWidth alone would not tell.)
OVERFLOWING = """width => [...document.querySelectorAll("main *")]
    .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest(".table-wrap"))
    .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : ""))"""


def _overflowing(page: Page, width: int) -> list[str]:
    return list(page.evaluate(OVERFLOWING, width))


class Users:
    """One browser context (own cookies) per person, logged in through the form."""

    def __init__(self, browser: Browser, live_server: LiveServer) -> None:
        self.browser = browser
        self.live_server = live_server
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}

    def tab(self, username: str, **options: Any) -> Page:
        """A logged-in tab of this user."""
        context = self.browser.new_context(
            base_url=self.live_server.url, **({"viewport": {"width": 1280, "height": 900}} | options)
        )
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(self.live_server.password)
        page.get_by_role("button", name="Log in").click()
        expect(page).not_to_have_url(re.compile(r"/login"))
        self.pages[f"{username}-{len(self.contexts)}"] = page
        return page

    def screenshots(self, folder: Path) -> None:
        """Each tab as it is now (for a failed walk)."""
        for name, page in self.pages.items():
            with contextlib.suppress(Exception):
                page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def close(self) -> None:
        """Close every context."""
        for context in self.contexts:
            with contextlib.suppress(Exception):
                context.close()


@pytest.fixture
def users(chromium_browser: Browser, live_server: LiveServer) -> Iterator[Users]:
    """The people of the walk, each in their own browser context, closed at the end."""
    made = Users(chromium_browser, live_server)
    try:
        yield made
    finally:
        made.close()


def _flash(page: Page, text: str) -> None:
    """Wait for the page that a form returned to, with its flash message."""
    expect(page.get_by_role("status").filter(has_text=text).first).to_be_visible()


def test_the_whole_access_request_walk(users: Users, live_server: LiveServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    cohort = _arrange(live_server, tag)
    broad: list[str] = cohort["specimens"]["broad"]
    lung: list[str] = cohort["specimens"]["lung"]
    shots = Path(os.environ.get("BIOBANK_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        _walk(users, live_server, tag, cohort["collection"], broad, lung, shots, tmp_path)
    except BaseException:
        users.screenshots(tmp_path)
        print(f"screenshots of the walk: {tmp_path}\nserver log:\n{live_server.log_tail()}")
        raise


def _walk(
    users: Users,
    live_server: LiveServer,
    tag: str,
    collection: str,
    broad: list[str],
    lung: list[str],
    shots: Path,
    tmp_path: Path,
) -> None:
    title = f"Lung cancer proteomics {tag}"
    ethics_pdf = tmp_path / f"ethics-approval-{tag}.pdf"
    ethics_pdf.write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )

    # 1. The researcher drafts and submits the request on /access/new.
    researcher = users.tab(f"researcher-{tag}")
    researcher.goto("/access")
    researcher.get_by_role("button", name="New request").click()
    expect(researcher).to_have_url(re.compile(r"/access/new$"))
    researcher.get_by_label("Project title").fill(title)
    researcher.get_by_label("Summary").fill("Serum proteomics of lung cancer patients.")
    researcher.get_by_label(re.compile(r"^Category")).select_option("GRU")
    researcher.get_by_label("Commits to publishing the results").select_option("yes")
    researcher.get_by_label("Approval reference").fill(f"IRB-2026-{tag}")
    researcher.get_by_label("Approval document (PDF, PNG or JPEG)").set_input_files(str(ethics_pdf))
    researcher.get_by_label("Shipment country (ISO 3166 alpha-2)").fill("CN")
    line = researcher.get_by_role("group", name="Line 1", exact=True)
    line.get_by_label("Line 1").select_option("collection")
    line.get_by_label("Collection").select_option(collection)
    line.get_by_label("Quantity").fill("3")
    line = researcher.get_by_role("group", name="Line 2", exact=True)
    line.get_by_label("Line 2").select_option("data")
    line.get_by_label("Collection").select_option(collection)
    line.get_by_label("Data category").select_option("Clinical")
    researcher.get_by_label("Submit to the ethics committee now").check()
    researcher.get_by_role("button", name="Save request").click()

    expect(researcher).to_have_url(re.compile(r"/access/[^/]+$"))
    public_id = researcher.url.rsplit("/", 1)[-1]
    _flash(researcher, f"Request {public_id} submitted")
    detail_url = f"/access/{public_id}"
    expect(researcher.locator("#request-status")).to_have_text("submitted")
    expect(researcher.locator("#project")).to_contain_text(f"IRB-2026-{tag}")
    document_link = researcher.locator("#project").get_by_role("link", name=f"ethics-approval-{tag}.pdf")
    document = researcher.context.request.get(document_link.get_attribute("href") or "")
    assert document.status == 200 and document.body() == ethics_pdf.read_bytes()
    eligibility = researcher.locator("#eligibility")
    row = eligibility.get_by_role("row", name=re.compile(live_server.biobank))
    # Three specimens of broad-consent donors approve; the lung-only donor's specimen is denied for GRU.
    expect(row.get_by_role("cell")).to_have_text([str(len(broad)), "0", str(len(lung)), re.compile(r"\d")])
    chart = eligibility.locator("canvas#eligibility-chart")
    expect(chart).to_have_attribute("aria-label", re.compile(rf"{live_server.biobank} approve {len(broad)}, review 0"))
    researcher.wait_for_function("() => window.Chart && Chart.getChart('eligibility-chart') !== undefined")
    box = chart.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50, box

    # 2. The ethics reviewer finds it in the queue and approves it with a comment.
    ethics = users.tab(f"ethics-{tag}")
    ethics.goto("/access")
    ethics.get_by_role("link", name=re.compile(re.escape(public_id) + "|" + re.escape(title))).first.click()
    expect(ethics).to_have_url(re.compile(re.escape(detail_url) + "$"))
    ethics.get_by_label("Comments to the requester").fill("Approved: store the data on the hospital network only.")
    ethics.locator("#ethics").get_by_role("button", name="Approve").click()
    _flash(ethics, "Ethics decision recorded")
    expect(ethics.locator("#request-status")).to_have_text("ethics approved")
    expect(ethics.locator("#ethics")).to_contain_text("store the data on the hospital network only")

    # 3. The provider's manager moves its track: checking availability, then available.
    manager = users.tab("manager")
    manager.goto(detail_url)
    track = manager.locator(f"#provider-{live_server.biobank}")
    expect(track).to_contain_text("Contacted")
    track.get_by_label("Move to").select_option("checking_availability")
    track.get_by_role("button", name=f"Update {live_server.biobank}").click()
    _flash(manager, f"{live_server.biobank}: Checking availability")
    expect(track.locator("h3 .status")).to_have_text("Checking availability")
    track.get_by_label("Move to").select_option("available")
    track.get_by_label("Note to the requester").fill("Three serum aliquots and clinical data are available.")
    track.get_by_role("button", name=f"Update {live_server.biobank}").click()
    _flash(manager, f"{live_server.biobank}: Available")
    expect(track.locator("h3 .status")).to_have_text("Available")

    # 4. The manager generates the agreement; both parties sign it with their password.
    fulfilment = manager.locator("#fulfilment")
    generate = fulfilment.locator("article[id^=generate-]")
    generate.get_by_label("Fee (accounting units)").fill("1200")
    generate.get_by_label("Data access (days, if data are included)").fill("90")
    generate.get_by_role("button", name="Generate from template").click()
    _flash(manager, "Agreement generated")
    expect(manager).to_have_url(re.compile(re.escape(detail_url) + r"(#.*)?$"))
    agreement = manager.locator("article.agreement")
    expect(agreement).to_have_count(1)
    expect(agreement.locator("h3")).to_contain_text("MTA")
    expect(agreement.locator("h3 .status")).to_have_text("pending")
    terms_hash = agreement.locator("code.terms-hash").inner_text()
    assert re.fullmatch(r"0x[0-9a-f]{64}", terms_hash), terms_hash
    agreement.locator("summary").click()
    expect(agreement.locator("pre.terms")).to_contain_text(title)

    researcher.goto(detail_url)
    signing = researcher.locator("article.agreement")
    expect(signing.locator("code.terms-hash")).to_have_text(terms_hash)
    expect(signing.get_by_role("button", name="Sign as provider")).to_have_count(0)
    signing.get_by_label("Your password, to sign as requester").fill("not my password")
    signing.get_by_role("button", name="Sign as requester").click()
    expect(researcher.locator(".flash-error")).to_contain_text("password")
    researcher.locator("article.agreement").get_by_label("Your password, to sign as requester").fill(
        live_server.password
    )
    researcher.locator("article.agreement").get_by_role("button", name="Sign as requester").click()
    _flash(researcher, "signed")

    manager.goto(detail_url)
    manager.locator("article.agreement").get_by_label("Your password, to sign as provider").fill(live_server.password)
    manager.locator("article.agreement").get_by_role("button", name="Sign as provider").click()
    _flash(manager, "signed")
    agreement = manager.locator("article.agreement")
    expect(agreement.locator("h3 .status")).to_have_text("signed")
    expect(agreement.locator("code.terms-hash")).to_have_text(terms_hash)
    facts = agreement.locator("dl.facts")
    expect(facts).to_contain_text(re.compile(r"Requester\s*signed"))
    expect(facts).to_contain_text(re.compile(r"Provider\s*signed"))
    expect(facts.locator("code")).to_have_count(3)  # the terms hash and two signers
    expect(manager.locator("#request-status")).to_have_text("agreed")

    # 5. The manager reserves the eligible specimens, prints the pick list and records the dispatch.
    work = manager.locator(f"#work-{live_server.biobank}")
    for specimen in broad:
        work.get_by_label(f"reserve {specimen}").check()
    expect(work.get_by_label(f"reserve {lung[0]}")).to_have_count(0)  # not eligible for this purpose
    work.get_by_role("button", name="Reserve selected").click()
    _flash(manager, "Specimens reserved")
    work = manager.locator(f"#work-{live_server.biobank}")
    expect(work).to_contain_text(f"{len(broad)} reserved")
    pick_list = work.get_by_role("button", name="Pick list (PDF)")
    href = pick_list.get_attribute("href")
    assert href
    pdf = manager.context.request.get(href)
    assert pdf.status == 200, pdf.text()
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    dispatch = work.locator("form.dispatch-form")
    dispatch.get_by_label("Courier").fill("SF Express")
    dispatch.get_by_label("Tracking number").fill(f"SF{tag}0001")
    dispatch.get_by_label("Temperature logger").fill(f"TL-{tag}")
    dispatch.get_by_label(re.compile("Dispatched at")).fill(_local(2))
    dispatch.get_by_role("button", name="Record dispatch").click()
    _flash(manager, "Shipment dispatched")
    shipments = manager.locator("#shipments")
    expect(shipments).to_contain_text(f"SF{tag}0001")
    expect(shipments).to_contain_text(f"TL-{tag}")
    expect(shipments).to_contain_text("not yet")

    researcher.goto(detail_url)
    receipt = researcher.locator("#shipments form.receive-form")
    receipt.get_by_label("received at").fill(_local(1))
    receipt.get_by_label("condition").select_option("good")
    receipt.get_by_label("notes").fill("Dry ice left, logger within range.")
    receipt.get_by_role("button", name="Record receipt").click()
    _flash(researcher, "Receipt recorded")
    expect(researcher.locator("#shipments")).to_contain_text("good")

    # 6. The manager grants data access until a date; the researcher downloads the pseudonymised export.
    manager.goto(detail_url)
    until = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    grant = manager.locator(f"#work-{live_server.biobank} form.grant-form")
    grant.get_by_label(re.compile("Data access until")).fill(until)
    grant.get_by_role("button", name="Grant data access").click()
    _flash(manager, "Data access granted")
    expect(manager.locator("#grants")).to_contain_text("active")
    expect(manager.locator("#grants").get_by_role("link", name="Download pseudonymised CSV")).to_have_count(0)

    researcher.goto(detail_url)
    expect(researcher.locator("#request-status")).to_have_text("fulfilled")
    with researcher.expect_download() as download_info:
        researcher.locator("#grants").get_by_role("link", name="Download pseudonymised CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    lines = Path(download.path()).read_text().splitlines()
    header = lines[0].split(",")
    assert {"donor", "specimen"} <= set(header), header
    assert len(lines) - 1 == len(broad), lines
    exported = "\n".join(lines)
    for specimen in broad + lung:
        assert specimen not in exported  # project pseudonyms only

    # 7. The researcher returns a publication and closes the request.
    results = researcher.locator("#results form.results-form")
    results.get_by_label("Publication DOI").fill("https://doi.org/10.1234/lungprot.2026.1")
    results.get_by_label("Title").fill("Serum proteomics of lung cancer")
    results.get_by_role("button", name="Return results").click()
    _flash(researcher, "Results recorded")
    expect(researcher.locator("#results")).to_contain_text("10.1234/lungprot.2026.1")
    expect(researcher.locator("#request-status")).to_have_text("results returned")
    researcher.get_by_role("button", name="Close the request").click()
    _flash(researcher, "Request closed")
    expect(researcher.locator("#request-status")).to_have_text("closed")
    expect(researcher.locator("#grants")).to_contain_text("ended")
    researcher.screenshot(path=str(shots / "access-walk-closed.png"), full_page=True)
    # The stand-alone fulfilment page leads back to the request.
    researcher.goto(f"/access/requests/{public_id}/fulfilment")
    expect(researcher.locator("hgroup .status")).to_have_text("closed")
    researcher.get_by_role("navigation", name="breadcrumb").get_by_role("link", name=f"Request {public_id}").click()
    expect(researcher).to_have_url(re.compile(re.escape(detail_url) + "$"))
    expect(researcher.locator("#request-status")).to_have_text("closed")

    # The request page on a phone: the main content does not scroll sideways.
    phone = users.tab(f"researcher-{tag}", **PHONE)
    phone.goto(detail_url)
    expect(phone.locator("#request-status")).to_have_text("closed")
    assert _overflowing(phone, PHONE_WIDTH) == []
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    phone.screenshot(path=str(shots / "access-walk-phone.png"), full_page=True)

    # 8. An administrator finds the request's chain writes on /ledger and the consortium page renders.
    admin = users.tab("admin")
    _ledger_shows_the_walk(admin, live_server)
    admin.get_by_role("link", name="Consortium records").click()
    expect(admin).to_have_url(re.compile(r"/ledger/consortium$"))
    expect(admin.get_by_role("heading", name="Consortium records")).to_be_visible()
    expect(admin.locator("#requests tbody tr").first).to_be_visible()
    expect(admin.locator("#agreements")).to_contain_text(terms_hash[:18])


def _ledger_shows_the_walk(admin: Page, live_server: LiveServer) -> None:
    """The outbox lists every write of the walk; the node's publisher thread (on outside tests) sends them."""
    admin.goto("/ledger")
    recent = admin.locator("#recent tbody")
    kinds = [k.strip() for k in recent.locator("tr td:nth-child(2)").all_inner_texts()]
    for kind in REQUEST_WRITES:
        assert kind in kinds, (kind, kinds)
    # `biobank serve` in development runs the publisher (docs/ledger.md: BIOBANK_LEDGER_BACKGROUND is on
    # outside tests), so the writes reach the embedded chain: wait until every one of them is published.
    assert "BIOBANK_LEDGER_BACKGROUND" not in live_server.env and live_server.env["BIOBANK_ENV"] == "development"
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while True:
        rows = recent.locator("tr")
        statuses = {
            cells[1].strip(): cells[2].strip()
            for cells in (r.locator("td").all_inner_texts() for r in rows.all())
            if len(cells) > 2 and cells[1].strip().startswith("request.")
        }
        if all(statuses.get(kind) == "sent" for kind in REQUEST_WRITES):
            break
        assert "failed" not in statuses.values(), statuses
        assert datetime.now(UTC) < deadline, f"not all published: {statuses}"
        admin.wait_for_timeout(1000)
        admin.reload()
    expect(admin.locator("#chain")).to_contain_text("connected")
    expect(admin.get_by_test_id("backlog-failed")).to_have_text("0")
