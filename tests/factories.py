"""Plain factory functions for tests: make_x(session, **overrides) returns a flushed object."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from biobank.config import get_settings
from biobank.identity import service as identity
from biobank.identity.models import Role, User
from biobank.identity.principal import system_principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank, Collection
from biobank.institutions.schemas import BiobankCreate, CollectionCreate

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def system() -> Any:
    return system_principal(get_settings().institution_code)


def make_user(
    session: Session,
    username: str | None = None,
    *,
    role: str | None = None,
    biobank: Biobank | None = None,
    is_admin: bool = False,
    is_auditor: bool = False,
    is_ethics_reviewer: bool = False,
    kind: str = "staff",
    password: str = PASSWORD,
) -> User:
    from biobank.identity.models import UserKind

    user = identity.create_user(
        session,
        system(),
        username or f"user{next(_seq)}",
        password,
        is_admin=is_admin,
        is_auditor=is_auditor,
        kind=UserKind(kind),
    )
    if is_ethics_reviewer:
        user.is_ethics_reviewer = True  # set by a node admin (no API for it yet)
        session.flush()
    if role and biobank:
        identity.grant_role(session, system(), user, biobank.id, Role(role))
    return user


def make_token(session: Session, user: User, *, scopes: list[str] | None = None) -> str:
    secret, _ = identity.create_token(session, system(), user, "test", scopes=scopes)
    return secret


def make_biobank(session: Session, code: str | None = None, **overrides: Any) -> Biobank:
    data = {"code": code or f"BB{next(_seq)}", "name": "Test biobank", "country": "CN"} | overrides
    return institutions.create_biobank(session, system(), BiobankCreate(**data))


def make_collection(session: Session, biobank: Biobank, **overrides: Any) -> Collection:
    data = {"biobank": biobank.code, "name": f"Collection {next(_seq)}", "diseases": ["C34"]} | overrides
    return institutions.create_collection(session, system(), CollectionCreate(**data))


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def make_donor(session: Session, biobank: Biobank, **overrides: Any) -> Any:
    from biobank.donors import service as donors
    from biobank.donors.schemas import DonorCreate

    n = next(_seq)
    data = {"biobank": biobank.code, "patient_id": f"MRN{n:07d}", "sex": "Female", "birth_year": 1960,
            "name": f"Test Person {n}"} | overrides
    return donors.register(session, system(), DonorCreate(**data))


def make_specimen(session: Session, collection: Collection, **overrides: Any) -> Any:
    from biobank.specimens import service as specimens
    from biobank.specimens.schemas import SpecimenCreate

    n = next(_seq)
    data = {"barcode": f"BC{n:08d}", "collection": collection.public_id, "sample_type": "Serum",
            "container": "SST", "collected_at": hours_ago(10), "processed_at": hours_ago(9.5),
            "frozen_at": hours_ago(9), "quantity": 3.0, "quantity_unit": "mL", "status": "processed"} | overrides
    return specimens.register(session, system(), SpecimenCreate(**data))


def make_box(session: Session, biobank: Biobank, *, name: str = "B1", rows: int = 9, cols: int = 9) -> Any:
    """A site → freezer → box chain in a biobank; returns the box."""
    from biobank.storage import service as storage
    from biobank.storage.schemas import UnitCreate

    n = next(_seq)
    site = storage.create_unit(session, system(), UnitCreate(biobank=biobank.code, kind="site", name=f"Site {n}"))
    freezer = storage.create_unit(session, system(), UnitCreate(parent=site.public_id, kind="freezer",
                                                                 name="F1", temperature="−60 °C to −85 °C"))
    return storage.create_unit(session, system(), UnitCreate(parent=freezer.public_id, kind="box", name=name,
                                                             rows=rows, cols=cols))
