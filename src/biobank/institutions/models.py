"""This node's institution, peer institutions, biobanks and collections (MIABIS Core 3)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow
from biobank.kit.vocab import AgeUnit, CollectionStatus, SampleSource


class Institution(Base):
    """A hospital or hub in the consortium; exactly one row is this node (is_local)."""

    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    city: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16), default="hospital")
    is_local: Mapped[bool] = mapped_column(Boolean, default=False)
    node_url: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Biobank(Base):
    """A biobank (MIABIS Biobank). `public_id` is institution-prefixed; `code` is its short label."""

    __tablename__ = "biobanks"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    acronym: Mapped[str] = mapped_column(String(32), default="")
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(300), default="")
    juristic_person: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2))
    contact_email: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    infrastructural_capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    organisational_capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    bioprocessing_capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    quality_standards: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Collection(Base):
    """A collection of samples (MIABIS Collection); its facts are computed from its specimens."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    acronym: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    sample_source: Mapped[SampleSource] = mapped_column(String(16), default=SampleSource.HUMAN)
    sexes: Mapped[list[str]] = mapped_column(JSON, default=list)
    age_low: Mapped[int | None] = mapped_column(Integer)
    age_high: Mapped[int | None] = mapped_column(Integer)
    age_unit: Mapped[AgeUnit] = mapped_column(String(20), default=AgeUnit.YEARS)
    dataset_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    sample_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    storage_temperatures: Mapped[list[str]] = mapped_column(JSON, default=list)
    diseases: Mapped[list[str]] = mapped_column(JSON, default=list)
    design: Mapped[list[str]] = mapped_column(JSON, default=list)
    use_access_conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[CollectionStatus] = mapped_column(String(16), default=CollectionStatus.ACTIVE)
    number_of_subjects: Mapped[int | None] = mapped_column(Integer)
    inclusion_criteria: Mapped[list[str]] = mapped_column(JSON, default=list)
    publications: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
