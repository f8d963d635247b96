"""Export: the import template's columns without patient ids, CSV and XLSX, audited, scoped to what
the caller may see, and an export imported again is all "unchanged"."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.audit.models import AuditEntry
from biobank.institutions import service as institutions
from biobank.specimens import export, importer
from biobank.specimens.importer_io import read_table
from tests.conftest import World
from tests.factories import make_specimen, system
from tests.specimens.test_import import make_box, row, to_csv

HEADER = [
    "barcode", "collection", "sample_type", "donor_patient_id", "donor_sex", "donor_birth_year", "parent_barcode",
    "lineage", "collected_at", "received_at", "processed_at", "frozen_at", "container", "diagnosis",
    "anatomical_site", "quantity", "quantity_unit", "concentration", "concentration_unit", "storage_temperature",
    "box", "position", "notes", "status",
]


@pytest.fixture
def cli() -> Any:
    from typer.testing import CliRunner

    import biobank.cli

    if not any(group.name == "export" for group in biobank.cli.app.registered_groups):
        biobank.cli._register_subcommands()
    return lambda *args: CliRunner().invoke(biobank.cli.app, list(args))


def _populate(db: Session, world: World) -> None:
    box = make_box(db, world.biobank_a)
    db.commit()
    col = world.collection_a
    rows = [
        row("EX-0001", col, donor_patient_id="MRN-EX-1", donor_sex="Female", donor_birth_year="1970",
            box=box.public_id, position="A1", anatomical_site="C34.1", notes='says "hello", twice\nsecond line'),
        row("EX-0001-01", col, parent_barcode="EX-0001", quantity="0.25", box=box.public_id, position="A2"),
        row("EX-0001-DNA", col, parent_barcode="EX-0001", lineage="derivative", sample_type="DNA", quantity="12.5",
            quantity_unit="µg", concentration="48.1", concentration_unit="ng/µL", status="processed"),
        row("EX-0002", col, donor_patient_id="MRN-EX-2", donor_sex="Male", collected_at="", processed_at="",
            frozen_at=""),
    ]
    importer.run_import(db, system(), world.biobank_a, read_table(to_csv(rows, HEADER), "f.csv"), dry_run=False)
    make_specimen(db, institutions.get_collection(db, world.collection_b), barcode="OTHER-0001")
    db.commit()


def test_round_trip_csv_is_all_unchanged(db: Session, world: World, tmp_path: Path) -> None:
    _populate(db, world)
    target = tmp_path / "export.csv"
    n = export.write_file(db, system(), target, export.ExportFormat.CSV, biobank=world.biobank_a)
    db.commit()
    assert n == 4
    table = read_table(target.read_bytes(), target.name)
    assert "donor_patient_id" not in table.columns and "donor" in table.columns
    assert "MRN-EX" not in target.read_text(encoding="utf-8-sig")
    report = importer.run_import(db, system(), world.biobank_a, table, dry_run=False)
    assert (report.rows, report.unchanged, report.created, report.errors) == (4, 4, 0, 0)
    parent = next(cells for _, cells in table.rows if cells[0] == "EX-0001")
    assert parent[table.columns.index("quantity")] == "1.75"  # 2 mL less the 0.25 mL aliquot


def test_round_trip_xlsx(db: Session, world: World, tmp_path: Path) -> None:
    _populate(db, world)
    target = tmp_path / "export.xlsx"
    assert export.write_file(db, system(), target, export.ExportFormat.XLSX, collection=world.collection_a) == 4
    report = importer.validate(db, system(), world.biobank_a, read_table(target.read_bytes(), target.name))
    assert (report.unchanged, report.errors) == (4, 0), report.entries


def test_api_export_is_scoped_and_audited(db: Session, world: World) -> None:
    _populate(db, world)
    response = world.owner.get(f"/api/v1/exports/specimens?collection={world.collection_a}")
    assert response.status_code == 200
    assert response.headers["x-row-count"] == "4"
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("barcode,collection,sample_type")
    assert not any("OTHER-0001" in line for line in lines)
    everything = world.owner.get("/api/v1/exports/specimens")
    assert everything.headers["x-row-count"] == "4"  # only biobank A's specimens are visible to its manager
    for persona in (world.other, world.outsider):
        assert persona.get(f"/api/v1/exports/specimens?collection={world.collection_a}").status_code == 404
        assert persona.get(f"/api/v1/exports/specimens?biobank={world.biobank_a}").status_code == 404
    assert world.outsider.get("/api/v1/exports/specimens").headers["x-row-count"] == "0"
    xlsx = world.owner.get(f"/api/v1/exports/specimens?biobank={world.biobank_a}&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    db.rollback()
    audited = db.scalars(select(AuditEntry).where(AuditEntry.action == "specimen.export")).all()
    assert len(audited) == 4  # refused requests leave no entry; their transaction is rolled back


def test_export_cli(db: Session, world: World, tmp_path: Path, cli: Any) -> None:
    _populate(db, world)
    target = tmp_path / "out.csv"
    result = cli("export", "specimens", "--biobank", world.biobank_a, "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "4 specimens" in result.output
    assert len(read_table(target.read_bytes(), "out.csv").rows) == 4
    result = cli("export", "specimens", "--collection", world.collection_a)
    assert result.exit_code == 0
    assert len(read_table(io.BytesIO(result.stdout_bytes).getvalue(), "x.csv").rows) == 4


def test_import_after_export_of_other_biobank_is_refused(db: Session, world: World, tmp_path: Path) -> None:
    _populate(db, world)
    target = tmp_path / "export.csv"
    export.write_file(db, system(), target, export.ExportFormat.CSV, biobank=world.biobank_a)
    report = importer.validate(db, system(), world.biobank_b, read_table(target.read_bytes(), target.name))
    assert report.errors >= 4
    assert {e.column for e in report.entries} >= {"barcode"}
