"""Storage use cases (ISO 20387 7.7): the unit tree, and the position helpers other packages use.

The position helpers live in grid.py, lookup.py and positions.py and are re-exported here, so
callers only ever import `biobank.storage.service`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from biobank import audit
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.db import flush_or_conflict
from biobank.kit.errors import Conflict, Invalid, NotFound
from biobank.kit.ids import new_public_ids
from biobank.kit.pagination import PageParams, paginate
from biobank.storage import repository as repo
from biobank.storage.grid import label_range, parse_position, position_label
from biobank.storage.lookup import (
    boxes_by_ids,
    find_unit,
    get_box,
    get_unit,
    require_write,
    unit_reads,
    visible_biobank,
    writable_biobank,
)
from biobank.storage.models import ALLOWED_CHILDREN, LabelScheme, StorageUnit, UnitKind
from biobank.storage.positions import (
    box_view,
    consecutive_slots,
    free_slots,
    occupied_positions,
    occupy,
    occupy_many,
    temperature_filter,
    vacate,
)
from biobank.storage.repository import Totals
from biobank.storage.schemas import PATH_SEPARATOR, CapacityRow, UnitCreate, UnitDetail, UnitRead, UnitUpdate

__all__ = [
    "UNIQUE_UNIT",
    "TreeNode",
    "box_view",
    "boxes_by_ids",
    "capacity_report",
    "consecutive_slots",
    "create_unit",
    "dashboard_figures",
    "delete_unit",
    "free_slots",
    "get_box",
    "get_unit",
    "label_range",
    "list_units",
    "occupied_positions",
    "occupy",
    "occupy_many",
    "parse_position",
    "position_label",
    "storage_tree",
    "temperature_filter",
    "unit_detail",
    "unit_reads",
    "update_unit",
    "vacate",
]

MAX_PATH = 500
UNIT_SORTS = {
    "id": StorageUnit.id,
    "path": StorageUnit.path,
    "name": StorageUnit.name,
    "created_at": StorageUnit.created_at,
}
# Concurrent creates that race past the name check end in these constraints (PostgreSQL name / SQLite text).
UNIQUE_UNIT = {
    "uq_storage_units_parent_id_name": ("UnitNameTaken", "that name is already used in this unit"),
    "storage_units.parent_id, storage_units.name": ("UnitNameTaken", "that name is already used in this unit"),
    "uq_storage_units_biobank_id_path": ("UnitNameTaken", "a unit with that path already exists in this biobank"),
    "storage_units.biobank_id, storage_units.path": (
        "UnitNameTaken",
        "a unit with that path already exists in this biobank",
    ),
}


def _kind_list(kinds: frozenset[UnitKind]) -> str:
    return ", ".join(sorted(k.value for k in kinds)) or "nothing"


def _parent_for(session: Session, principal: Principal, ref: str) -> StorageUnit:
    parent = find_unit(session, principal, ref, field="parent")
    if parent is None:
        raise NotFound(f"no storage unit {ref!r}", name="StorageUnitNotFound")
    require_write(principal, parent.biobank_id)
    return parent


def _child_path(parent: StorageUnit | None, name: str) -> str:
    path = f"{parent.path}{PATH_SEPARATOR}{name}" if parent is not None else name
    if len(path) > MAX_PATH:
        raise Invalid.field("name", f"the unit's path would be longer than {MAX_PATH} characters")
    return path


def _check_name_free(
    session: Session, biobank_id: int, parent: StorageUnit | None, name: str, *, exclude_id: int | None = None
) -> None:
    parent_id = parent.id if parent is not None else None
    if repo.sibling_named(session, biobank_id, parent_id, name, exclude_id=exclude_id) is not None:
        where = f"in {parent.path}" if parent is not None else "among this biobank's sites"
        raise Conflict(f"a unit named {name!r} already exists {where}", name="UnitNameTaken")


def _grid(data: UnitCreate) -> tuple[int | None, int | None, LabelScheme | None]:
    if data.kind != UnitKind.BOX:
        for name in ("rows", "cols", "label_scheme"):
            if getattr(data, name) is not None:
                raise Invalid.field(name, "only boxes have a grid")
        return None, None, None
    for name in ("rows", "cols"):
        value = getattr(data, name)
        if value is None:
            raise Invalid.field(name, "a box needs rows and columns (1 to 100 each)")
        if not 1 <= value <= 100:
            raise Invalid.field(name, "must be between 1 and 100", value=value)
    return data.rows, data.cols, data.label_scheme or LabelScheme.LETTER_NUMBER


def create_unit(session: Session, principal: Principal, data: UnitCreate) -> StorageUnit:
    """Add a site, freezer/tank, rack/shelf or box; its temperature is the parent's unless given."""
    parent: StorageUnit | None = None
    if data.parent:
        parent = _parent_for(session, principal, data.parent)
        biobank_id = parent.biobank_id
        if data.biobank and writable_biobank(session, principal, data.biobank).id != biobank_id:
            raise Invalid.field("biobank", "the parent unit belongs to another biobank", value=data.biobank)
        allowed = ALLOWED_CHILDREN[UnitKind(parent.kind)]
        if data.kind not in allowed:
            raise Invalid.field(
                "kind", f"a {parent.kind} cannot hold a {data.kind}; it holds: {_kind_list(allowed)}", value=data.kind
            )
    else:
        if data.kind != UnitKind.SITE:
            raise Invalid.field("parent", f"a {data.kind} must be placed in a unit; only sites have no parent")
        if not data.biobank:
            raise Invalid.field("biobank", "give the biobank of a new site")
        biobank_id = writable_biobank(session, principal, data.biobank).id
    rows, cols, scheme = _grid(data)
    _check_name_free(session, biobank_id, parent, data.name)
    path = _child_path(parent, data.name)
    temperature = data.temperature.value if data.temperature else (parent.temperature if parent else None)
    institution_code = institutions.ensure_local_institution(session).code
    (public_id,) = new_public_ids(session, institution_code, "BOX" if data.kind == UnitKind.BOX else "STU", 1)
    unit = StorageUnit(
        public_id=public_id,
        biobank_id=biobank_id,
        parent_id=parent.id if parent else None,
        kind=data.kind,
        name=data.name,
        temperature=temperature,
        rows=rows,
        cols=cols,
        label_scheme=scheme,
        occupied=0,
        path=path,
    )
    session.add(unit)
    flush_or_conflict(session, UNIQUE_UNIT)
    audit.record(session, principal, "storage.create", "storage_unit", [public_id], details={"kind": data.kind.value})
    return unit


