"""Export of specimens in the import template's columns (CSV or XLSX), streamed in id order.

The export reads back through the importer unchanged: every row of an export, imported again, is
"unchanged". Hospital patient ids are never exported; the donor's public id is.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.donors.models import Donor
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.errors import NotFound
from biobank.specimens.importer import COLUMN_NAMES
from biobank.specimens.models import Specimen

EXPORT_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMN_NAMES if c != "donor_patient_id")
CHUNK = 5_000


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


_SOURCE = (
    Specimen.id, Specimen.barcode, Specimen.collection_id, Specimen.donor_id, Specimen.parent_id, Specimen.lineage,
    Specimen.sample_type, Specimen.detailed_type, Specimen.sprec_code, Specimen.container, Specimen.anatomical_site,
    Specimen.diagnosis, Specimen.collected_at, Specimen.received_at, Specimen.processed_at, Specimen.frozen_at,
    Specimen.quantity, Specimen.quantity_unit, Specimen.concentration, Specimen.concentration_unit,
    Specimen.freeze_thaw_count, Specimen.storage_temperature, Specimen.status, Specimen.box_id, Specimen.row,
    Specimen.col, Specimen.notes,
)
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _scope(
    session: Session, principal: Principal, *, biobank: str | None, collection: str | None
) -> list[Any]:
    """The WHERE criteria of an export: visible specimens, optionally of one biobank and/or collection."""
    criteria: list[Any] = []
    ids = principal.visible_biobank_ids()
    if ids is not None:
        criteria.append(Specimen.biobank_id.in_(ids))
    if biobank:
        try:
            found = institutions.get_biobank(session, biobank)
        except NotFound:
            found = None
        if found is None or not principal.can_read(found.id):
            raise NotFound(f"no biobank {biobank!r}", name="BiobankNotFound")
        criteria.append(Specimen.biobank_id == found.id)
    if collection:
        try:
            chosen = institutions.get_collection(session, collection)
        except NotFound:
            chosen = None
        if chosen is None or not principal.can_read(chosen.biobank_id):
            raise NotFound(f"no collection {collection!r}", name="CollectionNotFound")
        criteria.append(Specimen.collection_id == chosen.id)
    return criteria


def count(session: Session, principal: Principal, *, biobank: str | None = None, collection: str | None = None) -> int:
    """How many specimens an export with these filters holds."""
    criteria = _scope(session, principal, biobank=biobank, collection=collection)
    return session.execute(select(func.count()).select_from(Specimen).where(*criteria)).scalar_one()


def record_export(
    session: Session, principal: Principal, n: int, *, biobank: str | None, collection: str | None, fmt: str
) -> None:
    """Audit an export (in the caller's transaction): who, what filters, how many rows."""
    audit.record(
        session,
        principal,
        "specimen.export",
        "specimen",
        [],
        details={"biobank": biobank, "collection": collection, "format": fmt, "count": n},
    )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def rows(
    session: Session,
    principal: Principal,
    *,
    biobank: str | None = None,
    collection: str | None = None,
    on_chunk: Callable[[], object] | None = None,
) -> Iterator[list[str]]:
    """The header, then one row per specimen in id order (parents before their children).

    `on_chunk` runs after each block of rows is read and before it is yielded (e.g. to end the read
    transaction while a slow client consumes the rows).
    """
    from biobank.storage import service as storage

    criteria = _scope(session, principal, biobank=biobank, collection=collection)
    yield list(EXPORT_COLUMNS)
    collections: dict[int, str] = {}
    boxes: dict[int, Any] = {}
    last_id = 0
    while True:
        chunk: Sequence[Any] = session.execute(
            select(*_SOURCE).where(Specimen.id > last_id, *criteria).order_by(Specimen.id).limit(CHUNK)
        ).all()
        if not chunk:
            return
        last_id = chunk[-1].id
        missing = sorted({s.collection_id for s in chunk} - collections.keys())
        collections.update({i: c.public_id for i, c in institutions.collections_by_ids(session, missing).items()})
        missing = sorted({s.box_id for s in chunk if s.box_id is not None} - boxes.keys())
        for box_id, unit in storage.boxes_by_ids(session, missing).items():
            session.expunge(unit)  # kept across chunks: a rollback between them must not expire it
            boxes[box_id] = unit
        donors = _donors(session, sorted({s.donor_id for s in chunk if s.donor_id is not None}))
        parents = _barcodes(session, sorted({s.parent_id for s in chunk if s.parent_id is not None}))
        if on_chunk is not None:
            on_chunk()
        for s in chunk:
            donor = donors.get(s.donor_id) if s.donor_id is not None else None
            box = boxes.get(s.box_id) if s.box_id is not None else None
            values = {
                "barcode": s.barcode,
                "collection": collections[s.collection_id],
                "sample_type": s.sample_type,
                "detailed_type": s.detailed_type,
                "donor_sex": donor.sex if donor is not None else "",
                "donor_birth_year": str(donor.birth_year) if donor is not None and donor.birth_year else "",
                "donor": donor.public_id if donor is not None else "",
                "parent_barcode": parents.get(s.parent_id, "") if s.parent_id is not None else "",
                "lineage": s.lineage,
                "collected_at": s.collected_at.isoformat() if s.collected_at else "",
                "received_at": s.received_at.isoformat() if s.received_at else "",
                "processed_at": s.processed_at.isoformat() if s.processed_at else "",
                "frozen_at": s.frozen_at.isoformat() if s.frozen_at else "",
                "container": s.container or "",
                "sprec_code": s.sprec_code or "",
                "anatomical_site": s.anatomical_site or "",
                "diagnosis": s.diagnosis or "",
                "quantity": _number(s.quantity),
                "quantity_unit": s.quantity_unit or "",
                "concentration": _number(s.concentration),
                "concentration_unit": s.concentration_unit or "",
                "freeze_thaw_count": str(s.freeze_thaw_count),
                "storage_temperature": s.storage_temperature or "",
                "status": s.status,
                "box": box.public_id if box is not None else "",
                "position": storage.position_label(box, s.row, s.col) if box is not None and s.row and s.col else "",
                "notes": s.notes,
            }
            yield [str(values[c]) for c in EXPORT_COLUMNS]


def _donors(session: Session, ids: Sequence[int]) -> dict[int, Any]:
    if not ids:
        return {}
    stmt = select(Donor.id, Donor.public_id, Donor.sex, Donor.birth_year).where(Donor.id.in_(list(ids)))
    return {row.id: row for row in session.execute(stmt)}


def _barcodes(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Specimen.id, Specimen.barcode).where(Specimen.id.in_(list(ids))))
    return {row_id: barcode for row_id, barcode in rows}


