"""Web pages: they render for members, hide other biobanks' records, show form errors without
writing anything, keep their query count flat, and serve audited label sheets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from biobank.institutions import service as institutions
from tests.conftest import World
from tests.factories import make_donor, make_specimen, system
from tests.websession import WebUser


@dataclass
class Records:
    donor: str
    specimen: str
    barcode: str


@pytest.fixture
def records(db: Session, world: World) -> Records:
    """A donor of biobank A with one processed 3 mL serum specimen."""
    biobank = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    donor = make_donor(db, biobank, patient_id="MRN-REC-1", diagnoses=[{"icd10": "C34.1"}])
    specimen = make_specimen(db, collection, donor=donor.public_id, barcode="SER-0001")
    db.commit()
    return Records(donor.public_id, specimen.public_id, specimen.barcode)


def local_input(hours_ago: float) -> str:
    """A datetime-local value for some hours ago, in the node's zone (what a browser would send)."""
    from biobank.web.forms import node_timezone

    return (datetime.now(UTC) - timedelta(hours=hours_ago)).astimezone(node_timezone()).strftime("%Y-%m-%dT%H:%M")


def text_of(html: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def field_error(html: str, form: str, name: str) -> str | None:
    """The message shown under a field of a form (ids are scoped by the form's name), if any."""
    match = re.search(rf'<small class="field-error" id="{form}-{re.escape(name)}-error">(.*?)</small>', html, re.S)
    return unescape(match.group(1)) if match else None


def input_value(html: str, form: str, name: str) -> str | None:
    """The value a text input of a form is filled with."""
    pattern = rf'<input id="{form}-{re.escape(name)}" name="{re.escape(name)}" type="[^"]+" value="([^"]*)"'
    match = re.search(pattern, html)
    return unescape(match.group(1)) if match else None


def one(db: Session, stmt: Any) -> Any:
    """One value, read in a transaction that is ended at once (SQLite: it would hold the write lock)."""
    try:
        return db.execute(stmt).scalar_one()
    finally:
        db.rollback()


def count(db: Session, model: Any, *where: Any) -> int:
    return int(one(db, select(func.count()).select_from(model).where(*where)))


def audit_actions(db: Session, action: str) -> list[list[str]]:
    from biobank.audit.models import AuditEntry

    try:
        return [list(ids) for ids in db.scalars(select(AuditEntry.resource_ids).where(AuditEntry.action == action))]
    finally:
        db.rollback()


def make_box(db: Session, biobank_code: str, name: str = "Box 1") -> str:
    from biobank.storage import service as storage
    from biobank.storage.schemas import UnitCreate

    site = storage.create_unit(db, system(), UnitCreate(biobank=biobank_code, kind="site", name=f"Site {name}"))
    freezer = storage.create_unit(db, system(), UnitCreate(parent=site.public_id, kind="freezer", name="Freezer A"))
    box = storage.create_unit(db, system(), UnitCreate(parent=freezer.public_id, kind="box", name=name, rows=9, cols=9))
    db.commit()
    return box.public_id


# -- rendering and access -----------------------------------------------------------------------------------


def test_every_page_renders_for_the_owner(web: Callable[[str], WebUser], world: World, records: Records) -> None:
    owner = web("owner")
    pages = {
        "/": ["Specimens by status", "chart-status"],
        "/donors": [records.donor, "C34.1"],
        "/donors/new": ["Register a donor", "Hospital patient id"],
        f"/donors/{records.donor}": ["Female", "1960", "C34.1", records.specimen, "Reveal identity"],
        "/specimens": [records.specimen, "SER-0001", "Print labels (PDF)"],
        "/specimens/new": ["Register a specimen", "local time"],
        f"/specimens/{records.specimen}": ["SER-SST-", "Serum separator tube", "Make aliquots", "History", "created"],
        "/specimens/SER-0001": [records.specimen],
        "/collections": ["Lung cancer cohort", "Colorectal cohort"],
        f"/collections/{world.collection_a}": [
            "MIABIS attributes",
            "Edit collection",
            "No specimen of this collection",
        ],
    }
    for url, expected in pages.items():
        response = owner.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        for snippet in expected:
            assert snippet in response.text, (url, snippet)
    # Identifying data never appears on ordinary pages.
    detail = owner.get(f"/donors/{records.donor}").text
    assert "Test Person" not in detail and "MRN" not in detail


def test_anonymous_visitors_are_sent_to_the_login_form(client: TestClient, records: Records) -> None:
    response = client.get("/specimens?status=stored", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fspecimens%3Fstatus%3Dstored"
    assert client.post(f"/specimens/{records.specimen}/status", data={}, follow_redirects=False).status_code == 303


def test_members_of_other_biobanks_get_404_pages(
    db: Session, web: Callable[[str], WebUser], world: World, records: Records
) -> None:
    from biobank.specimens.models import Specimen

    for username in ("other", "outsider"):
        user = web(username)
        for url in (f"/donors/{records.donor}", f"/specimens/{records.specimen}", f"/specimens/{records.barcode}"):
            response = user.get(url)
            assert response.status_code == 404, (username, url)
            assert "NotFound" in response.text and "Female" not in response.text
        assert records.specimen not in user.get("/specimens").text
        assert records.donor not in user.get("/donors").text
        posted = user.post(f"/specimens/{records.specimen}/status", {"status": "stored"})
        assert posted.status_code == 404
        reveal = user.post(f"/donors/{records.donor}/identity", {"reason": "curiosity"})
        assert reveal.status_code == 404 and "Test Person" not in reveal.text
        # Catalogue metadata is shared, but not the QC figures or the edit form.
        collection = user.get(f"/collections/{world.collection_a}")
        assert collection.status_code == 200
        assert "Edit collection" not in collection.text and "shown to members" in collection.text
    assert count(db, Specimen, Specimen.status == "processed") == 1


def test_posts_need_the_csrf_token(db: Session, web: Callable[[str], WebUser], records: Records) -> None:
    from biobank.donors.models import Donor

    owner = web("owner")
    response = owner.post("/donors/new", {"biobank": "BBA", "patient_id": "P-1", "sex": "Male"}, csrf=False)
    assert response.status_code == 403 and "CsrfFailed" in response.text
    assert count(db, Donor) == 1


# -- donors -------------------------------------------------------------------------------------------------


def donor_form(**overrides: Any) -> dict[str, Any]:
    return {"biobank": "BBA", "patient_id": "MRN-777", "sex": "Male", "birth_year": "1971", "name": "Jan Novak",
            "contact": "", "diagnoses": "C34.1, I10"} | overrides  # fmt: skip


def test_registering_a_donor_redirects_to_the_donor(db: Session, web: Callable[[str], WebUser], world: World) -> None:
    tech = web("tech")
    response = tech.post("/donors/new", donor_form())
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/donors/CN-SH-H01:DON-")
    assert "MRN" not in location
    page = tech.get(location).text
    assert "registered." in page and "C34.1" in page and "I10" in page
    assert "Jan Novak" not in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"birth_year": "nineteen"}, "birth_year", "valid integer"),
        ({"patient_id": ""}, "patient_id", "required"),
        ({"sex": "Robot"}, "sex", "Male"),
        ({"diagnoses": "C34.1, X99.9"}, "diagnoses", "'X99.9' is not an ICD-10"),
        ({"birth_year": "2999"}, "birth_year", "future"),
    ],
)
def test_donor_form_errors_show_under_the_field_and_write_nothing(
    db: Session, web: Callable[[str], WebUser], world: World, overrides: dict[str, Any], field: str, message: str
) -> None:
    from biobank.donors.models import Donor, DonorDiagnosis

    tech = web("tech")
    form = donor_form(**overrides)
    response = tech.post("/donors/new", form)
    assert response.status_code == 422
    error = field_error(response.text, "donor", field)
    assert error and message in error, (field, error)
    assert 'role="alert"' in response.text  # the summary at the top of the form
    # What was typed is still there (except what the browser would not send back).
    assert input_value(response.text, "donor", "name") == "Jan Novak"
    if field != "sex":
        assert input_value(response.text, "donor", field) == form[field]
    assert count(db, Donor) == 0 and count(db, DonorDiagnosis) == 0


