"""A node whose ledger runs on the embedded chain or on the shared anvil (parametrise `settings` indirectly).

On anvil every test gets its own node secret, so the derived accounts (and the contracts the consortium
admin deploys) are fresh: tests on the shared node never meet each other's registry, roles or nonces.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from biobank.config import Environment, Settings, configure
from biobank.kit.db import session_factory
from biobank.ledger.service import Ledger, open_ledger
from tests.conftest import TEST_SECRETS

CHAINS = ["embedded", "anvil"]


def unique_secret(label: str) -> str:
    """A node secret nobody else on the shared anvil uses."""
    return f"e2e-{label}-{uuid.uuid4().hex}-" + "k" * 32


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """The test node's settings (the process-wide ones); `request.param` picks the chain (default embedded)."""
    chain = getattr(request, "param", "embedded")
    secrets = dict(TEST_SECRETS)
    ledger_url = "embedded"
    if chain == "anvil":
        ledger_url = request.getfixturevalue("anvil")
        secrets["secret_key"] = unique_secret("a")
    value = Settings(
        env=Environment.TEST, data_dir=tmp_path / "data", database_url=database_url, log_json=False,
        ledger_url=ledger_url, **secrets,
    )
    configure(value)
    yield value
    configure(None)


@pytest.fixture
def sessions(engine: Engine, db: Session) -> sessionmaker[Session]:
    """Sessions on the initialised test database (one transaction each), like the publisher's."""
    return session_factory(engine)


@pytest.fixture
def ledger(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Ledger]:
    """The node's ledger: contracts deployed by this node's consortium admin (embedded or anvil)."""
    opened = open_ledger(settings, sessions, deploy_if_missing=True)
    yield opened
    opened.close()
