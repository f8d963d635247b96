"""Liveness and readiness: /healthz."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from biobank import __version__
from biobank.kit.deps import DbSession

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: DbSession) -> dict[str, str]:
    """The node is up and its database answers."""
    session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
