"""Positions in boxes: consecutive runs, occupancy counters, free-slot search and the box view."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice

from sqlalchemy.orm import Session

from biobank import audit
from biobank.identity.principal import Principal
from biobank.kit.errors import Conflict, Invalid, NotFound
from biobank.kit.vocab import normalise_storage_temperature
from biobank.storage import repository as repo
from biobank.storage.grid import label_range, parse_position, position_label, positions_from
from biobank.storage.lookup import find_unit, get_box, unit_reads, visible_biobank
from biobank.storage.models import StorageUnit
from biobank.storage.schemas import BoxCell, BoxSpecimen, BoxView, FreeSlot

OCCUPY_CHUNK = 500  # boxes per UPDATE: 3 bound values each, well inside every database's limit

MAX_FREE_SLOTS = 1000
# Boxes fetched per round of the free-slot search; most searches end in the first round.
BOX_BATCH = 32


def occupied_positions(session: Session, box_id: int) -> dict[tuple[int, int], int]:
    """Occupied positions of a box: (row, col) → specimen row id."""
    return repo.occupied_positions(session, box_id)


def consecutive_slots(session: Session, box: StorageUnit, start_label: str, count: int) -> list[tuple[int, int]]:
    """`count` free positions from `start_label` on, row by row; Invalid past the end, 409 if one is taken."""
    if count < 1:
        raise Invalid.field("count", "must be 1 or more", value=count)
    row, col = parse_position(box, start_label)
    slots = list(islice(positions_from(box, row, col), count))
    if len(slots) < count:
        raise Invalid.field(
            "count",
            f"{count} positions from {position_label(box, row, col)} run past the end of the box "
            f"({label_range(box)}); {len(slots)} fit",
            value=count,
        )
    taken = repo.occupied_positions(session, box.id)
    for slot in slots:
        if slot in taken:
            label = position_label(box, *slot)
            raise Conflict(f"position {label} of box {box.path} is occupied", name="PositionOccupied")
    return slots


def occupy(session: Session, box_id: int, count: int = 1) -> None:
    """Count `count` more specimens in a box (one atomic UPDATE); 409 if that would exceed its capacity."""
    if count < 1:
        raise Invalid.field("count", "must be 1 or more", value=count)
    if repo.change_occupied(session, box_id, count) is None:
        raise Conflict(f"the box has no room for {count} more specimen(s)", name="BoxFull")


def occupy_many(session: Session, counts: Mapping[int, int]) -> None:
    """Count more specimens in many boxes (box id -> how many more; a few UPDATEs in all, as occupy()
    for each); 409 when one of them has no room, and then the caller's transaction must roll back."""
    if any(count < 1 for count in counts.values()):
        raise Invalid.field("count", "must be 1 or more")
    items = sorted(counts.items())
    for start in range(0, len(items), OCCUPY_CHUNK):
        part = items[start : start + OCCUPY_CHUNK]
        if repo.add_occupied(session, part) != len(part):
            raise Conflict("a box has no room for the specimens put in it", name="BoxFull")
    for unit in list(session.identity_map.values()):  # loaded boxes show the new counts when next read
        if isinstance(unit, StorageUnit) and unit.id in counts:
            session.expire(unit, ["occupied"])


def vacate(session: Session, box_id: int, count: int = 1) -> None:
    """Count `count` fewer specimens in a box (one atomic UPDATE); 409 if the counter would go below zero."""
    if count < 1:
        raise Invalid.field("count", "must be 1 or more", value=count)
    if repo.change_occupied(session, box_id, -count) is None:
        raise Conflict(f"the box does not hold {count} specimen(s) to remove", name="OccupancyMismatch")


def temperature_filter(temperature: str | None) -> str | None:
    """The MIABIS term of a typed temperature ('-80' → '−60 °C to −85 °C'); Invalid("temperature")."""
    if temperature is None or not temperature.strip():
        return None
    try:
        return normalise_storage_temperature(temperature).value
    except ValueError as exc:
        raise Invalid.field("temperature", str(exc), value=temperature) from None


def free_slots(
    session: Session,
    principal: Principal,
    *,
    biobank_code: str | None,
    temperature: str | None,
    count: int = 1,
    within: str | None = None,
) -> list[FreeSlot]:
    """The first `count` free positions, in path order, of visible boxes matching the filters.

    Boxes are chosen by their occupancy counter (indexed columns of the box rows only); specimens are
    read only for the few boxes chosen, never for a whole freezer.
    """
    if not 1 <= count <= MAX_FREE_SLOTS:
        raise Invalid.field("count", f"must be between 1 and {MAX_FREE_SLOTS}", value=count)
    biobank_id = visible_biobank(session, principal, biobank_code).id if biobank_code else None
    wanted_temperature = temperature_filter(temperature)
    within_id = None
    if within:
        unit = find_unit(session, principal, within, field="within")
        if unit is None:
            raise NotFound(f"no storage unit {within!r}", name="StorageUnitNotFound")
        within_id = unit.id
    found: list[FreeSlot] = []
    after: tuple[str, int] | None = None
    while len(found) < count:
        boxes = repo.boxes_with_room(
            session,
            principal,
            limit=BOX_BATCH,
            biobank_id=biobank_id,
            temperature=wanted_temperature,
            within_id=within_id,
            after=after,
        )
        if not boxes:
            break
        chosen = _enough_boxes(boxes, count - len(found))
        taken = repo.occupied_in_boxes(session, [b.id for b in chosen])
        for box in chosen:
            found.extend(_free_in_box(box, taken[box.id], count - len(found)))
            if len(found) >= count:
                break
        after = (chosen[-1].path, chosen[-1].id)
    return found


def _enough_boxes(boxes: list[StorageUnit], needed: int) -> list[StorageUnit]:
    """The leading boxes whose counters promise at least `needed` free positions."""
    chosen, room = [], 0
    for box in boxes:
        chosen.append(box)
        room += box.capacity - box.occupied
        if room >= needed:
            break
    return chosen


def _free_in_box(box: StorageUnit, taken: set[tuple[int, int]], limit: int) -> list[FreeSlot]:
    out: list[FreeSlot] = []
    for row, col in positions_from(box, 1, 1):
        if (row, col) in taken:
            continue
        out.append(FreeSlot(box=box.public_id, path=box.path, position=position_label(box, row, col), row=row, col=col))
        if len(out) >= limit:
            break
    return out


def box_view(session: Session, principal: Principal, box_ref: str) -> BoxView:
    """A box as a grid of cells with the specimen (if any) in each; the read is audited."""
    from biobank.specimens import service as specimens

    box = get_box(session, principal, box_ref, for_write=False)
    by_position = {(s.row, s.col): s for s in specimens.specimens_in_box(session, box.id)}
    grid = []
    for row in range(1, (box.rows or 0) + 1):
        cells = []
        for col in range(1, (box.cols or 0) + 1):
            brief = by_position.get((row, col))
            specimen = None
            if brief is not None:
                specimen = BoxSpecimen(
                    public_id=brief.public_id, barcode=brief.barcode, sample_type=brief.sample_type, status=brief.status
                )
            cells.append(BoxCell(position=position_label(box, row, col), row=row, col=col, specimen=specimen))
        grid.append(cells)
    audit.record(
        session, principal, "storage.box.view", "storage_unit", [box.public_id], details={"specimens": len(by_position)}
    )
    (read,) = unit_reads(session, [box])
    return BoxView(box=read, grid=grid)
