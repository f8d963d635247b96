"""A small cohort with consents in biobank A and B, on top of the standard personas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from biobank.consent.models import ConsentFormVersion
from biobank.institutions import service as institutions
from tests.conftest import World
from tests.consent.factories import BROAD, LUNG_ONLY, NO_COMMERCIAL, give_consent, make_form
from tests.factories import make_donor, make_specimen


@dataclass
class Cohort:
    """Donors of biobank A: broad (2 specimens), lung-only (3), no-commercial (1), no consent (1);
    a broad donor of biobank B (2 specimens)."""

    world: World
    version: ConsentFormVersion
    version_b: ConsentFormVersion
    form: str
    donors: dict[str, Any]
    specimens: dict[str, list[str]]


@pytest.fixture
def cohort(db: Session, world: World) -> Cohort:
    bb_a = institutions.get_biobank(db, world.biobank_a)
    bb_b = institutions.get_biobank(db, world.biobank_b)
    col_a = institutions.get_collection(db, world.collection_a)
    col_b = institutions.get_collection(db, world.collection_b)
    form, version = make_form(db, bb_a)
    _, version_b = make_form(db, bb_b, code="B")
    plan = [
        ("broad", bb_a, col_a, version, BROAD, 2),
        ("lung", bb_a, col_a, version, LUNG_ONLY, 3),
        ("nocommercial", bb_a, col_a, version, NO_COMMERCIAL, 1),
        ("none", bb_a, col_a, None, None, 1),
        ("b_broad", bb_b, col_b, version_b, BROAD, 2),
    ]
    donors: dict[str, Any] = {}
    specimens: dict[str, list[str]] = {}
    for name, biobank, collection, form_version, choices, n in plan:
        donor = make_donor(db, biobank)
        if form_version is not None:
            give_consent(db, donor, form_version, choices)
        donors[name] = donor
        specimens[name] = [
            make_specimen(db, collection, donor=donor.public_id, diagnosis="C34.1").public_id for _ in range(n)
        ]
    db.commit()
    return Cohort(
        world=world, version=version, version_b=version_b, form=form.public_id, donors=donors, specimens=specimens
    )
