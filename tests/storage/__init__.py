"""Helpers for storage tests: principals, small trees and directly inserted specimens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.identity.models import Role
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Collection
from biobank.specimens.models import Specimen, Status
from biobank.storage import service
from biobank.storage.models import StorageUnit, UnitKind
from biobank.storage.schemas import UnitCreate
from tests.conftest import Persona, World
from tests.factories import PASSWORD, make_token, make_user

_seq = itertools.count(1)


def member(session: Session, biobank_code: str, role: Role = Role.TECHNICIAN) -> Principal:
    """A principal with one role in one biobank (service-level tests)."""
    biobank = institutions.get_biobank(session, biobank_code)
    n = next(_seq)
    return Principal(
        user_id=10_000 + n,
        public_id=f"test-{n}",
        username=f"test{n}",
        institution_code="CN-SH-H01",
        roles={biobank.id: role},
    )


def admin() -> Principal:
    """A node administrator (sees every biobank)."""
    return Principal(user_id=1, public_id="test-admin", username="admin", institution_code="CN-SH-H01", is_admin=True)


def make_unit(
    session: Session,
    principal: Principal,
    kind: UnitKind | str,
    name: str,
    *,
    parent: StorageUnit | None = None,
    biobank: str | None = None,
    **fields: Any,
) -> StorageUnit:
    """Create one unit through the service."""
    data = UnitCreate(
        kind=UnitKind(kind), name=name, parent=parent.public_id if parent else None, biobank=biobank, **fields
    )
    return service.create_unit(session, principal, data)


@dataclass
class Tree:
    """Site 1 / Freezer F1 / Rack R1 / Box B1..Bn (and the units on the way)."""

    site: StorageUnit
    freezer: StorageUnit
    rack: StorageUnit
    boxes: list[StorageUnit]


def make_tree(
    session: Session,
    principal: Principal,
    biobank: str,
    *,
    boxes: int = 2,
    rows: int = 9,
    cols: int = 9,
    temperature: str = "−60 °C to −85 °C",
    site: str = "Site 1",
    freezer: str = "Freezer F1",
) -> Tree:
    """A site with one freezer, one rack and `boxes` boxes."""
    site_unit = make_unit(session, principal, "site", site, biobank=biobank)
    freezer_unit = make_unit(session, principal, "freezer", freezer, parent=site_unit, temperature=temperature)
    rack = make_unit(session, principal, "rack", "Rack R1", parent=freezer_unit)
    box_units = [
        make_unit(session, principal, "box", f"Box B{i:02d}", parent=rack, rows=rows, cols=cols)
        for i in range(1, boxes + 1)
    ]
    return Tree(site_unit, freezer_unit, rack, box_units)


def insert_specimen(session: Session, box: StorageUnit, row: int, col: int, *, count: bool = True) -> Specimen:
    """A specimen row placed directly at (row, col), counted in the box unless count=False."""
    collection_id = session.scalars(select(Collection.id).where(Collection.biobank_id == box.biobank_id)).first()
    assert collection_id is not None, "the biobank needs a collection"
    n = next(_seq)
    specimen = Specimen(
        public_id=f"CN-SH-H01:SPC-T{n:06d}",
        barcode=f"TST{n:08d}",
        biobank_id=box.biobank_id,
        collection_id=collection_id,
        sample_type="Plasma",
        status=Status.STORED,
        box_id=box.id,
        row=row,
        col=col,
    )
    session.add(specimen)
    session.flush()
    if count:
        service.occupy(session, box.id)
    return specimen


def persona_with_role(session: Session, client: TestClient, username: str, biobank_code: str, role: str) -> Persona:
    """A further API persona (e.g. a read-only viewer of biobank A)."""
    user = make_user(session, username, role=role, biobank=institutions.get_biobank(session, biobank_code))
    persona = Persona(username, make_token(session, user), client)
    session.commit()
    return persona


def login(client: TestClient, username: str) -> str:
    """Log the client in with a browser session; returns the session's CSRF token."""
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get("/storage")
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    html: str = page.text
    return html[start : html.index('"', start)]


def owner_tree(session: Session, world: World, **kwargs: Any) -> Tree:
    """A committed tree in biobank A."""
    tree = make_tree(session, admin(), world.biobank_a, **kwargs)
    session.commit()
    return tree
