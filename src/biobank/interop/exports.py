"""Gathering what the mappers need: scoped reads through the domain services, audited when record-level.

Public exports (biobanks, listed collections, published facts, DCAT, organisations) carry only
catalogue metadata and thresholded numbers. Record-level exports (samples, donors, events, FHIR
Specimen/Patient/Condition) are limited to the caller's biobanks and audited with every id returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.catalogue import search
from biobank.catalogue.disclosure import disclose, policy
from biobank.clinical import service as clinical
from biobank.donors import service as donors
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.interop import dcat, directory, fhir, miabis
from biobank.kit.errors import Invalid, NotFound
from biobank.omics import service as omics
from biobank.specimens import service as specimens

MAX_PAGE = 1000


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid.field("limit", f"between 1 and {MAX_PAGE}", value=limit)
    return limit


def _specimen_after(session: Session, principal: Principal, cursor: str | None) -> int:
    if not cursor:
        return 0
    found = specimens.visible_by_refs(session, principal, [cursor])
    if cursor not in found:
        raise Invalid.field("cursor", "unknown cursor", value=cursor)
    return found[cursor].id


def _donor_after(session: Session, principal: Principal, cursor: str | None) -> int:
    if not cursor:
        return 0
    donor = donors.by_public_ids(session, [cursor]).get(cursor)
    if donor is None or not principal.can_read(donor.biobank_id):
        raise Invalid.field("cursor", "unknown cursor", value=cursor)
    return donor.id


def _collection_id(session: Session, principal: Principal, public_id: str | None) -> int | None:
    if not public_id:
        return None
    collection = institutions.get_collection(session, public_id)
    if not principal.can_read(collection.biobank_id):
        raise NotFound(f"no collection {public_id!r}", name="CollectionNotFound")
    return collection.id


# -- MIABIS ------------------------------------------------------------------------------------------------


def miabis_biobanks(session: Session) -> list[dict[str, Any]]:
    """Every biobank with its listed collections (public)."""
    items = search.listings(session)
    return [
        miabis.biobank(b, collections=[i.collection.public_id for i in items if i.biobank.id == b.id])
        for b in institutions.list_biobanks(session)
    ]


def miabis_collections(session: Session) -> list[dict[str, Any]]:
    """Listed collections (public; the donor count is thresholded)."""
    current = policy()
    return [
        miabis.collection(
            i.collection,
            biobank_id=i.biobank.public_id,
            number_of_donors=disclose(i.summary.number_of_donors if i.summary else 0, current).value,
        )
        for i in search.listings(session)
    ]


def miabis_samples(
    session: Session, principal: Principal, *, collection: str | None, cursor: str | None, limit: int
) -> Page:
    """A page of the caller's samples (audited)."""
    rows = specimens.visible_batch(
        session,
        principal,
        collection_id=_collection_id(session, principal, collection),
        after_id=_specimen_after(session, principal, cursor),
        limit=_limit(limit),
    )
    collections = institutions.collections_by_ids(session, sorted({s.collection_id for s in rows}))
    biobanks = institutions.biobanks_by_ids(session, sorted({s.biobank_id for s in rows}))
    donor_ids = donors.public_ids_by_id(session, sorted({s.donor_id for s in rows if s.donor_id}))
    items = [
        miabis.sample(
            s,
            biobank_id=biobanks[s.biobank_id].public_id,
            collection_id=collections[s.collection_id].public_id,
            donor_id=donor_ids.get(s.donor_id) if s.donor_id else None,
            use_access_conditions=collections[s.collection_id].use_access_conditions,
            sample_source=str(collections[s.collection_id].sample_source),
        )
        for s in rows
    ]
    audit.record(session, principal, "export.miabis.samples", "specimen", [s.public_id for s in rows])
    return Page(items, rows[-1].public_id if len(rows) == limit else None)


def miabis_donors(
    session: Session, principal: Principal, *, biobank: str | None, cursor: str | None, limit: int
) -> Page:
    """A page of the caller's donors: sex, birth year, dataset types, diagnoses (audited)."""
    biobank_id = institutions.get_biobank(session, biobank).id if biobank else None
    if biobank_id is not None and not principal.can_read(biobank_id):
        raise NotFound(f"no biobank {biobank!r}", name="BiobankNotFound")
    rows = donors.visible_batch(
        session,
        principal,
        biobank_id=biobank_id,
        after_id=_donor_after(session, principal, cursor),
        limit=_limit(limit),
    )
    ids = [d.id for d in rows]
    registry = donors.diagnoses(session, ids)
    records = clinical.diagnoses_by_donor(session, ids)
    items = []
    for d in rows:
        codes = [x.icd10 for x in registry.get(d.id, [])] + [x.icd10 for x in records.get(d.id, []) if x.icd10]
        items.append(
            miabis.donor(
                d,
                dataset_types=["Clinical"] if d.id in records else [],
                diagnoses=sorted(set(codes)),
            )
        )
    audit.record(session, principal, "export.miabis.donors", "donor", [d.public_id for d in rows])
    return Page(items, rows[-1].public_id if len(rows) == limit else None)


