"""Specimen import, pass 1: every cell of a file checked and typed, with no database work.

The rows are held as columns; each distinct text of a column is checked once (files repeat codes,
units and collections on every row), and the rules that span the cells of one row (times in order,
amounts with units, lineage, a place for stored specimens, the derived SPREC code) run over whole
columns with zip(). The rules in ``specimens/rules.py`` decide what is valid and word the messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError
from biobank.kit.validation import icd10_code
from biobank.kit.vocab import SampleType, Sex, normalise_storage_temperature
from biobank.specimens import rules, sprec
from biobank.specimens.import_template import COLUMN_NAMES
from biobank.specimens.importer_io import Table
from biobank.specimens.models import ConcentrationUnit, Lineage, QuantityUnit, Status

MAX_ENTRIES = 10_000
HIDDEN = "(hidden)"  # shown instead of a hospital patient id: no personal data in reports
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
# rules.BARCODE_RE for every line of a newline-joined column (a barcode holds no newline).
_ALL_BARCODES = re.compile(r"(?:{0}\n)*{0}".format(rules.BARCODE_RE.pattern.strip("^$")))


class Entries:
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

    def first(self) -> list[tuple[int, str | None, str | None, str]]:
        """The first MAX_ENTRIES problems (row, column, value, message), by row, in the order found within a row."""
        return [(row, col, value, text) for row, _, col, value, text in sorted(self.found)[:MAX_ENTRIES]]


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


class CellPass:
    """The rows of a file as columns: text per column, typed values, and the rows with errors.

    A bulk import checks each distinct value of a column once (files repeat codes, units and
    collections on every row) and builds the rows to write with zip(), so the per-row Python work
    stays small; the rules in rules.py decide what is valid and word the messages.
    """

    def __init__(
        self, session: Session, table: Table, index: dict[str, int], entries: Entries, zone: tzinfo | None
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
        if not any(values):  # an empty column: one check
            empty, problems = check("")
            if not problems:
                return [empty] * self.n
        if column == "barcode" and _ALL_BARCODES.fullmatch("\n".join(values)):
            return values  # every barcode is valid as written (one scan instead of a check per row)
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
        v, raw = self.v, self.raw
        if not any(name in self.index for name in TIME_COLUMNS):
            return
        limit = utcnow() + rules.CLOCK_SKEW
        # Rows that state the same four times (aliquots repeat their parent's) are checked once.
        keys = list(zip(*(raw[name] for name in TIME_COLUMNS), strict=True))
        one_row_of = dict(zip(keys, range(self.n), strict=True))
        collected, received, processed, frozen = (v[name] for name in TIME_COLUMNS)
        wrong: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for key, i in one_row_of.items():
            times = (collected[i], received[i], processed[i], frozen[i])
            if None in times:
                if _in_order(times, limit):
                    continue
            elif times[0] <= times[1] <= times[2] <= times[3] <= limit:
                continue
            wrong[key] = _messages(rules.check_times(dict(zip(TIME_COLUMNS, times, strict=True))))
        if wrong:
            for i, key in enumerate(keys):
                for name, message in wrong.get(key, ()):
                    self.error(i, name, raw[name][i], message)

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
        v, raw = self.v, self.raw
        codes = v["sprec_code"]
        names = ("sample_type", "container", "collected_at", "processed_at", "frozen_at")
        # Keyed by the texts of the row (aliquots repeat their parent's): each distinct one derived once.
        keys = list(zip(raw["sprec_code"], *(raw[name] for name in names), strict=True))
        one_row_of = {key: i for key, i in dict(zip(keys, range(self.n), strict=True)).items() if not key[0]}
        if not one_row_of:
            return
        sample_types, containers, collected_at, processed_at, frozen_at = (v[name] for name in names)
        # rules.derive_sprec depends on the times only through the delays' SPREC bands (see
        # sprec.fluid_delay_bands): each distinct (type, tube, bands) is derived once, from its first row.
        by_bands: dict[tuple[Any, ...], str | None] = {}
        derived: dict[tuple[str, ...], str | None] = {}
        zero = timedelta(0)
        for key, i in one_row_of.items():
            sample_type, collected = sample_types[i], collected_at[i]
            if codes[i] is not None or sample_type is None or collected is None:
                continue
            container, processed, frozen = containers[i], processed_at[i], frozen_at[i]
            bands = (
                sample_type,
                container,
                *sprec.fluid_delay_bands(
                    (processed - collected).total_seconds() / 3600.0 if processed is not None else None,
                    (frozen - processed).total_seconds() / 3600.0
                    if frozen is not None and processed is not None else None,
                ),
                frozen is not None and frozen - collected < zero,
            )
            if bands not in by_bands:
                by_bands[bands] = rules.derive_sprec(
                    sample_type=sample_type,
                    container=container,
                    collected_at=collected,
                    processed_at=processed,
                    frozen_at=frozen,
                )
            derived[key] = by_bands[bands]
        if derived:
            v["sprec_code"] = [
                derived.get(key, code) if not key[0] else code for key, code in zip(keys, codes, strict=True)
            ]
