"""The SQL cost of reading one specimen over the API: a fixed, small number of statements.

A single GET is the most frequent request of a node; every statement added to it shows in the
latency benchmark (bench/bench_api.py). The count is pinned here so a regression fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from biobank.institutions import service as institutions
from biobank.specimens.schemas import Placement
from tests.conftest import World
from tests.factories import make_box, make_donor, make_specimen

# BEGIN (SQLite: BEGIN IMMEDIATE; not sent as a statement on PostgreSQL), the token with its user
# and roles, the specimen, its collection with the biobank's code, its donor's public id, its box,
# and the audit entry of the read (head, frontier, entry, resource link, new node, head update).
AUDIT_APPEND = 6
SINGLE_GET = 1 + 1 + 1 + 1 + 1 + AUDIT_APPEND


@contextmanager
def statements_of(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database inside the block, in order."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_single_get_runs_a_fixed_number_of_statements(db: Session, engine: Engine, world: World) -> None:
    biobank = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    box = make_box(db, biobank)
    donor = make_donor(db, biobank)
    specimen = make_specimen(
        db, collection, donor=donor.public_id, status="stored", placement=Placement(box=box.public_id, position="B2")
    )
    public_id, barcode = specimen.public_id, specimen.barcode
    db.commit()
    assert world.owner.get(f"/api/v1/specimens/{public_id}").status_code == 200  # token use: audited once a minute
    begin = 1 if engine.dialect.name == "sqlite" else 0
    for ref in (public_id, barcode):
        with statements_of(engine) as seen:
            response = world.owner.get(f"/api/v1/specimens/{ref}")
        assert response.status_code == 200
        body = response.json()
        assert body["donor"] == donor.public_id and body["location"]["position"] == "B2"
        assert body["collection"] == world.collection_a and body["biobank"] == world.biobank_a
        assert len(seen) == SINGLE_GET + begin, "\n".join(seen)
        assert sum("FROM api_tokens" in s for s in seen) == 1
        assert not any(s.startswith("UPDATE api_tokens") for s in seen)


def test_invisible_specimen_is_still_a_404_with_the_joined_principal(db: Session, world: World) -> None:
    collection = institutions.get_collection(db, world.collection_a)
    specimen = make_specimen(db, collection)
    db.commit()
    for persona in (world.other, world.outsider):
        response = persona.get(f"/api/v1/specimens/{specimen.public_id}")
        assert response.status_code == 404 and response.json()["error"] == "SpecimenNotFound"
    assert world.owner.get(f"/api/v1/specimens/{specimen.barcode}").status_code == 200
    assert world.admin.get(f"/api/v1/specimens/{specimen.barcode}").status_code == 200
