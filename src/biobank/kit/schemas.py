"""Shared API schema pieces: the base model, pages of results."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Schema(BaseModel):
    """Base of every API schema: strict about unknown fields, readable from ORM objects."""

    model_config = ConfigDict(from_attributes=True, extra="forbid", str_strip_whitespace=True)


class ReadSchema(BaseModel):
    """Base of response schemas (ignores extra attributes of ORM objects)."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list: items plus what a client needs to ask for the next."""

    items: list[T]
    total: int
    page: int
    size: int
    sort: str | None = None

    @property
    def pages(self) -> int:
        """Number of pages."""
        return max(1, -(-self.total // self.size))