def update_unit(session: Session, principal: Principal, unit: StorageUnit, data: UnitUpdate) -> StorageUnit:
    """Rename a unit and/or move it (with its contents) under another parent of the same biobank."""
    require_write(principal, unit.biobank_id)
    fields = data.model_fields_set
    name = data.name if "name" in fields and data.name else unit.name
    parent = units = None
    if unit.parent_id is not None:
        parent = repo.units_by_ids(session, [unit.parent_id])[unit.parent_id]
    moved = "parent" in fields and data.parent != (parent.public_id if parent else None)
    if moved:
        if data.parent is None or unit.kind == UnitKind.SITE:
            raise Invalid.field("parent", "only a site has no parent, and a site is not placed in another unit")
        parent = _parent_for(session, principal, data.parent)
        if parent.biobank_id != unit.biobank_id:
            raise Invalid.field("parent", "a unit moves only within its biobank", value=data.parent)
        allowed = ALLOWED_CHILDREN[UnitKind(parent.kind)]
        if unit.kind not in allowed:
            raise Invalid.field("parent", f"a {parent.kind} cannot hold a {unit.kind}; it holds: {_kind_list(allowed)}")
        units = repo.subtree_ids(session, unit.id)
        if parent.id in units:
            raise Invalid.field("parent", "a unit cannot be moved into itself or into what it contains")
    if not moved and name == unit.name:
        return unit
    _check_name_free(session, unit.biobank_id, parent, name, exclude_id=unit.id)
    old_path, new_path = unit.path, _child_path(parent, name)
    units = units if units is not None else repo.subtree_ids(session, unit.id)
    if repo.longest_path(session, units) - len(old_path) + len(new_path) > MAX_PATH:
        raise Invalid.field("name", f"a path inside the unit would be longer than {MAX_PATH} characters")
    repo.rewrite_paths(session, units, old_path, new_path)
    if moved and parent is not None and parent.temperature:
        # What sits in a freezer is at the freezer's temperature: the moved contents take the new one.
        repo.set_temperature(session, units, parent.temperature)
    unit.name = name
    unit.parent_id = parent.id if parent else None
    flush_or_conflict(session, UNIQUE_UNIT)
    changed = sorted(f for f in ("name", "parent") if f in fields)
    audit.record(
        session,
        principal,
        "storage.update",
        "storage_unit",
        [unit.public_id],
        details={"fields": ",".join(changed), "units": len(units)},
    )
    return unit