def test_registering_the_same_patient_twice_is_a_conflict_flash(db: Session, web: Callable[[str], WebUser]) -> None:
    from biobank.donors.models import Donor

    tech = web("tech")
    assert tech.post("/donors/new", donor_form()).status_code == 303
    again = tech.post("/donors/new", donor_form(name="Someone"))
    assert again.status_code == 409
    assert "flash-error" in again.text and "already registered" in again.text
    assert input_value(again.text, "donor", "name") == "Someone"
    assert count(db, Donor) == 1


def test_donor_lookup_by_patient_id_is_posted(web: Callable[[str], WebUser], world: World, records: Records) -> None:
    tech = web("tech")
    assert 'action="/donors/lookup"' in tech.get("/donors").text
    found = tech.post("/donors/lookup", {"biobank": world.biobank_a, "patient_id": "MRN-REC-1"})
    assert found.status_code == 303 and found.headers["location"] == f"/donors/{records.donor}"
    missing = tech.post("/donors/lookup", {"biobank": world.biobank_a, "patient_id": "MRN-NOBODY"})
    assert missing.status_code == 422
    assert field_error(missing.text, "lookup", "patient_id") == "no donor with this patient id in that biobank"
    # A member of another biobank gets the same answer: the patient's existence is not revealed.
    other = web("other").post("/donors/lookup", {"biobank": world.biobank_a, "patient_id": "MRN-REC-1"})
    assert other.status_code == 422 and records.donor not in other.text
    assert field_error(other.text, "lookup", "patient_id") == "no donor with this patient id in that biobank"


