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
    "biobank.specimens.import_routes",
    "biobank.specimens.import_web",
    "biobank.storage.routes",
    "biobank.storage.web",
    "biobank.audit.routes",
    "biobank.audit.web",
    "biobank.web.routes",
    "biobank.consent.routes",
    "biobank.consent.portal",
    "biobank.consent.pages",
    "biobank.web.pages.donors",
    "biobank.web.pages.specimens",
    "biobank.web.pages.collections",
    "biobank.catalogue.routes",
    "biobank.catalogue.web",
    "biobank.clinical.routes",
    "biobank.clinical.web",
    "biobank.omics.routes",
    "biobank.omics.web",
    "biobank.interop.routes",
    "biobank.interop.fhir_routes",
    "biobank.interop.beacon_routes",
    "biobank.access.fulfilment_routes",
    "biobank.access.fulfilment_web",
    "biobank.ledger.routes",
    "biobank.ledger.web",
    "biobank.access.routes",
    "biobank.access.pages",
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
