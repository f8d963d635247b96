"""Finding units a principal may see (by public id or path) and turning them into read schemas."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank
from biobank.kit.errors import Invalid, NotFound, NotPermitted
from biobank.storage import repository as repo
from biobank.storage.models import StorageUnit, UnitKind
from biobank.storage.repository import Totals
from biobank.storage.schemas import UnitRead


def find_unit(
    session: Session, principal: Principal, ref: str, *, kind: UnitKind | None = None, field: str = "unit"
) -> StorageUnit | None:
    """A visible unit by public id, or by its full path when that names exactly one visible unit."""
    ref = (ref or "").strip()
    if not ref:
        return None
    unit = repo.unit_by_public_id(session, principal, ref)
    if unit is not None:
        return unit
    matches = repo.units_by_path(session, principal, ref, kind)
    if len(matches) > 1:
        raise Invalid.field(field, "that path names units of several biobanks; give the public id", value=ref)
    return matches[0] if matches else None


def get_unit(session: Session, principal: Principal, ref: str) -> StorageUnit:
    """A visible unit by public id or path; 404 when it does not exist or is not visible."""
    unit = find_unit(session, principal, ref)
    if unit is None:
        raise NotFound(f"no storage unit {ref!r}", name="StorageUnitNotFound")
    return unit


def get_box(session: Session, principal: Principal, box_ref: str, *, for_write: bool) -> StorageUnit:
    """A visible box by public id or path; 404 if invisible, 403 if for_write and not writable."""
    unit = find_unit(session, principal, box_ref, kind=UnitKind.BOX, field="box")
    if unit is None:
        raise NotFound(f"no box {box_ref!r}", name="BoxNotFound")
    if unit.kind != UnitKind.BOX:
        raise Invalid.field("box", f"{unit.path} is not a box", value=box_ref)
    if for_write:
        require_write(principal, unit.biobank_id)
    return unit


def require_write(principal: Principal, biobank_id: int) -> None:
    """Refuse a change to a biobank's storage by someone who may only read it."""
    if not principal.can_write(biobank_id):
        raise NotPermitted("you may not change this biobank's storage")


def boxes_by_ids(session: Session, ids: Sequence[int]) -> dict[int, StorageUnit]:
    """Units by row id, for callers that already checked visibility (specimen views)."""
    return repo.units_by_ids(session, ids)


def visible_biobank(session: Session, principal: Principal, code: str) -> Biobank:
    """A biobank by code whose storage the principal may see; 404 otherwise (a filter, not a body field)."""
    try:
        biobank = institutions.get_biobank(session, code)
    except NotFound:
        biobank = None
    if biobank is None or not principal.can_read(biobank.id):
        raise NotFound(f"no storage of biobank {code!r} is visible to you", name="BiobankNotFound")
    return biobank


def writable_biobank(session: Session, principal: Principal, code: str) -> Biobank:
    """The biobank named in a create request; Invalid("biobank") if unknown, 403 if not writable."""
    try:
        biobank = institutions.get_biobank(session, code)
    except NotFound:
        raise Invalid.field("biobank", "unknown biobank code", value=code) from None
    require_write(principal, biobank.id)
    return biobank


def unit_reads(session: Session, units: Sequence[StorageUnit]) -> list[UnitRead]:
    """Read schemas of units with codes, parents and box totals resolved in a fixed number of queries."""
    if not units:
        return []
    codes = institutions.biobank_codes(session, sorted({u.biobank_id for u in units}))
    parents = repo.public_ids_by_id(session, sorted({u.parent_id for u in units if u.parent_id is not None}))
    above = sorted({u.biobank_id for u in units if u.kind != UnitKind.BOX})
    totals = repo.totals_by_unit(session, above) if above else {}
    return [_read(u, codes[u.biobank_id], parents.get(u.parent_id) if u.parent_id else None, totals) for u in units]


def _read(unit: StorageUnit, biobank: str, parent: str | None, totals: dict[int, Totals]) -> UnitRead:
    is_box = unit.kind == UnitKind.BOX
    sums = Totals(1, unit.capacity, unit.occupied) if is_box else totals.get(unit.id, Totals())
    return UnitRead(
        public_id=unit.public_id,
        biobank=biobank,
        kind=UnitKind(unit.kind),
        name=unit.name,
        path=unit.path,
        temperature=unit.temperature,
        rows=unit.rows,
        cols=unit.cols,
        label_scheme=unit.label_scheme,
        occupied=sums.occupied,
        capacity=sums.capacity,
        boxes=sums.boxes,
        parent=parent,
    )
