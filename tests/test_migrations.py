"""Models and migrations agree: autogenerate against the migrated test database finds nothing to do.

Runs on SQLite and, with BIOBANK_TEST_POSTGRES=1, on PostgreSQL (the `engine` fixture's database is
built by `alembic upgrade head`). When it fails, generate the migration the diff asks for with
`scripts/make-migration.sh "what changed"`, read and edit it, and commit it with the model change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from biobank.kit.db import Base
from biobank.kit.migrate import alembic_config, current_revision
from biobank.model_registry import import_all_models

# Alembic's bookkeeping table is in every migrated database and in no model.
IGNORED_TABLES = frozenset({"alembic_version"})

# Known dialect noise: (dialect, why, predicate on one autogenerate diff tuple). Only the differences
# listed here are ignored; anything else autogenerate finds fails the test. At the time of writing,
# SQLite 3 and PostgreSQL 15 produce no noise at all for our models, so the list is empty: add an
# entry only with the reason, never to silence a real disagreement between a model and a migration.
DialectNoise = tuple[str, str, Callable[[tuple[Any, ...]], bool]]
KNOWN_DIALECT_NOISE: tuple[DialectNoise, ...] = ()


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    """compare_metadata gives tuples, and lists of tuples for changes to one column."""
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def _is_known_noise(diff: tuple[Any, ...], dialect: str) -> bool:
    return any(name == dialect and matches(diff) for name, _why, matches in KNOWN_DIALECT_NOISE)


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in IGNORED_TABLES)


def test_models_and_migrations_agree(engine: Engine) -> None:
    import_all_models()
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "target_metadata": Base.metadata,
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _include_object,
            },
        )
        diffs = _flatten(compare_metadata(context, Base.metadata))
    dialect = engine.dialect.name
    remaining = [diff for diff in diffs if not _is_known_noise(diff, dialect)]
    assert remaining == [], (
        f"the models and the migrations disagree on {dialect}; write a migration for:\n"
        + "\n".join(f"  {diff!r}" for diff in remaining)
    )


def test_migrations_have_one_head_and_the_database_is_at_it(engine: Engine) -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations branch into several heads {heads}: merge them or rebase one revision"
    assert current_revision(engine) == heads[0]
