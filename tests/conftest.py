"""Test fixtures: a migrated template database copied per test (SQLite) or cloned (PostgreSQL),
settings pointing at it, an app client, and the three personas of every authorization test."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from biobank.config import Environment, Settings, configure
from biobank.kit.db import dispose_engines, get_engine, make_engine, session_factory
from biobank.kit.migrate import upgrade
from tests.websession import WebUser

POSTGRES = os.environ.get("BIOBANK_TEST_POSTGRES") == "1"
PG_ADMIN_URL = os.environ.get("BIOBANK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TEMPLATE_DB = "biobank_test_template"
_counter = itertools.count()

TEST_SECRETS = {
    "secret_key": "test-secret-key-" + "x" * 40,
    "vault_key": "test-vault-key-" + "y" * 40,
    "pseudonym_key": "test-pseudonym-key-" + "z" * 40,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked postgres_only are skipped unless the run is on PostgreSQL."""
    if POSTGRES:
        return
    skip = pytest.mark.skip(reason="PostgreSQL only: set BIOBANK_TEST_POSTGRES=1")
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def _pg_admin_execute(sql: str) -> None:
    engine = make_engine(PG_ADMIN_URL)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(sql))
    engine.dispose()


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated with `alembic upgrade head` once per run; tests get copies."""
    if POSTGRES:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"{TEMPLATE_DB}_{worker}"
        _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin_execute(f'CREATE DATABASE "{name}"')
        engine = make_engine(_pg_url(name))
        upgrade(engine)
        engine.dispose()
        return name
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the main file
    return str(path)


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if POSTGRES:
        name = f"biobank_test_{os.getpid()}_{next(_counter)}"
        _pg_admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield _pg_url(name)
        dispose_engines()
        _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template_database, path)
        yield f"sqlite:///{path}"
        dispose_engines()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a test node, installed as the process-wide settings."""
    value = Settings(
        env=Environment.TEST, data_dir=tmp_path / "data", database_url=database_url, log_json=False, **TEST_SECRETS
    )
    configure(value)
    yield value
    configure(None)


@pytest.fixture
def engine(settings: Settings) -> Engine:
    """The test database's engine."""
    return get_engine(settings.effective_database_url)


@pytest.fixture
def db(engine: Engine, settings: Settings) -> Iterator[Session]:
    """A session for arranging and inspecting data; the node is initialised (institution, keys)."""
    from biobank.node import initialise_node

    session = session_factory(engine)()
    initialise_node(session, settings)
    session.commit()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def app(db: Session, settings: Settings):  # type: ignore[no-untyped-def]
    """The ASGI app of the test node."""
    from biobank.app import create_app

    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An anonymous HTTP client."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Persona:
    """A user with an API token and their client."""

    username: str
    token: str
    client: TestClient

    def get(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers=self._h(kw), **kw)

    def post(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.post(url, headers=self._h(kw), **kw)

    def patch(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.patch(url, headers=self._h(kw), **kw)

    def put(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.put(url, headers=self._h(kw), **kw)

    def delete(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.delete(url, headers=self._h(kw), **kw)

    def _h(self, kw: dict) -> dict:  # type: ignore[type-arg]
        headers = dict(kw.pop("headers", None) or {})
        headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers


@dataclass
class World:
    """Two biobanks of this node, a collection in each, and the personas."""

    owner: Persona  # manager of biobank A (the owning biobank in tests)
    technician: Persona  # technician of biobank A
    other: Persona  # manager of biobank B (a member of another biobank)
    outsider: Persona  # logged in, no role anywhere
    admin: Persona
    biobank_a: str
    biobank_b: str
    collection_a: str
    collection_b: str


@pytest.fixture
def world(db: Session, client: TestClient) -> World:
    """The standard cast of authorization tests."""
    from tests.factories import make_biobank, make_collection, make_token, make_user

    bb_a = make_biobank(db, code="BBA", name="Biobank A")
    bb_b = make_biobank(db, code="BBB", name="Biobank B")
    col_a = make_collection(db, bb_a, name="Lung cancer cohort")
    col_b = make_collection(db, bb_b, name="Colorectal cohort")
    personas = {}
    for username, role, biobank, admin in [
        ("owner", "manager", bb_a, False),
        ("tech", "technician", bb_a, False),
        ("other", "manager", bb_b, False),
        ("outsider", None, None, False),
        ("admin", None, None, True),
    ]:
        user = make_user(db, username, role=role, biobank=biobank, is_admin=admin)
        personas[username] = Persona(username, make_token(db, user), client)
    db.commit()
    return World(
        owner=personas["owner"],
        technician=personas["tech"],
        other=personas["other"],
        outsider=personas["outsider"],
        admin=personas["admin"],
        biobank_a=bb_a.code,
        biobank_b=bb_b.code,
        collection_a=col_a.public_id,
        collection_b=col_b.public_id,
    )


@pytest.fixture
def web(app, world: World) -> Iterator[Callable[[str], WebUser]]:  # type: ignore[no-untyped-def]
    """Log a persona in through the login form: web("owner")."""
    from tests.factories import PASSWORD
    from tests.websession import log_in

    clients: list[TestClient] = []

    def session_of(username: str) -> WebUser:
        client = TestClient(app, raise_server_exceptions=False, headers={"Accept": "text/html"})
        clients.append(client)
        return log_in(client, username, PASSWORD)

    yield session_of
    for client in clients:
        client.close()
