"""Auditor pages: the log with filters, an entry with its checked proof, verification with progress,
witness status; the staff view of a donor's access history. Three personas each."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from biobank.audit.encoding import decode_entry, encode_entry
from tests.audit.conftest import execute, record_many, stored_leaves
from tests.audit.test_api import _donor_with_specimen
from tests.conftest import Persona, World
from tests.factories import PASSWORD


def browser(app: FastAPI, username: str) -> tuple[TestClient, str]:
    """A client logged in with a session cookie, and its CSRF token."""
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get("/audit/verify").text
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return client, page[start : page.index('"', start)]


def test_log_page_filters_and_scoping(auditor: Persona, world: World, client: TestClient, engine: Engine) -> None:
    record_many(engine, 3, action="specimen.export")
    page = auditor.get("/audit?action=specimen.export", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.text.count(">specimen.export<") == 3
    assert "user.create" not in page.text
    assert auditor.get("/audit?since=2000-01-01&until=2000-01-02").text.count("/audit/entries/") == 0
    assert auditor.get("/audit?since=not-a-date", headers={"Accept": "text/html"}).status_code == 422
    assert world.admin.get("/audit").status_code == 200
    for persona in (world.owner, world.other, world.outsider):
        assert persona.get("/audit", headers={"Accept": "text/html"}).status_code == 404
    anonymous = client.get("/audit", follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_entry_page_shows_the_checked_proof(auditor: Persona, engine: Engine, world: World) -> None:
    page = auditor.get("/audit/entries/2")
    assert page.status_code == 200
    assert "✓ verified" in page.text and "✓ valid" in page.text
    leaves = dict(stored_leaves(engine))
    forged = encode_entry({**decode_entry(leaves[2]), "outcome": "denied"})
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 2", leaf=forged)
    page = auditor.get("/audit/entries/2")
    assert "✗ the proof does not verify" in page.text
    assert world.owner.get("/audit/entries/2", headers={"Accept": "text/html"}).status_code == 404


def test_verification_runs_in_the_background_with_progress(app: FastAPI, auditor: Persona, engine: Engine) -> None:
    record_many(engine, 20)
    client, csrf = browser(app, "auditor")
    refused = client.post("/audit/verify", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    started = client.post("/audit/verify", data={"csrf_token": csrf}, follow_redirects=False)
    assert started.status_code == 303
    url = started.headers["location"]
    first = client.get(url).text
    assert 'hx-trigger="every 1s"' in first or "Passed" in first, first.split("<main", 1)[1]
    for _ in range(100):
        fragment = client.get(url, headers={"HX-Request": "true"}).text
        if "running" not in fragment and "Verifying" not in fragment:
            break
        time.sleep(0.1)
    assert "✓ Passed" in fragment, fragment
    assert "<progress" in fragment
    assert "outcome-passed" in client.get("/audit/verify").text  # listed among the recent runs


def test_witness_page_and_scoping(auditor: Persona, world: World) -> None:
    page = auditor.get("/audit/witnesses")
    assert page.status_code == 200
    assert "CN-SH-H01.biobank-commons/audit+" in page.text
    assert world.owner.get("/audit/witnesses", headers={"Accept": "text/html"}).status_code == 404


def test_donor_access_page(world: World, auditor: Persona) -> None:
    donor, specimen = _donor_with_specimen(world)
    world.technician.get(f"/api/v1/specimens/{specimen}")
    page = world.owner.get(f"/donors/{donor}/access")
    assert page.status_code == 200
    assert "specimen.read" in page.text and "CN-SH-H01" in page.text
    main = page.text.split("<main", 1)[1].split("</main>")[0]  # the header names the logged-in user
    for name in ("owner", "tech", "Li Na", "MRN-77"):
        assert name not in main
    assert world.other.get(f"/donors/{donor}/access", headers={"Accept": "text/html"}).status_code == 404
    assert world.outsider.get(f"/donors/{donor}/access", headers={"Accept": "text/html"}).status_code == 404
