"""API schemas of the storage hierarchy, box grids, free positions and capacity."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from biobank.kit.schemas import ReadSchema, Schema
from biobank.kit.vocab import StorageTemperature, normalise_storage_temperature
from biobank.storage.models import LabelScheme, UnitKind

PATH_SEPARATOR = " / "


def _temperature(value: Any) -> Any:
    """Accept the MIABIS term or a common spelling of it ('-80', 'LN2 vapour')."""
    if isinstance(value, str):
        if not value.strip():
            return None
        return normalise_storage_temperature(value)
    return value


def _unit_name(value: str | None) -> str | None:
    if value is not None and PATH_SEPARATOR.strip() in value:
        raise ValueError("a name may not contain '/', which separates the levels of a storage path")
    return value


class UnitCreate(Schema):
    biobank: str | None = Field(default=None, description="biobank code; may be left out when a parent is given")
    parent: str | None = Field(default=None, description="public id of the containing unit; none for a site")
    kind: UnitKind
    name: str = Field(min_length=1, max_length=100)
    temperature: StorageTemperature | None = Field(
        default=None, description="MIABIS storage temperature; inherited from the parent when not given"
    )
    rows: int | None = Field(default=None, ge=1, le=100, description="boxes only")
    cols: int | None = Field(default=None, ge=1, le=100, description="boxes only")
    label_scheme: LabelScheme | None = Field(default=None, description="boxes only; A1 by default")

    _check_temperature = field_validator("temperature", mode="before")(_temperature)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _unit_name(value) or value


class UnitUpdate(Schema):
    """Rename a unit and/or move it under another parent (its contents move with it)."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    parent: str | None = Field(default=None, description="public id of the new containing unit")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _unit_name(value)


class UnitRead(ReadSchema):
    public_id: str
    biobank: str
    kind: UnitKind
    name: str
    path: str
    temperature: str | None
    rows: int | None
    cols: int | None
    label_scheme: str | None
    occupied: int = Field(description="positions holding a specimen; for a unit above boxes, summed over its boxes")
    capacity: int = Field(description="positions; for a unit above boxes, summed over its boxes")
    boxes: int = Field(description="boxes in this unit (1 for a box)")
    parent: str | None


class UnitDetail(UnitRead):
    children: list[UnitRead]


class BoxSpecimen(ReadSchema):
    public_id: str
    barcode: str
    sample_type: str
    status: str


class BoxCell(ReadSchema):
    position: str
    row: int
    col: int
    specimen: BoxSpecimen | None


class BoxView(ReadSchema):
    box: UnitRead
    grid: list[list[BoxCell]] = Field(description="rows of cells, top to bottom; each row left to right")


class FreeSlot(ReadSchema):
    box: str = Field(description="public id of the box")
    path: str
    position: str
    row: int
    col: int


class CapacityRow(ReadSchema):
    """Occupancy of one freezer or tank."""

    unit: str
    biobank: str
    kind: UnitKind
    path: str
    temperature: str | None
    boxes: int
    capacity: int
    occupied: int
    free: int
    percent_used: float
