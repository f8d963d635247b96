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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank
from biobank.kit.errors import FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.schemas import ReadSchema
from biobank.specimens.import_cells import Entries
from biobank.specimens.import_refs import Batch
from biobank.specimens.import_template import COLUMN_NAMES, COLUMNS, REQUIRED, Column
from biobank.specimens.import_write import WritePlan, write_plan
from biobank.specimens.importer_io import Progress, Table, gc_paused

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "REQUIRED",
    "Column",
    "ImportEntry",
    "ImportInvalid",
    "ImportReport",
    "refresh_collection_facts",
    "run_import",
    "validate",
    "writable_biobank",
]


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
    refresh_facts: bool = True,
) -> ImportReport:
    """Validate, then (unless dry_run) write every new row in the caller's transaction; all or nothing.

    Raises ImportInvalid (422, carrying the report) when any row has an error; nothing is written.
    After writing, the catalogue facts of every collection that received specimens are rebuilt in
    the same transaction (``refresh_facts=False`` leaves that to the caller, e.g. one refresh after
    many batches).
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
    if refresh_facts and plan.write.size:
        refresh_collection_facts(session, set(plan.write.columns["collection_id"]), progress)
    return plan.report.model_copy(
        update={"dry_run": False, "created": plan.write.size, "donors_created": len(plan.write.new_donors)}
    )


def refresh_collection_facts(session: Session, collection_ids: Iterable[int], progress: Progress | None = None) -> None:
    """Rebuild the catalogue facts of these collections in the caller's transaction."""
    from biobank.catalogue.facts import refresh_facts  # the catalogue reads specimens: imported when used

    ids = sorted(set(collection_ids))
    if progress is not None:
        progress("refreshing facts", len(ids))
    for collection_id in ids:
        refresh_facts(session, collection_id)
    if progress is not None:
        progress("facts refreshed", len(ids))


def _content_sha256(table: Table) -> str:
    digest = hashlib.sha256("\x1f".join(table.columns).encode())
    for _, cells in table.rows:
        digest.update(("\x1e" + "\x1f".join(cells)).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _header(table: Table, entries: Entries) -> dict[str, int] | None:
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


def _plan(session: Session, principal: Principal, biobank_code: str, table: Table, *, timezone: str | None) -> _Plan:
    """Validate a file completely (pass 1: cells, pass 2: references); the plan says what to write."""
    biobank = writable_biobank(session, principal, biobank_code)
    zone = _zone(timezone)
    entries = Entries()
    report = ImportReport(
        biobank=biobank.code, filename=table.filename, file_sha256=table.sha256 or None, rows=len(table.rows)
    )
    plan = WritePlan(biobank_id=biobank.id, biobank_code=biobank.code, rows_in_file=len(table.rows), unchanged=0)
    for issue in table.issues:
        entries.add(issue.get("row", 1), None, None, issue["msg"])
    index = _header(table, entries)
    if index is not None and table.rows:
        batch = Batch(session, table, index, entries, zone)
        batch.parse()
        plan = batch.resolve(session, biobank)
        if not entries.count:
            batch.fill(plan)
        report.unchanged = plan.unchanged
    report.errors = entries.count
    report.entries = [ImportEntry(row=r, column=c, value=v, message=m) for r, c, v, m in entries.first()]
    report.truncated = entries.count > len(report.entries)
    if not entries.count:
        report.to_create = plan.size
        report.donors_to_create = len(plan.new_donors)
    return _Plan(report=report, biobank=biobank, write=plan)
