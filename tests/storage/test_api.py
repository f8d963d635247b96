"""/api/v1/storage: every endpoint for the owner, a viewer, another biobank's member and an outsider."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from tests.conftest import Persona, World
from tests.storage import Tree, admin, insert_specimen, make_tree, make_unit, owner_tree, persona_with_role

API = "/api/v1/storage"


@pytest.fixture
def viewer(db: Session, world: World, client: TestClient) -> Persona:
    """A read-only member of biobank A."""
    return persona_with_role(db, client, "viewer", world.biobank_a, "viewer")


@pytest.fixture
def tree(db: Session, world: World) -> Tree:
    """Site 1 / Freezer F1 / Rack R1 / Box B01, B02 in biobank A, one specimen in B01 at A1."""
    built = owner_tree(db, world)
    insert_specimen(db, built.boxes[0], 1, 1)
    db.commit()
    return built


def _error(response: Any, status: int, name: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    if name is not None:
        assert body["error"] == name
    return body


def test_list_units_is_scoped(world: World, tree: Tree, viewer: Persona) -> None:
    for persona in (world.owner, world.technician, viewer):
        body = persona.get(f"{API}/units", params={"size": 100}).json()
        assert body["total"] == 5
        assert [u["path"] for u in body["items"]][:2] == ["Site 1", "Site 1 / Freezer F1"]
    for persona in (world.other, world.outsider):
        assert persona.get(f"{API}/units").json()["total"] == 0
    _error(world.other.get(f"{API}/units", params={"biobank": world.biobank_a}), 404, "BiobankNotFound")
    boxes = world.owner.get(f"{API}/units", params={"kind": "box", "parent": tree.rack.public_id}).json()["items"]
    assert [(b["name"], b["occupied"], b["capacity"], b["parent"]) for b in boxes] == [
        ("Box B01", 1, 81, tree.rack.public_id),
        ("Box B02", 0, 81, tree.rack.public_id),
    ]
    freezer = world.owner.get(f"{API}/units", params={"kind": "freezer"}).json()["items"][0]
    assert (freezer["boxes"], freezer["capacity"], freezer["occupied"]) == (2, 162, 1)
    assert freezer["temperature"] == "−60 °C to −85 °C" and freezer["biobank"] == world.biobank_a
    assert world.owner.get(f"{API}/units", params={"q": "B02"}).json()["total"] == 1
    _error(world.owner.get(f"{API}/units", params={"sort": "colour"}), 422, "Invalid")


def test_create_units(world: World, tree: Tree, viewer: Persona) -> None:
    box = {
        "parent": tree.rack.public_id,
        "kind": "box",
        "name": "Box B03",
        "rows": 10,
        "cols": 10,
        "label_scheme": "1-N",
    }
    created = world.technician.post(f"{API}/units", json=box)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["path"] == "Site 1 / Freezer F1 / Rack R1 / Box B03"
    assert (body["capacity"], body["occupied"], body["label_scheme"]) == (100, 0, "1-N")
    assert body["temperature"] == "−60 °C to −85 °C"
    _error(world.owner.post(f"{API}/units", json=box), 409, "UnitNameTaken")
    _error(viewer.post(f"{API}/units", json={**box, "name": "V"}), 403, "NotPermitted")
    for persona in (world.other, world.outsider):
        _error(persona.post(f"{API}/units", json={**box, "name": "X"}), 404, "StorageUnitNotFound")
    site = {"biobank": world.biobank_a, "kind": "site", "name": "Annex"}
    for persona in (viewer, world.other, world.outsider):
        _error(persona.post(f"{API}/units", json=site), 403, "NotPermitted")
    assert world.owner.post(f"{API}/units", json=site).status_code == 201


def test_create_validation_names_the_field(world: World, tree: Tree) -> None:
    def loc(payload: dict[str, Any]) -> list[Any]:
        body = _error(world.owner.post(f"{API}/units", json=payload), 422)
        return list(body["detail"][0]["loc"])

    rack = tree.rack.public_id
    assert loc({"parent": rack, "kind": "box", "name": "Huge", "rows": 101, "cols": 9}) == ["rows"]
    assert loc({"parent": rack, "kind": "box", "name": "No grid"}) == ["rows"]
    assert loc({"parent": rack, "kind": "freezer", "name": "F"}) == ["kind"]
    assert loc({"parent": rack, "kind": "box", "name": "T", "rows": 1, "cols": 1, "temperature": "warm"}) == [
        "temperature"
    ]
    assert loc({"biobank": world.biobank_a, "kind": "freezer", "name": "Loose"}) == ["parent"]


def test_get_unit_with_children(world: World, tree: Tree, viewer: Persona) -> None:
    url = f"{API}/units/{tree.rack.public_id}"
    for persona in (world.owner, viewer, world.admin):
        body = persona.get(url).json()
        assert body["path"] == "Site 1 / Freezer F1 / Rack R1"
        assert [c["name"] for c in body["children"]] == ["Box B01", "Box B02"]
        assert (body["boxes"], body["occupied"]) == (2, 1)
    for persona in (world.other, world.outsider):
        _error(persona.get(url), 404, "StorageUnitNotFound")


def test_patch_renames_and_moves(db: Session, world: World, tree: Tree, viewer: Persona) -> None:
    rack2 = make_unit(db, admin(), "rack", "Rack R2", parent=tree.freezer)
    db.commit()
    url = f"{API}/units/{tree.boxes[1].public_id}"
    for persona in (world.other, world.outsider):
        _error(persona.patch(url, json={"name": "Mine"}), 404)
    _error(viewer.patch(url, json={"name": "Mine"}), 403, "NotPermitted")
    moved = world.technician.patch(url, json={"parent": rack2.public_id, "name": "Box Z"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["path"] == "Site 1 / Freezer F1 / Rack R2 / Box Z"
    assert moved.json()["parent"] == rack2.public_id
    renamed = world.owner.patch(f"{API}/units/{tree.freezer.public_id}", json={"name": "Freezer North"})
    assert renamed.json()["path"] == "Site 1 / Freezer North"
    box = world.owner.get(f"{API}/boxes/{tree.boxes[0].public_id}").json()["box"]
    assert box["path"] == "Site 1 / Freezer North / Rack R1 / Box B01"
    _error(world.owner.patch(url, json={"parent": tree.site.public_id}), 422)


def test_delete_empty_units_only(world: World, tree: Tree, viewer: Persona) -> None:
    empty = f"{API}/units/{tree.boxes[1].public_id}"
    for persona in (world.other, world.outsider):
        _error(persona.delete(empty), 404)
    _error(viewer.delete(empty), 403)
    _error(world.owner.delete(f"{API}/units/{tree.boxes[0].public_id}"), 409, "UnitNotEmpty")
    _error(world.owner.delete(f"{API}/units/{tree.rack.public_id}"), 409, "UnitNotEmpty")
    assert world.technician.delete(empty).status_code == 204
    _error(world.owner.get(empty), 404)


def test_box_view(world: World, tree: Tree, viewer: Persona) -> None:
    url = f"{API}/boxes/{tree.boxes[0].public_id}"
    for persona in (world.owner, viewer):
        body = persona.get(url).json()
        assert body["box"]["occupied"] == 1
        assert len(body["grid"]) == 9 and len(body["grid"][0]) == 9
        first = body["grid"][0][0]
        assert first["position"] == "A1" and first["specimen"]["sample_type"] == "Plasma"
        assert body["grid"][8][8] == {"position": "I9", "row": 9, "col": 9, "specimen": None}
    for persona in (world.other, world.outsider):
        _error(persona.get(url), 404, "BoxNotFound")
    body = _error(world.owner.get(f"{API}/boxes/{tree.rack.public_id}"), 422)
    assert body["detail"][0]["loc"] == ["box"]


def test_free_slots(world: World, tree: Tree, viewer: Persona) -> None:
    url = f"{API}/free-slots"
    for persona in (world.owner, viewer):
        slots = persona.get(url, params={"count": 3, "temperature": "-80"}).json()
        assert [(s["box"], s["position"]) for s in slots] == [
            (tree.boxes[0].public_id, "A2"),
            (tree.boxes[0].public_id, "A3"),
            (tree.boxes[0].public_id, "A4"),
        ]
    within = world.owner.get(url, params={"within": tree.boxes[1].public_id}).json()
    assert within[0]["box"] == tree.boxes[1].public_id and within[0]["position"] == "A1"
    for persona in (world.other, world.outsider):
        assert persona.get(url, params={"count": 10}).json() == []
        _error(persona.get(url, params={"biobank": world.biobank_a}), 404, "BiobankNotFound")
        _error(persona.get(url, params={"within": tree.rack.public_id}), 404, "StorageUnitNotFound")
    assert world.owner.get(url, params={"temperature": "LN2 liquid phase"}).json() == []
    _error(world.owner.get(url, params={"count": 0}), 422)
    assert world.owner.get(url, params={"biobank": world.biobank_a, "count": 200}).json()[-1]["position"] == "I9"


def test_capacity(world: World, tree: Tree, viewer: Persona) -> None:
    for persona in (world.owner, viewer, world.admin):
        (row,) = persona.get(f"{API}/capacity").json()
        assert (row["path"], row["boxes"], row["capacity"], row["occupied"], row["free"]) == (
            "Site 1 / Freezer F1",
            2,
            162,
            1,
            161,
        )
    for persona in (world.other, world.outsider):
        assert persona.get(f"{API}/capacity").json() == []
        _error(persona.get(f"{API}/capacity", params={"biobank": world.biobank_a}), 404)


def test_anonymous_callers_are_401(client: TestClient, world: World) -> None:
    for url in ("/units", "/capacity", "/free-slots", "/boxes/x", "/units/x"):
        assert client.get(API + url).status_code == 401


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements run on the engine inside the block."""
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _grow(db: Session, tree: Tree, freezers: int, boxes: int, prefix: str) -> None:
    """Add freezers (each with one rack) and boxes (with one specimen each) to biobank A."""
    for f in range(freezers):
        freezer = make_unit(db, admin(), "freezer", f"{prefix} freezer {f:02d}", parent=tree.site)
        make_unit(db, admin(), "rack", "Rack", parent=freezer)
    for b in range(boxes):
        box = make_unit(db, admin(), "box", f"{prefix} box {b:02d}", parent=tree.rack, rows=2, cols=2)
        insert_specimen(db, box, 1, 1)
    db.commit()


