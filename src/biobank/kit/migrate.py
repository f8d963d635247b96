"""Running Alembic migrations from code (CLI, tests, demo)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def alembic_config() -> Config:
    """The Alembic config of this checkout (migrations/ beside src/)."""
    ini = PROJECT_ROOT / "alembic.ini"
    if not ini.exists():
        raise RuntimeError(f"migrations not found at {ini.parent}; run from a source checkout")
    return Config(str(ini))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
