"""Specimens with lineage, status lifecycle, position, chain-of-custody events and QC results."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow
from biobank.kit.vocab import SampleType, StorageTemperature


class Status(StrEnum):
    COLLECTED = "collected"
    RECEIVED = "received"
    PROCESSED = "processed"
    STORED = "stored"
    RESERVED = "reserved"
    DISTRIBUTED = "distributed"
    CONSUMED = "consumed"
    DESTROYED = "destroyed"
    LOST = "lost"


TERMINAL = frozenset({Status.DISTRIBUTED, Status.CONSUMED, Status.DESTROYED, Status.LOST})

# The lifecycle: each status and where it may go next. Skipping ahead along the main line is allowed
# (a tissue block may be stored straight after reception); going back is not, except releasing a
# reservation and a specimen being found again after it was reported lost.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.COLLECTED: frozenset({Status.RECEIVED, Status.PROCESSED, Status.STORED, Status.DESTROYED, Status.LOST}),
    Status.RECEIVED: frozenset({Status.PROCESSED, Status.STORED, Status.CONSUMED, Status.DESTROYED, Status.LOST}),
    Status.PROCESSED: frozenset({Status.STORED, Status.CONSUMED, Status.DESTROYED, Status.LOST}),
    Status.STORED: frozenset({Status.RESERVED, Status.DISTRIBUTED, Status.CONSUMED, Status.DESTROYED, Status.LOST}),
    Status.RESERVED: frozenset({Status.STORED, Status.DISTRIBUTED, Status.CONSUMED, Status.DESTROYED, Status.LOST}),
    Status.DISTRIBUTED: frozenset(),
    Status.CONSUMED: frozenset(),
    Status.DESTROYED: frozenset(),
    Status.LOST: frozenset({Status.STORED}),
}


class Lineage(StrEnum):
    PRIMARY = "primary"
    ALIQUOT = "aliquot"
    DERIVATIVE = "derivative"
    POOL = "pool"


class QuantityUnit(StrEnum):
    ML = "mL"
    UL = "µL"
    G = "g"
    MG = "mg"
    UG = "µg"
    NG = "ng"
    CELLS = "cells"
    PIECES = "pieces"
    SLIDES = "slides"
    BLOCKS = "blocks"


class ConcentrationUnit(StrEnum):
    NG_PER_UL = "ng/µL"
    UG_PER_ML = "µg/mL"
    MG_PER_ML = "mg/mL"
    CELLS_PER_ML = "cells/mL"


class Specimen(Base):
    """A physical sample: primary, aliquot, derivative or pool, with where it is and what state it is in."""

    __tablename__ = "specimens"
    __table_args__ = (
        UniqueConstraint("box_id", "row", "col", name="uq_specimens_position"),
        CheckConstraint("quantity IS NULL OR quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("freeze_thaw_count >= 0", name="freeze_thaw_not_negative"),
        CheckConstraint(
            "(box_id IS NULL AND row IS NULL AND col IS NULL) OR "
            "(box_id IS NOT NULL AND row IS NOT NULL AND col IS NOT NULL)",
            name="position_complete",
        ),
        Index("ix_specimens_filter", "collection_id", "sample_type", "status", "id"),
        Index("ix_specimens_biobank_id_id", "biobank_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("donors.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("specimens.id"), index=True)
    lineage: Mapped[Lineage] = mapped_column(String(16), default=Lineage.PRIMARY)
    sample_type: Mapped[SampleType] = mapped_column(String(32))
    detailed_type: Mapped[str] = mapped_column(String(100), default="")
    sprec_code: Mapped[str | None] = mapped_column(String(40))
    container: Mapped[str | None] = mapped_column(String(8))
    anatomical_site: Mapped[str | None] = mapped_column(String(16))
    diagnosis: Mapped[str | None] = mapped_column(String(10), index=True)
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    quantity: Mapped[float | None] = mapped_column(Float)
    quantity_unit: Mapped[QuantityUnit | None] = mapped_column(String(8))
    concentration: Mapped[float | None] = mapped_column(Float)
    concentration_unit: Mapped[ConcentrationUnit | None] = mapped_column(String(12))
    freeze_thaw_count: Mapped[int] = mapped_column(Integer, default=0)
    storage_temperature: Mapped[StorageTemperature | None] = mapped_column(String(32))
    status: Mapped[Status] = mapped_column(String(16), default=Status.COLLECTED)
    box_id: Mapped[int | None] = mapped_column(ForeignKey("storage_units.id"))
    row: Mapped[int | None] = mapped_column(Integer)
    col: Mapped[int | None] = mapped_column(Integer)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PoolSource(Base):
    """A specimen that went into a pool."""

    __tablename__ = "specimen_pool_sources"

    pool_id: Mapped[int] = mapped_column(ForeignKey("specimens.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("specimens.id"), primary_key=True, index=True)
    quantity_used: Mapped[float | None] = mapped_column(Float)


class SpecimenEvent(Base):
    """One link in the chain of custody: who changed what, when and why, before → after."""

    __tablename__ = "specimen_events"
    __table_args__ = (Index("ix_specimen_events_specimen_id_id", "specimen_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class QCResult(Base):
    """A quality-control result for a specimen (ISO 20387 7.8)."""

    __tablename__ = "qc_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id", ondelete="CASCADE"), index=True)
    test: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(100), default="")
    value: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str] = mapped_column(String(100), default="")
    unit: Mapped[str] = mapped_column(String(20), default="")
    passed: Mapped[bool] = mapped_column(Boolean)
    tested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
