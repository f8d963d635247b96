"""Imports every ORM model module so metadata is complete (Alembic, tests, create_app)."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "biobank.kit.ids",
    "biobank.identity.models",
    "biobank.institutions.models",
    "biobank.storage.models",
    "biobank.donors.models",
    "biobank.specimens.models",
    "biobank.audit.models",
    "biobank.consent.models",
    "biobank.omics.models",
    "biobank.clinical.models",
    "biobank.catalogue.models",
    "biobank.catalogue.commitment_models",
    "biobank.ledger.models",
    "biobank.access.models",
    "biobank.access.fulfilment_models",
)


def import_all_models() -> None:
    """Import each model module once; later packages add theirs to MODEL_MODULES."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
