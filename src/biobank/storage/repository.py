"""Queries over the storage tree. Reads that serve a user start from `visible(principal)`.

Positions are read from the specimens' (box_id, row, col) columns: they are the storage foreign key,
and the unique constraint on them is what guarantees one specimen per position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, true, update
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.specimens.models import Specimen
from biobank.storage.models import StorageUnit, UnitKind


@dataclass(frozen=True)
class Totals:
    """Boxes, positions and occupied positions in a unit."""

    boxes: int = 0
    capacity: int = 0
    occupied: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.boxes + other.boxes, self.capacity + other.capacity, self.occupied + other.occupied)


def _scoped(stmt: Select[StorageUnit], biobank_ids: Sequence[int] | None) -> Select[StorageUnit]:
    return stmt if biobank_ids is None else stmt.where(StorageUnit.biobank_id.in_(list(biobank_ids)))


def visible(principal: Principal) -> Select[StorageUnit]:
    """Units of the biobanks the principal belongs to (all for node admins)."""
    return _scoped(select(StorageUnit), principal.visible_biobank_ids())


def unit_by_public_id(session: Session, principal: Principal, public_id: str) -> StorageUnit | None:
    return session.scalars(visible(principal).where(StorageUnit.public_id == public_id)).first()


def units_by_path(session: Session, principal: Principal, path: str, kind: UnitKind | None = None) -> list[StorageUnit]:
    stmt = visible(principal).where(StorageUnit.path == path)
    if kind is not None:
        stmt = stmt.where(StorageUnit.kind == kind)
    return list(session.scalars(stmt.limit(2)))


def units_stmt(
    principal: Principal,
    *,
    biobank_id: int | None = None,
    kind: UnitKind | None = None,
    parent_id: int | None = None,
    roots_only: bool = False,
    name_contains: str | None = None,
) -> Select[StorageUnit]:
    """A filtered, scoped list statement (paged by the caller)."""
    stmt = visible(principal)
    if biobank_id is not None:
        stmt = stmt.where(StorageUnit.biobank_id == biobank_id)
    if kind is not None:
        stmt = stmt.where(StorageUnit.kind == kind)
    if parent_id is not None:
        stmt = stmt.where(StorageUnit.parent_id == parent_id)
    if roots_only:
        stmt = stmt.where(StorageUnit.parent_id.is_(None))
    if name_contains:
        stmt = stmt.where(StorageUnit.name.contains(name_contains, autoescape=True))
    return stmt


def children(session: Session, unit_id: int) -> list[StorageUnit]:
    return list(session.scalars(select(StorageUnit).where(StorageUnit.parent_id == unit_id).order_by(StorageUnit.path)))


def has_children(session: Session, unit_id: int) -> bool:
    return session.scalar(select(StorageUnit.id).where(StorageUnit.parent_id == unit_id).limit(1)) is not None


def sibling_named(
    session: Session, biobank_id: int, parent_id: int | None, name: str, *, exclude_id: int | None = None
) -> StorageUnit | None:
    """A unit of that name under the same parent (sites: among the biobank's sites)."""
    stmt = select(StorageUnit).where(StorageUnit.biobank_id == biobank_id, StorageUnit.name == name)
    stmt = stmt.where(StorageUnit.parent_id.is_(None) if parent_id is None else StorageUnit.parent_id == parent_id)
    if exclude_id is not None:
        stmt = stmt.where(StorageUnit.id != exclude_id)
    return session.scalars(stmt.limit(1)).first()


def public_ids_by_id(session: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(StorageUnit.id, StorageUnit.public_id).where(StorageUnit.id.in_(list(ids))))
    return {row.id: row.public_id for row in rows}


def units_by_ids(session: Session, ids: Sequence[int]) -> dict[int, StorageUnit]:
    """Units by row id, unscoped: for callers that already checked what they may see."""
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(StorageUnit).where(StorageUnit.id.in_(list(ids))))}


def subtree_ids_stmt(root_id: int) -> Select[int]:
    """Ids of a unit and everything below it (a recursive walk down parent_id)."""
    tree = select(StorageUnit.id).where(StorageUnit.id == root_id).cte("subtree", recursive=True)
    tree = tree.union_all(select(StorageUnit.id).where(StorageUnit.parent_id == tree.c.id))
    return select(tree.c.id)


def subtree_ids(session: Session, root_id: int) -> list[int]:
    return list(session.scalars(subtree_ids_stmt(root_id)))


def longest_path(session: Session, ids: Sequence[int]) -> int:
    return session.scalar(select(func.max(func.length(StorageUnit.path))).where(StorageUnit.id.in_(list(ids)))) or 0


def rewrite_paths(session: Session, ids: Sequence[int], old_prefix: str, new_prefix: str) -> None:
    """Replace the leading `old_prefix` of the paths of these units by `new_prefix`."""
    new_path = literal(new_prefix) + func.substr(StorageUnit.path, len(old_prefix) + 1)
    session.execute(
        update(StorageUnit).where(StorageUnit.id.in_(list(ids))).values(path=new_path),
        execution_options={"synchronize_session": "fetch"},
    )


def set_temperature(session: Session, ids: Sequence[int], temperature: str | None) -> None:
    session.execute(
        update(StorageUnit).where(StorageUnit.id.in_(list(ids))).values(temperature=temperature),
        execution_options={"synchronize_session": "fetch"},
    )


