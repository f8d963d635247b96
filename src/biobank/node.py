"""Node initialisation: this institution's row and the node's keys, created once and idempotently."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank.config import Settings
from biobank.institutions.service import ensure_local_institution
from biobank.kit.plugins import optional_import

# Packages that need something at first start (keys, singletons) expose `initialise(session, settings)`.
INITIALISERS = ("biobank.audit.keys",)


def initialise_node(session: Session, settings: Settings) -> None:
    """Make sure this node's institution and keys exist."""
    ensure_local_institution(session, settings)
    for name in INITIALISERS:
        module = optional_import(name)
        if module is not None:
            module.initialise(session, settings)
