"""The SQL cost of reading one specimen: a fixed, small number of statements (regressions fail)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from tests.conftest import World
from tests.specimens.test_specimens_api import create


@contextmanager
def statements_of(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database inside the block, in order."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_single_get_statements(engine: Engine, world: World) -> None:
    body = create(world)
    for ref in (body["public_id"], body["barcode"]):
        world.owner.get(f"/api/v1/specimens/{ref}")  # token use is audited at most once a minute
        with statements_of(engine) as seen:
            assert world.owner.get(f"/api/v1/specimens/{ref}").status_code == 200
        print(len(seen))
        for s in seen:
            print("   ", " ".join(s.split())[:300])
