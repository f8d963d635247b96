"""The storage hierarchy: site → freezer/tank → rack/shelf → box with a row × column grid."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class UnitKind(StrEnum):
    SITE = "site"
    FREEZER = "freezer"
    TANK = "tank"
    RACK = "rack"
    SHELF = "shelf"
    BOX = "box"


# Which kinds may hold which: a site holds freezers and tanks, they hold racks/shelves, those hold boxes.
ALLOWED_CHILDREN: dict[UnitKind, frozenset[UnitKind]] = {
    UnitKind.SITE: frozenset({UnitKind.FREEZER, UnitKind.TANK}),
    UnitKind.FREEZER: frozenset({UnitKind.RACK, UnitKind.SHELF, UnitKind.BOX}),
    UnitKind.TANK: frozenset({UnitKind.RACK, UnitKind.BOX}),
    UnitKind.RACK: frozenset({UnitKind.BOX}),
    UnitKind.SHELF: frozenset({UnitKind.RACK, UnitKind.BOX}),
    UnitKind.BOX: frozenset(),
}


class LabelScheme(StrEnum):
    """How a box names its positions: A1 (row letter, column number) or 1..N counted row by row."""

    LETTER_NUMBER = "A1"
    NUMERIC = "1-N"


class StorageUnit(Base):
    """One node of the storage tree. Boxes have a grid and keep their occupancy count."""

    __tablename__ = "storage_units"
    __table_args__ = (
        UniqueConstraint("parent_id", "name"),
        # One path per biobank: also makes site names unique (their parent_id is NULL), and orders
        # the free-slot search (boxes of a biobank walked in path order, stopping at the first with room).
        UniqueConstraint("biobank_id", "path"),
        CheckConstraint("occupied >= 0", name="occupied_not_negative"),
        CheckConstraint("rows IS NULL OR (rows BETWEEN 1 AND 100 AND cols BETWEEN 1 AND 100)", name="grid_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("storage_units.id"), index=True)
    kind: Mapped[UnitKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    temperature: Mapped[str | None] = mapped_column(String(32))
    rows: Mapped[int | None] = mapped_column(Integer)
    cols: Mapped[int | None] = mapped_column(Integer)
    label_scheme: Mapped[LabelScheme | None] = mapped_column(String(8))
    occupied: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def capacity(self) -> int:
        """Number of positions (boxes only)."""
        return (self.rows or 0) * (self.cols or 0)
