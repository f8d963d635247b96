"""Specimens over the API: registration, scoping, lifecycle, lineage, QC, history, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from tests.conftest import World


def iso(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def specimen_body(world: World, **overrides: Any) -> dict[str, Any]:
    body = {"barcode": "SER-0001", "collection": world.collection_a, "sample_type": "Serum", "container": "SST",
            "collected_at": iso(10), "processed_at": iso(9.5), "frozen_at": iso(9), "quantity": 3.0,
            "quantity_unit": "mL", "status": "processed", "diagnosis": "C34.1"}
    return body | overrides


def create(world: World, **overrides: Any) -> dict[str, Any]:
    response = world.owner.post("/api/v1/specimens", json=specimen_body(world, **overrides))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def count_specimens(db: Session) -> int:
    from biobank.specimens.models import Specimen

    db.expire_all()
    try:
        return db.execute(select(func.count()).select_from(Specimen)).scalar_one()
    finally:
        db.rollback()  # release SQLite's write lock (transactions begin IMMEDIATE) for the next request


def test_register_derives_sprec_and_prefixes_ids(world: World) -> None:
    body = create(world)
    assert body["public_id"].startswith("CN-SH-H01:SPC-")
    assert body["sprec_code"].startswith("SER-SST-A-")
    assert body["biobank"] == world.biobank_a
    assert body["status"] == "processed"


def test_three_personas_and_scoped_lists(world: World) -> None:
    body = create(world)
    for ref in (body["public_id"], body["barcode"]):
        assert world.owner.get(f"/api/v1/specimens/{ref}").status_code == 200
        assert world.other.get(f"/api/v1/specimens/{ref}").status_code == 404
        assert world.outsider.get(f"/api/v1/specimens/{ref}").status_code == 404
    assert world.owner.get("/api/v1/specimens").json()["total"] == 1
    assert world.other.get("/api/v1/specimens").json()["total"] == 0
    assert world.outsider.get("/api/v1/specimens").json()["total"] == 0
    # Changing it: other members see nothing to change.
    status = {"status": "received"}
    assert world.other.post(f"/api/v1/specimens/{body['barcode']}/status", json=status).status_code == 404
    assert world.outsider.post(f"/api/v1/specimens/{body['barcode']}/status", json=status).status_code == 404
    # Registering into biobank A's collection from outside: the collection is unknown to them.
    response = world.other.post("/api/v1/specimens", json=specimen_body(world, barcode="SER-9"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["collection"]


def test_bad_input_names_the_field_and_writes_nothing(db: Session, world: World) -> None:
    cases: list[tuple[dict[str, Any], list[Any], int]] = [
        ({"frozen_at": iso(11)}, ["frozen_at"], 422),  # frozen before collection
        ({"collected_at": iso(-48), "processed_at": None, "frozen_at": None}, ["collected_at"], 422),  # future
        ({"quantity": -1}, ["quantity"], 422),
        ({"quantity": "lots"}, ["quantity"], 422),
        ({"sample_type": "Ectoplasm"}, ["sample_type"], 422),
        ({"diagnosis": "ZZ9"}, ["diagnosis"], 422),
        ({"sprec_code": "SER-SST-Q-N-N-A-D"}, ["sprec_code"], 422),
        ({"collection": "CN-SH-H01:COL-999999"}, ["collection"], 422),
        ({"collected_at": "2026-01-01T10:00:00"}, ["collected_at"], 422),  # no time zone
        ({"status": "distributed"}, ["status"], 422),
        ({"barcode": "a b"}, ["barcode"], 422),
    ]
    for overrides, loc, status in cases:
        response = world.owner.post("/api/v1/specimens", json=specimen_body(world, **overrides))
        assert response.status_code == status, (overrides, response.text)
        locs = [e["loc"] for e in response.json()["detail"]]
        assert loc in locs, (overrides, locs)
    missing = specimen_body(world)
    del missing["sample_type"]
    response = world.owner.post("/api/v1/specimens", json=missing)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["sample_type"]
    assert count_specimens(db) == 0


def test_duplicate_barcode_is_a_conflict(world: World) -> None:
    create(world)
    response = world.owner.post("/api/v1/specimens", json=specimen_body(world))
    assert response.status_code == 409
    assert response.json()["error"] == "DuplicateBarcode"


def test_lifecycle_transitions_are_enforced(world: World) -> None:
    body = create(world, status="collected", processed_at=None, frozen_at=None)
    ref = body["barcode"]
    illegal = world.owner.post(f"/api/v1/specimens/{ref}/status", json={"status": "reserved"})
    assert illegal.status_code == 422
    assert illegal.json()["error"] == "IllegalTransition"
    assert "allowed" in illegal.json()["detail"][0]["msg"]
    assert world.owner.post(f"/api/v1/specimens/{ref}/status", json={"status": "received"}).status_code == 200
    assert world.owner.post(f"/api/v1/specimens/{ref}/status", json={"status": "consumed"}).status_code == 200
    again = world.owner.post(f"/api/v1/specimens/{ref}/status", json={"status": "received"})
    assert again.status_code == 422
    events = world.owner.get(f"/api/v1/specimens/{ref}/events").json()
    assert [e["kind"] for e in events] == ["created", "status", "status"]
    assert events[1]["before"]["status"] == "collected" and events[1]["after"]["status"] == "received"


def test_viewer_and_read_only_cannot_write(db: Session, world: World) -> None:
    from biobank.institutions import repository as inst_repo
    from tests.factories import make_token, make_user

    body = create(world)
    viewer = make_user(db, "viewer1", role="viewer", biobank=inst_repo.biobank_by_code(db, world.biobank_a))
    token = make_token(db, viewer)
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    client = world.owner.client
    assert client.get(f"/api/v1/specimens/{body['barcode']}", headers=headers).status_code == 200
    response = client.post(f"/api/v1/specimens/{body['barcode']}/status", json={"status": "stored"}, headers=headers)
    assert response.status_code == 403


def test_aliquoting_is_all_or_nothing(db: Session, world: World) -> None:
    parent = create(world)
    over = world.owner.post(f"/api/v1/specimens/{parent['barcode']}/aliquots",
                            json={"count": 7, "quantity": 0.5, "quantity_unit": "mL"})
    assert over.status_code == 422
    assert over.json()["error"] == "OverDraw"
    assert count_specimens(db) == 1
    assert world.owner.get(f"/api/v1/specimens/{parent['barcode']}").json()["quantity"] == 3.0
    ok = world.owner.post(f"/api/v1/specimens/{parent['barcode']}/aliquots",
                          json={"count": 5, "quantity": 500, "quantity_unit": "µL"})
    assert ok.status_code == 201, ok.text
    children = ok.json()
    assert [c["barcode"] for c in children] == [f"SER-0001-0{i}" for i in range(1, 6)]
    assert all(c["parent"] == parent["public_id"] and c["lineage"] == "aliquot" for c in children)
    assert world.owner.get(f"/api/v1/specimens/{parent['barcode']}").json()["quantity"] == 0.5
    history = world.owner.get(f"/api/v1/specimens/{parent['barcode']}/events").json()
    assert history[-1]["kind"] == "aliquot"
    assert len(history[-1]["after"]["children"]) == 5


def test_derivative_needs_its_material(world: World) -> None:
    parent = create(world, sample_type="Blood", barcode="BLD-1", container="PED")
    response = world.owner.post("/api/v1/specimens/BLD-1/aliquots",
                                json={"count": 1, "quantity": 1, "quantity_unit": "mL", "lineage": "derivative"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["sample_type"]
    ok = world.owner.post("/api/v1/specimens/BLD-1/aliquots",
                          json={"count": 1, "quantity": 1, "quantity_unit": "mL", "lineage": "derivative",
                                "sample_type": "DNA", "concentration": 50, "concentration_unit": "ng/µL"})
    assert ok.status_code == 201
    assert ok.json()[0]["sample_type"] == "DNA" and ok.json()[0]["parent"] == parent["public_id"]


def test_pooling(world: World) -> None:
    create(world, barcode="P-1")
    create(world, barcode="P-2")
    response = world.owner.post("/api/v1/specimens/pools", json={
        "sources": ["P-1", "P-2"], "quantity_each": 1.0, "quantity_unit": "mL", "barcode": "POOL-1",
        "collection": world.collection_a})
    assert response.status_code == 201, response.text
    assert response.json()["lineage"] == "pool" and response.json()["quantity"] == 2.0
    assert world.owner.get("/api/v1/specimens/P-1").json()["quantity"] == 2.0
    unknown = world.owner.post("/api/v1/specimens/pools", json={
        "sources": ["P-1", "NOPE-1"], "quantity_each": 1.0, "quantity_unit": "mL", "barcode": "POOL-2",
        "collection": world.collection_a})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["sources", 1]


def test_qc_and_pass_rate(world: World) -> None:
    a = create(world, barcode="Q-1")
    create(world, barcode="Q-2")
    assert world.owner.post("/api/v1/specimens/Q-1/qc", json={
        "test": "haemolysis", "method": "visual", "passed": True, "tested_at": iso(1)}).status_code == 201
    assert world.owner.post("/api/v1/specimens/Q-2/qc", json={
        "test": "haemolysis", "method": "visual", "passed": False, "tested_at": iso(1)}).status_code == 201
    early = world.owner.post("/api/v1/specimens/Q-1/qc", json={"test": "RIN", "passed": True, "tested_at": iso(50)})
    assert early.status_code == 422 and early.json()["detail"][0]["loc"] == ["tested_at"]
    rate = world.owner.get(f"/api/v1/collections/{world.collection_a}/qc-pass-rate").json()
    assert rate == {"collection": world.collection_a, "tested": 2, "passed": 1, "rate": 0.5}
    assert world.other.get(f"/api/v1/collections/{world.collection_a}/qc-pass-rate").status_code == 404
    assert len(world.owner.get(f"/api/v1/specimens/{a['barcode']}/qc").json()) == 1


def test_list_filters_sorting_and_paging(world: World) -> None:
    for i in range(12):
        create(world, barcode=f"L-{i:03d}", sample_type="Plasma" if i % 2 else "Serum",
               container="PED" if i % 2 else "SST")
    page = world.owner.get("/api/v1/specimens", params={"sample_type": "Plasma", "size": 4, "sort": "barcode"}).json()
    assert page["total"] == 6
    assert [s["barcode"] for s in page["items"]] == ["L-001", "L-003", "L-005", "L-007"]
    bad = world.owner.get("/api/v1/specimens", params={"sort": "password"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["sort"]
    assert world.owner.get("/api/v1/specimens", params={"status": "melted"}).status_code == 422


def test_list_query_count_does_not_grow_with_rows(engine, world: World) -> None:  # type: ignore[no-untyped-def]
    def queries_for_list() -> int:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert world.owner.get("/api/v1/specimens?size=100").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    create(world, barcode="N-000")
    few = queries_for_list()
    for i in range(1, 25):
        create(world, barcode=f"N-{i:03d}")
    assert queries_for_list() == few


def test_collection_filter_respects_scope(world: World) -> None:
    create(world)
    mine = world.owner.get("/api/v1/specimens", params={"collection": world.collection_a}).json()
    assert mine["total"] == 1
    theirs = world.other.get("/api/v1/specimens", params={"collection": world.collection_a}).json()
    assert theirs["total"] == 0 and theirs["items"] == []
    assert world.outsider.get("/api/v1/specimens", params={"collection": world.collection_a}).json()["total"] == 0