def test_identity_is_revealed_once_to_managers_with_a_reason(
    db: Session, web: Callable[[str], WebUser], records: Records
) -> None:
    owner = web("owner")
    missing = owner.post(f"/donors/{records.donor}/identity", {"reason": ""})
    assert missing.status_code == 422 and field_error(missing.text, "identity", "reason")
    assert "Test Person" not in missing.text
    shown = owner.post(f"/donors/{records.donor}/identity", {"reason": "recontact for consent"})
    assert shown.status_code == 200
    assert "Test Person" in shown.text and "MRN" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert audit_actions(db, "donor.identity.read") == [[records.donor]]
    # The next visit shows no identity; technicians are not offered the form at all.
    assert "Test Person" not in owner.get(f"/donors/{records.donor}").text
    tech = web("tech")
    assert "Reveal identity" not in tech.get(f"/donors/{records.donor}").text
    refused = tech.post(f"/donors/{records.donor}/identity", {"reason": "curious"})
    assert refused.status_code == 403 and "Test Person" not in refused.text


# -- specimens ----------------------------------------------------------------------------------------------


def specimen_form(world: World, records: Records, **overrides: Any) -> dict[str, Any]:
    return {"collection": world.collection_a, "donor": records.donor, "sample_type": "Plasma", "barcode": "PL-0001",
            "collected_at": local_input(5), "received_at": local_input(4.5), "processed_at": local_input(4),
            "frozen_at": local_input(3.5), "quantity": "4", "quantity_unit": "mL", "container": "ped",
            "diagnosis": "C34.1", "status": "processed"} | overrides  # fmt: skip


