"""Placement, moves, check-out/in and aliquoting into boxes; positions hold one specimen, even under races."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.institutions import repository as inst_repo
from tests.conftest import World
from tests.factories import make_box
from tests.specimens.test_specimens_api import count_specimens, create, specimen_body


def box_for(db: Session, world: World, code: str | None = None, **kw: Any) -> str:
    biobank = inst_repo.biobank_by_code(db, code or world.biobank_a)
    box = make_box(db, biobank, **kw)
    db.commit()
    return box.public_id  # type: ignore[no-any-return]


def occupied(db: Session, box_public_id: str) -> tuple[int, int]:
    """(the box's counter, the number of specimens actually in it)."""
    from biobank.specimens.models import Specimen
    from biobank.storage.models import StorageUnit

    db.expire_all()
    box = db.scalars(select(StorageUnit).where(StorageUnit.public_id == box_public_id)).one()
    counter = box.occupied
    actual = db.execute(select(func.count()).where(Specimen.box_id == box.id)).scalar_one()
    db.rollback()  # read everything first: touching the box after this would take SQLite's write lock again
    return counter, actual


def test_register_in_a_box_and_occupied_slot(db: Session, world: World) -> None:
    box = box_for(db, world)
    body = create(world, status="stored", placement={"box": box, "position": "A1"})
    assert body["location"]["position"] == "A1" and body["location"]["box"] == box
    clash = world.owner.post("/api/v1/specimens", json=specimen_body(
        world, barcode="SER-0002", status="stored", placement={"box": box, "position": "A1"}))
    assert clash.status_code == 409 and clash.json()["error"] == "PositionOccupied"
    outside = world.owner.post("/api/v1/specimens", json=specimen_body(
        world, barcode="SER-0003", placement={"box": box, "position": "Z99"}))
    assert outside.status_code == 422
    assert outside.json()["detail"][0]["loc"][:1] == ["placement"]
    assert occupied(db, box) == (1, 1)


def test_stored_needs_a_place(world: World) -> None:
    response = world.owner.post("/api/v1/specimens", json=specimen_body(world, status="stored"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["placement"]


def test_box_of_another_biobank_is_invisible(db: Session, world: World) -> None:
    foreign = box_for(db, world, world.biobank_b)
    response = world.owner.post("/api/v1/specimens", json=specimen_body(
        world, status="stored", placement={"box": foreign, "position": "A1"}))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["placement", "box"]


def test_aliquot_into_box_from_a_start_position(db: Session, world: World) -> None:
    box = box_for(db, world)
    create(world)
    response = world.owner.post("/api/v1/specimens/SER-0001/aliquots", json={
        "count": 5, "quantity": 0.5, "quantity_unit": "mL", "box": box, "start": "A8"})
    assert response.status_code == 201, response.text
    positions = [c["location"]["position"] for c in response.json()]
    assert positions == ["A8", "A9", "B1", "B2", "B3"]
    assert all(c["status"] == "stored" for c in response.json())
    assert occupied(db, box) == (5, 5)
    # A second split that would run into occupied positions is refused as a whole.
    create(world, barcode="SER-0100")
    clash = world.owner.post("/api/v1/specimens/SER-0100/aliquots", json={
        "count": 3, "quantity": 0.5, "quantity_unit": "mL", "box": box, "start": "A7"})
    assert clash.status_code == 409 and clash.json()["error"] == "PositionOccupied"
    past_end = world.owner.post("/api/v1/specimens/SER-0100/aliquots", json={
        "count": 3, "quantity": 0.5, "quantity_unit": "mL", "box": box, "start": "I8"})
    assert past_end.status_code == 422
    assert count_specimens(db) == 7
    assert world.owner.get("/api/v1/specimens/SER-0100").json()["quantity"] == 3.0


def test_move_check_out_and_in(db: Session, world: World) -> None:
    box = box_for(db, world)
    other_box = box_for(db, world, name="B2")
    create(world, status="stored", placement={"box": box, "position": "C3"})
    create(world, barcode="SER-0002", status="stored", placement={"box": other_box, "position": "A1"})
    into_occupied = world.owner.post("/api/v1/specimens/SER-0001/move", json={"box": other_box, "position": "A1"})
    assert into_occupied.status_code == 409
    moved = world.owner.post("/api/v1/specimens/SER-0001/move", json={"box": other_box, "position": "A2",
                                                                      "reason": "reorganising"})
    assert moved.status_code == 200 and moved.json()["location"]["position"] == "A2"
    assert occupied(db, box) == (0, 0) and occupied(db, other_box) == (2, 2)
    out = world.owner.post("/api/v1/specimens/SER-0001/check-out", json={"reason": "thaw for assay"})
    assert out.status_code == 200 and out.json()["checked_out"] is True
    assert world.owner.post("/api/v1/specimens/SER-0001/check-out", json={}).status_code == 409
    assert world.owner.post("/api/v1/specimens/SER-0001/move", json={"box": box, "position": "A1"}).status_code == 409
    back = world.owner.post("/api/v1/specimens/SER-0001/check-in", json={"thawed": True})
    assert back.status_code == 200 and back.json()["freeze_thaw_count"] == 1
    kinds = [e["kind"] for e in world.owner.get("/api/v1/specimens/SER-0001/events").json()]
    assert kinds == ["created", "moved", "checked_out", "checked_in"]
    moved_event = world.owner.get("/api/v1/specimens/SER-0001/events").json()[1]
    assert moved_event["reason"] == "reorganising" and moved_event["before"]["row"] == 3


def test_terminal_status_frees_the_position(db: Session, world: World) -> None:
    box = box_for(db, world)
    create(world, status="stored", placement={"box": box, "position": "A1"})
    assert world.owner.post("/api/v1/specimens/SER-0001/status", json={"status": "destroyed"}).status_code == 200
    assert occupied(db, box) == (0, 0)
    assert world.owner.get("/api/v1/specimens/SER-0001").json()["location"] is None


def test_concurrent_placements_in_one_position(db: Session, world: World) -> None:
    box = box_for(db, world)
    results: list[int] = []
    barrier = threading.Barrier(4)

    def place(i: int) -> None:
        barrier.wait()
        response = world.owner.post("/api/v1/specimens", json=specimen_body(
            world, barcode=f"RACE-{i}", status="stored", placement={"box": box, "position": "E5"}))
        results.append(response.status_code)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201, 409, 409, 409]
    assert occupied(db, box) == (1, 1)
