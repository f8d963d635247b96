"""Every router of the node, in one place."""

from __future__ import annotations

from fastapi import FastAPI

from biobank.kit.plugins import optional_import

# Modules exposing `router` (API) — included under their own prefixes. Later packages add theirs.
ROUTER_MODULES = (
    "biobank.health",
    "biobank.identity.routes",
    "biobank.institutions.routes",
    "biobank.donors.routes",
    "biobank.specimens.routes",
    "biobank.storage.routes",
    "biobank.audit.routes",
    "biobank.web.routes",
)


def include_routers(app: FastAPI) -> None:
    """Include each module's router; a module that does not exist yet is skipped."""
    for name in ROUTER_MODULES:
        module = optional_import(name)
        if module is None:
            continue
        app.include_router(module.router)
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app)
