"""Pending clinical records and how they become rows: donor resolution, idempotent diffing, bulk writes.

Both importers (tables with a mapping, FHIR Bundles) produce `Pending` records with a stable
`source_key`; `resolve()` turns donor references into donors and compares each record with what is
stored under the same (donor, key): new ones are created, changed ones updated, equal ones left alone.
Nothing is written until `write()`, and only when no record had an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from biobank.clinical.models import ClinicalDiagnosis, ClinicalObservation, ClinicalOutcome, ClinicalTreatment
from biobank.donors import service as donors
from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError

MODELS: dict[str, Any] = {
    "diagnosis": ClinicalDiagnosis,
    "observation": ClinicalObservation,
    "treatment": ClinicalTreatment,
    "outcome": ClinicalOutcome,
}
FIELDS: dict[str, tuple[str, ...]] = {
    "diagnosis": (
        "icd10",
        "text",
        "topography",
        "morphology",
        "tnm_t",
        "tnm_n",
        "tnm_m",
        "stage",
        "diagnosed_on",
        "is_primary",
    ),
    "observation": ("specimen_id", "system", "code", "display", "value_number", "value_text", "unit", "observed_on"),
    "treatment": ("kind", "text", "started_on", "ended_on"),
    "outcome": ("vital_status", "disease_status", "text", "followed_up_on", "died_on"),
}
DEFAULTS: dict[str, Any] = {"text": "", "display": "", "value_text": "", "unit": "", "is_primary": False}
_DEFAULTED: dict[str, list[tuple[str, Any]]] = {k: [(n, DEFAULTS.get(n)) for n in f] for k, f in FIELDS.items()}
MAX_ERRORS = 500


@dataclass(slots=True)
class Pending:
    """A record to import: its kind, whose it is, its stable key and values, and where it came from."""

    kind: str
    donor_ref: str
    key: str
    values: dict[str, Any]
    loc: list[str | int]  # column name (tables) or JSON path (FHIR)
    row: int | None = None

    def full_values(self) -> tuple[Any, ...]:
        """The values in FIELDS order, defaults filled in (what is compared with the stored record)."""
        get = self.values.get
        return tuple([get(name, default) for name, default in _DEFAULTED[self.kind]])


@dataclass
class Counts:
    create: int = 0
    update: int = 0
    unchanged: int = 0


@dataclass
class Resolved:
    """What an import would do: rows to insert and update per kind, and the donors it touches."""

    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in MODELS})
    updates: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in MODELS})
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in MODELS})
    donor_ids: set[int] = field(default_factory=set)


class Errors:
    """Errors of an import, capped so a broken file does not produce a million-line report."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []
        self.total = 0

    def add(self, loc: list[str | int], msg: str, *, row: int | None = None, value: Any = None) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(FieldError(loc, msg, row=row, value=value))

    def __bool__(self) -> bool:
        return self.total > 0


def resolve_donors(session: Session, biobank_id: int, refs: Iterable[str], *, by: str) -> dict[str, int]:
    """Donor row ids of a biobank by hospital patient id (`by="patient_id"`) or donor public id."""
    unique = sorted(set(refs))
    if by == "patient_id":
        pseudonyms = donors.pseudonyms_for(unique)
        found = donors.ids_by_pseudonyms(session, biobank_id, sorted(set(pseudonyms.values())))
        return {ref: found[p] for ref, p in pseudonyms.items() if p in found}
    found_public = {}
    for i in range(0, len(unique), 900):
        found_public.update(donors.by_public_ids(session, unique[i : i + 900]))
    return {ref: d.id for ref, d in found_public.items() if d.biobank_id == biobank_id}


