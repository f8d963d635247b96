"""Storage pages with a logged-in browser session: tree, unit, box grid, forms and free-slot search."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biobank.specimens.models import Specimen
from tests.conftest import World
from tests.storage import Tree, insert_specimen, login, owner_tree


@pytest.fixture
def tree(db: Session, world: World) -> Tree:
    """Biobank A's tree with one specimen in box B01 at A1."""
    built = owner_tree(db, world)
    insert_specimen(db, built.boxes[0], 1, 1)
    db.commit()
    return built


@pytest.fixture
def browser(client: TestClient, world: World) -> tuple[TestClient, str]:
    """The owner's browser and its CSRF token."""
    return client, login(client, "owner")


def _specimen(db: Session, tree: Tree) -> Specimen:
    specimen = db.query(Specimen).filter(Specimen.box_id == tree.boxes[0].id).one()
    return specimen


def test_pages_need_a_login(client: TestClient) -> None:
    for url in ("/storage", "/storage/free-slots", "/storage/boxes/x", "/storage/units/x"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=/storage")


def test_tree_page_shows_units_and_occupancy(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, _ = browser
    page = client.get("/storage")
    assert page.status_code == 200
    for name in ("Site 1", "Freezer F1", "Rack R1"):
        assert name in page.text
    assert "1 / 162" in page.text  # freezer, rack: one specimen in two 9 × 9 boxes
    assert f'hx-get="/storage/units/{tree.rack.public_id}/boxes"' in page.text
    assert 'action="/storage/units"' in page.text
    fragment = client.get(f"/storage/units/{tree.rack.public_id}/boxes")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert f'href="/storage/boxes/{tree.boxes[0].public_id}"' in fragment.text
    assert "1 / 81" in fragment.text and "0 / 81" in fragment.text


def test_unit_page_lists_children(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, _ = browser
    page = client.get(f"/storage/units/{tree.rack.public_id}")
    assert page.status_code == 200
    assert "Site 1 / Freezer F1 / Rack R1" in page.text
    assert "Box B01" in page.text and "Box B02" in page.text
    assert f"/storage/units/{tree.rack.public_id}/edit" in page.text


def test_box_page_is_a_grid(db: Session, browser: tuple[TestClient, str], tree: Tree) -> None:
    client, _ = browser
    page = client.get(f"/storage/boxes/{tree.boxes[0].public_id}")
    assert page.status_code == 200
    specimen = _specimen(db, tree)
    assert f'href="/specimens/{specimen.public_id}"' in page.text
    assert specimen.barcode in page.text and "Plasma" in page.text
    assert page.text.count('class="slot free"') == 80
    assert page.text.count('class="slot occupied"') == 1
    assert "repeat(9," in page.text


def _form(csrf: str, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": csrf, **fields}


def test_add_a_box_from_the_form(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, csrf = browser
    response = client.post(
        "/storage/units",
        data=_form(csrf, parent=tree.rack.public_id, kind="box", name="Box B03", rows="8", cols="12"),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/storage/boxes/")
    page = client.get(response.headers["location"])
    assert "Added box Site 1 / Freezer F1 / Rack R1 / Box B03" in page.text
    assert page.text.count('class="slot free"') == 96


def test_add_a_site_from_the_tree_page(browser: tuple[TestClient, str], world: World) -> None:
    client, csrf = browser
    response = client.post("/storage/units", data=_form(csrf, biobank=world.biobank_a, kind="site", name="Annex"))
    assert response.status_code == 200
    assert "Added site Annex" in response.text


def _error_under(html: str, field: str) -> str:
    match = re.search(rf'<small class="field-error" id="{field}-error">([^<]*)</small>', html)
    assert match, f"no error under {field}"
    return match.group(1)


def test_form_errors_are_shown_under_their_fields(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, csrf = browser
    no_grid = client.post("/storage/units", data=_form(csrf, parent=tree.rack.public_id, kind="box", name="No grid"))
    assert no_grid.status_code == 422
    assert "rows and columns" in _error_under(no_grid.text, "rows")
    assert 'value="No grid"' in no_grid.text  # what was typed is kept
    taken = client.post(
        "/storage/units", data=_form(csrf, parent=tree.rack.public_id, kind="box", name="Box B01", rows="9", cols="9")
    )
    assert taken.status_code == 422
    assert "already exists" in _error_under(taken.text, "name")
    too_big = client.post(
        "/storage/units", data=_form(csrf, parent=tree.rack.public_id, kind="box", name="Big", rows="101", cols="9")
    )
    assert "100" in _error_under(too_big.text, "rows")
    loose = client.post("/storage/units", data=_form(csrf, biobank="BBA", kind="freezer", name="Loose"))
    assert loose.status_code == 422
    assert "only sites have no parent" in _error_under(loose.text, "parent")


def test_forms_without_the_csrf_token_are_refused(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, _ = browser
    response = client.post("/storage/units", data={"parent": tree.rack.public_id, "kind": "rack", "name": "X"})
    assert response.status_code == 403
    response = client.post(f"/storage/units/{tree.boxes[1].public_id}/delete", data={"csrf_token": "wrong"})
    assert response.status_code == 403


def test_rename_move_and_delete_from_the_unit_page(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, csrf = browser
    renamed = client.post(f"/storage/units/{tree.rack.public_id}/edit", data=_form(csrf, name="Rack North"))
    assert renamed.status_code == 200
    assert "Saved: Site 1 / Freezer F1 / Rack North." in renamed.text
    bad_move = client.post(
        f"/storage/units/{tree.boxes[1].public_id}/edit", data=_form(csrf, parent=tree.site.public_id)
    )
    assert bad_move.status_code == 422
    assert "cannot hold a box" in _error_under(bad_move.text, "parent")
    deleted = client.post(f"/storage/units/{tree.boxes[1].public_id}/delete", data=_form(csrf))
    assert deleted.status_code == 200
    assert "Deleted Site 1 / Freezer F1 / Rack North / Box B02." in deleted.text
    refused = client.post(f"/storage/units/{tree.boxes[0].public_id}/delete", data=_form(csrf))
    assert "still holds specimens" in refused.text


def test_free_slot_search_page(browser: tuple[TestClient, str], tree: Tree) -> None:
    client, _ = browser
    empty = client.get("/storage/free-slots")
    assert empty.status_code == 200 and "Capacity by freezer and tank" in empty.text
    found = client.get("/storage/free-slots", params={"count": "3", "temperature": "−60 °C to −85 °C"})
    assert found.status_code == 200
    assert "3 free positions" in found.text
    assert "<strong>A2</strong>" in found.text and "<strong>A4</strong>" in found.text
    bad = client.get("/storage/free-slots", params={"temperature": "lukewarm"})
    assert bad.status_code == 422
    assert "unknown storage temperature" in _error_under(bad.text, "temperature")
    nowhere = client.get("/storage/free-slots", params={"within": "No such place"})
    assert "no storage unit" in _error_under(nowhere.text, "within")


def test_other_biobanks_see_nothing(app: Any, world: World, tree: Tree) -> None:
    with TestClient(app, raise_server_exceptions=False) as other:
        login(other, "other")
        assert "Freezer F1" not in other.get("/storage").text
        assert other.get(f"/storage/boxes/{tree.boxes[0].public_id}").status_code == 404
        assert other.get(f"/storage/units/{tree.rack.public_id}").status_code == 404
        assert other.get(f"/storage/units/{tree.rack.public_id}/boxes").status_code == 404
    with TestClient(app, raise_server_exceptions=False) as outsider:
        login(outsider, "outsider")
        page = outsider.get("/storage")
        assert "No storage yet" in page.text
        assert 'action="/storage/units"' not in page.text  # no biobank to add to
