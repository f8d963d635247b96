"""Positions: consecutive runs, occupancy counters, free-slot search, box view, concurrent placement."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biobank.audit.service import pending_entries
from biobank.kit.db import session_factory
from biobank.kit.errors import Conflict, Invalid, NotFound
from biobank.specimens.models import Specimen, Status
from biobank.storage import service
from biobank.storage.models import StorageUnit
from tests.conftest import World
from tests.storage import Tree, admin, insert_specimen, make_tree, make_unit, member


def _fill(session: Session, box: StorageUnit) -> None:
    assert box.rows and box.cols
    for row in range(1, box.rows + 1):
        for col in range(1, box.cols + 1):
            insert_specimen(session, box, row, col)


def test_consecutive_slots_wrap_to_the_next_row(db: Session, world: World) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1, rows=8, cols=12)
    box = tree.boxes[0]
    assert service.consecutive_slots(db, box, "A11", 3) == [(1, 11), (1, 12), (2, 1)]
    assert service.consecutive_slots(db, box, "H12", 1) == [(8, 12)]


def test_consecutive_slots_past_the_end_are_invalid(db: Session, world: World) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1, rows=8, cols=12)
    with pytest.raises(Invalid) as caught:
        service.consecutive_slots(db, tree.boxes[0], "H10", 4)
    assert caught.value.errors[0]["loc"] == ["count"]
    assert "3 fit" in caught.value.errors[0]["msg"]
    with pytest.raises(Invalid) as caught:
        service.consecutive_slots(db, tree.boxes[0], "J1", 1)
    assert caught.value.errors[0]["loc"] == ["position"]
    with pytest.raises(Invalid):
        service.consecutive_slots(db, tree.boxes[0], "A1", 0)


def test_consecutive_slots_name_the_first_occupied_position(db: Session, world: World) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1, rows=8, cols=12)
    box = tree.boxes[0]
    insert_specimen(db, box, 1, 5)
    insert_specimen(db, box, 1, 7)
    with pytest.raises(Conflict) as caught:
        service.consecutive_slots(db, box, "A3", 6)
    assert caught.value.name == "PositionOccupied"
    assert "position A5 " in str(caught.value.detail)
    assert service.occupied_positions(db, box.id).keys() == {(1, 5), (1, 7)}


def test_numeric_boxes_count_positions_row_by_row(db: Session, world: World) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=0)
    box = make_unit(db, admin(), "box", "Numeric", parent=tree.rack, rows=10, cols=10, label_scheme="1-N")
    assert service.consecutive_slots(db, box, "10", 2) == [(1, 10), (2, 1)]
    assert service.position_label(box, 2, 1) == "11"


def test_occupy_and_vacate_move_the_counter_atomically(db: Session, world: World) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1, rows=2, cols=2)
    box = tree.boxes[0]
    service.occupy(db, box.id)
    service.occupy(db, box.id, 3)
    db.refresh(box)
    assert box.occupied == 4
    with pytest.raises(Conflict) as caught:
        service.occupy(db, box.id)
    assert caught.value.name == "BoxFull"
    service.vacate(db, box.id, 4)
    db.refresh(box)
    assert box.occupied == 0
    with pytest.raises(Conflict) as caught:
        service.vacate(db, box.id)
    assert caught.value.name == "OccupancyMismatch"
    db.refresh(box)
    assert box.occupied == 0


def test_the_database_refuses_a_negative_counter(db: Session, world: World) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1)
    db.commit()
    with pytest.raises(IntegrityError):
        db.execute(update(StorageUnit).where(StorageUnit.id == tree.boxes[0].id).values(occupied=-1))
    db.rollback()


def test_free_slots_skip_full_boxes_and_run_on_into_the_next(db: Session, world: World) -> None:
    tech = member(db, world.biobank_a)
    tree = make_tree(db, tech, world.biobank_a, boxes=3, rows=2, cols=3)
    _fill(db, tree.boxes[0])
    insert_specimen(db, tree.boxes[1], 1, 1)
    insert_specimen(db, tree.boxes[1], 1, 3)
    slots = service.free_slots(db, tech, biobank_code=None, temperature=None, count=6)
    assert [(s.box, s.position) for s in slots] == [
        (tree.boxes[1].public_id, "A2"),
        (tree.boxes[1].public_id, "B1"),
        (tree.boxes[1].public_id, "B2"),
        (tree.boxes[1].public_id, "B3"),
        (tree.boxes[2].public_id, "A1"),
        (tree.boxes[2].public_id, "A2"),
    ]
    assert slots[0].path == "Site 1 / Freezer F1 / Rack R1 / Box B02"
    assert (slots[0].row, slots[0].col) == (1, 2)
    assert len(service.free_slots(db, tech, biobank_code=world.biobank_a, temperature=None, count=1000)) == 10


def test_free_slots_trust_positions_over_a_wrong_counter(db: Session, world: World) -> None:
    tech = member(db, world.biobank_a)
    tree = make_tree(db, tech, world.biobank_a, boxes=2, rows=1, cols=2)
    insert_specimen(db, tree.boxes[0], 1, 1, count=False)
    insert_specimen(db, tree.boxes[0], 1, 2, count=False)  # counter says 0, box is full
    (slot,) = service.free_slots(db, tech, biobank_code=None, temperature=None)
    assert (slot.box, slot.position) == (tree.boxes[1].public_id, "A1")


def _two_freezers(db: Session, world: World) -> tuple[Tree, StorageUnit]:
    tech = member(db, world.biobank_a)
    tree = make_tree(db, tech, world.biobank_a, boxes=2, rows=2, cols=2)
    tank = make_unit(db, tech, "tank", "A tank", parent=tree.site, temperature="LN2 vapour phase")
    tank_box = make_unit(db, tech, "box", "Tank box", parent=tank, rows=1, cols=1)
    return tree, tank_box


def test_free_slots_filter_by_temperature_within_and_biobank(db: Session, world: World) -> None:
    tree, tank_box = _two_freezers(db, world)
    tech = member(db, world.biobank_a)
    # Path order puts the tank ("Site 1 / A tank") first.
    first = service.free_slots(db, tech, biobank_code=None, temperature=None)
    assert first[0].box == tank_box.public_id
    cold = service.free_slots(db, tech, biobank_code=None, temperature="LN2 vapour", count=5)
    assert [s.box for s in cold] == [tank_box.public_id]
    minus_80 = service.free_slots(db, tech, biobank_code=None, temperature="-80", count=3)
    assert {s.box for s in minus_80} == {tree.boxes[0].public_id}
    within = service.free_slots(db, tech, biobank_code=None, temperature=None, count=5, within=tree.rack.public_id)
    assert {s.box for s in within} == {tree.boxes[0].public_id, tree.boxes[1].public_id}
    by_path = service.free_slots(db, tech, biobank_code=None, temperature=None, within=tree.boxes[1].path)
    assert by_path[0].box == tree.boxes[1].public_id
    other_site = make_unit(db, admin(), "site", "B", biobank=world.biobank_b)
    other_box = make_unit(
        db, admin(), "box", "B box", parent=make_unit(db, admin(), "freezer", "F", parent=other_site), rows=1, cols=1
    )
    assert other_box.public_id not in {
        s.box for s in service.free_slots(db, tech, biobank_code=None, temperature=None, count=100)
    }
    everything = service.free_slots(db, admin(), biobank_code=world.biobank_b, temperature=None, count=100)
    assert [s.box for s in everything] == [other_box.public_id]


def test_free_slot_filters_are_checked(db: Session, world: World) -> None:
    tech = member(db, world.biobank_a)
    make_tree(db, tech, world.biobank_a, boxes=1)
    with pytest.raises(Invalid) as caught:
        service.free_slots(db, tech, biobank_code=None, temperature="lukewarm")
    assert caught.value.errors[0]["loc"] == ["temperature"]
    with pytest.raises(Invalid) as caught:
        service.free_slots(db, tech, biobank_code=None, temperature=None, count=0)
    assert caught.value.errors[0]["loc"] == ["count"]
    with pytest.raises(NotFound):
        service.free_slots(db, tech, biobank_code=world.biobank_b, temperature=None)
    with pytest.raises(NotFound):
        service.free_slots(db, tech, biobank_code=None, temperature=None, within="no such unit")


def test_box_view_shows_each_position(db: Session, world: World) -> None:
    tech = member(db, world.biobank_a)
    tree = make_tree(db, tech, world.biobank_a, boxes=1, rows=3, cols=4)
    box = tree.boxes[0]
    placed = insert_specimen(db, box, 2, 3)
    view = service.box_view(db, tech, box.public_id)
    assert view.box.public_id == box.public_id and view.box.occupied == 1 and view.box.capacity == 12
    assert len(view.grid) == 3 and all(len(row) == 4 for row in view.grid)
    assert [c.position for c in view.grid[0]] == ["A1", "A2", "A3", "A4"]
    cell = view.grid[1][2]
    assert (cell.position, cell.row, cell.col) == ("B3", 2, 3)
    assert cell.specimen is not None
    assert (cell.specimen.public_id, cell.specimen.barcode) == (placed.public_id, placed.barcode)
    assert (cell.specimen.sample_type, cell.specimen.status) == ("Plasma", "stored")
    assert sum(1 for row in view.grid for c in row if c.specimen is None) == 11
    assert ("storage.box.view", [box.public_id]) in [(e.action, e.resource_ids) for e in pending_entries(db)]
    with pytest.raises(NotFound):
        service.box_view(db, member(db, world.biobank_b), box.public_id)


def _place(
    engine: Engine,
    box_id: int,
    biobank_id: int,
    collection_id: int,
    barcode: str,
    barrier: threading.Barrier,
    outcome: dict[str, str],
) -> None:
    session = session_factory(engine)()
    try:
        barrier.wait(timeout=10)
        session.add(
            Specimen(
                public_id=f"CN-SH-H01:SPC-{barcode}",
                barcode=barcode,
                biobank_id=biobank_id,
                collection_id=collection_id,
                sample_type="Serum",
                status=Status.STORED,
                box_id=box_id,
                row=1,
                col=1,
            )
        )
        session.commit()
        outcome[barcode] = "placed"
    except IntegrityError:
        session.rollback()
        outcome[barcode] = "refused"
    finally:
        session.close()


def test_two_concurrent_placements_in_one_position_exactly_one_wins(db: Session, world: World, engine: Engine) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1)
    box = tree.boxes[0]
    collection_id = db.execute(
        text("SELECT id FROM collections WHERE biobank_id = :b"), {"b": box.biobank_id}
    ).scalar_one()
    db.commit()
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}
    threads = [
        threading.Thread(target=_place, args=(engine, box.id, box.biobank_id, collection_id, code, barrier, outcome))
        for code in ("RACE0001", "RACE0002")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcome.values()) == ["placed", "refused"]
    assert list(service.occupied_positions(db, box.id)) == [(1, 1)]
