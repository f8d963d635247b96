"""What the home page shows a member: counts of what their biobanks hold."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.kit.plugins import optional_import


def dashboard_context(session: Session, principal: Principal) -> dict[str, Any]:
    """Figures for the home page, from each package that offers `dashboard_figures`."""
    figures: dict[str, Any] = {}
    for name in ("biobank.specimens.service", "biobank.storage.service"):
        module = optional_import(name)
        if module is not None and hasattr(module, "dashboard_figures"):
            figures.update(module.dashboard_figures(session, principal))
    return {"figures": figures}
