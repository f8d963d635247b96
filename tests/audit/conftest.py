"""Audit fixtures: an auditor persona, helpers that append entries, and a second node (a witness)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from biobank import audit
from biobank.audit import repository as repo
from biobank.audit.merkle import CompactRange
from biobank.audit.models import AuditEntry
from biobank.config import Environment, Settings
from biobank.identity.principal import Principal, system_principal
from biobank.kit.db import get_engine, session_factory
from tests.conftest import POSTGRES, TEST_SECRETS, Persona, World, _pg_admin_execute, _pg_url

_seq = itertools.count()


@pytest.fixture
def auditor(world: World, db: Session, client: TestClient) -> Persona:
    """A user with the node's auditor role (no biobank role)."""
    from tests.factories import make_token, make_user

    user = make_user(db, "auditor", is_auditor=True)
    persona = Persona("auditor", make_token(db, user), client)
    db.commit()
    return persona


def actor(institution: str = "CN-SH-H01") -> Principal:
    """A pseudonymous actor for recorded test entries."""
    return Principal(user_id=7, public_id="usr-test", username="t", institution_code=institution)


def record_many(engine: Engine, count: int, *, per_transaction: int = 1, action: str = "specimen.read") -> None:
    """Commit ``count`` audited transactions' worth of entries (``per_transaction`` entries each)."""
    factory = session_factory(engine)
    done = 0
    while done < count:
        with factory() as session:
            for _ in range(min(per_transaction, count - done)):
                audit.record(session, actor(), action, "specimen", [f"CN-SH-H01:SPC-{next(_seq):06d}"])
                done += 1
            session.commit()


def stored_leaves(engine: Engine) -> list[tuple[int, bytes]]:
    """Every stored (index, leaf), in index order."""
    with session_factory(engine)() as session:
        return [
            (int(i), bytes(leaf))
            for i, leaf in session.execute(text("SELECT idx, leaf FROM audit_entries ORDER BY idx"))
        ]


def recomputed_root(engine: Engine) -> bytes:
    """The RFC 6962 root over the stored leaves, computed from scratch."""
    compact = CompactRange()
    compact.extend_entries(leaf for _, leaf in stored_leaves(engine))
    return compact.root()


def head(engine: Engine) -> tuple[int, bytes]:
    """The committed head (size, root)."""
    with session_factory(engine)() as session:
        return repo.tree_head(session)


def execute(engine: Engine, sql: str, **params: Any) -> None:
    """Run raw SQL in its own transaction (the tampering an insider with database access could do)."""
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def entry_count(engine: Engine) -> int:
    """How many entries are stored."""
    with session_factory(engine)() as session:
        return session.query(AuditEntry).count()


@dataclass
class Node:
    """A second node in this process: its settings, app, client and engine."""

    settings: Settings
    app: FastAPI
    client: TestClient
    engine: Engine


@pytest.fixture
def make_node(template_database: str, tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """Build extra nodes on their own migrated databases (copies of the template)."""
    from biobank.app import create_app
    from biobank.node import initialise_node

    created: list[tuple[Node, str | None]] = []

    def build(code: str, **overrides: Any) -> Node:
        name = None
        if POSTGRES:
            name = f"biobank_peer_{os.getpid()}_{next(_seq)}"
            _pg_admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
            url = _pg_url(name)
        else:
            path = tmp_path / f"peer-{code}.sqlite3"
            shutil.copyfile(template_database, path)
            url = f"sqlite:///{path}"
        settings = Settings(
            env=Environment.TEST,
            data_dir=tmp_path / f"peer-{code}",
            database_url=url,
            institution_code=code,
            log_json=False,
            **(TEST_SECRETS | overrides),
        )
        engine = get_engine(url)
        with session_factory(engine)() as session:
            initialise_node(session, settings)
            session.commit()
        app = create_app(settings)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        node = Node(settings, app, client, engine)
        created.append((node, name))
        return node

    yield build
    for node, name in created:
        node.client.__exit__(None, None, None)
        node.engine.dispose()
        if name is not None:
            _pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def system(settings: Settings) -> Principal:
    """The node's own principal."""
    return system_principal(settings.institution_code)
