"""What the home page shows a member: counts of what their biobanks hold, and two charts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.kit.plugins import optional_import


def dashboard_context(session: Session, principal: Principal) -> dict[str, Any]:
    """Figures for the home page, from each package that offers `dashboard_figures`, and chart data."""
    figures: dict[str, Any] = {}
    donors = optional_import("biobank.donors.service")
    if donors is not None:
        figures["donors"] = donors.count_visible(session, principal)
    for name in ("biobank.specimens.service", "biobank.storage.service"):
        module = optional_import(name)
        if module is not None and hasattr(module, "dashboard_figures"):
            figures.update(module.dashboard_figures(session, principal))
    charts: dict[str, dict[str, int]] = {}
    specimens = optional_import("biobank.specimens.service")
    if specimens is not None and hasattr(specimens, "figures_by_type"):
        charts = specimens.figures_by_type(session, principal)
    return {"figures": figures, "charts": charts}
