"""Clinical import from CSV or XLSX with a mapping file: parse every row, report per row and column.

Row numbers are those a spreadsheet shows (the header is row 1). A value that does not parse, a code
that is not in the WHO list or the code map, a unit that does not convert: each is an error naming its
row and source column. The loop compiles one parser per column up front so it stays fast (tens of
thousands of rows a second).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from biobank.clinical import units
from biobank.clinical.mapping import BoundColumn, FreeText, Mapping, bind, observation_unit
from biobank.clinical.records import Errors, Pending
from biobank.kit.errors import Invalid

MAX_KEY = 200


@dataclass
class Parsed:
    """Every record of a file, the errors of its rows and what each column held."""

    pending: list[Pending]
    rows: int
    donor_column: BoundColumn
    columns: list[BoundColumn]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_table(filename: str, data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    """The header and the rows of a CSV (comma, semicolon or tab) or XLSX file (first sheet)."""
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm")):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for broken files
            raise Invalid.field("file", f"not a readable XLSX workbook: {exc}") from None
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [_cell(v).strip() for v in next(rows, ())]

        def xlsx_rows() -> Iterator[list[str]]:
            for row in rows:
                yield [_cell(v) for v in row]
            workbook.close()

        return header, xlsx_rows()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise Invalid.field("file", "the file is not UTF-8 (or GB 18030) text") from None
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise Invalid.field("file", "the file is empty")
    return header, reader


def _key(*parts: object) -> str:
    return "/".join(["" if p is None else str(p) for p in parts])[:MAX_KEY]


def parse(mapping: Mapping, header: list[str], rows: Iterator[list[str]], errors: Errors) -> Parsed:
    """Parse every row into pending records; errors name the row and the source column.

    The loop is the hot path of imports (tens of thousands of rows a second): columns are grouped by the
    record they fill and compiled to tuples once; each row builds at most one diagnosis, treatment and
    outcome, and its observations.
    """
    donor_column, columns = bind(mapping, header)
    donor_pos, donor_name = donor_column.position, donor_column.spec.source
    groups: dict[str, list[tuple[int, int, Any, str, str]]] = {}
    for i, c in enumerate(columns):
        groups.setdefault(c.kind, []).append((i, c.position, c.parse, c.name, c.spec.source))
    filled = [0] * len(columns)
    record_groups = [(kind, groups.get(kind, [])) for kind in ("diagnosis", "treatment", "outcome")]
    observation_columns = [(i, pos, columns[i]) for i, pos, _, _, _ in groups.get("observation", [])]
    singles = [
        (i, pos, parser, kind)
        for kind in ("observation_date", "record")
        for i, pos, parser, _, _ in groups.get(kind, [])
    ]
    pending: list[Pending] = []
    append = pending.append
    count = 0
    donors_filled = 0
    for rownum, values in enumerate(rows, start=2):
        if not "".join(values).strip():
            continue
        count += 1
        width = len(values)
        donor_ref = values[donor_pos].strip() if donor_pos < width else ""
        if not donor_ref:
            errors.add([donor_name], "the donor is missing", row=rownum)
            continue
        donors_filled += 1
        observed_on = record_id = None
        for i, pos, parser, kind in singles:
            raw = values[pos].strip() if pos < width else ""
            if raw:
                filled[i] += 1
                try:
                    value = parser(raw)
                except ValueError as exc:
                    errors.add([columns[i].spec.source], str(exc), row=rownum, value=raw)
                    continue
                if kind == "record":
                    record_id = value
                else:
                    observed_on = value
        for kind, group in record_groups:
            record: dict[str, Any] = {}
            first = ""
            failed = False
            for i, pos, parser, name, source in group:
                raw = values[pos] if pos < width else ""
                if not raw:
                    continue
                raw = raw.strip()
                if not raw:
                    continue
                filled[i] += 1
                try:
                    value = parser(raw)
                except ValueError as exc:
                    errors.add([source], str(exc), row=rownum, value=raw)
                    failed = True
                    continue
                if not first:
                    first = source
                if value.__class__ is FreeText:
                    record["text" if name == "icd10" else name] = str(value)
                else:
                    record[name] = value
            if not record or failed:
                continue
            if kind == "diagnosis":
                code = record.get("icd10")
                if not code and not record.get("text"):
                    errors.add(
                        [first], "a diagnosis needs a code (diagnosis.icd10) or a text (diagnosis.text)", row=rownum
                    )
                    continue
                if record_id:
                    key = f"{record_id}/dx"
                else:
                    key = f"dx/{code or 'text:' + record['text'].casefold()[:80]}/{record.get('diagnosed_on') or ''}"
            elif kind == "treatment":
                if record_id:
                    key = f"{record_id}/tx"
                else:
                    key = f"tx/{record.get('kind') or record.get('text', '')}/{record.get('started_on') or ''}"
            elif record_id:
                key = f"{record_id}/fu"
            else:
                key = f"fu/{record.get('followed_up_on') or record.get('died_on') or ''}"
            append(Pending(kind, donor_ref, key[:MAX_KEY], record, [first], rownum))
        for i, pos, column in observation_columns:
            raw = values[pos] if pos < width else ""
            if not raw:
                continue
            raw = raw.strip()
            if not raw:
                continue
            filled[i] += 1
            spec = column.spec
            try:
                value = column.parse(raw)
            except ValueError as exc:
                errors.add([spec.source], str(exc), row=rownum, value=raw)
                continue
            unit = column.unit
            if value.__class__ is float:
                if column.unit_position is not None:
                    unit_cell = values[column.unit_position].strip() if column.unit_position < width else ""
                    if not unit_cell:
                        errors.add([spec.unit_source or ""], "the unit is missing", row=rownum)
                        continue
                    try:
                        convert, unit = observation_unit(spec, unit_cell)
                    except units.UnitError as exc:
                        errors.add([spec.unit_source or ""], str(exc), row=rownum, value=unit_cell)
                        continue
                    if convert is not None:
                        value = convert(value)
                observation = {"system": spec.system, "code": spec.code, "display": spec.display,
                               "observed_on": observed_on, "unit": unit, "value_number": value}  # fmt: skip
            else:
                observation = {"system": spec.system, "code": spec.code, "display": spec.display,
                               "observed_on": observed_on, "unit": "", "value_text": str(value)}  # fmt: skip
            if record_id:
                key = f"{record_id}/obs/{spec.system}|{spec.code}"
            else:
                key = f"obs/{spec.system}|{spec.code}/{observed_on or ''}"
            append(Pending("observation", donor_ref, key[:MAX_KEY], observation, [spec.source], rownum))
    donor_column.filled = donors_filled
    for i, column in enumerate(columns):
        column.filled = filled[i]
    return Parsed(pending=pending, rows=count, donor_column=donor_column, columns=columns)
