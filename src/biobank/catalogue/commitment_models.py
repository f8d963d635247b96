"""Salted commitments of published catalogue records, as put on the consortium chain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class CatalogueCommitment(Base):
    """One version of a collection's published record: its salt stays here, its commitment goes on chain.

    Revealing the salt and the record lets anyone check the commitment — proof of who published what,
    when (data sovereignty) without putting the record itself on chain.
    """

    __tablename__ = "catalogue_commitments"
    __table_args__ = (UniqueConstraint("collection_id", "version", name="uq_catalogue_commitment_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    record_sha256: Mapped[str] = mapped_column(String(64))  # of the canonical record, to see if it changed
    salt: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(66))
    resource_ref: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
