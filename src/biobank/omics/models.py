"""Omics datasets, their files and QC metrics, and which specimens they were measured on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class OmicsKind(StrEnum):
    """Omics layers."""

    WGS = "WGS"
    WES = "WES"
    RNA_SEQ = "RNA-seq"
    METHYLATION = "methylation"
    PROTEOMICS = "proteomics"
    METABOLOMICS = "metabolomics"


class OmicsDataset(Base):
    """A dataset of one omics layer from one platform, owned by a biobank."""

    __tablename__ = "omics_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    kind: Mapped[OmicsKind] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    platform: Mapped[str] = mapped_column(String(200))
    reference_genome: Mapped[str] = mapped_column(String(40), default="")
    qc_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OmicsFile(Base):
    """A file of a dataset: where it is, how big, and its checksum."""

    __tablename__ = "omics_files"
    __table_args__ = (UniqueConstraint("dataset_id", "uri"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("omics_datasets.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(String(1000))
    format: Mapped[str] = mapped_column(String(20), default="")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(140))  # "sha256:<hex>" or "md5:<hex>"
    samples: Mapped[list[str]] = mapped_column(JSON, default=list)  # sample names of a VCF header
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OmicsSpecimen(Base):
    """A specimen measured in a dataset, under the sample name the data files use for it."""

    __tablename__ = "omics_specimens"
    __table_args__ = (
        UniqueConstraint("dataset_id", "specimen_id"),
        Index("ix_omics_specimens_collection_kind", "collection_id", "kind", "specimen_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("omics_datasets.id", ondelete="CASCADE"))
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id", ondelete="CASCADE"), index=True)
    # Copied from the specimen and the dataset when linked, so coverage per collection needs no join.
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    kind: Mapped[str] = mapped_column(String(16))
    sample_name: Mapped[str] = mapped_column(String(200), default="")
    qc_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = ["OmicsDataset", "OmicsFile", "OmicsKind", "OmicsSpecimen"]