def csv_chunks(lines: Iterator[list[str]], *, rows_per_chunk: int = 1_000) -> Iterator[bytes]:
    """CSV bytes (UTF-8 with BOM, so spreadsheet programs read it right), a block of rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    yield "\ufeff".encode()
    pending = 0
    for line in lines:
        writer.writerow(line)
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode()


def write_xlsx(lines: Iterator[list[str]], target: IO[bytes] | Path) -> int:
    """Write rows into a one-sheet workbook (openpyxl write-only mode); returns the data rows written."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("specimens")
    written = -1
    for line in lines:
        sheet.append(line)
        written += 1
    workbook.save(target)
    return max(written, 0)


def write_file(
    session: Session,
    principal: Principal,
    target: Path,
    fmt: ExportFormat,
    *,
    biobank: str | None = None,
    collection: str | None = None,
) -> int:
    """Export into a file (audited with its row count); returns how many specimens were written."""
    lines = rows(session, principal, biobank=biobank, collection=collection)
    if fmt is ExportFormat.XLSX:
        n = write_xlsx(lines, target)
    else:
        counter = [0]
        with target.open("wb") as handle:
            for block in csv_chunks(_counting(lines, counter)):
                handle.write(block)
        n = counter[0] - 1
    record_export(session, principal, max(n, 0), biobank=biobank, collection=collection, fmt=fmt.value)
    return max(n, 0)


def _counting(lines: Iterator[list[str]], counter: list[int]) -> Iterator[list[str]]:
    for line in lines:
        counter[0] += 1
        yield line


def xlsx_tempfile(lines: Iterator[list[str]]) -> Path:
    """An XLSX export in a temporary file (the caller streams it and deletes it)."""
    handle = tempfile.NamedTemporaryFile(prefix="biobank-export-", suffix=".xlsx", delete=False)  # noqa: SIM115
    handle.close()
    path = Path(handle.name)
    write_xlsx(lines, path)
    return path
