"""Queries over donors, scoped to the biobanks the principal belongs to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from biobank.donors.models import Donor, DonorDiagnosis, DonorVault
from biobank.identity.principal import Principal


def visible(principal: Principal) -> Select[Donor]:
    """Donors the principal may see: those of their biobanks (all for node admins)."""
    stmt = select(Donor)
    ids = principal.visible_biobank_ids()
    if ids is not None:
        stmt = stmt.where(Donor.biobank_id.in_(ids))
    return stmt


def by_public_id(session: Session, principal: Principal, public_id: str) -> Donor | None:
    return session.scalars(visible(principal).where(Donor.public_id == public_id)).first()


def by_pseudonym(session: Session, biobank_id: int, pseudonym: str) -> Donor | None:
    return session.scalars(select(Donor).where(Donor.biobank_id == biobank_id, Donor.pseudonym == pseudonym)).first()


def by_pseudonyms(session: Session, biobank_id: int, pseudonyms: Sequence[str]) -> dict[str, Donor]:
    if not pseudonyms:
        return {}
    rows = session.scalars(select(Donor).where(Donor.biobank_id == biobank_id, Donor.pseudonym.in_(list(pseudonyms))))
    return {d.pseudonym: d for d in rows}


def by_public_ids(session: Session, public_ids: Sequence[str]) -> dict[str, Donor]:
    if not public_ids:
        return {}
    return {d.public_id: d for d in session.scalars(select(Donor).where(Donor.public_id.in_(list(public_ids))))}


def diagnoses_of(session: Session, donor_ids: Sequence[int]) -> dict[int, list[DonorDiagnosis]]:
    out: dict[int, list[DonorDiagnosis]] = {i: [] for i in donor_ids}
    if donor_ids:
        stmt = (
            select(DonorDiagnosis)
            .where(DonorDiagnosis.donor_id.in_(list(donor_ids)))
            .order_by(DonorDiagnosis.is_primary.desc(), DonorDiagnosis.icd10)
        )
        for diagnosis in session.scalars(stmt):
            out[diagnosis.donor_id].append(diagnosis)
    return out


def vault_of(session: Session, donor_id: int) -> DonorVault | None:
    return session.get(DonorVault, donor_id)
