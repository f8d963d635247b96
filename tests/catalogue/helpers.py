"""Shared arrangements of catalogue, clinical, omics and interop tests: cohorts of consented donors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.audit.models import AuditEntry
from biobank.audit.reading import entry_view
from biobank.consent import forms, records
from biobank.consent.schemas import ConsentRecordCreate, FormCreate, VersionCreate
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank, Collection
from tests.factories import make_collection, make_donor, make_specimen, system

OPTIONS: list[dict[str, Any]] = [
    {"code": "broad", "kind": "permission", "label_en": "Any research", "duo_permission": "GRU"},
    {
        "code": "lung",
        "kind": "permission",
        "label_en": "Lung cancer research only",
        "duo_permission": "DS",
        "diseases": ["C34"],
    },
    {"code": "ethics", "kind": "condition", "label_en": "Every study needs ethics approval", "duo_modifiers": ["IRB"]},
]
BROAD = {"broad": True, "lung": False}
LUNG_ONLY = {"broad": False, "lung": True}


def purpose(**overrides: Any) -> dict[str, Any]:
    """A disease-specific lung cancer purpose with ethics approval (approved by broad and lung consents)."""
    return {"category": "DS", "diseases": ["C34.1"], "ethics_approval": True} | overrides


def consent_version(session: Session, biobank: Biobank) -> Any:
    """A published consent form version of a biobank (GRU or lung cancer only, ethics approval required)."""
    form = forms.create_form(session, system(), FormCreate(biobank=biobank.code, code="MAIN", title_en="Consent"))
    data = VersionCreate.model_validate(
        {
            "text_en": "Consent to research use.",
            "options": OPTIONS,
            "published_at": datetime.now(UTC) - timedelta(days=400),
        }
    )
    return forms.add_version(session, system(), form, data)


def give_consent(session: Session, donor: Any, version: Any, choices: dict[str, bool]) -> Any:
    data = ConsentRecordCreate(
        version=version.public_id,
        choices=choices,
        given_at=datetime.now(UTC) - timedelta(days=30),
        method="electronic",
        signed_name="Test Person",
    )
    return records.record_consent(session, system(), donor, data, channel="portal")


@dataclass
class Cohort:
    """Who was made: collection public ids, donor and specimen public ids by group."""

    collections: dict[str, str] = field(default_factory=dict)
    donors: dict[str, list[str]] = field(default_factory=dict)
    specimens: dict[str, list[str]] = field(default_factory=dict)


def add_group(
    session: Session,
    cohort: Cohort,
    name: str,
    collection: Collection,
    *,
    donors: int,
    sex: str,
    birth_year: int,
    sample_type: str,
    diagnosis: str | None,
    consent: dict[str, bool] | None,
    version: Any,
    storage_temperature: str | None = None,
) -> None:
    """`donors` donors of one sex and birth year, each with one specimen of a type and diagnosis."""
    biobank = institutions.biobanks_by_ids(session, [collection.biobank_id])[collection.biobank_id]
    cohort.donors[name] = []
    cohort.specimens[name] = []
    for _ in range(donors):
        donor = make_donor(session, biobank, sex=sex, birth_year=birth_year)
        if consent is not None:
            give_consent(session, donor, version, consent)
        specimen = make_specimen(
            session,
            collection,
            donor=donor.public_id,
            sample_type=sample_type,
            diagnosis=diagnosis,
            storage_temperature=storage_temperature,
            container=None if sample_type != "Serum" else "SST",
        )
        cohort.donors[name].append(donor.public_id)
        cohort.specimens[name].append(specimen.public_id)


def build_cohort(session: Session, world: Any) -> Cohort:
    """The catalogue's standard data on top of `world`.

    Collection A (biobank A, declared C34): 10 women (1970) with serum C34.1, broad consent → a published
    cell; 9 men (1970) with plasma C18.7, broad consent → a hidden cell; 3 women with serum C34.1 and a
    lung-only consent; 2 women with serum C34.1 and no consent.
    Collection C (biobank A, declares nothing): 10 women with frozen tissue C50.9, broad consent.
    Collection D (biobank A, declares nothing): 9 women with frozen tissue C61 (hidden cell only).
    """
    biobank_a = institutions.get_biobank(session, world.biobank_a)
    version = consent_version(session, biobank_a)
    a = institutions.get_collection(session, world.collection_a)
    c = make_collection(session, biobank_a, name="Breast tissue bank", diseases=[], description="Frozen tumour tissue")
    d = make_collection(session, biobank_a, name="Prostate series", diseases=[])
    cohort = Cohort(collections={"A": a.public_id, "B": world.collection_b, "C": c.public_id, "D": d.public_id})
    common = {"version": version, "storage_temperature": "−60 °C to −85 °C"}
    add_group(
        session,
        cohort,
        "women",
        a,
        donors=10,
        sex="Female",
        birth_year=1970,
        sample_type="Serum",
        diagnosis="C34.1",
        consent=BROAD,
        **common,
    )
    add_group(
        session,
        cohort,
        "men",
        a,
        donors=9,
        sex="Male",
        birth_year=1970,
        sample_type="Plasma",
        diagnosis="C18.7",
        consent=BROAD,
        **common,
    )
    add_group(
        session,
        cohort,
        "lung_only",
        a,
        donors=3,
        sex="Female",
        birth_year=1970,
        sample_type="Serum",
        diagnosis="C34.1",
        consent=LUNG_ONLY,
        **common,
    )
    add_group(
        session,
        cohort,
        "unconsented",
        a,
        donors=2,
        sex="Female",
        birth_year=1970,
        sample_type="Serum",
        diagnosis="C34.1",
        consent=None,
        **common,
    )
    add_group(
        session,
        cohort,
        "breast",
        c,
        donors=10,
        sex="Female",
        birth_year=1960,
        sample_type="Tissue (Frozen)",
        diagnosis="C50.9",
        consent=BROAD,
        version=version,
        storage_temperature="LN2 vapour phase",
    )
    add_group(
        session,
        cohort,
        "prostate",
        d,
        donors=9,
        sex="Male",
        birth_year=1950,
        sample_type="Tissue (Frozen)",
        diagnosis="C61",
        consent=BROAD,
        version=version,
        storage_temperature="LN2 vapour phase",
    )
    return cohort


def audit_entries(session: Session, action: str) -> list[Any]:
    """Decoded audit entries of one action, oldest first."""
    session.expire_all()
    rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.idx))
    entries = [entry_view(row) for row in rows]
    session.rollback()  # SQLite: do not keep the write lock the app's requests need
    return entries