def delete_unit(session: Session, principal: Principal, unit: StorageUnit) -> None:
    """Delete a unit that holds nothing (no units, no specimens); 409 otherwise."""
    require_write(principal, unit.biobank_id)
    if repo.has_children(session, unit.id):
        raise Conflict(f"{unit.path} still holds storage units; move or delete them first", name="UnitNotEmpty")
    if unit.kind == UnitKind.BOX and (unit.occupied > 0 or repo.has_specimens(session, unit.id)):
        raise Conflict(f"box {unit.path} still holds specimens; move them first", name="UnitNotEmpty")
    public_id = unit.public_id
    session.delete(unit)
    session.flush()
    audit.record(session, principal, "storage.delete", "storage_unit", [public_id])


def list_units(
    session: Session,
    principal: Principal,
    params: PageParams,
    *,
    biobank_code: str | None = None,
    kind: UnitKind | None = None,
    parent: str | None = None,
    name_contains: str | None = None,
) -> tuple[list[StorageUnit], int]:
    """A page of visible units, filtered by biobank, kind, parent or part of the name."""
    params = params.validated(UNIT_SORTS)
    biobank_id = visible_biobank(session, principal, biobank_code).id if biobank_code else None
    parent_id = get_unit(session, principal, parent).id if parent else None
    stmt = repo.units_stmt(
        principal, biobank_id=biobank_id, kind=kind, parent_id=parent_id, name_contains=name_contains
    )
    return paginate(session, stmt, params, UNIT_SORTS, "path")


def unit_detail(session: Session, principal: Principal, ref: str) -> UnitDetail:
    """A visible unit with its direct children."""
    unit = get_unit(session, principal, ref)
    reads = unit_reads(session, [unit, *repo.children(session, unit.id)])
    return UnitDetail(**reads[0].model_dump(), children=reads[1:])


def capacity_report(session: Session, principal: Principal, *, biobank_code: str | None = None) -> list[CapacityRow]:
    """Boxes, positions and occupancy of each visible freezer and tank."""
    biobank_ids = [visible_biobank(session, principal, biobank_code).id] if biobank_code else None
    scope = biobank_ids if biobank_ids is not None else principal.visible_biobank_ids()
    containers = [u for u in repo.units_above_boxes(session, scope) if u.kind in (UnitKind.FREEZER, UnitKind.TANK)]
    if not containers:
        return []
    totals = repo.totals_by_unit(session, scope)
    codes = institutions.biobank_codes(session, sorted({u.biobank_id for u in containers}))
    rows = []
    for unit in containers:
        sums = totals.get(unit.id, Totals())
        rows.append(
            CapacityRow(
                unit=unit.public_id,
                biobank=codes[unit.biobank_id],
                kind=UnitKind(unit.kind),
                path=unit.path,
                temperature=unit.temperature,
                boxes=sums.boxes,
                capacity=sums.capacity,
                occupied=sums.occupied,
                free=sums.capacity - sums.occupied,
                percent_used=round(100 * sums.occupied / sums.capacity, 1) if sums.capacity else 0.0,
            )
        )
    return rows


@dataclass
class TreeNode:
    """A unit above the boxes with what it contains, for the storage page."""

    unit: UnitRead
    children: list[TreeNode] = field(default_factory=list)


def storage_tree(session: Session, principal: Principal) -> list[TreeNode]:
    """Sites → freezers/tanks → racks/shelves of the visible biobanks, with box totals (boxes not listed)."""
    units = repo.units_above_boxes(session, principal.visible_biobank_ids())
    nodes = {u.id: TreeNode(r) for u, r in zip(units, unit_reads(session, units), strict=True)}
    roots = []
    for unit in units:
        node = nodes[unit.id]
        if unit.parent_id is not None and unit.parent_id in nodes:
            nodes[unit.parent_id].children.append(node)
        else:
            roots.append(node)
    return roots


def dashboard_figures(session: Session, principal: Principal) -> dict[str, int]:
    """Counts for the home page."""
    sums = repo.box_summary(session, principal.visible_biobank_ids())
    return {"storage boxes": sums.boxes, "free positions": sums.capacity - sums.occupied}
