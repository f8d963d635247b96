"""Bulk import of specimens from a CSV/XLSX file: validate every row, then write all or nothing.

``validate`` checks every cell of every row with the rules in ``specimens/rules.py`` and looks up
references in bulk (one query per kind of lookup, in chunks, never one per row); ``run_import``
writes the rows in the caller's transaction with the driver's fastest path (see importer_io).
A row whose barcode already exists with the same content is "unchanged" and skipped, so re-running
a file creates nothing. The file format is documented in docs/import-template.md.

The importer writes donors, their vault rows and custody events directly as rows instead of
through the donor and specimen services: those services make one object per call, which would be
two orders of magnitude slower. It applies the same rules they do (pseudonyms via
``donors.service``, vault sealing via ``donors.service.vault()``, occupancy via the storage service).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank
from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.schemas import ReadSchema
from biobank.kit.validation import icd10_code
from biobank.kit.vocab import SampleType, Sex, normalise_storage_temperature
from biobank.specimens import rules, sprec
from biobank.specimens.importer_io import (
    EXISTING_COLUMNS,
    PLANNED_COLUMNS,
    BoxInfo,
    Progress,
    Table,
    WritePlan,
    boxes_of,
    collections_of,
    donors_by,
    existing_specimens,
    gc_paused,
    occupied_slots,
    pseudonyms_for,
    write_plan,
)
from biobank.specimens.models import ConcentrationUnit, Lineage, QuantityUnit, Status

MAX_ENTRIES = 10_000
NEW_STATUSES = frozenset(s.value for s in (Status.COLLECTED, Status.RECEIVED, Status.PROCESSED, Status.STORED))
DRAWABLE = frozenset({Status.RECEIVED.value, Status.PROCESSED.value, Status.STORED.value})
HIDDEN = "(hidden)"  # shown instead of a hospital patient id: no personal data in reports


@dataclass(frozen=True)
class Column:
    """One column of the import template."""

    name: str
    required: bool
    description: str
    example: str = ""
    example_2: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("barcode", True, "Unique label of the tube or block (3–64 letters, digits or . _ - /).", "SER-000101",
           "SER-000101-01"),
    Column("collection", True, "Collection public id, or its acronym within the biobank.", "LUNG", "LUNG"),
    Column("sample_type", True, "MIABIS material type, e.g. Serum, Plasma, DNA, Tissue (Frozen) (any case).",
           "Serum", "Serum"),
    Column("detailed_type", False, "Free text refining the material (up to 100 characters).", "", ""),
    Column("donor_patient_id", False,
           "Hospital patient id; turned into the donor's keyed pseudonym and never stored in clear outside "
           "the encrypted vault. An unknown patient is registered when donor_sex is given.", "MRN0012345", ""),
    Column("donor_sex", False, "MIABIS sex: Male, Female, Unknown, Undifferentiated, Not applicable.", "Female", ""),
    Column("donor_birth_year", False, "Year of birth of a donor registered by this file.", "1961", ""),
    Column("donor", False, "Donor public id (instead of donor_patient_id).", "", ""),
    Column("parent_barcode", False,
           "Barcode of the specimen this one was taken from: an existing specimen or an earlier row.", "",
           "SER-000101"),
    Column("lineage", False, "primary, aliquot or derivative (default primary; aliquot when a parent is given).",
           "primary", "aliquot"),
    Column("collected_at", False, "ISO 8601 date and time with offset, e.g. 2026-01-31T09:30:00+08:00.",
           "2026-01-31T09:30:00+08:00", "2026-01-31T09:30:00+08:00"),
    Column("received_at", False, "ISO 8601 with offset.", "2026-01-31T10:05:00+08:00", "2026-01-31T10:05:00+08:00"),
    Column("processed_at", False, "ISO 8601 with offset (centrifugation for fluids).", "2026-01-31T10:40:00+08:00",
           "2026-01-31T10:40:00+08:00"),
    Column("frozen_at", False, "ISO 8601 with offset.", "2026-01-31T11:20:00+08:00", "2026-01-31T11:20:00+08:00"),
    Column("container", False, "SPREC primary container code, e.g. SST, PED, SCI, HEP.", "SST", "SST"),
    Column("sprec_code", False, "SPREC v3 code; derived from the times and container when empty.", "", ""),
    Column("anatomical_site", False, "ICD-O-3 topography, e.g. C34.1.", "", ""),
    Column("diagnosis", False, "ICD-10 (WHO) code, e.g. C34.1.", "C34.1", "C34.1"),
    Column("quantity", False, "Amount, zero or more (aliquots draw it from their parent).", "2", "0.5"),
    Column("quantity_unit", False, "mL, µL (or uL), g, mg, µg, ng, cells, pieces, slides, blocks.", "mL", "mL"),
    Column("concentration", False, "Concentration, zero or more.", "", ""),
    Column("concentration_unit", False, "ng/µL, µg/mL, mg/mL, cells/mL.", "", ""),
    Column("freeze_thaw_count", False, "Whole number, zero or more (default 0).", "0", "0"),
    Column("storage_temperature", False, "MIABIS storage temperature or a common spelling such as -80 or LN2 vapour.",
           "-80", "-80"),
    Column("status", False, "collected, received, processed or stored (default stored with a position, "
           "else received).", "", ""),
    Column("box", False, "Box public id or full path (Site / Freezer / Rack / Box).", "", "Main / F01 / R01 / B001"),
    Column("position", False, "Position in the box, e.g. A1.", "", "A1"),
    Column("notes", False, "Free text.", "", ""),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)

# Columns compared when a barcode already exists (the donor and place columns are compared through
# what they resolve to).
COMPARED = (
    "collection", "sample_type", "detailed_type", "donor_patient_id", "donor", "donor_sex", "donor_birth_year",
    "parent_barcode", "lineage", "collected_at", "received_at", "processed_at", "frozen_at", "container",
    "sprec_code", "anatomical_site", "diagnosis", "quantity", "quantity_unit", "concentration",
    "concentration_unit", "freeze_thaw_count", "storage_temperature", "status", "box", "position", "notes",
)
TIME_COLUMNS = rules.TIME_ORDER
_SAMPLE_TYPES = {t.value.casefold(): t.value for t in SampleType} | {t.value: t.value for t in SampleType}
_SEXES = {s.value.casefold(): s.value for s in Sex}
_CONTAINERS = frozenset(sprec.PRIMARY_CONTAINERS)
_QUANTITY_UNITS = {u.value.casefold(): u.value for u in QuantityUnit} | {u.value: u.value for u in QuantityUnit} | {
    "ul": QuantityUnit.UL.value, "μl": QuantityUnit.UL.value, "ug": QuantityUnit.UG.value,
    "μg": QuantityUnit.UG.value, "ml": QuantityUnit.ML.value,
}
_CONCENTRATION_UNITS = {u.value.casefold(): u.value for u in ConcentrationUnit} | {
    "ng/ul": ConcentrationUnit.NG_PER_UL.value, "ng/μl": ConcentrationUnit.NG_PER_UL.value,
    "ug/ml": ConcentrationUnit.UG_PER_ML.value, "μg/ml": ConcentrationUnit.UG_PER_ML.value,
}
# A pool and the later statuses may describe an existing specimen (an export read back), never a new one.
_PRIMARY, _ALIQUOT, _DERIVATIVE, _POOL = (Lineage.PRIMARY.value, Lineage.ALIQUOT.value, Lineage.DERIVATIVE.value,
                                          Lineage.POOL.value)
_STORED, _RECEIVED = Status.STORED.value, Status.RECEIVED.value
_UNIT_VALUES = frozenset(u.value for u in QuantityUnit)
_CONCENTRATION_VALUES = frozenset(u.value for u in ConcentrationUnit)
_LINEAGES = frozenset(lineage.value for lineage in Lineage)
_STATUSES = frozenset(status.value for status in Status)
_BARE_DATE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")
# Compared as they are; the others through what they resolve to (see _Batch._differences).
_DIRECT = frozenset({
    "sample_type", "detailed_type", "lineage", "container", "sprec_code", "anatomical_site", "diagnosis",
    "collected_at", "received_at", "processed_at", "frozen_at", "quantity_unit", "concentration_unit",
    "freeze_thaw_count", "storage_temperature", "status", "notes",
})


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


class ImportEntry(ReadSchema):
    """One problem: the file's row number (header = 1), the column, the value and what is wrong."""

    row: int
    column: str | None
    value: str | None
    message: str


