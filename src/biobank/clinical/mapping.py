"""The mapping file of a clinical import: which source column fills which target field, how local codes
map to standard ones and which unit a value is converted to. docs/clinical-import.md has the format.

`load_mapping()` checks the file on its own (JSON, known targets, code maps that exist, units that
convert); `bind()` checks it against a file's header (every source column exists) and compiles one
parser per column, so the per-row loop does no lookups by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from biobank.clinical import codes, units
from biobank.kit.errors import FieldError, Invalid

FORMAT = "biobank-commons/clinical-mapping"

# target field → (record kind, field name, parser name)
TARGETS: dict[str, tuple[str, str, str]] = {
    "donor.patient_id": ("donor", "patient_id", "text"),
    "donor.id": ("donor", "public_id", "text"),
    "record.id": ("record", "id", "text"),
    "diagnosis.icd10": ("diagnosis", "icd10", "icd10"),
    "diagnosis.text": ("diagnosis", "text", "text"),
    "diagnosis.date": ("diagnosis", "diagnosed_on", "date"),
    "diagnosis.topography": ("diagnosis", "topography", "topography"),
    "diagnosis.morphology": ("diagnosis", "morphology", "morphology"),
    "diagnosis.tnm_t": ("diagnosis", "tnm_t", "tnm_t"),
    "diagnosis.tnm_n": ("diagnosis", "tnm_n", "tnm_n"),
    "diagnosis.tnm_m": ("diagnosis", "tnm_m", "tnm_m"),
    "diagnosis.stage": ("diagnosis", "stage", "stage"),
    "diagnosis.primary": ("diagnosis", "is_primary", "boolean"),
    "treatment.kind": ("treatment", "kind", "treatment"),
    "treatment.text": ("treatment", "text", "text"),
    "treatment.start": ("treatment", "started_on", "date"),
    "treatment.end": ("treatment", "ended_on", "date"),
    "outcome.vital_status": ("outcome", "vital_status", "vital_status"),
    "outcome.disease_status": ("outcome", "disease_status", "disease_status"),
    "outcome.text": ("outcome", "text", "text"),
    "outcome.date": ("outcome", "followed_up_on", "date"),
    "outcome.death_date": ("outcome", "died_on", "date"),
    "observation.date": ("observation_date", "observed_on", "date"),
    "observation": ("observation", "value", "observation"),
    "ignore": ("ignore", "", "text"),
}
CODED_PARSERS: dict[str, Callable[[str], Any]] = {
    "icd10": codes.normalise_icd10,
    "topography": codes.normalise_topography,
    "morphology": codes.normalise_morphology,
    "tnm_t": codes.normalise_t,
    "tnm_n": codes.normalise_n,
    "tnm_m": codes.normalise_m,
    "stage": codes.normalise_stage,
    "treatment": codes.normalise_treatment,
    "vital_status": codes.normalise_vital_status,
    "disease_status": codes.normalise_disease_status,
}
TRUE = frozenset({"1", "true", "yes", "y", "t", "x"})
FALSE = frozenset({"0", "false", "no", "n", "f", ""})
MAX_TEXT = 200


@dataclass(frozen=True)
class CodeMap:
    name: str
    values: dict[str, str]
    unmapped: str  # "error" | "keep" | "text"


@dataclass(frozen=True)
class ColumnSpec:
    index: int  # position in the mapping's `columns`
    source: str
    target: str
    code_map: str | None = None
    date_format: str | None = None
    # observations
    system: str = ""
    code: str = ""
    display: str = ""
    unit: str | None = None
    unit_source: str | None = None
    to_unit: str | None = None


@dataclass(frozen=True)
class Mapping:
    donor_target: str
    columns: list[ColumnSpec]
    code_maps: dict[str, CodeMap]
    date_format: str | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> set[str]:
        return {c.target for c in self.columns}


def _err(loc: list[str | int], msg: str, value: Any = None) -> FieldError:
    return FieldError(["mapping", *loc], msg, value=value)


def load_mapping(content: bytes | str | dict[str, Any]) -> Mapping:
    """Parse and check a mapping file (JSON); Invalid names the path of each problem inside it."""
    if isinstance(content, dict):
        data = content
    else:
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Invalid([_err([], f"the mapping is not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise Invalid([_err([], "the mapping must be a JSON object")])
    errors: list[FieldError] = []
    if data.get("format", FORMAT) != FORMAT:
        errors.append(_err(["format"], f"expected {FORMAT!r}", data.get("format")))
    raw_maps = data.get("codes", {})
    code_maps: dict[str, CodeMap] = {}
    if not isinstance(raw_maps, dict):
        errors.append(_err(["codes"], "must be an object of named code maps"))
        raw_maps = {}
    for name, spec in raw_maps.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("map"), dict):
            errors.append(_err(["codes", name, "map"], "give the code map as an object {source code: target code}"))
            continue
        unmapped = spec.get("unmapped", "error")
        if unmapped not in ("error", "keep", "text"):
            errors.append(_err(["codes", name, "unmapped"], "use error, keep or text", unmapped))
        values = {str(k).strip().casefold(): str(v).strip() for k, v in spec["map"].items()}
        code_maps[name] = CodeMap(name, values, unmapped)
    columns_raw = data.get("columns")
    if not isinstance(columns_raw, list) or not columns_raw:
        errors.append(_err(["columns"], "list the columns to import"))
        columns_raw = []
    columns: list[ColumnSpec] = []
    for i, spec in enumerate(columns_raw):
        if not isinstance(spec, dict):
            errors.append(_err(["columns", i], "each column is an object with source and target"))
            continue
        source, target = spec.get("source"), spec.get("target")
        if not isinstance(source, str) or not source.strip():
            errors.append(_err(["columns", i, "source"], "name the source column"))
            continue
        if target not in TARGETS:
            errors.append(_err(["columns", i, "target"], "unknown target; use one of " + ", ".join(TARGETS), target))
            continue
        code_map = spec.get("codes")
        if code_map is not None and code_map not in code_maps:
            errors.append(_err(["columns", i, "codes"], "no code map of that name under `codes`", code_map))
        column = ColumnSpec(
            index=i,
            source=source.strip(),
            target=str(target),
            code_map=code_map,
            date_format=spec.get("date_format"),
            system=str(spec.get("system", "http://loinc.org")),
            code=str(spec.get("code", "")),
            display=str(spec.get("display", "")),
            unit=spec.get("unit"),
            unit_source=spec.get("unit_source"),
            to_unit=spec.get("to_unit"),
        )
        if target == "observation":
            if not column.code:
                errors.append(_err(["columns", i, "code"], "an observation needs its code (e.g. LOINC 29463-7)"))
            if column.unit is not None and column.unit_source is not None:
                errors.append(_err(["columns", i, "unit"], "give unit or unit_source, not both"))
            for key in ("unit", "to_unit"):
                value = getattr(column, key)
                if value is not None:
                    try:
                        units.canonical(value)
                    except units.UnitError as exc:
                        errors.append(_err(["columns", i, key], str(exc), value))
            if column.unit and column.to_unit:
                try:
                    units.converter(column.unit, column.to_unit)
                except units.UnitError as exc:
                    errors.append(_err(["columns", i, "to_unit"], str(exc), column.to_unit))
        columns.append(column)
    donor_targets = [c.target for c in columns if c.target in ("donor.patient_id", "donor.id")]
    if len(donor_targets) != 1:
        errors.append(_err(["columns"], "map exactly one column to donor.patient_id or donor.id"))
    singles = [c.target for c in columns if c.target not in ("observation", "ignore")]
    for target in sorted({t for t in singles if singles.count(t) > 1}):
        errors.append(_err(["columns"], f"{target} is mapped from more than one column", target))
    if errors:
        raise Invalid(errors, name="InvalidMapping")
    return Mapping(
        donor_target=donor_targets[0],
        columns=columns,
        code_maps=code_maps,
        date_format=data.get("date_format"),
        raw=data,
    )


# -- binding to a file's header ----------------------------------------------------------------------------


Parser = Callable[[str], Any]


@dataclass
class BoundColumn:
    """One mapped column, ready for the row loop."""

    spec: ColumnSpec
    position: int  # in the file's row
    kind: str
    name: str
    parse: Parser
    unit_position: int | None = None
    unit: str = ""  # the stored unit of a fixed-unit observation (canonical UCUM)
    filled: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)


def _date_parser(fmt: str | None) -> Parser:
    @lru_cache(maxsize=65536)  # dates repeat a lot in clinical tables
    def parse(value: str) -> date:
        if len(value) >= 10 and value[4] == "-":
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                pass
        if fmt:
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                raise ValueError(f"{value!r} is not a date in the format {fmt}") from None
        raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD or set date_format)")

    return parse


def _text(value: str) -> str:
    if len(value) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    return value


def _boolean(value: str) -> bool:
    folded = value.casefold()
    if folded in TRUE:
        return True
    if folded in FALSE:
        return False
    raise ValueError(f"{value!r} is not yes/no")


def _with_code_map(inner: Parser, code_map: CodeMap, column: BoundColumn) -> Parser:
    values = code_map.values

    def parse(value: str) -> Any:
        mapped = values.get(value.casefold())
        if mapped is None:
            column.unmapped[value] = column.unmapped.get(value, 0) + 1
            if code_map.unmapped == "error":
                raise ValueError(f"{value!r} is not in code map {code_map.name!r}")
            if code_map.unmapped == "text":
                return FreeText(value)
            mapped = value
        return inner(mapped)

    return parse


class FreeText(str):
    """A value kept as free text because no code matched (coded vs free-text share counts it)."""


def bind(mapping: Mapping, header: list[str]) -> tuple[BoundColumn, list[BoundColumn]]:
    """The donor column and the other columns with their positions; Invalid when a source is missing."""
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(name.strip(), i)
    folded = {name.casefold(): i for name, i in reversed(list(positions.items()))}
    errors: list[FieldError] = []
    bound: list[BoundColumn] = []
    available = ", ".join(h for h in header if h.strip()) or "none"

    def position_of(name: str, loc: list[str | int]) -> int | None:
        pos = positions.get(name, folded.get(name.casefold()))
        if pos is None:
            errors.append(_err(loc, f"column {name!r} is not in the file; its columns are: {available}", name))
        return pos

    for spec in mapping.columns:
        pos = position_of(spec.source, ["columns", spec.index, "source"])
        unit_pos = position_of(spec.unit_source, ["columns", spec.index, "unit_source"]) if spec.unit_source else None
        if pos is None:
            continue
        kind, name, parser_name = TARGETS[spec.target]
        column = BoundColumn(spec=spec, position=pos, kind=kind, name=name, parse=_text, unit_position=unit_pos)
        if parser_name == "date":
            column.parse = _date_parser(spec.date_format or mapping.date_format)
        elif parser_name == "boolean":
            column.parse = _boolean
        elif parser_name in CODED_PARSERS:
            column.parse = CODED_PARSERS[parser_name]
        elif parser_name == "observation":
            column.parse = _observation_parser(spec)
            fixed = spec.to_unit or spec.unit
            column.unit = units.canonical(fixed) if fixed else ""
        if spec.code_map and parser_name != "observation":
            column.parse = _with_code_map(column.parse, mapping.code_maps[spec.code_map], column)
        elif spec.code_map:
            column.parse = _with_code_map(_text, mapping.code_maps[spec.code_map], column)
        bound.append(column)
    if errors:
        raise Invalid(errors, name="MappingDoesNotFitFile")
    donor = next(c for c in bound if c.kind == "donor")
    return donor, [c for c in bound if c.kind not in ("donor", "ignore")]


def _observation_parser(spec: ColumnSpec) -> Parser:
    """A number (converted when the mapping gives units) or a coded text value."""
    convert = units.converter(spec.unit, spec.to_unit) if spec.unit and spec.to_unit else None

    def parse(value: str) -> Any:
        try:
            number = float(value.replace(",", ".")) if value[0] in "0123456789-+." else None
        except ValueError:
            number = None
        if number is None:
            return value if len(value) <= MAX_TEXT else _text(value)
        return convert(number) if convert is not None else number

    return parse


def observation_unit(spec: ColumnSpec, unit_cell: str | None) -> tuple[Callable[[float], float] | None, str]:
    """For a per-row unit column: the converter from the row's unit and the stored unit."""
    if unit_cell is None:
        return None, spec.to_unit or spec.unit or ""
    source = units.canonical(unit_cell)
    if spec.to_unit:
        return units.converter(source, spec.to_unit), units.canonical(spec.to_unit)
    return None, source
