"""Specimen import lookups: what a file refers to, read in bulk (one query per kind, in chunks).

Never one query per row: a file of 200,000 rows makes a few dozen SELECTs here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

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