LIST_CALLS = [
    ("units", f"{API}/units", {"size": 500}),
    ("boxes", f"{API}/units", {"kind": "box", "size": 500}),
    ("rack", "RACK", {}),
    ("capacity", f"{API}/capacity", {}),
]


def _query_counts(world: World, tree: Tree, engine: Engine) -> dict[str, int]:
    # A token's last use is written (and audited) at most once a minute: keep that write out of the count.
    world.owner.get(f"{API}/units")
    counts = {}
    for name, url, params in LIST_CALLS:
        target = f"{API}/units/{tree.rack.public_id}" if url == "RACK" else url
        with count_queries(engine) as statements:
            response = world.owner.get(target, params=params)
        assert response.status_code == 200, response.text
        counts[name] = len(statements)
    return counts


def test_list_endpoints_take_a_fixed_number_of_queries(db: Session, world: World, engine: Engine) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=1)
    db.commit()
    _grow(db, tree, freezers=2, boxes=3, prefix="Small")
    small = _query_counts(world, tree, engine)
    _grow(db, tree, freezers=20, boxes=50, prefix="Large")
    large = _query_counts(world, tree, engine)
    assert world.owner.get(f"{API}/units", params={"kind": "box", "size": 500}).json()["total"] == 54
    assert large == small, (small, large)
    assert max(large.values()) <= 12, large


def test_free_slot_queries_grow_with_batches_not_boxes(db: Session, world: World, engine: Engine) -> None:
    tree = make_tree(db, admin(), world.biobank_a, boxes=0)
    for b in range(60):
        make_unit(db, admin(), "box", f"Box {b:02d}", parent=tree.rack, rows=2, cols=2)
    db.commit()
    world.owner.get(f"{API}/units")  # the token's once-a-minute last-use write, outside the count
    counts = {}
    for count in (1, 100):
        with count_queries(engine) as statements:
            slots = world.owner.get(f"{API}/free-slots", params={"count": count}).json()
        assert len(slots) == count
        counts[count] = len(statements)
    # 100 slots span 25 boxes: still one batch of boxes and one read of their positions.
    assert counts[100] == counts[1], counts
    with count_queries(engine) as statements:
        assert len(world.owner.get(f"{API}/free-slots", params={"count": 240}).json()) == 240
    # 240 slots need all 60 boxes: two batches (of up to 32 boxes), i.e. one more box query and positions query.
    assert len(statements) == counts[1] + 2