def change_occupied(session: Session, box_id: int, delta: int) -> int | None:
    """Atomically add `delta` to a box's counter; None when that would leave 0..capacity."""
    new_value = StorageUnit.occupied + delta
    return session.execute(
        update(StorageUnit)
        .where(
            StorageUnit.id == box_id,
            StorageUnit.kind == UnitKind.BOX,
            new_value >= 0,
            new_value <= StorageUnit.rows * StorageUnit.cols,
        )
        .values(occupied=new_value)
        .returning(StorageUnit.occupied),
        execution_options={"synchronize_session": "fetch"},
    ).scalar_one_or_none()


def add_occupied(session: Session, deltas: Sequence[tuple[int, int]]) -> int:
    """Add deltas to many boxes' counters in one UPDATE (id -> delta as a CASE); returns the boxes
    changed, fewer than given when a counter would leave 0..capacity (that box is left as it was)."""
    if not deltas:
        return 0
    delta = case({box_id: change for box_id, change in deltas}, value=StorageUnit.id, else_=0)
    new_value = StorageUnit.occupied + delta
    result = session.execute(
        update(StorageUnit)
        .where(
            StorageUnit.id.in_([box_id for box_id, _ in deltas]),
            StorageUnit.kind == UnitKind.BOX,
            new_value >= 0,
            new_value <= StorageUnit.rows * StorageUnit.cols,
        )
        .values(occupied=new_value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def occupied_positions(session: Session, box_id: int) -> dict[tuple[int, int], int]:
    stmt = select(Specimen.row, Specimen.col, Specimen.id).where(Specimen.box_id == box_id)
    rows = session.execute(stmt.order_by(Specimen.row, Specimen.col))
    return {(row.row, row.col): row.id for row in rows}


def occupied_in_boxes(session: Session, box_ids: Sequence[int]) -> dict[int, set[tuple[int, int]]]:
    """Occupied positions of several boxes, in one query (uses the position index)."""
    found: dict[int, set[tuple[int, int]]] = {box_id: set() for box_id in box_ids}
    if not box_ids:
        return found
    stmt = select(Specimen.box_id, Specimen.row, Specimen.col).where(Specimen.box_id.in_(list(box_ids)))
    rows = session.execute(stmt)
    for row in rows:
        found[row.box_id].add((row.row, row.col))
    return found


def has_specimens(session: Session, box_id: int) -> bool:
    return session.scalar(select(Specimen.id).where(Specimen.box_id == box_id).limit(1)) is not None


def boxes_with_room(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    biobank_id: int | None = None,
    temperature: str | None = None,
    within_id: int | None = None,
    after: tuple[str, int] | None = None,
) -> list[StorageUnit]:
    """The next boxes in path order whose counter says a position is free (keyset-paged by (path, id))."""
    stmt = visible(principal).where(
        StorageUnit.kind == UnitKind.BOX, StorageUnit.occupied < StorageUnit.rows * StorageUnit.cols
    )
    if biobank_id is not None:
        stmt = stmt.where(StorageUnit.biobank_id == biobank_id)
    if temperature is not None:
        stmt = stmt.where(StorageUnit.temperature == temperature)
    if within_id is not None:
        stmt = stmt.where(StorageUnit.id.in_(subtree_ids_stmt(within_id)))
    if after is not None:
        path, unit_id = after
        stmt = stmt.where(or_(StorageUnit.path > path, and_(StorageUnit.path == path, StorageUnit.id > unit_id)))
    return list(session.scalars(stmt.order_by(StorageUnit.path, StorageUnit.id).limit(limit)))


def _in_biobanks(biobank_ids: Sequence[int] | None) -> ColumnElement[bool]:
    return true() if biobank_ids is None else StorageUnit.biobank_id.in_(list(biobank_ids))


def totals_by_unit(session: Session, biobank_ids: Sequence[int] | None) -> dict[int, Totals]:
    """Box totals of every unit above the boxes of these biobanks (None: all), in two queries.

    Boxes are summed per parent in the database, then rolled up the (small) tree of units above them.
    """
    scope = _in_biobanks(biobank_ids)
    above = select(StorageUnit.id, StorageUnit.parent_id).where(StorageUnit.kind != UnitKind.BOX, scope)
    parents: dict[int, int | None] = {row.id: row.parent_id for row in session.execute(above)}
    direct = session.execute(
        select(
            StorageUnit.parent_id,
            func.count(),
            func.coalesce(func.sum(StorageUnit.rows * StorageUnit.cols), 0),
            func.coalesce(func.sum(StorageUnit.occupied), 0),
        )
        .where(StorageUnit.kind == UnitKind.BOX, scope)
        .group_by(StorageUnit.parent_id)
    )
    totals: dict[int, Totals] = dict.fromkeys(parents, Totals())
    for parent_id, boxes, capacity, occupied in direct:
        add = Totals(int(boxes or 0), int(capacity or 0), int(occupied or 0))
        unit_id: int | None = parent_id
        while unit_id is not None and unit_id in totals:
            totals[unit_id] = totals[unit_id] + add
            unit_id = parents[unit_id]
    return totals


def units_above_boxes(session: Session, biobank_ids: Sequence[int] | None) -> list[StorageUnit]:
    """Every site, freezer, tank, rack and shelf of these biobanks, in path order."""
    stmt = select(StorageUnit).where(StorageUnit.kind != UnitKind.BOX)
    return list(session.scalars(_scoped(stmt, biobank_ids).order_by(StorageUnit.biobank_id, StorageUnit.path)))


def box_summary(session: Session, biobank_ids: Sequence[int] | None) -> Totals:
    """Boxes, positions and occupied positions over these biobanks."""
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(StorageUnit.rows * StorageUnit.cols), 0),
            func.coalesce(func.sum(StorageUnit.occupied), 0),
        ).where(StorageUnit.kind == UnitKind.BOX, _in_biobanks(biobank_ids))
    ).one()
    return Totals(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))
