"""A node's ledger on a fresh embedded chain: the test database plus contracts deployed for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from biobank.config import Settings
from biobank.kit.db import session_factory
from biobank.ledger.service import Ledger, open_ledger


@pytest.fixture
def sessions(engine: Engine, db: Session) -> sessionmaker[Session]:
    """Sessions on the initialised test database (one transaction each)."""
    return session_factory(engine)


@pytest.fixture
def ledger(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[Ledger]:
    """The node's ledger on an embedded chain in the test's data directory (deployed at first open)."""
    opened = open_ledger(settings, sessions)
    yield opened
    opened.close()
