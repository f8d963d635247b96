"""Catalogue use cases: managers' edits of MIABIS attributes and publication, refreshing facts.

Search and pages are in `search.py`, the count query in `counts.py`, the facts job in `facts.py`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.catalogue import facts, search
from biobank.catalogue import repository as repo
from biobank.catalogue.models import CatalogueEntry
from biobank.catalogue.schemas import ENTRY_FIELDS, BiobankEdit, CollectionEdit, RefreshReport
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank, Collection
from biobank.kit.errors import Invalid, NotPermitted

refresh_facts = facts.refresh_facts
refresh_stale = facts.refresh_stale
refresh_for_donors = facts.refresh_for_donors


def edit_collection(session: Session, principal: Principal, collection: Collection, data: CollectionEdit) -> Collection:
    """Change a collection's MIABIS attributes and catalogue entry (its biobank's managers)."""
    if not principal.can_manage(collection.biobank_id):
        raise NotPermitted("only the biobank's managers edit its collections")
    changes: dict[str, Any] = data.model_dump(mode="json", exclude_unset=True)
    entry_changes = {k: v for k, v in changes.items() if k in ENTRY_FIELDS}
    attributes = {k: v for k, v in changes.items() if k not in ENTRY_FIELDS}
    low = attributes.get("age_low", collection.age_low)
    high = attributes.get("age_high", collection.age_high)
    if low is not None and high is not None and low > high:
        raise Invalid.field("age_low", "must not exceed age_high", value=low)
    for required in ("name", "access_rights", "listed"):
        if required in changes and changes[required] is None:
            raise Invalid.field(required, "cannot be emptied")
    if attributes:
        institutions.update_collection_attributes(session, principal, collection, attributes)
    if entry_changes:
        entry = repo.entry(session, collection.id)
        if entry is None:
            entry = CatalogueEntry(collection_id=collection.id)
            session.add(entry)
        for key, value in entry_changes.items():
            setattr(entry, key, value if value is not None else ("" if key != "keywords" else []))
        session.flush()
        audit.record(
            session,
            principal,
            "catalogue.entry.update",
            "collection",
            [collection.public_id],
            details={"fields": ",".join(sorted(entry_changes))},
        )
    entry = repo.entry(session, collection.id)
    if entry is None or entry.listed:  # a listed record that changed gets a new commitment on chain
        from biobank.catalogue.commitments import commit_collection

        commit_collection(session, principal, collection)
    return collection


def edit_biobank(session: Session, principal: Principal, biobank: Biobank, data: BiobankEdit) -> Biobank:
    """Change a biobank's MIABIS attributes (its managers)."""
    changes = data.model_dump(mode="json", exclude_unset=True)
    if "name" in changes and not changes["name"]:
        raise Invalid.field("name", "cannot be emptied")
    return institutions.update_biobank_attributes(session, principal, biobank, changes)


def refresh(session: Session, principal: Principal, collection_public_id: str | None) -> RefreshReport:
    """Refresh one collection's facts (its biobank's managers) or every collection's (node administrators)."""
    if collection_public_id is None:
        if not principal.is_admin:
            raise NotPermitted("only node administrators refresh every collection; name one collection")
        report = facts.refresh_facts(session, None)
        targets: list[str] = []
    else:
        collection = institutions.get_collection(session, collection_public_id)
        if not principal.can_manage(collection.biobank_id):
            raise NotPermitted("only the biobank's managers refresh its collection facts")
        report = facts.refresh_facts(session, collection.id)
        targets = [collection.public_id]
    audit.record(
        session,
        principal,
        "catalogue.facts.refresh",
        "collection",
        targets,
        details={"collections": report.collections, "cells": report.cells},
    )
    return report


def collection_for_edit(session: Session, principal: Principal, public_id: str) -> Collection:
    """A collection a manager may edit (listed or not); NotPermitted for everyone else."""
    collection = institutions.get_collection(session, public_id)
    if not principal.can_manage(collection.biobank_id):
        raise NotPermitted("only the biobank's managers edit its collections")
    return collection


__all__ = ["edit_biobank", "edit_collection", "refresh", "refresh_facts", "refresh_stale", "search"]
