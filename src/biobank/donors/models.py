"""Pseudonymous donors; identifying data lives only in the encrypted vault table."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow
from biobank.kit.vocab import Sex


class Donor(Base):
    """A donor as the biobank knows them: a keyed pseudonym, sex and birth year. No names here."""

    __tablename__ = "donors"
    __table_args__ = (UniqueConstraint("biobank_id", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    pseudonym: Mapped[str] = mapped_column(String(64))
    sex: Mapped[Sex] = mapped_column(String(20))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DonorVault(Base):
    """Name, hospital patient id and contact of a donor, AES-GCM encrypted and bound to the donor id."""

    __tablename__ = "donor_vault"

    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DonorDiagnosis(Base):
    """A diagnosis of a donor, coded in ICD-10 (WHO)."""

    __tablename__ = "donor_diagnoses"
    __table_args__ = (UniqueConstraint("donor_id", "icd10"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), index=True)
    icd10: Mapped[str] = mapped_column(String(10), index=True)
    diagnosed_on: Mapped[date | None] = mapped_column(Date)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