def miabis_events(
    session: Session, principal: Principal, *, collection: str | None, cursor: str | None, limit: int
) -> Page:
    """Custody events of a page of the caller's samples (audited)."""
    rows = specimens.visible_batch(
        session,
        principal,
        collection_id=_collection_id(session, principal, collection),
        after_id=_specimen_after(session, principal, cursor),
        limit=_limit(limit),
    )
    events = specimens.events_of_specimens(session, [s.id for s in rows])
    items = [
        miabis.event(e, sample_id=s.public_id, index=n)
        for s in rows
        for n, e in enumerate(events.get(s.id, []), start=1)
    ]
    audit.record(session, principal, "export.miabis.events", "specimen", [s.public_id for s in rows])
    return Page(items, rows[-1].public_id if len(rows) == limit else None)


# -- BBMRI-ERIC Directory ----------------------------------------------------------------------------------


def directory_biobanks(session: Session) -> str:
    """The biobanks table (CSV)."""
    return directory.to_csv(
        directory.BIOBANK_COLUMNS, (directory.biobank_row(b) for b in institutions.list_biobanks(session))
    )


def directory_collections(session: Session, base_url: str) -> str:
    """The collections table (CSV; sizes thresholded)."""
    current = policy()
    rows = []
    for i in search.listings(session):
        s = i.summary
        entry = search.entry_read(i.entry)
        rows.append(
            directory.collection_row(
                i.collection,
                i.biobank,
                samples=disclose(s.number_of_samples if s else 0, current),
                donors=disclose(s.number_of_donors if s else 0, current),
                materials=i.sample_types(),
                temperatures=i.storage_temperatures(),
                access_description=entry.access_description,
                url=base_url.rstrip("/") + search.collection_url(i.collection.public_id),
            )
        )
    return directory.to_csv(directory.COLLECTION_COLUMNS, rows)


def directory_facts(session: Session) -> str:
    """The facts table (CSV; only published cells)."""
    rows = (
        directory.fact_row(cell, item.collection, item.biobank)
        for item, cells in search.published_facts(session)
        for cell in cells
    )
    return directory.to_csv(directory.FACT_COLUMNS, rows)


# -- DCAT-AP -----------------------------------------------------------------------------------------------


def dcat_graph(session: Session, base_url: str) -> Any:
    """The DCAT-AP graph of the public catalogue."""
    items = search.listings(session)
    datasets = omics.public_datasets(session, [i.collection.id for i in items])
    catalogues: dict[int, dcat.CatalogueInfo] = {}
    for b in institutions.list_biobanks(session):
        catalogues[b.id] = dcat.CatalogueInfo(biobank=b, page_url=search.biobank_url(b.public_id))
    for i in items:
        c = i.collection
        entry = search.entry_read(i.entry)
        keywords = [*entry.keywords, *i.sample_types(), *c.dataset_types]
        info = dcat.CollectionInfo(
            collection=c,
            entry=entry,
            page_url=search.collection_url(c.public_id),
            keywords=keywords,
            datasets=[
                dcat.DatasetInfo(d.public_id, d.title, str(d.kind), d.platform, d.description)
                for d in datasets.get(c.id, [])
            ],
        )
        catalogues.setdefault(
            i.biobank.id, dcat.CatalogueInfo(biobank=i.biobank, page_url=search.biobank_url(i.biobank.public_id))
        ).collections.append(info)
    return dcat.build(list(catalogues.values()), base_url)


# -- FHIR --------------------------------------------------------------------------------------------------


def fhir_organizations(session: Session) -> list[dict[str, Any]]:
    """Biobanks and listed collections as Organizations (public)."""
    out = [
        fhir.biobank_organization(b, directory_id=directory.biobank_id(b.country, b.code))
        for b in institutions.list_biobanks(session)
    ]
    for i in search.listings(session):
        out.append(
            fhir.collection_organization(
                i.collection,
                biobank_public_id=i.biobank.public_id,
                directory_id=directory.collection_id(i.biobank.country, i.biobank.code, i.collection.public_id),
            )
        )
    return out


