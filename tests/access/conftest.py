"""The cast of access tests: the standard personas plus a researcher and an ethics reviewer, and a cohort
with known consents in biobanks A and B."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.identity.models import User
from tests.access.factories import PDF, make_researcher, make_reviewer
from tests.conftest import Persona, World
from tests.consent.factories import make_consent_cohort
from tests.factories import make_token


@dataclass
class AccessWorld:
    """world + a researcher (the requester) and an ethics reviewer, each with a token."""

    world: World
    requester: Persona
    reviewer: Persona
    users: dict[str, User]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)


@pytest.fixture
def aw(db: Session, world: World, client: TestClient) -> AccessWorld:
    researcher = make_researcher(db, "researcher")
    reviewer = make_reviewer(db, "ethics")
    requester = Persona("researcher", make_token(db, researcher), client)
    ethics = Persona("ethics", make_token(db, reviewer), client)
    users = {u.username: u for u in db.scalars(select(User))}
    db.commit()
    return AccessWorld(world=world, requester=requester, reviewer=ethics, users=users)


@dataclass
class Cohort:
    """Biobank A: broad-consent donor (2 specimens), lung-cancer-only donor (3), no-commercial donor (1),
    donor without consent (1). Biobank B: broad-consent donor (2). Every specimen is serum, C34.1."""

    donors: dict[str, Any]
    specimens: dict[str, list[str]]


@pytest.fixture
def cohort(db: Session, aw: AccessWorld) -> Cohort:
    made = make_consent_cohort(db, aw.biobank_a, aw.biobank_b, aw.collection_a, aw.collection_b)
    return Cohort(donors=made.donors, specimens=made.specimens)


def upload_pdf(persona: Persona, public_id: str) -> Any:
    return persona.put(
        f"/api/v1/access/requests/{public_id}/ethics-document",
        files={"document": ("approval.pdf", PDF, "application/pdf")},
    )
