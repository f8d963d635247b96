"""A small cohort with consents in biobank A and B, on top of the standard personas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from biobank.consent.models import ConsentFormVersion
from tests.conftest import World
from tests.consent.factories import make_consent_cohort


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
    made = make_consent_cohort(db, world.biobank_a, world.biobank_b, world.collection_a, world.collection_b)
    return Cohort(world=world, version=made.version, version_b=made.version_b, form=made.form.public_id,
                  donors=made.donors, specimens=made.specimens)
