"""Public identifiers: blocks are consecutive and never handed out twice, also on the first use of a kind."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from biobank.kit.db import unit_of_work
from biobank.kit.ids import allocate, format_public_id


def test_blocks_are_consecutive(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        first = allocate(session, "TST", 3)
        second = allocate(session, "TST", 2)
    assert list(first) == [1, 2, 3] and list(second) == [4, 5]
    assert format_public_id("CN-SH-H01", "TST", 4) == "CN-SH-H01:TST-000004"


def test_first_allocations_racing_do_not_collide(engine: Engine) -> None:
    got: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def take() -> None:
        barrier.wait()
        try:
            with unit_of_work(engine) as session:
                got.extend(allocate(session, "RACE", 5))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, 21))