class ImportReport(ReadSchema):
    """What an import found (dry run) or did: counts and every problem, row by row."""

    biobank: str
    filename: str = ""
    file_sha256: str | None = None
    dry_run: bool = True
    rows: int = 0
    to_create: int = 0
    unchanged: int = 0
    created: int = 0
    donors_to_create: int = 0
    donors_created: int = 0
    errors: int = 0
    truncated: bool = False
    entries: list[ImportEntry] = Field(default_factory=list)


class ImportInvalid(Invalid):
    """The file has errors: nothing was written. Carries the full report."""

    def __init__(self, report: ImportReport) -> None:
        errors = [
            FieldError([e.column] if e.column else [], e.message, row=e.row, value=e.value) for e in report.entries
        ]
        super().__init__(errors, name="ImportInvalid")
        self.report = report

    def to_dict(self) -> dict[str, Any]:
        """The field errors (as every Invalid) plus the import report."""
        return {**super().to_dict(), "report": self.report.model_dump(mode="json")}


class _Entries:
    """Collects the problems found; the report shows the first MAX_ENTRIES in row order, and counts all."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int, str | None, str | None, str]] = []

    @property
    def count(self) -> int:
        return len(self.found)

    def add(self, row: int, column: str | None, value: Any, message: str) -> None:
        shown = HIDDEN if column == "donor_patient_id" and value else value
        text = None if shown is None or shown == "" else str(shown)
        self.found.append((row, len(self.found), column, text, message))

    def items(self) -> list[ImportEntry]:
        """The first MAX_ENTRIES problems, by row (in the order they were found within a row)."""
        first = sorted(self.found)[:MAX_ENTRIES]
        return [ImportEntry(row=row, column=col, value=value, message=text) for row, _, col, value, text in first]


# --------------------------------------------------------------------------------------------
# Plan: everything validate() learns, and what run_import() needs to write
# --------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    report: ImportReport
    biobank: Biobank
    write: WritePlan


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = "unknown time zone; use an IANA name such as Asia/Shanghai"
        raise Invalid.field("timezone", message, value=name) from None


def writable_biobank(session: Session, principal: Principal, code: str) -> Biobank:
    """The target biobank: 404 when the principal cannot see it, 403 when they may only read it."""
    try:
        biobank = institutions.get_biobank(session, code)
    except NotFound:
        biobank = None
    if biobank is None or not principal.can_read(biobank.id):
        raise NotFound(f"no biobank {code!r}", name="BiobankNotFound")
    if not principal.can_write(biobank.id):
        raise NotPermitted("only managers and technicians of the biobank import specimens")
    return biobank


def _as_table(rows: Table | Iterable[Mapping[str, Any]]) -> Table:
    return rows if isinstance(rows, Table) else Table.from_dicts(dict(r) for r in rows)


def validate(
    session: Session,
    principal: Principal,
    biobank_code: str,
    rows: Table | Iterable[Mapping[str, Any]],
    *,
    timezone: str | None = None,
) -> ImportReport:
    """Check every row and column of a file against the rules and the database; writes nothing."""
    with gc_paused():
        return _plan(session, principal, biobank_code, _as_table(rows), timezone=timezone).report


def run_import(
    session: Session,
    principal: Principal,
    biobank_code: str,
    rows: Table | Iterable[Mapping[str, Any]],
    *,
    dry_run: bool,
    timezone: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate, then (unless dry_run) write every new row in the caller's transaction; all or nothing.

    Raises ImportInvalid (422, carrying the report) when any row has an error; nothing is written.
    """
    table = _as_table(rows)
    with gc_paused():
        plan = _plan(session, principal, biobank_code, table, timezone=timezone)
        if progress is not None:
            progress("validated", plan.report.rows)
        if plan.report.errors:
            raise ImportInvalid(plan.report)
        if dry_run:
            return plan.report
        write_plan(session, principal, plan.write, table.sha256 or _content_sha256(table), progress)
    return plan.report.model_copy(
        update={"dry_run": False, "created": plan.write.size, "donors_created": len(plan.write.new_donors)}
    )


