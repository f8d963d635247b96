"""Paging and sorting parameters shared by list endpoints, pages and repositories."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from biobank.kit.errors import Invalid


@dataclass(frozen=True)
class PageParams:
    """Which page, how large, and which sort key (``name`` or ``-name`` for descending)."""

    page: int = 1
    size: int = 50
    sort: str | None = None

    def validated(self, allowed_sorts: Mapping[str, Any], max_size: int = 500) -> PageParams:
        """Check page, size and sort against what the list allows, naming the bad field."""
        if self.page < 1:
            raise Invalid.field("page", "must be 1 or more", value=self.page)
        if not 1 <= self.size <= max_size:
            raise Invalid.field("size", f"must be between 1 and {max_size}", value=self.size)
        if self.sort is not None and self.sort.lstrip("-") not in allowed_sorts:
            raise Invalid.field(
                "sort", "unknown sort key; use one of " + ", ".join(sorted(allowed_sorts)), value=self.sort
            )
        return self


def paginate(
    session: Session,
    stmt: Select[Any],
    params: PageParams,
    sorts: Mapping[str, Any],
    default_sort: str,
    *,
    count: bool = True,
) -> tuple[list[Any], int]:
    """Apply sorting and paging to a statement; returns the rows and the total count."""
    key = params.sort or default_sort
    column = sorts[key.lstrip("-")]
    ordered = stmt.order_by(column.desc() if key.startswith("-") else column.asc())
    # A unique tie-breaker keeps pages stable when the sort key repeats.
    tie = sorts.get("id")
    if tie is not None and key.lstrip("-") != "id":
        ordered = ordered.order_by(tie.asc())
    rows = list(session.scalars(ordered.limit(params.size).offset((params.page - 1) * params.size)))
    total = len(rows) + (params.page - 1) * params.size
    if count and (len(rows) == params.size or params.page > 1):
        total = session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    return rows, total
