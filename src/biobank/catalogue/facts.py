"""Collection facts: the job that rebuilds them from the specimens, whole or per collection.

`refresh_facts(session, collection_id | None)` replaces the cells and summary of one collection (or of
every collection) inside the caller's transaction, so it is safe to run twice and never leaves a
half-built table. Imports call it for the collections they touched; `refresh_stale()` (CLI `biobank
catalogue refresh --stale`, e.g. from a timer) refreshes the collections whose specimens changed since.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from biobank.catalogue import consent_states
from biobank.catalogue import repository as repo
from biobank.catalogue.codes import UNKNOWN_AGE, age_range_case
from biobank.catalogue.schemas import DataAvailable, RefreshReport
from biobank.donors import service as donors
from biobank.institutions import service as institutions
from biobank.kit.db import utcnow
from biobank.kit.plugins import optional_import
from biobank.kit.vocab import Sex
from biobank.specimens import service as specimens


def refresh_facts(session: Session, collection_id: int | None = None) -> RefreshReport:
    """Rebuild the facts cells and summary of one collection (by row id), or of all when None."""
    return refresh_many(session, None if collection_id is None else [collection_id])


def refresh_many(session: Session, collection_ids: Iterable[int] | None) -> RefreshReport:
    """Rebuild facts and summaries of these collections (all when None), in the caller's transaction."""
    started = time.perf_counter()
    repo.lock_refresh(session)
    ids = None if collection_ids is None else sorted(set(collection_ids))
    if ids == []:
        return RefreshReport(collections=0, cells=0, seconds=0.0)
    now = utcnow()
    rows = specimens.count_index_select(ids, donors.demographics())
    consent_states.sync_donors(session, None if ids is None else repo.index_donors(session, rows))
    repo.rebuild_index(session, ids, rows)
    cells = repo.facts_from_index(session, ids, age_range_case)
    rows = [
        {
            "collection_id": cid,
            "sex": sex or Sex.UNKNOWN.value,
            "age_range": band or UNKNOWN_AGE,
            "sample_type": str(sample_type),
            "diagnosis": diagnosis or "",
            "number_of_samples": n,
            "number_of_donors": d,
            "refreshed_at": now,
        }
        for cid, sex, band, sample_type, diagnosis, n, d in cells
    ]
    repo.replace_facts(session, ids, rows)
    targets = ids if ids is not None else [c.id for c in institutions.all_collections(session)]
    repo.replace_summaries(session, targets, _summaries(session, targets, rows, now))
    if ids is None or len(ids) > 1:
        repo.analyze(session)
    return RefreshReport(collections=len(targets), cells=len(rows), seconds=round(time.perf_counter() - started, 3))


def _summaries(
    session: Session, collection_ids: list[int], rows: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    totals = repo.totals_from_index(session, collection_ids)
    with_clinical = _with_clinical(session, collection_ids)
    with_slides = _with_slides(session, collection_ids)
    coverage = _coverage(session, collection_ids)
    by_collection: dict[int, dict[str, set[str]]] = {}
    for row in rows:
        dims = by_collection.setdefault(row["collection_id"], {"sex": set(), "type": set(), "age": set()})
        dims["sex"].add(row["sex"])
        dims["type"].add(row["sample_type"])
        dims["age"].add(row["age_range"])
    out = []
    for cid in collection_ids:
        samples, donor_count, temperatures = totals.get(cid, (0, 0, []))
        dims = by_collection.get(cid, {"sex": set(), "type": set(), "age": set()})
        with_omics, by_layer = coverage.get(cid, (0, {}))
        available = []
        if cid in with_clinical:
            available.append(DataAvailable.CLINICAL.value)
        if with_omics:
            available.append(DataAvailable.OMICS.value)
        if cid in with_slides:
            available.append(DataAvailable.WSI.value)
        out.append(
            {
                "collection_id": cid,
                "number_of_samples": samples,
                "number_of_donors": donor_count,
                "sexes": sorted(dims["sex"]),
                "sample_types": sorted(dims["type"]),
                "storage_temperatures": sorted(temperatures),
                "age_ranges": sorted(dims["age"]),
                "data_available": available,
                "omics_layers": sorted(by_layer),
                "omics_specimens": with_omics,
                "omics_by_layer": by_layer,
                "refreshed_at": now,
            }
        )
    return out


def _with_clinical(session: Session, collection_ids: list[int]) -> set[int]:
    from biobank.clinical import service as clinical

    return specimens.collections_with_donors(session, clinical.donor_ids_with_records(), collection_ids)


def _with_slides(session: Session, collection_ids: list[int]) -> set[int]:
    # Whole slide images arrive with the pathology package; until then only declared dataset types say so.
    pathology = optional_import("biobank.pathology.service")
    if pathology is not None and hasattr(pathology, "collections_with_slides"):
        return set(pathology.collections_with_slides(session, collection_ids))
    return set()


def _coverage(session: Session, collection_ids: list[int]) -> dict[int, tuple[int, dict[str, int]]]:
    from biobank.omics import service as omics

    return omics.coverage_counts(session, collection_ids)


def refresh_stale(session: Session) -> RefreshReport:
    """Refresh the collections never refreshed or whose specimens changed after their last refresh."""
    last = repo.refreshed_at(session)
    changed = specimens.last_changes(session)
    stale = [c.id for c in institutions.all_collections(session) if c.id not in last]
    stale += [cid for cid, at in changed.items() if cid in last and at > last[cid]]
    return refresh_many(session, stale)


def refresh_for_donors(session: Session, donor_ids: list[int]) -> RefreshReport:
    """After a clinical import: mark the collections holding these donors' specimens as having clinical data.

    Clinical records change no facts cell (cells are counted from specimens), only what data is available,
    and an import only adds or updates records, so this is an update of the summaries, not a recount.
    """
    started = time.perf_counter()
    if not donor_ids:
        return RefreshReport(collections=0, cells=0, seconds=0.0)
    collections: set[int] = set()
    for i in range(0, len(donor_ids), 900):
        collections |= specimens.collections_with_donors(session, donor_ids[i : i + 900])
    summaries = repo.summaries(session, sorted(collections))
    missing = sorted(collections - set(summaries))
    for summary in summaries.values():
        if DataAvailable.CLINICAL.value not in summary.data_available:
            summary.data_available = [*summary.data_available, DataAvailable.CLINICAL.value]
    session.flush()
    if missing:
        refresh_many(session, missing)
    return RefreshReport(collections=len(collections), cells=0, seconds=round(time.perf_counter() - started, 3))


def refresh_coverage(session: Session, collection_ids: Iterable[int]) -> RefreshReport:
    """After omics changes: recompute the omics coverage of these collections' summaries (no recount of cells)."""
    started = time.perf_counter()
    ids = sorted(set(collection_ids))
    summaries = repo.summaries(session, ids)
    missing = [cid for cid in ids if cid not in summaries]
    coverage = _coverage(session, ids)
    for cid, summary in summaries.items():
        with_omics, by_layer = coverage.get(cid, (0, {}))
        summary.omics_specimens = with_omics
        summary.omics_by_layer = by_layer
        summary.omics_layers = sorted(by_layer)
        others = [d for d in summary.data_available if d != DataAvailable.OMICS.value]
        summary.data_available = sorted(others + ([DataAvailable.OMICS.value] if with_omics else []))
    session.flush()
    if missing:
        refresh_many(session, missing)
    return RefreshReport(collections=len(ids), cells=0, seconds=round(time.perf_counter() - started, 3))