def test_registering_a_specimen_reads_times_in_the_node_zone(
    db: Session, web: Callable[[str], WebUser], world: World, records: Records
) -> None:
    from biobank.specimens.models import Specimen
    from biobank.web.forms import node_timezone

    tech = web("tech")
    form = specimen_form(world, records)
    response = tech.post("/specimens/new", form)
    assert response.status_code == 303, response.text
    row = db.execute(
        select(Specimen.collected_at, Specimen.container, Specimen.sprec_code).where(Specimen.barcode == "PL-0001")
    ).one()
    db.rollback()
    typed = datetime.fromisoformat(form["collected_at"]).replace(tzinfo=node_timezone())
    assert row.collected_at == typed.astimezone(UTC)
    assert row.container == "PED" and row.sprec_code and row.sprec_code.startswith("PL1-PED-")
    page = tech.get(response.headers["location"]).text
    assert "Specimen CN-SH-H01:SPC-" in page and "registered." in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"frozen_at": local_input(6)}, "frozen_at", "is before"),  # frozen before it was processed
        ({"quantity": "-2"}, "quantity", "greater than or equal to 0"),
        ({"quantity": "lots"}, "quantity", "valid number"),
        ({"barcode": ""}, "barcode", "required"),
        ({"diagnosis": "Q99.99"}, "diagnosis", "ICD-10"),
        ({"collection": "CN-SH-H01:COL-999999"}, "collection", "unknown collection"),
        ({"donor": "CN-SH-H01:DON-999999"}, "donor", "unknown donor"),
        ({"status": "stored"}, "placement", "box and position"),
        ({"box": "CN-SH-H01:BOX-999"}, "position", "required"),
    ],
)
def test_specimen_form_errors_show_under_the_field_and_write_nothing(
    db: Session,
    web: Callable[[str], WebUser],
    world: World,
    records: Records,
    overrides: dict[str, Any],
    field: str,
    message: str,
) -> None:
    from biobank.specimens.models import Specimen, SpecimenEvent

    tech = web("tech")
    before = (count(db, Specimen), count(db, SpecimenEvent))
    response = tech.post("/specimens/new", specimen_form(world, records, **overrides))
    assert response.status_code == 422, response.text[:300]
    text = response.text
    if field == "placement":
        assert message in text_of(text)  # no single field: the summary names it
    else:
        error = field_error(text, "specimen", field)
        assert error and message in error, (field, error, text_of(text)[:800])
    assert input_value(text, "specimen", "barcode") == overrides.get("barcode", "PL-0001")
    assert (count(db, Specimen), count(db, SpecimenEvent)) == before


def test_aliquoting_into_a_box_shows_in_the_history(
    db: Session, web: Callable[[str], WebUser], world: World, records: Records
) -> None:
    from biobank.specimens.models import Specimen

    box = make_box(db, world.biobank_a)
    tech = web("tech")
    form = {"count": "3", "quantity": "0.5", "quantity_unit": "mL", "lineage": "aliquot", "box": box, "start": "A1"}
    response = tech.post(f"/specimens/{records.specimen}/aliquots", form)
    assert response.status_code == 303, text_of(response.text)[:1000]
    page = tech.get(f"/specimens/{records.specimen}").text
    assert "3 aliquots made" in page
    assert count(db, Specimen, Specimen.parent_id.is_not(None)) == 3
    history = text_of(page[page.index('id="history"') :])
    assert "aliquot" in history and "quantity: 3 → 1.5" in history
    children = re.findall(r'href="/specimens/(CN-SH-H01:SPC-\d+)"', page[page.index("Children") :])
    assert len(set(children)) >= 3
    child = tech.get(f"/specimens/{children[0]}").text
    assert f'href="/storage/boxes/{box}"' in child and "A1" in text_of(child)
    assert "aliquot of " + records.specimen in text_of(child)


def test_overdrawing_an_aliquot_is_refused_and_writes_nothing(
    db: Session, web: Callable[[str], WebUser], world: World, records: Records
) -> None:
    from biobank.specimens.models import Specimen, SpecimenEvent

    box = make_box(db, world.biobank_a)
    tech = web("tech")
    events = count(db, SpecimenEvent)
    form = {"count": "4", "quantity": "1", "quantity_unit": "mL", "lineage": "aliquot", "box": box, "start": "A1"}
    response = tech.post(f"/specimens/{records.specimen}/aliquots", form)
    assert response.status_code == 422
    error = field_error(response.text, "aliquot", "quantity")
    assert error and "needs 4 mL but only 3 mL remain" in error
    assert input_value(response.text, "aliquot", "count") == "4"
    assert count(db, Specimen) == 1 and count(db, SpecimenEvent) == events
    assert one(db, select(Specimen.quantity)) == 3.0
    # Other aliquot mistakes land under their own fields.
    bad_start = tech.post(f"/specimens/{records.specimen}/aliquots", form | {"count": "2", "start": "Z99"})
    assert bad_start.status_code == 422 and "outside this box" in (
        field_error(bad_start.text, "aliquot", "start") or ""
    )
    derivative = tech.post(f"/specimens/{records.specimen}/aliquots", form | {"count": "1", "lineage": "derivative"})
    assert derivative.status_code == 422 and field_error(derivative.text, "aliquot", "sample_type")
    assert count(db, Specimen) == 1


