"""Bulk import plumbing: reading CSV/XLSX files into rows, and writing prepared rows fast.

Reading keeps the file's own row numbers (the header is row 1) so every problem can be reported
where the user will find it. Writing goes straight to the driver inside the caller's transaction:
``executemany`` on SQLite and ``COPY`` on PostgreSQL, with values already in the form the column
stores (see ``TimeFormatter``), because per-value type processing would cost more than the insert.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, column, func, insert, select, table, text, update
from sqlalchemy.orm import Session

from biobank.kit.db import Base
from biobank.kit.errors import Conflict, FieldError, Invalid

XLSX_MAGIC = b"PK\x03\x04"
DELIMITERS = (",", ";", "\t")
CHUNK = 10_000


@dataclass
class Table:
    """A file read into rows: the header (row 1) and each data row with its row number in the file."""

    columns: list[str]
    rows: list[tuple[int, list[str]]]
    sha256: str = ""
    filename: str = ""
    issues: list[FieldError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_dicts(cls, records: Iterable[dict[str, Any]], *, columns: Sequence[str] | None = None) -> Table:
        """Rows given as dicts (row numbers count from 2, as if row 1 were a header)."""
        records = list(records)
        names = list(columns) if columns is not None else list(dict.fromkeys(k for r in records for k in r))
        rows = [(i + 2, [_cell_text(r.get(n)) for n in names]) for i, r in enumerate(records)]
        return cls(columns=names, rows=rows)


def read_table(data: bytes, filename: str = "") -> Table:
    """Read a CSV (UTF-8, with or without BOM; comma, semicolon or tab) or an XLSX workbook."""
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(XLSX_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm")):
        result = _read_xlsx(data)
    else:
        result = _read_csv(data)
    result.sha256 = digest
    result.filename = filename
    return result


def _read_csv(data: bytes) -> Table:
    try:
        text_data = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(
            [FieldError(["file"], f"not UTF-8 text (byte {exc.start}); save the sheet as 'CSV UTF-8'", row=1)]
        ) from None
    first_line = text_data.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text_data, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid([FieldError(["file"], "the file is empty; the first row must name the columns", row=1)]) from None
    columns = [h.strip() for h in header]
    width = len(columns)
    rows: list[tuple[int, list[str]]] = []
    issues: list[FieldError] = []
    append = rows.append
    last_line = reader.line_num
    try:
        for cells in reader:
            start = last_line + 1
            last_line = reader.line_num
            if not cells:
                continue
            if len(cells) != width:
                fitted = _fit(cells, width, start, issues)
                if fitted is None:
                    continue
                cells = fitted
            append((start, cells))
    except csv.Error as exc:
        raise Invalid([FieldError(["file"], f"the CSV cannot be read: {exc}", row=reader.line_num)]) from None
    return Table(columns=columns, rows=[r for r in rows if any(c.strip() for c in r[1])], issues=issues)


def _fit(cells: list[str], width: int, row: int, issues: list[FieldError]) -> list[str] | None:
    """Pad a short row; a long one is an error unless the extra cells are empty."""
    if len(cells) < width:
        return cells + [""] * (width - len(cells))
    if any(c.strip() for c in cells[width:]):
        issues.append(FieldError([], f"the row has {len(cells)} cells but the header names {width} columns", row=row))
        return None
    return cells[:width]


def _cell_text(value: Any) -> str:
    """A spreadsheet or Python value as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _read_xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise Invalid([FieldError(["file"], f"not a readable XLSX workbook ({type(exc).__name__})", row=1)]) from None
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header_row = next(values, None)
        if header_row is None:
            raise Invalid([FieldError(["file"], "the sheet is empty; the first row must name the columns", row=1)])
        columns = [_cell_text(h).strip() for h in header_row]
        while columns and not columns[-1]:
            columns.pop()
        width = len(columns)
        rows: list[tuple[int, list[str]]] = []
        issues: list[FieldError] = []
        for number, raw in enumerate(values, start=2):
            cells = [_cell_text(v) for v in raw]
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != width:
                fitted = _fit(cells, width, number, issues)
                if fitted is None:
                    continue
                cells = fitted
            rows.append((number, cells))
    finally:
        workbook.close()
    return Table(columns=columns, rows=rows, issues=issues)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class TimeFormatter:
    """Aware datetimes in the form a dialect's column stores.

    SQLite keeps UTC as naive text "YYYY-MM-DD HH:MM:SS.ffffff" (exactly what SQLAlchemy's DateTime
    writes, so ordering and comparisons stay consistent); PostgreSQL takes the datetime itself.
    """

    def __init__(self, dialect: str) -> None:
        self.text = dialect == "sqlite"
        self.memo: dict[datetime, str] = {}

    def __call__(self, value: datetime | None) -> Any:
        if value is None or not self.text:
            return value
        stored = self.memo.get(value)
        if stored is None:
            iso = (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat(" ")
            stored = iso[:19] + ".000000" if len(iso) == 25 else iso[:26]
            if len(self.memo) > 500_000:
                self.memo.clear()
            self.memo[value] = stored
        return stored


def dialect_of(session: Session) -> str:
    """The session's database dialect name (sqlite, postgresql)."""
    return session.connection().dialect.name


class BulkWriter:
    """Inserts rows in the session's transaction by the driver's fastest path.

    Values must already be in stored form (see TimeFormatter; JSON as text): SQLite gets the
    driver's ``executemany`` in chunks, PostgreSQL ``COPY``, anything else a Core insert. (A helper
    thread feeding SQLite while the next chunk is prepared was measured: no gain, the driver holds
    the GIL for most of its work.) A row the database refuses (a race with another writer) becomes
    a Conflict, and the caller's transaction then rolls everything back.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        raw = self.connection.connection.dbapi_connection
        assert raw is not None
        self.raw: Any = raw

    def insert(self, table_name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert rows (tuples in `columns` order); returns how many."""
        _check_names(table_name, columns)
        count = 0
        with _refusals():
            if self.dialect == "postgresql":
                return _copy(self.raw, table_name, columns, rows)
            if self.dialect == "sqlite":
                # Names are checked against the models (_check_names); values are bound.
                names, marks = ", ".join(f'"{c}"' for c in columns), ", ".join("?" * len(columns))
                statement = f'INSERT INTO "{table_name}" ({names}) VALUES ({marks})'  # noqa: S608
                cursor = self.raw.cursor()
                try:
                    for chunk in chunked(rows, CHUNK):
                        cursor.executemany(statement, chunk)
                        count += len(chunk)
                finally:
                    cursor.close()
                return count
            target = table(table_name, *[column(c) for c in columns])
            for chunk in chunked(rows, CHUNK):
                self.session.execute(insert(target), [dict(zip(columns, row, strict=True)) for row in chunk])
                count += len(chunk)
        return count


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ in ("IntegrityError", "UniqueViolation", "ForeignKeyViolation", "CheckViolation"):
            raise Conflict(
                f"the database refused a row ({exc}); another writer may have used the same barcodes or "
                "positions meanwhile. Nothing was imported: run the import again.",
                name="ImportConflict",
            ) from None
        raise


def bulk_insert(session: Session, table_name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert rows (tuples in `columns` order) in the session's transaction; returns how many."""
    return BulkWriter(session).insert(table_name, columns, rows)


def _copy(raw: Any, table_name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table_name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    count = 0
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def bulk_update(session: Session, table_name: str, set_columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UPDATE table SET columns WHERE id = ... for rows of (values..., id)."""
    if not rows:
        return
    _check_names(table_name, [*set_columns, "id"])
    target = table(table_name, column("id"), *[column(c) for c in set_columns])
    statement = (
        update(target)
        .where(target.c.id == bindparam("row_id"))
        .values({c: bindparam(f"new_{c}") for c in set_columns})
    )
    keys = [*(f"new_{c}" for c in set_columns), "row_id"]
    session.connection().execute(statement, [dict(zip(keys, row, strict=True)) for row in rows])


def reserve_ids(session: Session, table_name: str, count: int) -> list[int]:
    """Primary keys for `count` new rows, so rows can reference each other before they are written.

    PostgreSQL takes them from the table's sequence; SQLite continues after the largest id (the
    transaction already holds SQLite's write lock, so nobody else can take them meanwhile).
    """
    if count <= 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        result = connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table_name, "n": count},
        )
        return [int(r[0]) for r in result]
    _check_names(table_name, ["id"])
    target = table(table_name, column("id"))
    start = connection.execute(select(func.coalesce(func.max(target.c.id), 0))).scalar_one()
    return list(range(int(start) + 1, int(start) + count + 1))


def _check_names(table_name: str, columns: Sequence[str]) -> None:
    """Refuse a table or column that is not in the models (the names are put into SQL text)."""
    from biobank.model_registry import import_all_models

    import_all_models()
    known = Base.metadata.tables.get(table_name)
    if known is None or any(c not in known.c for c in columns):
        raise ValueError(f"unknown table or column in bulk write to {table_name!r}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a bulk import allocates millions of objects that all
    stay alive, and the collector would rescan them again and again (a third of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def chunked(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to `size` items."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk




Progress = Callable[[str, int], None]

# --------------------------------------------------------------------------------------------
# Lookups: one query per kind (in chunks of LOOKUP_CHUNK values), never one per row
# --------------------------------------------------------------------------------------------

LOOKUP_CHUNK = 5_000


def _chunks(values: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def existing_specimens(session: Session, barcodes: Sequence[str]) -> dict[str, Any]:
    """Specimens already on this node with these barcodes (barcodes are unique node-wide), as rows."""
    from biobank.specimens.models import Specimen

    found: dict[str, Any] = {}
    if not barcodes or session.execute(select(Specimen.id).limit(1)).first() is None:
        return found
    # Untyped columns: the values come as the driver gives them (no per-value conversion), so times
    # are SQLite's stored text or PostgreSQL's datetimes; compare them through TimeFormatter.
    source = table("specimens", *[column(name) for name in EXISTING_COLUMNS])
    for part in _chunks(barcodes):
        for row in session.execute(select(*source.c).where(source.c.barcode.in_(part))).all():
            found[row.barcode] = row
    return found


EXISTING_COLUMNS = (
    "id", "public_id", "barcode", "biobank_id", "collection_id", "donor_id", "parent_id", "lineage", "sample_type",
    "detailed_type", "sprec_code", "container", "anatomical_site", "diagnosis", "collected_at", "received_at",
    "processed_at", "frozen_at", "quantity", "quantity_unit", "concentration", "concentration_unit",
    "freeze_thaw_count", "storage_temperature", "status", "box_id", "row", "col", "notes", "checked_out_at",
)


def drawn_by_children(session: Session, parent_units: dict[int, str]) -> dict[int, float]:
    """How much of each parent (id -> its unit) its existing aliquots took, in the parent's unit."""
    from biobank.specimens.models import Lineage, Specimen
    from biobank.specimens.rules import convert_quantity

    drawn: dict[int, float] = {}
    for part in _chunks(sorted(parent_units)):
        stmt = select(Specimen.parent_id, Specimen.quantity, Specimen.quantity_unit).where(
            Specimen.parent_id.in_(part), Specimen.lineage == Lineage.ALIQUOT.value, Specimen.quantity.is_not(None)
        )
        for parent_id, quantity, unit in session.execute(stmt):
            if parent_id is None or quantity is None or unit is None:
                continue
            try:
                drawn[parent_id] = drawn.get(parent_id, 0.0) + convert_quantity(
                    quantity, unit, parent_units[parent_id]
                )
            except ValueError:
                continue
    return drawn


def collections_of(session: Session, biobank_id: int) -> dict[str, int]:
    """The biobank's collections: public id -> row id, and "\\0" + acronym (case-folded) -> row id
    when the acronym is unique in the biobank (0 when it is ambiguous)."""
    from biobank.institutions.models import Collection

    rows = session.execute(
        select(Collection.id, Collection.public_id, Collection.acronym).where(Collection.biobank_id == biobank_id)
    ).all()
    out: dict[str, int] = {}
    for row in rows:
        out[row.public_id] = row.id
        if row.acronym:
            key = "\x00" + row.acronym.casefold()
            out[key] = 0 if key in out else row.id
    return out


def pseudonyms_for(patient_ids: Iterable[str]) -> dict[str, str]:
    """Donor pseudonyms of many patient ids: the key is derived once and checked against donors.service."""
    from biobank.config import get_settings
    from biobank.donors import service as donors
    from biobank.kit.crypto import derive_key, pseudonym

    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return {}
    settings = get_settings()
    key = derive_key(settings.secret("pseudonym_key"), f"donor-pseudonym:{settings.institution_code}")
    if pseudonym(key, ids[0]) != donors.pseudonym_for(ids[0]):
        return {p: donors.pseudonym_for(p) for p in ids}  # the service changed its scheme: follow it
    return {p: pseudonym(key, p) for p in ids}


def donors_by(session: Session, column_name: str, values: Sequence[str], biobank_id: int | None) -> dict[str, Any]:
    """Donors (id, public_id, biobank_id, pseudonym, sex, birth_year) keyed by pseudonym or public id."""
    from biobank.donors.models import Donor

    column_ = Donor.__table__.c[column_name]
    found: dict[str, Any] = {}
    for part in _chunks(values):
        stmt = select(Donor.id, Donor.public_id, Donor.biobank_id, Donor.pseudonym, Donor.sex, Donor.birth_year)
        stmt = stmt.where(column_.in_(part))
        if biobank_id is not None:
            stmt = stmt.where(Donor.biobank_id == biobank_id)
        for row in session.execute(stmt):
            found[getattr(row, column_name)] = row
    return found


@dataclass(frozen=True, slots=True)
class BoxInfo:
    """What the importer needs of a box, read once (ORM attribute access is slow per row)."""

    unit: Any
    ident: int
    temperature: str | None
    shape: tuple[int, int, str | None]


def boxes_of(session: Session, biobank_id: int, refs: Sequence[str]) -> dict[str, BoxInfo | str]:
    """Boxes of the biobank by public id, full path or (when unique) name; a str value is an error message."""
    from biobank.storage.models import StorageUnit, UnitKind

    units: list[Any] = []
    for part in _chunks(refs, 1_000):
        stmt = select(StorageUnit).where(
            StorageUnit.biobank_id == biobank_id,
            StorageUnit.kind == UnitKind.BOX,
            StorageUnit.public_id.in_(part) | StorageUnit.path.in_(part) | StorageUnit.name.in_(part),
        )
        units.extend(session.scalars(stmt))
    by_ref: dict[str, BoxInfo | str] = {}
    named: dict[str, dict[int, BoxInfo]] = {}
    for unit in units:
        box = BoxInfo(unit, unit.id, unit.temperature, (unit.rows or 0, unit.cols or 0, unit.label_scheme))
        by_ref[unit.public_id] = box
        named.setdefault(unit.path, {})[box.ident] = box
        named.setdefault(unit.name, {})[box.ident] = box
    for ref in refs:
        if ref in by_ref:
            continue
        matches = named.get(ref, {})
        if len(matches) == 1:
            by_ref[ref] = next(iter(matches.values()))
        elif matches:
            by_ref[ref] = f"{len(matches)} boxes are named {ref!r}; give the box's public id or full path"
    return by_ref


def occupied_slots(session: Session, box_ids: Sequence[int]) -> dict[tuple[int, int, int], str]:
    """Positions taken in these boxes: (box id, row, col) -> barcode of the specimen there."""
    from biobank.specimens.models import Specimen

    occupied: dict[tuple[int, int, int], str] = {}
    for part in _chunks(box_ids, 1_000):
        stmt = select(Specimen.box_id, Specimen.row, Specimen.col, Specimen.barcode).where(Specimen.box_id.in_(part))
        for box_id, row, col, barcode in session.execute(stmt):
            if box_id is not None and row is not None and col is not None:
                occupied[(box_id, row, col)] = barcode
    return occupied


# --------------------------------------------------------------------------------------------
# Writing a validated import
# --------------------------------------------------------------------------------------------

SPECIMEN_COLUMNS = (
    "id", "public_id", "barcode", "biobank_id", "collection_id", "donor_id", "parent_id", "lineage", "sample_type",
    "detailed_type", "sprec_code", "container", "anatomical_site", "diagnosis", "collected_at", "received_at",
    "processed_at", "frozen_at", "quantity", "quantity_unit", "concentration", "concentration_unit",
    "freeze_thaw_count", "storage_temperature", "status", "box_id", "row", "col", "notes", "created_at",
    "updated_at",
)
# The columns of the specimens to create, as lists in file order (SPECIMEN_COLUMNS minus the ones the
# writer fills in), plus where each row's donor and parent come from.
PLANNED_COLUMNS = ("barcode", *SPECIMEN_COLUMNS[4:-2])
EVENT_COLUMNS = ("specimen_id", "at", "actor", "kind", "reason", "before", "after")
DONOR_COLUMNS = ("id", "public_id", "biobank_id", "pseudonym", "sex", "birth_year", "created_at", "updated_at")


@dataclass
class WritePlan:
    """Everything a validated import writes: specimens as columns, new donors, draws, box counts."""

    biobank_id: int
    biobank_code: str
    rows_in_file: int
    unchanged: int
    columns: dict[str, list[Any]] = field(default_factory=dict)  # PLANNED_COLUMNS -> values
    new_donor_of: list[str | None] = field(default_factory=list)  # pseudonym of a donor registered here
    parent_index: list[int | None] = field(default_factory=list)  # index of an in-file parent
    parent_barcode: list[str] = field(default_factory=list)
    new_donors: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)  # pseudonym -> sex, year, pid
    parent_draws: dict[int, tuple[float, float]] = field(default_factory=dict)  # db id -> quantity before, after
    box_counts: dict[int, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """How many specimens it creates."""
        return len(self.columns.get("barcode", ()))


def write_plan(session: Session, principal: Any, plan: WritePlan, sha256: str, progress: Progress | None) -> None:
    """Insert donors (vault sealed), specimens and their events; draw parents; count box occupancy; audit."""
    from itertools import repeat

    from biobank import audit
    from biobank.config import get_settings
    from biobank.kit.db import utcnow
    from biobank.kit.ids import allocate, format_public_id
    from biobank.storage import service as storage

    session.flush()
    fmt = TimeFormatter(dialect_of(session))
    stamp = fmt(utcnow())
    institution = get_settings().institution_code
    n = plan.size
    cols = plan.columns
    donor_ids = _write_donors(session, plan, institution, stamp)
    ids = reserve_ids(session, "specimens", n)
    public_ids = [format_public_id(institution, "SPC", k) for k in allocate(session, "SPC", n)] if n else []
    if donor_ids:
        cols["donor_id"] = [
            donor_ids[new] if new is not None else old
            for new, old in zip(plan.new_donor_of, cols["donor_id"], strict=True)
        ]
    cols["parent_id"] = [
        ids[p] if p is not None else old for p, old in zip(plan.parent_index, cols["parent_id"], strict=True)
    ]
    times = {"collected_at", "received_at", "processed_at", "frozen_at"}
    for name in times:  # each distinct time formatted once (aliquots share their parent's times)
        stored = {value: fmt(value) for value in set(cols[name])}
        cols[name] = list(map(stored.__getitem__, cols[name]))
    values = [cols[c] for c in PLANNED_COLUMNS[1:]]
    specimens = zip(  # tuples made chunk by chunk as they are inserted
        ids, public_ids, cols["barcode"], repeat(plan.biobank_id, n), *values, repeat(stamp, n), repeat(stamp, n),
        strict=True,
    )
    actor = principal.public_id
    reason = f"imported from file {sha256[:12]}"
    links = [
        public_ids[p] if p is not None else (ref or None)
        for p, ref in zip(plan.parent_index, plan.parent_barcode, strict=True)
    ]
    events = zip(
        ids, repeat(stamp, n), repeat(actor, n), repeat("created", n), repeat(reason, n), repeat("{}", n),
        _snapshots(plan, links),
        strict=True,
    )
    writer = BulkWriter(session)
    written = writer.insert("specimens", SPECIMEN_COLUMNS, specimens)
    writer.insert("specimen_events", EVENT_COLUMNS, events)
    if progress is not None:
        progress("written", written)
    if plan.parent_draws:
        draws = [
            (pid, stamp, actor, "aliquot", reason, f'{{"quantity": {before!r}}}', f'{{"quantity": {after!r}}}')
            for pid, (before, after) in plan.parent_draws.items()
        ]
        bulk_insert(session, "specimen_events", EVENT_COLUMNS, draws)
        bulk_update(
            session, "specimens", ("quantity", "updated_at"),
            [(after, stamp, pid) for pid, (_, after) in plan.parent_draws.items()],
        )
    for box_id, count in sorted(plan.box_counts.items()):
        storage.occupy(session, box_id, count)
    audit.record(
        session,
        principal,
        "specimen.import",
        "specimen",
        [],
        details={
            "biobank": plan.biobank_code,
            "rows": plan.rows_in_file,
            "created": n,
            "unchanged": plan.unchanged,
            "donors_created": len(plan.new_donors),
            "file_sha256": sha256,
        },
    )


def _snapshots(plan: WritePlan, links: list[str | None]) -> Iterator[str]:
    """Each new specimen's "after" snapshot as add_event() writes it (sorted keys, no nulls).

    Formatted directly rather than through json.dumps (a tenth of the cost): the values are numbers
    and codes from fixed vocabularies; the parent link alone is JSON-encoded.
    """
    import json

    c = plan.columns
    biobank = plan.biobank_id
    for box_id, col, collection_id, ft, link, quantity, unit, row, status in zip(
        c["box_id"], c["col"], c["collection_id"], c["freeze_thaw_count"], links, c["quantity"], c["quantity_unit"],
        c["row"], c["status"], strict=True,
    ):
        yield (
            f'{{"biobank_id": {biobank}, '
            + (f'"box_id": {box_id}, "col": {col}, ' if box_id is not None else "")
            + f'"collection_id": {collection_id}, "freeze_thaw_count": {ft}, '
            + (f'"parent": {json.dumps(link)}, ' if link else "")
            + (f'"quantity": {quantity!r}, "quantity_unit": "{unit}", ' if quantity is not None else "")
            + (f'"row": {row}, ' if box_id is not None else "")
            + f'"status": "{status}"}}'
        )


def _write_donors(session: Session, plan: WritePlan, institution: str, stamp: Any) -> dict[str, int]:
    """Insert the donors the file registers, each with a sealed vault row; pseudonym -> row id."""
    from biobank.donors import service as donors
    from biobank.kit.ids import allocate, format_public_id

    if not plan.new_donors:
        return {}
    vault = donors.vault()
    new = list(plan.new_donors.items())
    ids = reserve_ids(session, "donors", len(new))
    numbers = allocate(session, "DON", len(new))
    donor_rows = []
    vault_rows = []
    out: dict[str, int] = {}
    for (pseudonym, (sex, birth_year, patient_id)), row_id, number in zip(new, ids, numbers, strict=True):
        public_id = format_public_id(institution, "DON", number)
        donor_rows.append((row_id, public_id, plan.biobank_id, pseudonym, sex, birth_year, stamp, stamp))
        identity = {"name": "", "patient_id": patient_id, "contact": ""}
        vault_rows.append((row_id, vault.seal(identity, bound_to=public_id), stamp))
        out[pseudonym] = row_id
    bulk_insert(session, "donors", DONOR_COLUMNS, donor_rows)
    bulk_insert(session, "donor_vault", ("donor_id", "sealed", "updated_at"), vault_rows)
    return out
