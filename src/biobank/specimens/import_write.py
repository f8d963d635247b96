"""Specimen import, writing: a validated plan inserted with the driver's fastest path.

Donors (with sealed vault rows), specimens and one custody event each go in with ``BulkWriter``
(``executemany`` on SQLite, ``COPY`` on PostgreSQL) in the caller's transaction; parents that gave
aliquots are drawn down, box occupancy is counted, and the import is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from biobank.specimens.importer_io import (
    BulkWriter,
    Progress,
    TimeFormatter,
    bulk_insert,
    bulk_update,
    dialect_of,
    reserve_ids,
)

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
    for name in ("collected_at", "received_at", "processed_at", "frozen_at") if fmt.text else ():
        # Each distinct time formatted once: validation made one object per distinct text (aliquots
        # share their parent's), so objects are told apart by id(), cheaper than hashing aware datetimes.
        keys = list(map(id, cols[name]))
        stored = {key: fmt(value) for key, value in dict(zip(keys, cols[name], strict=True)).items()}
        cols[name] = list(map(stored.__getitem__, keys))
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
    storage.occupy_many(session, plan.box_counts)
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


def _snapshots(plan: WritePlan, links: list[str | None]) -> list[str]:
    """Each new specimen's "after" snapshot as add_event() writes it (sorted keys, no nulls).

    Formatted directly rather than through json.dumps (a tenth of the cost): the values are numbers
    and codes from fixed vocabularies, the parent link is JSON-encoded. Each key's text is made once
    per distinct value, and a row's snapshot is the join of its pieces (map and join run in C).
    """
    from json.encoder import encode_basestring_ascii  # what json.dumps uses for a str

    c = plan.columns
    # A box puts box_id, col and row together or none of them (Batch._places).
    head = {b: f'{{"biobank_id": {plan.biobank_id}, ' + (f'"box_id": {b}, ' if b is not None else "")
            for b in set(c["box_id"])}
    cols = {k: f'"col": {k}, ' if k is not None else "" for k in set(c["col"])}
    collections = {k: f'"collection_id": {k}, ' for k in set(c["collection_id"])}
    thaws = {k: f'"freeze_thaw_count": {k}, ' for k in set(c["freeze_thaw_count"])}
    parents = {k: f'"parent": {encode_basestring_ascii(k)}, ' if k else "" for k in set(links)}
    amounts = {
        (q, u): f'"quantity": {q!r}, "quantity_unit": "{u}", ' if q is not None else ""
        for q, u in set(zip(c["quantity"], c["quantity_unit"], strict=True))
    }
    rows = {k: f'"row": {k}, ' if k is not None else "" for k in set(c["row"])}
    statuses = {k: f'"status": "{k}"}}' for k in set(c["status"])}
    quantity_pieces = list(map(amounts.__getitem__, zip(c["quantity"], c["quantity_unit"], strict=True)))
    if c["quantity"].count(0.0):
        # 0.0 and -0.0 are one key but print differently: those rows get their own piece.
        quantity_pieces = [
            f'"quantity": {q!r}, "quantity_unit": "{u}", ' if q == 0 else piece
            for q, u, piece in zip(c["quantity"], c["quantity_unit"], quantity_pieces, strict=True)
        ]
    return list(map("".join, zip(
        map(head.__getitem__, c["box_id"]), map(cols.__getitem__, c["col"]),
        map(collections.__getitem__, c["collection_id"]), map(thaws.__getitem__, c["freeze_thaw_count"]),
        map(parents.__getitem__, links), quantity_pieces, map(rows.__getitem__, c["row"]),
        map(statuses.__getitem__, c["status"]), strict=True,
    )))


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