def resolve(
    session: Session,
    biobank_id: int,
    pending: list[Pending],
    donor_ids: dict[str, int],
    errors: Errors,
    *,
    donor_loc: list[str | int],
    donor_message: str,
) -> Resolved:
    """Diff pending records against the stored ones; unknown donors and in-file conflicts become errors."""
    result = Resolved()
    seen: dict[tuple[str, int, str], tuple[Pending, tuple[Any, ...]]] = {}
    reported_unknown: set[tuple[str, int | None]] = set()
    for record in pending:
        donor_id = donor_ids.get(record.donor_ref)
        if donor_id is None:
            marker = (record.donor_ref, record.row)
            if marker not in reported_unknown:
                reported_unknown.add(marker)
                loc = donor_loc if record.row is not None else record.loc
                errors.add(loc, donor_message, row=record.row)
            continue
        ident = (record.kind, donor_id, record.key)
        values = record.full_values()
        earlier = seen.get(ident)
        if earlier is not None:
            if earlier[1] != values:
                first = earlier[0]
                where = f"row {first.row}" if first.row is not None else ".".join(map(str, first.loc))
                errors.add(
                    record.loc,
                    f"conflicts with the {record.kind} of {where} (same donor and key, other values); "
                    "give a record.id column or dates that tell them apart",
                    row=record.row,
                )
            continue
        seen[ident] = (record, values)
    result.donor_ids = {ident[1] for ident in seen}
    if errors:
        return result
    existing = _existing(session, biobank_id, sorted(result.donor_ids))
    now = utcnow()
    for (kind, donor_id, key), (_, values) in seen.items():
        stored = existing[kind].get((donor_id, key))
        names = FIELDS[kind]
        if stored is None:
            row = dict(zip(names, values, strict=True))
            row.update(biobank_id=biobank_id, donor_id=donor_id, source_key=key, created_at=now, updated_at=now)
            if kind == "diagnosis":
                row["public_id"] = str(uuid.uuid4())
            result.inserts[kind].append(row)
            result.counts[kind].create += 1
        elif stored[1] != values:
            row = dict(zip(names, values, strict=True))
            row.update(id=stored[0], updated_at=now)
            result.updates[kind].append(row)
            result.counts[kind].update += 1
        else:
            result.counts[kind].unchanged += 1
    return result


WHOLE_BIOBANK = 5000  # above this many donors, one scan of the biobank's records beats batches of IN lists


def _existing(
    session: Session, biobank_id: int, donor_ids: list[int]
) -> dict[str, dict[tuple[int, str], tuple[int, tuple[Any, ...]]]]:
    out: dict[str, dict[tuple[int, str], tuple[int, tuple[Any, ...]]]] = {k: {} for k in MODELS}
    wanted = set(donor_ids)
    for kind, model in MODELS.items():
        columns = [getattr(model, name) for name in FIELDS[kind]]
        target = out[kind]
        base = select(model.id, model.donor_id, model.source_key, *columns)
        if len(donor_ids) > WHOLE_BIOBANK:
            for row in session.execute(base.where(model.biobank_id == biobank_id)):
                if row[1] in wanted:
                    target[(row[1], row[2])] = (row[0], tuple(row[3:]))
            continue
        for i in range(0, len(donor_ids), 900):
            for row in session.execute(base.where(model.donor_id.in_(donor_ids[i : i + 900]))):
                target[(row[1], row[2])] = (row[0], tuple(row[3:]))
    return out


def _insert_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """executemany straight on the driver: SQLAlchemy's per-row parameter processing costs more than the
    insert itself at 100,000 rows. Values are converted as SQLAlchemy stores them: on SQLite dates as
    YYYY-MM-DD, UTC datetimes as naive "YYYY-MM-DD HH:MM:SS.ffffff" text and booleans as 0/1; psycopg
    adapts Python values itself."""
    if not rows:
        return
    connection = session.connection()
    names = list(rows[0])
    columns = ", ".join(names)
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])
        return
    if connection.dialect.name != "sqlite":
        placeholders = ", ".join(["%s"] * len(names))
        sql = f"INSERT INTO {table.name} ({columns}) VALUES ({placeholders})"  # noqa: S608 (our table and columns)
        connection.exec_driver_sql(sql, [tuple([row[n] for n in names]) for row in rows])
        return
    texts: dict[int, str] = {}

    def convert(value: Any) -> Any:
        kind = value.__class__
        if kind is date:
            return value.isoformat()
        if kind is datetime:
            cached = texts.get(id(value))
            if cached is None:
                cached = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                texts[id(value)] = cached
            return cached
        if kind is bool:
            return int(value)
        return value

    plain = (str, int, float, type(None))
    sql = f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join(['?'] * len(names))})"  # noqa: S608
    params = [tuple([v if v.__class__ in plain else convert(v) for v in [row[n] for n in names]]) for row in rows]
    connection.exec_driver_sql(sql, params)


def write(session: Session, resolved: Resolved, batch_id: int) -> None:
    """Insert (DBAPI executemany) and update (by primary key) in bulk, tagging each row with the batch."""
    for kind, model in MODELS.items():
        rows = resolved.inserts[kind]
        for row in rows:
            row["batch_id"] = batch_id
        for i in range(0, len(rows), 10_000):
            _insert_many(session, model.__table__, rows[i : i + 10_000])
        changed = resolved.updates[kind]
        for row in changed:
            row["batch_id"] = batch_id
        for i in range(0, len(changed), 5000):
            session.execute(update(model), changed[i : i + 5000])
    if session.get_bind().dialect.name == "postgresql" and sum(len(r) for r in resolved.inserts.values()) > 10_000:
        for model in MODELS.values():  # a large load changes the tables' statistics wholesale
            session.execute(text(f"ANALYZE {model.__tablename__}"))