def test_status_form_offers_only_allowed_transitions_and_refuses_others(
    db: Session, web: Callable[[str], WebUser], records: Records
) -> None:
    from biobank.specimens.models import TRANSITIONS, Specimen, SpecimenEvent, Status

    tech = web("tech")
    page = tech.get(f"/specimens/{records.specimen}").text
    form = page[page.index('action="/specimens/' + records.specimen + '/status"') :]
    offered = re.findall(r'<option value="([a-z]+)"', form[: form.index("</form>")])
    assert set(offered) == {s.value for s in TRANSITIONS[Status.PROCESSED]}
    events = count(db, SpecimenEvent)
    response = tech.post(f"/specimens/{records.specimen}/status", {"status": "reserved"})
    assert response.status_code == 422
    error = field_error(response.text, "status", "status")
    assert error and "cannot go from processed to reserved" in error
    assert one(db, select(Specimen.status)) == "processed"
    assert count(db, SpecimenEvent) == events
    done = tech.post(f"/specimens/{records.specimen}/status", {"status": "consumed", "reason": "used up"})
    assert done.status_code == 303
    page = tech.get(f"/specimens/{records.specimen}").text
    assert "Status changed to consumed." in page and "final state" in page
    assert "status: processed → consumed" in text_of(page)


def test_move_check_out_and_check_in(
    db: Session, web: Callable[[str], WebUser], world: World, records: Records
) -> None:
    box = make_box(db, world.biobank_a)
    tech = web("tech")
    url = f"/specimens/{records.specimen}"
    taken = tech.post(f"{url}/move", {"box": box, "position": "Q1"})
    assert taken.status_code == 422 and field_error(taken.text, "move", "position")
    assert tech.post(f"{url}/move", {"box": box, "position": "B2", "reason": "shelve"}).status_code == 303
    assert tech.post(f"{url}/status", {"status": "stored"}).status_code == 303
    assert tech.post(f"{url}/check-out", {"reason": "thaw"}).status_code == 303
    twice = tech.post(f"{url}/check-out", {"reason": "again"})
    assert twice.status_code == 409 and "already checked out" in twice.text
    assert tech.post(f"{url}/check-in", {"thawed": "true"}).status_code == 303
    page = text_of(tech.get(url).text)
    assert "B2" in page and "Freeze–thaw cycles 1" in page
    assert "checked in" in page and "freeze–thaw cycles: 0 → 1" in page


def test_qc_form(db: Session, web: Callable[[str], WebUser], world: World, records: Records) -> None:
    from biobank.specimens.models import QCResult

    tech = web("tech")
    url = f"/specimens/{records.specimen}/qc"
    early = tech.post(url, {"test": "RIN", "value": "8.1", "passed": "true", "tested_at": local_input(48)})
    assert early.status_code == 422 and "before the specimen was collected" in (
        field_error(early.text, "qc", "tested_at") or ""
    )
    missing = tech.post(url, {"test": "RIN", "value": "8.1", "tested_at": local_input(1)})
    assert missing.status_code == 422 and field_error(missing.text, "qc", "passed") == "required"
    assert count(db, QCResult) == 0
    assert (
        tech.post(url, {"test": "RIN", "value": "8.1", "passed": "true", "tested_at": local_input(1)}).status_code
        == 303
    )
    collection = tech.get(f"/collections/{world.collection_a}").text
    assert "100.0 %" in collection


# -- collections --------------------------------------------------------------------------------------------


def test_collection_edit_form(db: Session, web: Callable[[str], WebUser], world: World) -> None:
    from biobank.institutions.models import Collection

    owner = web("owner")
    url = f"/collections/{world.collection_a}"
    form = {"name": "Lung cohort 2", "acronym": "LC2", "status": "Active", "diseases": "C34, C18.7",
            "use_access_conditions": ["Collaboration", "Genetic data use"], "number_of_subjects": "120"}  # fmt: skip
    bad = owner.post(url, form | {"diseases": "C34, NOPE"})
    assert bad.status_code == 422 and "'NOPE' is not an ICD-10" in (
        field_error(bad.text, "collection", "diseases") or ""
    )
    assert 'value="Collaboration" checked' in bad.text
    assert owner.post(url, form | {"name": ""}).status_code == 422
    assert one(db, select(Collection.name).where(Collection.public_id == world.collection_a)) == "Lung cancer cohort"
    saved = owner.post(url, form)
    assert saved.status_code == 303
    page = owner.get(url).text
    assert "Collection saved." in page and "Lung cohort 2" in page and "Genetic data use" in page
    tech = web("tech")
    assert "Edit collection" not in tech.get(url).text
    assert tech.post(url, form | {"name": "Hijack"}).status_code == 403


