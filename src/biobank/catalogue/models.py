"""Collection facts (BBMRI-ERIC Directory cells), per-collection summaries and catalogue entries.

Facts and summaries are derived data: `service.refresh_facts()` rebuilds them from the specimens, so
they hold raw counts; thresholds are applied when they are read, so changing the minimum takes effect
without a refresh.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class AccessRights(StrEnum):
    """EU Publications Office access-right vocabulary (what DCAT-AP expects in dct:accessRights)."""

    PUBLIC = "PUBLIC"
    RESTRICTED = "RESTRICTED"
    NON_PUBLIC = "NON_PUBLIC"


class CollectionFact(Base):
    """One cell: samples and donors of a collection for a sex × age range × material × diagnosis."""

    __tablename__ = "catalogue_facts"
    __table_args__ = (
        UniqueConstraint(
            "collection_id", "sex", "age_range", "sample_type", "diagnosis", name="uq_catalogue_facts_cell"
        ),
        Index("ix_catalogue_facts_diagnosis", "diagnosis", "collection_id"),
        Index("ix_catalogue_facts_sample_type", "sample_type", "collection_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    sex: Mapped[str] = mapped_column(String(20))
    age_range: Mapped[str] = mapped_column(String(16))
    sample_type: Mapped[str] = mapped_column(String(32))
    diagnosis: Mapped[str] = mapped_column(String(10), default="")  # "" when the samples carry no diagnosis
    number_of_samples: Mapped[int] = mapped_column(Integer)
    number_of_donors: Mapped[int] = mapped_column(Integer)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CountIndexRow(Base):
    """Held specimens of one donor in one collection with the same material, diagnosis, temperature and age.

    A narrow copy of what count queries filter on, rebuilt with the facts: queries scan its covering
    indexes instead of the wide specimens table and its join to donors. It carries the donor's consent
    state (`consent_state`, NULL without consent), kept in step with every consent change in the same
    transaction (consent_states.py), so a count groups by state and decides each state once, with no join.
    `shared` marks donors with rows in more than one collection (the only ones a total must deduplicate).
    """

    __tablename__ = "catalogue_count_index"
    __table_args__ = (
        Index(
            "ix_catalogue_count_index_diagnosis",
            "diagnosis", "collection_id", "consent_state", "shared", "donor_id", "sample_type", "sex", "age",
            "storage_temperature", "n",
        ),
        Index(
            "ix_catalogue_count_index_sample_type",
            "sample_type", "collection_id", "consent_state", "shared", "donor_id", "sex", "age",
            "storage_temperature", "diagnosis", "n",
        ),
        Index(
            "ix_catalogue_count_index_sex",
            "sex", "collection_id", "consent_state", "shared", "donor_id", "sample_type", "age",
            "storage_temperature", "diagnosis", "n",
        ),
        Index(
            "ix_catalogue_count_index_collection",
            "collection_id", "consent_state", "shared", "donor_id", "sample_type", "diagnosis", "sex", "age",
            "storage_temperature", "n",
        ),
        Index("ix_catalogue_count_index_donor", "donor_id"),
        Index(
            "ix_catalogue_count_index_shared",
            "donor_id", "collection_id", "consent_state", "sample_type", "diagnosis", "sex", "age",
            "storage_temperature",
            sqlite_where=text("shared = 1"), postgresql_where=text("shared"),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    donor_id: Mapped[int | None] = mapped_column(Integer)
    sample_type: Mapped[str] = mapped_column(String(32))
    diagnosis: Mapped[str] = mapped_column(String(10), default="")
    storage_temperature: Mapped[str] = mapped_column(String(32), default="")
    sex: Mapped[str] = mapped_column(String(20), default="Unknown")
    age: Mapped[int | None] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    consent_state: Mapped[int | None] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class ConsentStateRow(Base):
    """One distinct consent state (status, profile, form version, validity) that donors are in.

    Few rows (states repeat across donors), so a count decides each once per purpose. Never deleted:
    count index rows and donors refer to them by id.
    """

    __tablename__ = "catalogue_consent_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    profile_key: Mapped[str] = mapped_column(String(64))
    form_version_id: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DonorConsentState(Base):
    """The consent state of each donor with a current consent record (what the count index copies)."""

    __tablename__ = "catalogue_donor_consent_states"

    donor_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    consent_state: Mapped[int] = mapped_column(ForeignKey("catalogue_consent_states.id"))


class CollectionSummary(Base):
    """What a collection holds as a whole, computed with its facts (totals, temperatures, data available)."""

    __tablename__ = "catalogue_summaries"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    number_of_samples: Mapped[int] = mapped_column(Integer, default=0)
    number_of_donors: Mapped[int] = mapped_column(Integer, default=0)
    sexes: Mapped[list[str]] = mapped_column(JSON, default=list)
    sample_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    storage_temperatures: Mapped[list[str]] = mapped_column(JSON, default=list)
    age_ranges: Mapped[list[str]] = mapped_column(JSON, default=list)
    # "clinical", "omics", "wsi" — from the clinical and omics packages and the declared dataset types
    data_available: Mapped[list[str]] = mapped_column(JSON, default=list)
    omics_layers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Specimens with at least one omics layer, and per layer (coverage)
    omics_specimens: Mapped[int] = mapped_column(Integer, default=0)
    omics_by_layer: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CatalogueEntry(Base):
    """How a collection is published: listed or not, licence, access rights, contact, keywords."""

    __tablename__ = "catalogue_entries"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    licence: Mapped[str] = mapped_column(String(300), default="")
    access_rights: Mapped[AccessRights] = mapped_column(String(16), default=AccessRights.RESTRICTED)
    access_url: Mapped[str] = mapped_column(String(300), default="")
    contact_email: Mapped[str] = mapped_column(String(200), default="")
    access_description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