def _content_sha256(table: Table) -> str:
    digest = hashlib.sha256("\x1f".join(table.columns).encode())
    for _, cells in table.rows:
        digest.update(("\x1e" + "\x1f".join(cells)).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _header(table: Table, entries: _Entries) -> dict[str, int] | None:
    """Column positions by name; None when a required column is missing."""
    index: dict[str, int] = {}
    unknown: list[str] = []
    for position, raw in enumerate(table.columns):
        name = raw.strip().lstrip("\ufeff").lower()
        if not name:
            continue
        if name not in COLUMN_NAMES:
            unknown.append(raw)
        elif name in index:
            entries.add(1, name, raw, f"the column {name} appears twice")
        else:
            index[name] = position
    if unknown:
        entries.add(
            1, unknown[0], ", ".join(unknown),
            "unknown column(s): " + ", ".join(unknown) + "; the template's columns are " + ", ".join(COLUMN_NAMES),
        )
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        entries.add(1, missing[0], None, "missing required column(s): " + ", ".join(missing))
        return None
    return index



def _parse_time(text: str, zone: tzinfo | None) -> datetime | str:
    """An aware datetime (in the offset it was written with), or the message saying what is wrong."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return "not an ISO 8601 date and time, e.g. 2026-01-31T09:30:00+08:00"
    if value.tzinfo is None and _BARE_DATE.match(text):
        return "a date alone is not enough: give the time and its offset, e.g. 2026-01-31T09:30:00+08:00"
    if value.tzinfo is None:
        if zone is None:
            return "the time has no time zone: add its offset (e.g. +08:00) or import with --timezone"
        value = value.replace(tzinfo=zone)
    return value


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _messages(errors: Iterable[FieldError]) -> list[tuple[str, str]]:
    return [(str(e["loc"][0]) if e["loc"] else "", e["msg"]) for e in errors]


# Checks of one distinct cell text: (typed value, [(column, message), ...]).
Check = Callable[[str], tuple[Any, list[tuple[str, str]]]]


def _required(column: str, check: Check) -> Check:
    def checked(text: str) -> tuple[Any, list[tuple[str, str]]]:
        return (None, [(column, "required")]) if not text else check(text)

    return checked


def _optional(check: Check) -> Check:
    def checked(text: str) -> tuple[Any, list[tuple[str, str]]]:
        return (None, []) if not text else check(text)

    return checked


def _barcode(text: str) -> tuple[Any, list[tuple[str, str]]]:
    if rules.BARCODE_RE.match(text):
        return text, []
    return text, [("barcode", "3 to 64 letters, digits or . _ - /, starting with a letter or digit")]


def _sample_type(text: str) -> tuple[Any, list[tuple[str, str]]]:
    found = _SAMPLE_TYPES.get(text) or _SAMPLE_TYPES.get(text.casefold())
    if found is None:
        return None, [("sample_type", "not a MIABIS sample type; use one of " + ", ".join(t.value for t in SampleType))]
    return found, []


def _detailed_type(text: str) -> tuple[Any, list[tuple[str, str]]]:
    return text, ([("detailed_type", "at most 100 characters")] if len(text) > 100 else [])


def _sex(text: str) -> tuple[Any, list[tuple[str, str]]]:
    found = _SEXES.get(text.casefold())
    return found, ([] if found else [("donor_sex", "use one of " + ", ".join(s.value for s in Sex))])


def _birth_year(text: str) -> tuple[Any, list[tuple[str, str]]]:
    year = int(text) if text.isdigit() else None
    this_year = utcnow().year
    if year is None or not 1880 <= year <= this_year:
        return None, [("donor_birth_year", f"a year between 1880 and {this_year}")]
    return year, []


def _lineage(text: str) -> tuple[Any, list[tuple[str, str]]]:
    value = text.lower()
    return value, ([] if value in _LINEAGES else [("lineage", "use primary, aliquot or derivative")])


def _container(text: str) -> tuple[Any, list[tuple[str, str]]]:
    code = text.upper()
    if code in _CONTAINERS:
        return code, []
    return None, [("container", "not a SPREC primary container code (e.g. SST, PED, SCI, HEP)")]


def _sprec(text: str) -> tuple[Any, list[tuple[str, str]]]:
    code = text.upper()
    errors = rules.check_codes(diagnosis=None, anatomical_site=None, sprec_code=code)
    return (None, _messages(errors)) if errors else (code, [])


def _site(text: str) -> tuple[Any, list[tuple[str, str]]]:
    errors = rules.check_codes(diagnosis=None, anatomical_site=text, sprec_code=None)
    return (None, _messages(errors)) if errors else (rules.normalise_topography(text), [])


def _diagnosis(text: str) -> tuple[Any, list[tuple[str, str]]]:
    errors = rules.check_codes(diagnosis=text, anatomical_site=None, sprec_code=None)
    return (None, _messages(errors)) if errors else (icd10_code(text), [])


def _amount(column: str) -> Check:
    def checked(text: str) -> tuple[Any, list[tuple[str, str]]]:
        value = _number(text)
        return value, ([] if value is not None else [(column, "not a number")])

    return checked


def _quantity_unit(text: str) -> tuple[Any, list[tuple[str, str]]]:
    return _QUANTITY_UNITS.get(text) or _QUANTITY_UNITS.get(text.casefold(), text), []


def _concentration_unit(text: str) -> tuple[Any, list[tuple[str, str]]]:
    return _CONCENTRATION_UNITS.get(text.casefold(), text), []


def _freeze_thaw(text: str) -> tuple[Any, list[tuple[str, str]]]:
    if not text:
        return 0, []
    return (int(text), []) if text.isdigit() else (0, [("freeze_thaw_count", "a whole number, zero or more")])


def _temperature(text: str) -> tuple[Any, list[tuple[str, str]]]:
    try:
        return normalise_storage_temperature(text).value, []
    except ValueError as exc:
        return None, [("storage_temperature", str(exc))]


def _status(text: str) -> tuple[Any, list[tuple[str, str]]]:
    value = text.lower()
    if value in _STATUSES:
        return value, []
    return None, [("status", "use one of " + ", ".join(sorted(_STATUSES)))]


def _in_order(times: tuple[datetime | None, ...], limit: datetime) -> bool:
    previous = None
    for value in times:
        if value is None:
            continue
        if value > limit or (previous is not None and value < previous):
            return False
        previous = value
    return True


class _Batch:
    """The rows of a file as columns: text per column, typed values, and the rows with errors.

    A bulk import checks each distinct value of a column once (files repeat codes, units and
    collections on every row) and builds the rows to write with zip(), so the per-row Python work
    stays small; the rules in rules.py decide what is valid and word the messages.
    """

    def __init__(
        self, session: Session, table: Table, index: dict[str, int], entries: _Entries, zone: tzinfo | None
    ) -> None:
        self._session = session
        self.n = n = len(table.rows)
        self.index = index
        self.lines = [line for line, _ in table.rows]
        self.entries = entries
        self.zone = zone
        self.bad = bytearray(n)
        empty = [""] * n
        columns: list[tuple[str, ...]] = list(zip(*(cells for _, cells in table.rows), strict=True)) if n else []
        self.raw: dict[str, list[str]] = {
            name: (list(map(str.strip, columns[index[name]])) if name in index and n else empty)
            for name in COLUMN_NAMES
        }
        self.v: dict[str, list[Any]] = {}
        self.existing: dict[str, Any] = {}
        self.creating: list[bool] = [True] * n
        self.drawn: dict[int, float] = {}

    def error(self, i: int, column: str | None, value: Any, message: str) -> None:
        self.bad[i] = 1
        self.entries.add(self.lines[i], column, value, message)

    def by_value(self, column: str, check: Check) -> list[Any]:
        """The typed values of a column, each distinct text checked once; refused texts mark their rows."""
        if column not in self.index:  # not in the file: every row gets the empty cell's value
            return [check("")[0]] * self.n
        values = self.raw[column]
        typed: dict[str, Any] = {}
        refused: dict[str, list[tuple[str, str]]] = {}
        for text in set(values):
            typed[text], problems = check(text)
            if problems:
                refused[text] = problems
        if refused:
            for i, text in enumerate(values):
                if text in refused:
                    for name, message in refused[text]:
                        self.error(i, name or column, text, message)
        return list(map(typed.__getitem__, values))

    # -- pass 1: every cell, no database -----------------------------------------------------------

    def parse(self) -> None:
        """Check and type every cell; cross-column rules of one row (times, amounts, lineage, place)."""
        raw, v, by_value = self.raw, self.v, self.by_value
        v["barcode"] = by_value("barcode", _required("barcode", _barcode))
        self._repeated_barcodes()
        for i, text in enumerate(raw["collection"]):
            if not text:
                self.error(i, "collection", None, "required")
        v["sample_type"] = by_value("sample_type", _required("sample_type", _sample_type))
        v["detailed_type"] = by_value("detailed_type", _detailed_type)
        v["_sex"] = by_value("donor_sex", _optional(_sex))
        v["_birth_year"] = by_value("donor_birth_year", _optional(_birth_year))
        v["lineage"] = self._lineage(by_value("lineage", _optional(_lineage)))
        for name in TIME_COLUMNS:
            v[name] = by_value(name, _optional(self._time_check(name)))
        self._time_order()
        v["container"] = by_value("container", _optional(_container))
        v["sprec_code"] = by_value("sprec_code", _optional(_sprec))
        v["anatomical_site"] = by_value("anatomical_site", _optional(_site))
        v["diagnosis"] = by_value("diagnosis", _optional(_diagnosis))
        v["quantity"] = by_value("quantity", _optional(_amount("quantity")))
        v["quantity_unit"] = by_value("quantity_unit", _optional(_quantity_unit))
        v["concentration"] = by_value("concentration", _optional(_amount("concentration")))
        v["concentration_unit"] = by_value("concentration_unit", _optional(_concentration_unit))
        self._amounts()
        v["freeze_thaw_count"] = by_value("freeze_thaw_count", _freeze_thaw)
        v["storage_temperature"] = by_value("storage_temperature", _optional(_temperature))
        v["status"] = by_value("status", _optional(_status))
        v["notes"] = raw["notes"]
        self._place_given()
        self._derive_sprec()

    def _repeated_barcodes(self) -> None:
        barcodes = self.raw["barcode"]
        if len(set(barcodes)) == self.n:
            return
        first: dict[str, int] = {}
        for i, barcode in enumerate(barcodes):
            if not barcode:
                continue
            if barcode in first:
                self.error(i, "barcode", barcode, f"the barcode repeats row {self.lines[first[barcode]]}")
            else:
                first[barcode] = i

    def _lineage(self, given: list[str | None]) -> list[str]:
        parents = self.raw["parent_barcode"]
        barcodes = self.raw["barcode"]
        lineages = [g or (_ALIQUOT if p else _PRIMARY) for g, p in zip(given, parents, strict=True)]
        for i, (lineage, parent) in enumerate(zip(lineages, parents, strict=True)):
            if self.bad[i] and lineage not in _LINEAGES:
                continue
            if parent and lineage in (_PRIMARY, _POOL):
                self.error(i, "lineage", lineage, "a specimen with a parent is an aliquot or a derivative")
            elif not parent and lineage in (_ALIQUOT, _DERIVATIVE):
                self.error(i, "parent_barcode", None, f"an {lineage} needs its parent's barcode")
            elif parent and parent == barcodes[i]:
                self.error(i, "parent_barcode", parent, "a specimen cannot be its own parent")
        return lineages

    def _time_check(self, column: str) -> Check:
        zone = self.zone

        def checked(text: str) -> tuple[Any, list[tuple[str, str]]]:
            value = _parse_time(text, zone)
            return (None, [(column, value)]) if isinstance(value, str) else (value, [])

        return checked

    def _time_order(self) -> None:
        v = self.v
        if not any(name in self.index for name in TIME_COLUMNS):
            return
        limit = utcnow() + rules.CLOCK_SKEW
        rows = list(zip(*(v[name] for name in TIME_COLUMNS), strict=True))
        # Rows with all four times in order are cleared in one pass; the others are looked at closely.
        doubtful = [
            i
            for i, (a, b, c, d) in enumerate(rows)
            if a is None or b is None or c is None or d is None or not (a <= b <= c <= d <= limit)
        ]
        for i in doubtful:
            times = rows[i]
            if not _in_order(times, limit):
                for name, message in _messages(rules.check_times(dict(zip(TIME_COLUMNS, times, strict=True)))):
                    self.error(i, name, self.raw[name][i], message)

    def _amounts(self) -> None:
        v = self.v
        pairs = (
            ("quantity", "quantity_unit", _UNIT_VALUES),
            ("concentration", "concentration_unit", _CONCENTRATION_VALUES),
        )
        for amount, unit_column, allowed in pairs:
            if amount not in self.index and unit_column not in self.index:
                continue
            check = rules.check_quantity if amount == "quantity" else rules.check_concentration
            for i, (value, unit) in enumerate(zip(v[amount], v[unit_column], strict=True)):
                if (value is not None and (value < 0 or unit is None)) or (unit is not None and unit not in allowed):
                    for name, message in _messages(check(value, unit)):
                        column = name or amount
                        self.error(i, column, self.raw[column][i], message)

    def _place_given(self) -> None:
        boxes, positions, statuses = self.raw["box"], self.raw["position"], self.v["status"]
        if "box" not in self.index and "position" not in self.index and "status" not in self.index:
            return
        for i, (box, position, status) in enumerate(zip(boxes, positions, statuses, strict=True)):
            if box and not position:
                self.error(i, "position", None, "give the position in the box, e.g. A1")
            elif position and not box:
                self.error(i, "box", None, "give the box of the position")
            if status == _STORED and not box:
                self.error(i, "status", status, "a stored specimen needs a box and position")

    def _derive_sprec(self) -> None:
        """Derive the SPREC code where none is given; the code depends only on type, tube and delays."""
        v = self.v
        derived: dict[tuple[Any, ...], str | None] = {}
        given = self.raw["sprec_code"]
        codes = v["sprec_code"]
        for i, (code, text, sample_type, container, collected, processed, frozen) in enumerate(
            zip(codes, given, v["sample_type"], v["container"], v["collected_at"], v["processed_at"],
                v["frozen_at"], strict=True)
        ):
            if code is not None or text or sample_type is None or collected is None:
                continue
            key = (
                sample_type,
                container,
                processed - collected if processed is not None else None,
                frozen - collected if frozen is not None else None,
            )
            if key not in derived:
                derived[key] = rules.derive_sprec(
                    sample_type=sample_type,
                    container=container,
                    collected_at=collected,
                    processed_at=processed,
                    frozen_at=frozen,
                )
            codes[i] = derived[key]

    # -- pass 2: references, against the database in bulk -----------------------------------------

    def resolve(self, session: Session, biobank: Biobank) -> WritePlan:
        """Resolve collections, donors, boxes, positions and parents; compare existing barcodes."""
        n, raw, v = self.n, self.raw, self.v
        barcodes = v["barcode"]
        parents = raw["parent_barcode"]
        self.existing = existing_specimens(session, list(dict.fromkeys([*barcodes, *filter(None, parents)])))
        if self.existing:
            for i, barcode in enumerate(barcodes):
                found = self.existing.get(barcode)
                if found is None:
                    continue
                self.creating[i] = False
                if found.biobank_id != biobank.id:
                    self.error(i, "barcode", barcode, "the barcode is already in use outside this biobank")
        plan = WritePlan(biobank_id=biobank.id, biobank_code=biobank.code, rows_in_file=n, unchanged=0)
        self._collections(session, biobank)
        self._donors(session, biobank, plan)
        self._places(session, biobank)
        v["status"] = [
            s or (_STORED if b is not None else _RECEIVED) for s, b in zip(v["status"], v["box_id"], strict=True)
        ]
        for i, (status, lineage, creating) in enumerate(zip(v["status"], v["lineage"], self.creating, strict=True)):
            if not creating:
                continue
            if status not in NEW_STATUSES:
                self.error(i, "status", status, "a new specimen is collected, received, processed or stored")
            if lineage == _POOL:
                self.error(i, "lineage", lineage, "pools are made in the app (POST /api/v1/specimens/pools)")
        self._parents(session, plan)
        temperatures = v["storage_temperature"]
        for i, box_temperature in enumerate(v["_box_temperature"]):
            if box_temperature and temperatures[i] is None:
                temperatures[i] = box_temperature
        plan.unchanged = self._compare()
        return plan

    def _collections(self, session: Session, biobank: Biobank) -> None:
        known = collections_of(session, biobank.id)
        refs = self.raw["collection"]
        ids: dict[str, int] = {}
        for ref in set(refs):
            found = known.get(ref) or known.get("\x00" + ref.casefold(), 0) if ref else None
            ids[ref] = found or 0
        for i, ref in enumerate(refs):
            if ref and not ids[ref]:
                self.error(i, "collection", ref, f"no collection with this public id or acronym in {biobank.code}")
        self.v["collection_id"] = [ids[ref] or None for ref in refs]

    def _donors(self, session: Session, biobank: Biobank, plan: WritePlan) -> None:
        """Donors by patient id (through the pseudonym) or public id; unknown patients with a sex are new."""
        n, raw, v = self.n, self.raw, self.v
        patients, refs, sexes, years = raw["donor_patient_id"], raw["donor"], v["_sex"], v["_birth_year"]
        donor_ids: list[int | None] = [None] * n
        new_of: list[str | None] = [None] * n
        v["donor_id"], v["_new_donor"] = donor_ids, new_of
        rows = [i for i in range(n) if patients[i] or refs[i] or sexes[i] is not None or years[i] is not None]
        if not rows:
            return
        pseudonyms = pseudonyms_for(patients[i] for i in rows if patients[i])
        by_pseudonym = donors_by(session, "pseudonym", sorted(set(pseudonyms.values())), biobank.id)
        by_public_id = donors_by(session, "public_id", sorted({refs[i] for i in rows if refs[i]}), None)
        first_row: dict[str, int] = {}
        for i in rows:
            patient, ref, sex, year = patients[i], refs[i], sexes[i], years[i]
            donor = None
            if ref:
                donor = by_public_id.get(ref)
                if donor is None or donor.biobank_id != biobank.id:
                    self.error(i, "donor", ref, f"no donor with this public id in {biobank.code}")
                    continue
            if patient:
                pseudonym = pseudonyms[patient]
                registered = by_pseudonym.get(pseudonym)
                if donor is not None and (registered is None or registered.id != donor.id):
                    self.error(i, "donor_patient_id", patient, f"this patient is not donor {ref}")
                    continue
                if registered is None:
                    if sex is None:
                        if not raw["donor_sex"][i]:
                            self.error(i, "donor_patient_id", patient, "unknown donor: give donor_sex to register them")
                        continue
                    self._new_donor(i, pseudonym, patient, sex, year, first_row, plan)
                    continue
                donor = registered
            if donor is None:
                column = "donor_sex" if sex is not None else "donor_birth_year"
                self.error(i, column, raw[column][i], "give donor_patient_id or donor for the donor's details")
                continue
            if sex is not None and sex != donor.sex:
                self.error(i, "donor_sex", sex, f"the donor is registered as {donor.sex}")
            if year is not None and donor.birth_year is not None and year != donor.birth_year:
                self.error(i, "donor_birth_year", year, f"the donor is registered as born in {donor.birth_year}")
            donor_ids[i] = donor.id

    def _new_donor(
        self, i: int, pseudonym: str, patient: str, sex: str, year: int | None, first_row: dict[str, int],
        plan: WritePlan,
    ) -> None:
        known = plan.new_donors.get(pseudonym)
        if known is None:
            plan.new_donors[pseudonym] = (sex, year, patient)
            first_row[pseudonym] = i
        else:
            first = self.lines[first_row[pseudonym]]
            if sex != known[0]:
                self.error(i, "donor_sex", sex, f"differs from row {first} for the same patient")
            elif year is not None and known[1] is not None and year != known[1]:
                self.error(i, "donor_birth_year", year, f"differs from row {first} for the same patient")
            elif year is not None and known[1] is None:
                plan.new_donors[pseudonym] = (sex, year, patient)
        self.v["_new_donor"][i] = pseudonym

    def _places(self, session: Session, biobank: Biobank) -> None:
        """Boxes and positions; two rows in one position, or a position already taken, are errors."""
        from biobank.storage import service as storage

        n, raw, v = self.n, self.raw, self.v
        box_ids: list[int | None] = [None] * n
        grid_rows: list[int | None] = [None] * n
        grid_cols: list[int | None] = [None] * n
        box_temperatures: list[str | None] = [None] * n
        v["box_id"], v["row"], v["col"], v["_box_temperature"] = box_ids, grid_rows, grid_cols, box_temperatures
        refs, labels = raw["box"], raw["position"]
        rows = [i for i in range(n) if refs[i] and labels[i]]
        if not rows:
            return
        boxes = boxes_of(session, biobank.id, sorted({refs[i] for i in rows}))
        occupied = occupied_slots(session, sorted({b.ident for b in boxes.values() if isinstance(b, BoxInfo)}))
        positions: dict[tuple[Any, ...], tuple[int, int] | str] = {}
        taken: dict[tuple[int, int, int], int] = {}
        for i in rows:
            ref, label = refs[i], labels[i]
            box = boxes.get(ref)
            if box is None or isinstance(box, str):
                self.error(i, "box", ref, box or "no box with this public id, path or name in this biobank")
                continue
            key = (*box.shape, label)
            where = positions.get(key)
            if where is None:
                try:
                    where = storage.parse_position(box.unit, label)
                except Invalid as exc:
                    where = exc.errors[0]["msg"]
                positions[key] = where
            if isinstance(where, str):
                self.error(i, "position", label, where)
                continue
            slot = (box.ident, where[0], where[1])
            box_ids[i], grid_rows[i], grid_cols[i] = slot
            box_temperatures[i] = box.temperature
            if not self.creating[i]:
                continue
            shown = label.upper()
            if slot in taken:
                self.error(i, "position", shown, f"row {self.lines[taken[slot]]} already puts a specimen in {shown}")
            elif slot in occupied:
                self.error(i, "position", shown, f"{shown} of this box is occupied by specimen {occupied[slot]}")
            else:
                taken[slot] = i

    def _parents(self, session: Session, plan: WritePlan) -> None:
        """Parents (an earlier row or an existing specimen): state, lineage, inherited donor, draws."""
        n, raw, v = self.n, self.raw, self.v
        parents = raw["parent_barcode"]
        parent_ids: list[int | None] = [None] * n
        parent_rows: list[int | None] = [None] * n
        v["parent_id"], v["_parent_row"] = parent_ids, parent_rows
        children = [i for i in range(n) if parents[i] and parents[i] != raw["barcode"][i]]
        if not children:
            return
        first: dict[str, int] = {}
        for i, barcode in enumerate(v["barcode"]):
            first.setdefault(barcode, i)
        factors: dict[tuple[str, str], float] = {}  # (unit, parent's unit) -> conversion factor
        remaining: dict[int, float] = {}  # in-file parent row -> quantity left
        db_remaining: dict[int, float] = {}
        for i in children:
            ref = parents[i]
            row = first.get(ref)
            existing = self.existing.get(ref)
            if row is not None and row < i and self.creating[row]:
                if self.bad[row]:
                    self.bad[i] = 1  # the parent's own error is reported on its row
                    continue
                parent_rows[i] = row
                status, sample_type, checked_out = v["status"][row], v["sample_type"][row], None
                quantity, unit = v["quantity"][row], v["quantity_unit"][row]
                donor_id, new_donor = v["donor_id"][row], v["_new_donor"][row]
            elif existing is not None and existing.biobank_id == plan.biobank_id:
                parent_ids[i] = existing.id
                status, sample_type, checked_out = existing.status, existing.sample_type, existing.checked_out_at
                quantity, unit = existing.quantity, existing.quantity_unit
                donor_id, new_donor = existing.donor_id, None
            else:
                if row is not None and row > i:
                    message = f"the parent is on row {self.lines[row]}, below; list parents first"
                else:
                    message = "no specimen with this barcode in this biobank or above"
                self.error(i, "parent_barcode", ref, message)
                continue
            if v["donor_id"][i] is None and v["_new_donor"][i] is None:
                v["donor_id"][i], v["_new_donor"][i] = donor_id, new_donor
            if not self.creating[i]:
                continue
            if status not in DRAWABLE or checked_out is not None:
                self.error(i, "parent_barcode", ref, f"the parent is {status}; only received, processed or stored "
                           "specimens that are not checked out give aliquots")
                continue
            lineage = v["lineage"][i]
            if lineage == _ALIQUOT and v["sample_type"][i] and v["sample_type"][i] != sample_type:
                self.error(i, "sample_type", v["sample_type"][i],
                           f"an aliquot has its parent's sample type ({sample_type}); use lineage derivative")
                continue
            amount = v["quantity"][i]
            if lineage != _ALIQUOT or amount is None or quantity is None or unit is None or self.bad[i]:
                continue
            try:
                pair = (v["quantity_unit"][i], unit)
                factor = factors.get(pair)
                if factor is None:
                    factor = factors[pair] = rules.convert_quantity(1.0, *pair)
                used = amount * factor
            except ValueError:
                self.error(i, "quantity_unit", v["quantity_unit"][i],
                           f"cannot draw {v['quantity_unit'][i]} from a parent measured in {unit}")
                continue
            pool, key = (remaining, row) if parent_rows[i] is not None else (db_remaining, parent_ids[i])
            assert key is not None
            left = pool.get(key, quantity) - used
            if left < -rules.EPSILON:
                self.error(i, "quantity", raw["quantity"][i],
                           f"the children in this file draw more than the {quantity:g} {unit} of parent {ref}")
                continue
            pool[key] = left
        for row, left in remaining.items():
            v["quantity"][row] = round(max(0.0, left), 9)
        if db_remaining:
            before = {e.id: e.quantity for e in self.existing.values()}
            for parent_id, left in db_remaining.items():
                plan.parent_draws[parent_id] = (before[parent_id], round(max(0.0, left), 9))

    def _compare(self) -> int:
        """Existing barcodes: unchanged rows are counted; a stated column that differs is an error.

        Compared column by column over the existing rows (one comprehension per column), in the
        form the database keeps: times as the stored text on SQLite, as datetimes on PostgreSQL.
        """
        rows = [i for i in range(self.n) if not self.creating[i] and not self.bad[i]]
        if not rows:
            return 0
        from biobank.specimens.importer_io import TimeFormatter, dialect_of, drawn_by_children

        raw, v = self.raw, self.v
        olds = [self.existing[v["barcode"][i]] for i in rows]
        units = {o.id: o.quantity_unit for o in olds if o.quantity is not None and o.quantity_unit}
        drawn = drawn_by_children(self._session, units) if units else {}
        stored_time = TimeFormatter(dialect_of(self._session))
        differing: dict[int, list[str]] = {}
        position = {name: k for k, name in enumerate(EXISTING_COLUMNS)}
        place = list(zip(v["box_id"], v["row"], v["col"], strict=True))
        quantities = v["quantity"]
        for column in COMPARED:
            if column not in self.index:
                continue
            t = raw[column]  # a column is compared where the row states it
            pairs = zip(rows, olds, strict=True)
            if column in TIME_COLUMNS:
                k, values = position[column], v[column]
                wrong = [i for i, old in pairs if t[i] and stored_time(values[i]) != old[k]]
            elif column in _DIRECT:
                k, values = position[column], v[column]
                wrong = [i for i, old in pairs if t[i] and values[i] != old[k]]
            elif column == "collection":
                k, values = position["collection_id"], v["collection_id"]
                wrong = [i for i, old in pairs if t[i] and values[i] != old[k]]
            elif column in ("donor_patient_id", "donor"):
                k, new, values = position["donor_id"], v["_new_donor"], v["donor_id"]
                wrong = [i for i, old in pairs if t[i] and (new[i] is not None or values[i] != old[k])]
            elif column == "parent_barcode":
                k, values = position["parent_id"], v["parent_id"]
                wrong = [i for i, old in pairs if t[i] and (values[i] is None or values[i] != old[k])]
            elif column in ("box", "position"):
                wrong = [i for i, old in pairs if t[i] and place[i] != (old.box_id, old.row, old.col)]
            elif column == "quantity":
                # What is left now, or what there was before the existing aliquots were drawn.
                wrong = [
                    i
                    for i, old in pairs
                    if t[i]
                    and not _close(quantities[i], old.quantity)
                    and not (old.quantity is not None and _close(quantities[i], old.quantity + drawn.get(old.id, 0)))
                ]
            elif column == "concentration":
                wrong = [i for i, old in pairs if t[i] and not _close(v["concentration"][i], old.concentration)]
            else:  # donor_sex, donor_birth_year: already checked against the donor
                wrong = []
            for i in wrong:
                differing.setdefault(i, []).append(column)
        for i in sorted(differing):
            columns = differing[i]
            many = len(columns) > 1
            self.error(
                i, columns[0], raw[columns[0]][i],
                f"barcode exists with different data (column{'s' if many else ''} {', '.join(columns)} "
                f"{'differ' if many else 'differs'})",
            )
        return len(rows) - len(differing)

    # -- the write plan --------------------------------------------------------------------------

    def fill(self, plan: WritePlan) -> None:
        """Put the rows to create, as columns, into the plan."""
        v = self.v
        keep = [i for i in range(self.n) if self.creating[i] and not self.bad[i]]
        every = len(keep) == self.n
        position = {row: k for k, row in enumerate(keep)}
        for name in PLANNED_COLUMNS:
            column = v[name]
            plan.columns[name] = column if every else [column[i] for i in keep]
        plan.new_donor_of = v["_new_donor"] if every else [v["_new_donor"][i] for i in keep]
        plan.parent_index = [position[p] if p is not None else None for p in (v["_parent_row"][i] for i in keep)]
        parents = self.raw["parent_barcode"]
        plan.parent_barcode = [parents[i] if v["parent_id"][i] is not None else "" for i in keep]
        used = set(plan.new_donor_of)
        plan.new_donors = {p: d for p, d in plan.new_donors.items() if p in used}
        for box_id in plan.columns["box_id"]:
            if box_id is not None:
                plan.box_counts[box_id] = plan.box_counts.get(box_id, 0) + 1


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _plan(session: Session, principal: Principal, biobank_code: str, table: Table, *, timezone: str | None) -> _Plan:
    """Validate a file completely (pass 1: cells, pass 2: references); the plan says what to write."""
    biobank = writable_biobank(session, principal, biobank_code)
    zone = _zone(timezone)
    entries = _Entries()
    report = ImportReport(
        biobank=biobank.code, filename=table.filename, file_sha256=table.sha256 or None, rows=len(table.rows)
    )
    plan = WritePlan(biobank_id=biobank.id, biobank_code=biobank.code, rows_in_file=len(table.rows), unchanged=0)
    for issue in table.issues:
        entries.add(issue.get("row", 1), None, None, issue["msg"])
    index = _header(table, entries)
    if index is not None and table.rows:
        batch = _Batch(session, table, index, entries, zone)
        batch.parse()
        plan = batch.resolve(session, biobank)
        if not entries.count:
            batch.fill(plan)
        report.unchanged = plan.unchanged
    report.errors = entries.count
    report.entries = entries.items()
    report.truncated = entries.count > len(report.entries)
    if not entries.count:
        report.to_create = plan.size
        report.donors_to_create = len(plan.new_donors)
    return _Plan(report=report, biobank=biobank, write=plan)
