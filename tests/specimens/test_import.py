"""Bulk import: every mistake reported by row and column with nothing written, XLSX, idempotency,
atomicity, the API for the three personas (and a viewer), and the CLI."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.donors.models import Donor, DonorVault
from biobank.institutions import service as institutions
from biobank.specimens import importer
from biobank.specimens.importer import COLUMN_NAMES, ImportInvalid
from biobank.specimens.importer_io import Table, read_table
from biobank.specimens.models import Specimen, SpecimenEvent
from biobank.storage import service as storage
from biobank.storage.models import StorageUnit, UnitKind
from biobank.storage.schemas import UnitCreate
from tests.conftest import World
from tests.factories import hours_ago, make_donor, make_specimen, make_token, make_user, system

HEADER = [
    "barcode", "collection", "sample_type", "donor_patient_id", "donor_sex", "donor_birth_year", "parent_barcode",
    "collected_at", "processed_at", "frozen_at", "container", "diagnosis", "quantity", "quantity_unit",
    "storage_temperature", "box", "position",
]


def iso(hours: float) -> str:
    return hours_ago(hours).isoformat(timespec="seconds")


def row(barcode: str, collection: str, **values: Any) -> dict[str, Any]:
    base = {
        "barcode": barcode,
        "collection": collection,
        "sample_type": "Serum",
        "collected_at": iso(30),
        "processed_at": iso(29),
        "frozen_at": iso(28),
        "container": "SST",
        "diagnosis": "C34.1",
        "quantity": "2",
        "quantity_unit": "mL",
        "storage_temperature": "-80",
    }
    return base | values


def to_csv(rows: list[dict[str, Any]], header: list[str] = HEADER, delimiter: str = ",", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k, "") for k in header})
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode()


def make_box(db: Session, biobank_code: str, name: str = "B001") -> StorageUnit:
    actor = system()
    site = storage.create_unit(db, actor, UnitCreate(kind=UnitKind.SITE, name=f"Site {name}", biobank=biobank_code))
    freezer = storage.create_unit(
        db, actor, UnitCreate(kind=UnitKind.FREEZER, name="F01", parent=site.public_id, temperature="-80")
    )
    rack = storage.create_unit(db, actor, UnitCreate(kind=UnitKind.RACK, name="R01", parent=freezer.public_id))
    return storage.create_unit(
        db, actor, UnitCreate(kind=UnitKind.BOX, name=name, parent=rack.public_id, rows=9, cols=9)
    )


def counts(db: Session) -> tuple[int, int, int]:
    db.rollback()
    specimens = db.execute(select(func.count()).select_from(Specimen)).scalar_one()
    donors = db.execute(select(func.count()).select_from(Donor)).scalar_one()
    events = db.execute(select(func.count()).select_from(SpecimenEvent)).scalar_one()
    db.rollback()  # SQLite: do not keep the write lock the import under test needs
    return specimens, donors, events


@pytest.fixture
def box(db: Session, world: World) -> StorageUnit:
    unit = make_box(db, world.biobank_a)
    db.commit()
    return unit


def test_template_file_matches_the_documented_columns() -> None:
    template = Path(importer.__file__).parent / "templates_data" / "specimen-import-template.csv"
    table = read_table(template.read_bytes(), template.name)
    assert table.columns == list(COLUMN_NAMES)
    assert len(table.rows) == 2
    docs = (Path(__file__).parents[2] / "docs" / "import-template.md").read_text()
    for name in COLUMN_NAMES:
        assert f"`{name}`" in docs


def test_valid_file_creates_donors_specimens_lineage_and_places(db: Session, world: World, box: StorageUnit) -> None:
    col = world.collection_a
    rows = [
        row("SER-0001", col, donor_patient_id="MRN-1", donor_sex="Female", donor_birth_year="1961",
            box=box.public_id, position="A1"),
        row("SER-0001-01", col, parent_barcode="SER-0001", quantity="500", quantity_unit="µL",
            box=box.path, position="A2"),
        row("SER-0001-02", col, parent_barcode="SER-0001", quantity="0.5", quantity_unit="mL"),
        row("SER-0002", col, donor_patient_id="MRN-1", donor_sex="Female"),
    ]
    report = importer.run_import(db, system(), world.biobank_a, read_table(to_csv(rows), "f.csv"), dry_run=False)
    db.commit()
    assert (report.rows, report.created, report.unchanged, report.errors, report.donors_created) == (4, 4, 0, 0, 1)
    specimens = {s.barcode: s for s in db.scalars(select(Specimen))}
    parent, child = specimens["SER-0001"], specimens["SER-0001-01"]
    assert child.parent_id == parent.id and child.lineage == "aliquot"
    assert child.donor_id == parent.donor_id == specimens["SER-0002"].donor_id
    assert parent.quantity == pytest.approx(1.0)  # 2 mL - 0.5 mL - 500 µL
    assert parent.status == "stored" and specimens["SER-0002"].status == "received"
    assert (parent.row, parent.col, child.row, child.col) == (1, 1, 1, 2)
    assert parent.sprec_code is not None and parent.sprec_code.startswith("SER-SST-")
    assert parent.storage_temperature == "−60 °C to −85 °C"
    assert parent.public_id.startswith("CN-SH-H01:SPC-")
    db.refresh(box)
    assert box.occupied == 2
    donor = db.scalars(select(Donor)).one()
    assert (donor.sex, donor.birth_year) == ("Female", 1961)
    assert donor.pseudonym != "MRN-1" and db.get(DonorVault, donor.id) is not None
    assert db.execute(select(func.count()).select_from(SpecimenEvent)).scalar_one() == 4


def test_every_kind_of_mistake_is_reported_by_row_and_column_and_nothing_is_written(
    db: Session, world: World, box: StorageUnit
) -> None:
    col = world.collection_a
    collection_b = institutions.get_collection(db, world.collection_b)
    existing = make_specimen(db, institutions.get_collection(db, col), barcode="IN-DB-0001")
    make_specimen(db, collection_b, barcode="IN-B-0001")
    make_box_b = make_box(db, world.biobank_b, "BOX-B")
    db.execute(
        Specimen.__table__.update().where(Specimen.id == existing.id).values(box_id=box.id, row=9, col=9)
    )
    db.commit()
    rows = [
        row("GOOD-0001", col),  # 2
        row("BAD-COLL", "NOPE"),  # 3
        row("BAD-DONOR", col, donor_patient_id="MRN-UNKNOWN"),  # 4 (no sex: not registered)
        row("BAD-PARENT", col, parent_barcode="NO-SUCH"),  # 5
        row("BAD-BOX", col, box="no-such-box", position="A1"),  # 6
        row("BAD-ICD", col, diagnosis="X99.9"),  # 7
        row("BAD-SPREC", col, container="SST"),  # 8 (sprec set below)
        row("BAD-DATE", col, collected_at="2026-01-31", processed_at="", frozen_at=""),  # 9
        row("BAD-ORDER", col, collected_at=iso(5), processed_at=iso(6), frozen_at=iso(7)),  # 10
        row("BAD-FUTURE", col, collected_at=iso(-48), processed_at="", frozen_at=""),  # 11
        row("BAD-QTY", col, quantity="-1"),  # 12
        row("GOOD-0001", col),  # 13 duplicate in file
        {"barcode": "IN-DB-0001", "collection": col, "sample_type": "serum", "quantity": "7", "quantity_unit": "mL"},
        row("POS-0001", col, box=box.public_id, position="B1"),  # 15
        row("POS-0002", col, box=box.public_id, position="B1"),  # 16 two rows, one position
        row("POS-0003", col, box=box.public_id, position="I9"),  # 17 occupied in the database
        row("PARENT-1", col, quantity="1"),  # 18
        row("CHILD-1", col, parent_barcode="PARENT-1", quantity="0.6"),  # 19
        row("CHILD-2", col, parent_barcode="PARENT-1", quantity="0.6"),  # 20 over-draws the parent
        row("BAD-TYPE", col, sample_type="Blood plasma"),  # 21
        row("BAD-TIME", col, collected_at="2026-01-31T09:30:00", processed_at="", frozen_at=""),  # 22 no zone
        row("IN-B-0001", col),  # 23 barcode of another biobank
        row("BOX-OTHER", col, box=make_box_b.public_id, position="A1"),  # 24 box of another biobank
        row("BAD-CONTAINER", col, container="TUBE"),  # 25
    ]
    header = [*HEADER, "sprec_code"]
    rows[6]["sprec_code"] = "SER-SST-A-Q-N-B-X"
    before = counts(db)
    with pytest.raises(ImportInvalid) as caught:
        importer.run_import(db, system(), world.biobank_a, read_table(to_csv(rows, header), "f.csv"), dry_run=False)
    db.rollback()
    report = caught.value.report
    found = {(e.row, e.column) for e in report.entries}
    expected = {
        (3, "collection"),
        (4, "donor_patient_id"),
        (5, "parent_barcode"),
        (6, "box"),
        (7, "diagnosis"),
        (8, "sprec_code"),
        (9, "collected_at"),
        (10, "processed_at"),
        (11, "collected_at"),
        (12, "quantity"),
        (13, "barcode"),
        (14, "quantity"),
        (16, "position"),
        (17, "position"),
        (20, "quantity"),
        (21, "sample_type"),
        (22, "collected_at"),
        (23, "barcode"),
        (24, "box"),
        (25, "container"),
    }
    assert expected <= found, sorted(expected - found)
    assert not {r for r, _ in found} & {2, 15, 18, 19}, "valid rows must not be reported"
    messages = {(e.row, e.column): e.message for e in report.entries}
    assert "repeats row 2" in messages[(13, "barcode")]
    assert messages[(14, "quantity")] == "barcode exists with different data (column quantity differs)"
    assert "row 15" in messages[(16, "position")]
    assert "in the future" in messages[(11, "collected_at")]
    assert "time zone" in messages[(22, "collected_at")]
    assert "date alone" in messages[(9, "collected_at")]
    assert report.errors == len(report.entries) and report.to_create == 0
    assert counts(db) == before
    body = caught.value.to_dict()
    assert body["error"] == "ImportInvalid" and body["report"]["errors"] == report.errors
    assert {"loc": ["diagnosis"], "msg": messages[(7, "diagnosis")], "row": 7, "value": "X99.9"} in body["detail"]


def test_unknown_and_missing_columns_are_named(db: Session, world: World) -> None:
    data = b"barcode,sample_type,colour\nX-0001,Serum,red\n"
    report = importer.validate(db, system(), world.biobank_a, read_table(data, "f.csv"))
    messages = " ".join(e.message for e in report.entries)
    assert "colour" in messages and "collection" in messages
    assert all(e.row == 1 for e in report.entries)


def test_semicolon_csv_with_bom_and_timezone_option(db: Session, world: World) -> None:
    rows = [row("TZ-0001", world.collection_a, collected_at="2026-01-10T08:00:00", processed_at="", frozen_at="")]
    data = to_csv(rows, delimiter=";", bom=True)
    table = read_table(data, "f.csv")
    assert table.columns[0] == "barcode"
    with pytest.raises(ImportInvalid):
        importer.run_import(db, system(), world.biobank_a, table, dry_run=True)
    importer.run_import(db, system(), world.biobank_a, table, dry_run=False, timezone="Asia/Shanghai")
    db.commit()
    specimen = db.scalars(select(Specimen).where(Specimen.barcode == "TZ-0001")).one()
    assert specimen.collected_at is not None and specimen.collected_at.hour == 0  # 08:00 in Shanghai is 00:00 UTC


def test_xlsx_import(db: Session, world: World, tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for r in [row("XL-0001", world.collection_a, quantity=2.5), row("XL-0002", world.collection_a, quantity=1)]:
        sheet.append([r.get(k) for k in HEADER])
    sheet.append([None] * len(HEADER))
    dna = {"barcode": "XL-0003", "collection": world.collection_a, "sample_type": "DNA", "diagnosis": "C50.9"}
    sheet.append([(dna | {"quantity": -3, "quantity_unit": "µg"}).get(k) for k in HEADER])
    path = tmp_path / "specimens.xlsx"
    workbook.save(path)
    table = read_table(path.read_bytes(), path.name)
    report = importer.validate(db, system(), world.biobank_a, table)
    assert [(e.row, e.column) for e in report.entries] == [(5, "quantity")]  # row 4 is empty
    sheet.delete_rows(5)
    workbook.save(path)
    report = importer.run_import(db, system(), world.biobank_a, read_table(path.read_bytes(), "x.xlsx"), dry_run=False)
    db.commit()
    assert report.created == 2
    assert db.scalars(select(Specimen.quantity).where(Specimen.barcode == "XL-0001")).one() == 2.5


def test_reimport_is_idempotent_and_a_changed_row_is_an_error(db: Session, world: World, box: StorageUnit) -> None:
    rows = [
        row("ID-0001", world.collection_a, donor_patient_id="MRN-9", donor_sex="Male", box=box.public_id,
            position="C3"),
        row("ID-0001-01", world.collection_a, parent_barcode="ID-0001", quantity="1"),
    ]
    data = to_csv(rows)
    first = importer.run_import(db, system(), world.biobank_a, read_table(data, "f.csv"), dry_run=False)
    db.commit()
    assert first.created == 2
    before = counts(db)
    again = importer.run_import(db, system(), world.biobank_a, read_table(data, "f.csv"), dry_run=False)
    db.commit()
    assert (again.created, again.unchanged, again.errors) == (0, 2, 0)
    assert counts(db) == before
    rows[0]["diagnosis"] = "C50.9"
    with pytest.raises(ImportInvalid) as caught:
        importer.run_import(db, system(), world.biobank_a, read_table(to_csv(rows), "f.csv"), dry_run=False)
    (entry,) = caught.value.report.entries
    assert (entry.row, entry.column) == (2, "diagnosis")
    assert entry.message == "barcode exists with different data (column diagnosis differs)"


def test_an_error_in_the_last_row_leaves_the_database_untouched(db: Session, world: World) -> None:
    rows = [row(f"AT-{i:04d}", world.collection_a, donor_patient_id=f"P{i}", donor_sex="Male") for i in range(300)]
    rows[-1]["diagnosis"] = "not-a-code"
    before = counts(db)
    with pytest.raises(ImportInvalid) as caught:
        importer.run_import(db, system(), world.biobank_a, Table.from_dicts(rows), dry_run=False)
    assert [(e.row, e.column) for e in caught.value.report.entries] == [(301, "diagnosis")]
    db.rollback()
    assert counts(db) == before


def test_existing_donor_by_patient_id_and_public_id(db: Session, world: World) -> None:
    bb = institutions.get_biobank(db, world.biobank_a)
    donor = make_donor(db, bb, patient_id="MRN-EXIST", sex="Male", birth_year=1950)
    db.commit()
    rows = [
        row("DN-0001", world.collection_a, donor_patient_id="MRN-EXIST"),
        {**row("DN-0002", world.collection_a), "donor": donor.public_id},
        row("DN-0003", world.collection_a, donor_patient_id="MRN-EXIST", donor_sex="Female"),
    ]
    report = importer.validate(db, system(), world.biobank_a, Table.from_dicts(rows, columns=[*HEADER, "donor"]))
    assert [(e.row, e.column) for e in report.entries] == [(4, "donor_sex")]
    assert "MRN" not in " ".join(str(e.value) + e.message for e in report.entries)
    report = importer.run_import(db, system(), world.biobank_a, Table.from_dicts(rows[:2]), dry_run=False)
    assert report.created == 2 and report.donors_created == 0


# -- API ---------------------------------------------------------------------------------------------------


def _post(persona: Any, biobank: str, data: bytes, *, dry_run: bool, name: str = "f.csv") -> Any:
    return persona.post(
        f"/api/v1/imports/specimens?biobank={biobank}&dry_run={'true' if dry_run else 'false'}",
        files={"file": (name, data, "text/csv")},
    )


def test_api_owner_imports_others_get_404_and_a_viewer_403(db: Session, world: World, client: TestClient) -> None:
    data = to_csv([row("API-0001", world.collection_a), row("API-0002", world.collection_a)])
    dry = _post(world.owner, world.biobank_a, data, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["to_create"], dry.json()["created"]) == (2, 0)
    assert counts(db)[0] == 0
    for persona in (world.other, world.outsider):
        response = _post(persona, world.biobank_a, data, dry_run=False)
        assert response.status_code == 404 and response.json()["error"] == "BiobankNotFound"
    viewer = make_user(db, "viewer", role="viewer", biobank=institutions.get_biobank(db, world.biobank_a))
    token = make_token(db, viewer)
    db.commit()
    response = client.post(
        f"/api/v1/imports/specimens?biobank={world.biobank_a}&dry_run=false",
        files={"file": ("f.csv", data, "text/csv")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert counts(db)[0] == 0
    done = _post(world.owner, world.biobank_a, data, dry_run=False)
    assert done.status_code == 200 and done.json()["created"] == 2
    assert counts(db)[0] == 2
    again = _post(world.technician, world.biobank_a, data, dry_run=False)
    assert again.json()["unchanged"] == 2


def test_api_errors_are_422_with_the_report(db: Session, world: World) -> None:
    data = to_csv([row("E-0001", world.collection_a), row("E-0002", world.collection_a, quantity="-2")])
    response = _post(world.owner, world.biobank_a, data, dry_run=False)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "ImportInvalid"
    assert [(e["row"], e["column"]) for e in body["report"]["entries"]] == [(3, "quantity")]
    assert counts(db)[0] == 0


def test_api_upload_limit_is_413(world: World, app: Any) -> None:
    app.state.max_upload_bytes = 100
    response = _post(world.owner, world.biobank_a, b"x" * 100_000, dry_run=True)
    assert response.status_code == 413
    assert response.json()["error"] == "TooLarge"


# -- CLI ---------------------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> Iterator[Any]:
    from typer.testing import CliRunner

    import biobank.cli

    if not any(group.name == "import" for group in biobank.cli.app.registered_groups):
        biobank.cli._register_subcommands()
    yield lambda *args: CliRunner().invoke(biobank.cli.app, list(args))


def test_cli_imports_and_exits_2_on_errors(db: Session, world: World, tmp_path: Path, cli: Any) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(to_csv([row("CLI-0001", world.collection_a), row("CLI-0002", world.collection_a)]))
    result = cli("import", "specimens", str(good), "--biobank", world.biobank_a, "--dry-run")
    assert result.exit_code == 0, result.output
    assert counts(db)[0] == 0
    result = cli("import", "specimens", str(good), "--biobank", world.biobank_a)
    assert result.exit_code == 0, result.output
    assert "imported 2 specimens" in result.stdout
    assert counts(db)[0] == 2
    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv([row("CLI-0003", world.collection_a), row("CLI-0004", world.collection_a, diagnosis="Q")]))
    result = cli("import", "specimens", str(bad), "--biobank", world.biobank_a)
    assert result.exit_code == 2
    assert "row 3, diagnosis [Q]" in result.stderr
    assert counts(db)[0] == 2


def test_demo_sized_import_is_fast_enough(db: Session, world: World) -> None:
    """A smoke test of the bulk path (the real figures are in bench/bench_import.py)."""
    import time

    rows = [
        row(f"FAST-{i:06d}", world.collection_a, donor_patient_id=f"PX{i // 4}", donor_sex="Female")
        for i in range(5_000)
    ]
    table = Table.from_dicts(rows)
    started = time.perf_counter()
    report = importer.run_import(db, system(), world.biobank_a, table, dry_run=False)
    db.commit()
    assert report.created == 5_000 and report.donors_created == 1_250
    assert time.perf_counter() - started < 10


# -- web ---------------------------------------------------------------------------------------------------


def test_web_import_checks_then_imports_the_same_file(db: Session, world: World, client: TestClient) -> None:
    import re

    from tests.factories import PASSWORD

    assert client.get("/import", follow_redirects=False).status_code == 303
    assert client.post("/login", data={"username": "owner", "password": PASSWORD}).status_code == 200
    page = client.get("/import")
    assert page.status_code == 200 and "/import/template.csv" in page.text and "/import/help" in page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    csrf = match.group(1)
    bad = to_csv([row("WEB-0001", world.collection_a, diagnosis="nope")])
    report = client.post("/import", data={"csrf_token": csrf, "biobank": world.biobank_a},
                         files={"file": ("bad.csv", bad, "text/csv")})
    assert report.status_code == 200 and "nothing was imported" in report.text and "nope" in report.text
    assert 'name="token"' not in report.text
    good = to_csv([row("WEB-0001", world.collection_a), row("WEB-0002", world.collection_a)])
    forged = client.post("/import", data={"csrf_token": "forged", "biobank": world.biobank_a},
                         files={"file": ("good.csv", good, "text/csv")})
    assert forged.status_code == 403
    report = client.post("/import", data={"csrf_token": csrf, "biobank": world.biobank_a},
                         files={"file": ("good.csv", good, "text/csv")})
    assert report.status_code == 200 and "Import 2 specimens" in report.text
    assert counts(db)[0] == 0
    token = re.search(r'name="token" value="([^"]+)"', report.text)
    assert token is not None
    done = client.post("/import/confirm", data={"csrf_token": csrf, "token": token.group(1)}, follow_redirects=False)
    assert done.status_code == 303
    assert counts(db)[0] == 2
    assert "Imported 2 specimens" in client.get("/import").text
    again = client.post("/import/confirm", data={"csrf_token": csrf, "token": token.group(1)})
    assert "no longer here" in again.text and counts(db)[0] == 2  # the upload was deleted after the import
    assert client.get("/import/template.csv").text.startswith("barcode,collection,sample_type")
    assert "donor_patient_id" in client.get("/import/help").text
