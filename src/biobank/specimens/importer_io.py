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
    driver's ``executemany`` over the row iterator, PostgreSQL ``COPY``, anything else a Core insert. (A helper
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
        with _refusals():
            if self.dialect == "postgresql":
                return _copy(self.raw, table_name, columns, rows)
            if self.dialect == "sqlite":
                # Names are checked against the models (_check_names); values are bound.
                names, marks = ", ".join(f'"{c}"' for c in columns), ", ".join("?" * len(columns))
                statement = f'INSERT INTO "{table_name}" ({names}) VALUES ({marks})'  # noqa: S608
                cursor = self.raw.cursor()
                try:  # the driver pulls the rows from the iterator itself: no lists in between
                    cursor.executemany(statement, rows)
                    return int(cursor.rowcount)
                finally:
                    cursor.close()
            count = 0
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