# -- lists --------------------------------------------------------------------------------------------------


def test_list_pages_sort_page_and_filter(db: Session, web: Callable[[str], WebUser], world: World) -> None:
    collection = institutions.get_collection(db, world.collection_a)
    for n in range(30):
        make_specimen(db, collection, barcode=f"LST-{n:03d}", sample_type="Plasma" if n % 2 else "Serum")
    db.commit()
    owner = web("owner")
    page = owner.get("/specimens?sort=barcode&size=10&material=Plasma").text
    assert "Page 1 of 2" in page and "1–10 of 15" in page
    barcodes = re.findall(r"<code>(LST-\d+)</code>", page)
    assert barcodes == sorted(barcodes) and len(barcodes) == 10
    # Headers keep the filters and flip the order; the pager keeps sort and filters.
    assert 'href="?size=10&amp;material=Plasma&amp;sort=-barcode"' in page
    assert 'href="?sort=barcode&amp;size=10&amp;material=Plasma&amp;page=2"' in page
    assert 'aria-sort="ascending"' in page
    second = owner.get("/specimens?sort=barcode&size=10&material=Plasma&page=2").text
    assert "Page 2 of 2" in second and "LST-029" in second
    prefix = owner.get("/specimens?barcode=LST-01").text
    assert re.findall(r"<code>(LST-\d+)</code>", prefix) and all(
        b.startswith("LST-01") for b in re.findall(r"<code>(LST-\d+)</code>", prefix)
    )


def _statements(engine: Engine, fetch: Callable[[], Any]) -> int:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = fetch()
        assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len(seen)


def test_list_pages_do_not_grow_queries_with_rows(
    db: Session, engine: Engine, web: Callable[[str], WebUser], world: World
) -> None:
    biobank = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    box = make_box(db, world.biobank_a)
    owner = web("owner")

    def add(n: int, start: int) -> None:
        from biobank.specimens.schemas import Placement

        for i in range(start, start + n):
            donor = make_donor(db, biobank, diagnoses=[{"icd10": "C34.1"}, {"icd10": "I10"}])
            placement = Placement(box=box, position=f"{chr(ord('A') + i // 9)}{i % 9 + 1}")
            make_specimen(db, collection, donor=donor.public_id, status="stored", placement=placement)
        db.commit()

    urls = ["/specimens", "/donors", "/collections"]
    add(2, 0)
    few = {url: _statements(engine, lambda url=url: owner.get(url)) for url in urls}
    add(20, 2)
    many = {url: _statements(engine, lambda url=url: owner.get(url)) for url in urls}
    assert all(n > 3 for n in few.values()), few
    assert many == few


def test_label_sheets_are_audited(db: Session, web: Callable[[str], WebUser], world: World, records: Records) -> None:
    collection = institutions.get_collection(db, world.collection_a)
    second = make_specimen(db, collection, barcode="SER-0002").public_id
    db.commit()
    owner = web("owner")
    pdf = owner.get(f"/specimens/labels.pdf?ids={records.specimen}&ids=SER-0002")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]
    svg = owner.get(f"/specimens/labels.svg?ids={records.specimen},{second}")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"SER-0001" in svg.content and b"Serum" in svg.content
    assert audit_actions(db, "specimen.labels") == [[records.specimen, second]] * 2
    # Another biobank's member cannot print them, and nothing is audited for the attempt.
    refused = web("other").get(f"/specimens/labels.pdf?ids={records.specimen}")
    assert refused.status_code == 422 and not refused.content.startswith(b"%PDF")
    assert owner.get("/specimens/labels.pdf").status_code == 422
    assert len(audit_actions(db, "specimen.labels")) == 2


def test_home_page_charts(web: Callable[[str], WebUser], records: Records) -> None:
    page = web("owner").get("/").text
    assert "/static/vendor/chart.umd.min.js" in page
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, re.S)
    assert data and '"processed": 1' in data.group(1) and '"Serum": 1' in data.group(1)
