"""A consented cohort with stored specimens in biobank A, a researcher, and an ethics-approved request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from biobank.access.models import AccessRequest
from biobank.institutions import service as institutions
from tests.access.fulfilment.factories import make_request
from tests.conftest import Persona, World
from tests.consent.factories import BROAD, LUNG_ONLY, give_consent, make_form
from tests.factories import make_box, make_donor, make_specimen, make_token, make_user


@dataclass
class Case:
    """Donors of biobank A: `broad` (3 stored specimens), `broad2` (2), `lung` (1, not eligible for GRU);
    a broad donor of biobank B (1). The researcher's request asks biobank A."""

    world: World
    researcher: Persona
    researcher_user: Any
    request: AccessRequest
    donors: dict[str, Any]
    specimens: dict[str, list[str]]
    public_id: str = ""
    chain_id: str = ""
    request_id: int = 0

    @property
    def url(self) -> str:
        return f"/api/v1/access/requests/{self.public_id}"


def stored_cohort(db: Session, world: World) -> tuple[dict[str, Any], dict[str, list[str]]]:
    bb_a = institutions.get_biobank(db, world.biobank_a)
    bb_b = institutions.get_biobank(db, world.biobank_b)
    col_a = institutions.get_collection(db, world.collection_a)
    col_b = institutions.get_collection(db, world.collection_b)
    _, version = make_form(db, bb_a)
    _, version_b = make_form(db, bb_b, code="B")
    box_a = make_box(db, bb_a)
    box_b = make_box(db, bb_b)
    plan = [
        ("broad", bb_a, col_a, version, BROAD, 3, box_a),
        ("broad2", bb_a, col_a, version, BROAD, 2, box_a),
        ("lung", bb_a, col_a, version, LUNG_ONLY, 1, box_a),
        ("b_broad", bb_b, col_b, version_b, BROAD, 1, box_b),
    ]
    donors: dict[str, Any] = {}
    specimens: dict[str, list[str]] = {}
    slot = {box_a.id: 0, box_b.id: 0}
    for name, biobank, collection, form_version, choices, n, box in plan:
        donor = make_donor(db, biobank)
        give_consent(db, donor, form_version, choices)
        donors[name] = donor
        specimens[name] = []
        for _ in range(n):
            slot[box.id] += 1
            position = f"A{slot[box.id]}"
            s = make_specimen(
                db,
                collection,
                donor=donor.public_id,
                diagnosis="C34.1",
                status="stored",
                placement={"box": box.public_id, "position": position},
            )
            specimens[name].append(s.public_id)
    return donors, specimens


@pytest.fixture
def case(db: Session, world: World) -> Case:
    donors, specimens = stored_cohort(db, world)
    user = make_user(db, "researcher1", kind="researcher")
    persona = Persona("researcher1", make_token(db, user), world.owner.client)
    request = make_request(db, user)
    db.commit()
    return Case(world, persona, user, request, donors, specimens, request.public_id, request.chain_id, request.id)
