"""Alembic environment: runs against the connection handed in by biobank.kit.migrate, or the node URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from biobank.kit.db import Base, null_pool_engine
from biobank.model_registry import import_all_models

import_all_models()
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from biobank.config import get_settings

    engine = null_pool_engine(get_settings().effective_database_url)
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `biobank db upgrade`")
run_migrations_online()
