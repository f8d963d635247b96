"""Fixtures of catalogue tests: the standard cohort with facts refreshed, browser sessions, settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biobank.catalogue import facts
from biobank.catalogue.settings import configure_catalogue
from tests.catalogue.helpers import Cohort, build_cohort
from tests.conftest import World


@pytest.fixture(autouse=True)
def catalogue_defaults() -> Iterator[None]:
    """Every test starts from the default thresholds (10 donors, < 10, nearest 10)."""
    configure_catalogue(None)
    yield
    configure_catalogue(None)


@pytest.fixture
def cohort(db: Session, world: World) -> Cohort:
    """The standard cohort (see build_cohort) with its collection facts computed."""
    result = build_cohort(db, world)
    facts.refresh_facts(db, None)
    db.commit()
    return result




@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    """A browser without a session."""
    with TestClient(app, raise_server_exceptions=False, headers={"Accept": "text/html"}) as client:
        yield client