def fhir_specimens(
    session: Session, principal: Principal, *, collection: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the caller's specimens as Specimen resources (audited)."""
    rows = specimens.visible_batch(
        session,
        principal,
        collection_id=_collection_id(session, principal, collection),
        after_id=_specimen_after(session, principal, cursor),
        limit=_limit(limit),
    )
    resources = specimen_resources(session, rows)
    audit.record(session, principal, "export.fhir.specimen", "specimen", [s.public_id for s in rows])
    return resources, rows[-1].public_id if len(rows) == limit else None


def specimen_resources(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    """Specimen resources of specimen rows (references resolved in a fixed number of queries)."""
    collections = institutions.collections_by_ids(session, sorted({s.collection_id for s in rows}))
    donor_ids = donors.public_ids_by_id(session, sorted({s.donor_id for s in rows if s.donor_id}))
    parents = specimens.public_ids_of(session, sorted({s.parent_id for s in rows if s.parent_id}))
    return [
        fhir.specimen(
            s,
            patient=fhir.fhir_id(donor_ids[s.donor_id]) if s.donor_id else None,
            collection_org=fhir.fhir_id(collections[s.collection_id].public_id),
            parent=parents.get(s.parent_id) if s.parent_id else None,
        )
        for s in rows
    ]


def fhir_patients(
    session: Session, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the caller's donors as Patient resources (gender and birth year only; audited)."""
    rows = donors.visible_batch(
        session, principal, after_id=_donor_after(session, principal, cursor), limit=_limit(limit)
    )
    audit.record(session, principal, "export.fhir.patient", "donor", [d.public_id for d in rows])
    return [fhir.patient(d) for d in rows], rows[-1].public_id if len(rows) == limit else None


def condition_resources(session: Session, donor_rows: list[Any]) -> list[dict[str, Any]]:
    """Conditions of donors: their registered diagnoses and their clinical diagnoses."""
    ids = [d.id for d in donor_rows]
    by_id = {d.id: d for d in donor_rows}
    registry = donors.diagnoses(session, ids)
    out = []
    for donor_id, items in registry.items():
        patient = fhir.fhir_id(by_id[donor_id].public_id)
        for x in items:
            out.append(
                fhir.condition(
                    resource_id=f"dd-{patient}-{x.icd10.replace('.', '')}"[:64],
                    patient_id=patient,
                    icd10=x.icd10,
                    onset=x.diagnosed_on,
                )
            )
    for donor_id, records in clinical.diagnoses_by_donor(session, ids).items():
        patient = fhir.fhir_id(by_id[donor_id].public_id)
        for r in records:
            out.append(
                fhir.condition(
                    resource_id=r.public_id,
                    patient_id=patient,
                    icd10=r.icd10,
                    text=r.text,
                    onset=r.diagnosed_on,
                    topography=r.topography,
                    morphology=r.morphology,
                    stage=r.stage,
                    tnm=(r.tnm_t, r.tnm_n, r.tnm_m),
                )
            )
    return out


def fhir_conditions(
    session: Session, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Conditions of a page of the caller's donors (audited; the cursor pages over donors)."""
    rows = donors.visible_batch(
        session, principal, after_id=_donor_after(session, principal, cursor), limit=_limit(limit)
    )
    audit.record(session, principal, "export.fhir.condition", "donor", [d.public_id for d in rows])
    return condition_resources(session, rows), rows[-1].public_id if len(rows) == limit else None


def fhir_bundle_batches(
    session: Session, principal: Principal, *, collection: str, batch: int = 2000
) -> Iterator[list[dict[str, Any]]]:
    """Every resource of a collection the caller may read: organisations, specimens, patients, conditions."""
    collection_id = _collection_id(session, principal, collection)
    assert collection_id is not None
    c = institutions.collections_by_ids(session, [collection_id])[collection_id]
    b = institutions.biobanks_by_ids(session, [c.biobank_id])[c.biobank_id]
    yield [
        fhir.biobank_organization(b, directory_id=directory.biobank_id(b.country, b.code)),
        fhir.collection_organization(
            c, biobank_public_id=b.public_id, directory_id=directory.collection_id(b.country, b.code, c.public_id)
        ),
    ]
    seen_donors: set[int] = set()
    after = 0
    exported: list[str] = []
    while True:
        rows = specimens.visible_batch(session, principal, collection_id=collection_id, after_id=after, limit=batch)
        if not rows:
            break
        after = rows[-1].id
        new_donor_ids = sorted({s.donor_id for s in rows if s.donor_id and s.donor_id not in seen_donors})
        seen_donors.update(new_donor_ids)
        donor_rows = list(donors.by_ids(session, new_donor_ids).values())
        exported += [s.public_id for s in rows]
        yield (
            specimen_resources(session, rows)
            + [fhir.patient(d) for d in donor_rows]
            + condition_resources(session, donor_rows)
        )
    audit.record(
        session, principal, "export.fhir.bundle", "collection", [c.public_id], details={"specimens": len(exported)}
    )
