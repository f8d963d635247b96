"""Fixtures of catalogue tests: the standard cohort with facts refreshed, browser sessions, settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biobank.catalogue import facts
from biobank.catalogue.settings import configure_catalogue
from tests.catalogue.helpers import Cohort, build_cohort
from tests.conftest import World
from tests.factories import PASSWORD

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


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


@dataclass
class WebUser:
    """A browser session of one user: its cookies and the CSRF token read from a page."""

    client: TestClient
    csrf: str

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict[str, Any], *, csrf: bool = True, **kw: Any) -> Any:
        body = dict(data)
        if csrf:
            body["csrf_token"] = self.csrf
        return self.client.post(url, data=body, follow_redirects=False, **kw)


@pytest.fixture
def web(app: FastAPI, world: World) -> Iterator[Callable[[str], WebUser]]:
    """Log a persona in through the login form: web("owner")."""
    clients: list[TestClient] = []

    def log_in(username: str) -> WebUser:
        client = TestClient(app, raise_server_exceptions=False, headers={"Accept": "text/html"})
        clients.append(client)
        response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
        assert response.status_code == 303, response.text
        page = client.get("/catalogue/count")
        match = CSRF_INPUT.search(page.text)
        assert match, "the page carries the session's CSRF token in a hidden input"
        return WebUser(client, match.group(1))

    yield log_in
    for client in clients:
        client.close()


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    """A browser without a session."""
    with TestClient(app, raise_server_exceptions=False, headers={"Accept": "text/html"}) as client:
        yield client
