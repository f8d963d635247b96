"""Queries over collection facts, summaries and catalogue entries (the catalogue's own tables only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, func, insert, literal, null, select, text, true, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from biobank.catalogue.codes import icd10_condition
from biobank.catalogue.models import (
    CatalogueEntry,
    CollectionFact,
    CollectionSummary,
    ConsentStateRow,
    CountIndexRow,
    DonorConsentState,
)

INSERT_BATCH = 5000


def lock_refresh(session: Session) -> None:
    """Serialise facts refreshes: a transaction-scoped advisory lock on PostgreSQL (SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('biobank.catalogue.refresh'))"))


INDEX_COLUMNS = ("collection_id", "donor_id", "sample_type", "diagnosis", "storage_temperature", "sex", "age", "n")


def rebuild_index(session: Session, collection_ids: Sequence[int] | None, rows: Any) -> None:
    """Replace the count index of these collections (all when None) with the rows of a select.

    Each row gets its donor's consent state (from the donor state table, in the same INSERT … SELECT);
    then the donors with rows in more than one collection are marked `shared`.
    """
    stmt = delete(CountIndexRow)
    if collection_ids is not None:
        stmt = stmt.where(CountIndexRow.collection_id.in_(list(collection_ids)))
    session.execute(stmt)
    source = rows.subquery("specimen_rows")
    columns = list(source.c)
    state = DonorConsentState
    with_state = select(*columns, state.consent_state, false()).select_from(
        source.outerjoin(state, state.donor_id == columns[1])
    )
    session.execute(insert(CountIndexRow).from_select([*INDEX_COLUMNS, "consent_state", "shared"], with_state))
    c = CountIndexRow
    donors = select(c.donor_id).where(c.donor_id.is_not(None))
    if collection_ids is not None:
        touched = select(c.donor_id).where(c.collection_id.in_(list(collection_ids)))
        donors = donors.where(c.donor_id.in_(touched))
    shared = donors.group_by(c.donor_id).having(func.count(c.collection_id.distinct()) > 1)
    session.execute(update(c).where(c.donor_id.in_(shared)).values(shared=True))


def index_donors(session: Session, rows: Any) -> list[int]:
    """The distinct donors of a specimen-rows select (what a partial refresh re-reads consent states of)."""
    source = rows.subquery("specimen_rows")
    donor = list(source.c)[1]
    return [d for d in session.scalars(select(donor).where(donor.is_not(None)).distinct())]


def consent_state_ids(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """Ids of the known consent states among these keys."""
    out: dict[str, int] = {}
    for i in range(0, len(keys), 500):
        stmt = select(ConsentStateRow.key, ConsentStateRow.id).where(ConsentStateRow.key.in_(list(keys[i : i + 500])))
        out.update({k: v for k, v in session.execute(stmt)})
    return out


def add_consent_states(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(ConsentStateRow), rows)


def consent_states(session: Session, ids: Sequence[int]) -> dict[int, ConsentStateRow]:
    if not ids:
        return {}
    return {r.id: r for r in session.scalars(select(ConsentStateRow).where(ConsentStateRow.id.in_(list(ids))))}


def replace_donor_states(session: Session, donor_ids: Sequence[int] | None, rows: list[tuple[int, int]]) -> None:
    """Set the consent state of these donors (all donors when None) to the (donor, state) rows given."""
    if donor_ids is None:
        session.execute(delete(DonorConsentState))
    else:
        for i in range(0, len(donor_ids), 900):
            chunk = list(donor_ids[i : i + 900])
            session.execute(delete(DonorConsentState).where(DonorConsentState.donor_id.in_(chunk)))
    values = [{"donor_id": d, "consent_state": s} for d, s in rows]
    for i in range(0, len(values), INSERT_BATCH):
        session.execute(insert(DonorConsentState), values[i : i + INSERT_BATCH])


def restate_index_rows(session: Session, donor_ids: Sequence[int]) -> None:
    """Copy these donors' consent state onto their count index rows (NULL when they have none)."""
    state = (
        select(DonorConsentState.consent_state)
        .where(DonorConsentState.donor_id == CountIndexRow.donor_id)
        .scalar_subquery()
    )
    for i in range(0, len(donor_ids), 900):
        chunk = list(donor_ids[i : i + 900])
        session.execute(
            update(CountIndexRow)
            .where(CountIndexRow.donor_id.in_(chunk))
            .values(consent_state=state)
            .execution_options(synchronize_session=False)
        )


def facts_from_index(
    session: Session, collection_ids: Sequence[int] | None, age_band: Any
) -> list[tuple[int, str, str, str, str, int, int]]:
    """Facts cells from the count index: (collection, sex, age range, material, diagnosis, samples, donors)."""
    c = CountIndexRow
    band = age_band(c.age)
    stmt = select(
        c.collection_id, c.sex, band, c.sample_type, c.diagnosis, func.sum(c.n), func.count(c.donor_id.distinct())
    ).group_by(c.collection_id, c.sex, band, c.sample_type, c.diagnosis)
    if collection_ids is not None:
        stmt = stmt.where(c.collection_id.in_(list(collection_ids)))
    return [tuple(row) for row in session.execute(stmt)]


def totals_from_index(session: Session, collection_ids: Sequence[int] | None) -> dict[int, tuple[int, int, list[str]]]:
    """Per collection: held specimens, distinct donors and the storage temperatures present."""
    c = CountIndexRow
    totals = select(c.collection_id, func.sum(c.n), func.count(c.donor_id.distinct())).group_by(c.collection_id)
    temps = select(c.collection_id, c.storage_temperature).where(c.storage_temperature != "").distinct()
    if collection_ids is not None:
        totals = totals.where(c.collection_id.in_(list(collection_ids)))
        temps = temps.where(c.collection_id.in_(list(collection_ids)))
    out: dict[int, tuple[int, int, list[str]]] = {cid: (int(n), int(d), []) for cid, n, d in session.execute(totals)}
    for cid, temperature in session.execute(temps):
        out[cid][2].append(temperature)
    return out


def _index_conditions(
    *,
    collection_ids: Sequence[int],
    diagnoses: Sequence[str] = (),
    materials: Sequence[str] = (),
    temperatures: Sequence[str] = (),
    sexes: Sequence[str] = (),
    age_min: int | None = None,
    age_max: int | None = None,
    leading: str | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions on the count index; with `leading`, only that criterion's column may pick an index."""
    c = CountIndexRow

    def plain(column: Any, name: str) -> Any:
        if leading is None or name == leading:
            return column
        return column + 0 if name == "collection_ids" else column.op("||")("")

    conditions: list[ColumnElement[bool]] = [plain(c.collection_id, "collection_ids").in_(list(collection_ids))]
    if diagnoses:
        conditions.append(icd10_condition(plain(c.diagnosis, "diagnoses"), list(diagnoses)))
    if materials:
        conditions.append(plain(c.sample_type, "materials").in_(list(materials)))
    if temperatures:
        conditions.append(c.storage_temperature.in_(list(temperatures)))
    if sexes:
        conditions.append(plain(c.sex, "sexes").in_(list(sexes)))
    if age_min is not None:
        conditions.append(c.age >= age_min)
    if age_max is not None:
        conditions.append(c.age <= age_max)
    return conditions


def _leading_index(criteria: dict[str, Any]) -> str:
    """The column whose count index SQLite should scan: the most selective criterion given.

    SQLite's planner, seeing `collection_id IN (…)` as equalities, would otherwise scan the collection
    index for a single diagnosis code (SQLite has no hints SQLAlchemy renders; the other columns are
    wrapped in a no-op expression instead, which keeps them out of index selection). Each index continues
    with (collection, consent state, shared, donor), so rows come out grouped as the count groups them.
    """
    for column in ("diagnoses", "materials", "sexes"):
        if criteria.get(column):
            return column
    return "collection_ids"


def count_by_state(
    session: Session, **criteria: Any
) -> tuple[list[tuple[int, int | None, bool, int, int]], list[tuple[int, int, int | None]]]:
    """Matching index rows counted per (collection, consent state, shared), and the matching shared donors.

    First: (collection_id, consent_state, shared, specimens, distinct donors) — within a collection every
    donor has one state, so these add up exactly per collection. Second: (donor_id, collection_id, consent_state)
    of the matching donors that have rows in several collections, the only ones a total across collections
    must not count twice (usually none). Both read only the count index: no join.
    """
    c = CountIndexRow
    leading = _leading_index(criteria) if session.get_bind().dialect.name == "sqlite" else None
    conditions = _index_conditions(**criteria, leading=leading)
    groups = (
        select(c.collection_id, c.consent_state, c.shared, func.sum(c.n), func.count(c.donor_id.distinct()))
        .where(*conditions)
        .group_by(c.collection_id, c.consent_state, c.shared)
    )
    rows = [(cid, state, bool(sh), int(n), int(d)) for cid, state, sh, n, d in session.execute(groups)]
    # On SQLite every criterion is wrapped here, so that only the partial index of shared rows is read.
    only_shared = _index_conditions(**criteria, leading="shared" if leading else None)
    shared = (
        select(c.donor_id, c.collection_id, c.consent_state)
        .where(c.shared == true(), c.donor_id.is_not(None), *only_shared)
        .distinct()
    )
    return rows, [(int(d), cid, state) for d, cid, state in session.execute(shared) if d is not None]


def count_groups(
    *,
    collection_ids: Sequence[int],
    diagnoses: Sequence[str] = (),
    materials: Sequence[str] = (),
    temperatures: Sequence[str] = (),
    sexes: Sequence[str] = (),
    age_min: int | None = None,
    age_max: int | None = None,
) -> Any:
    """Matching specimens of the count index counted per (donor, collection): donor_id, collection_id, n."""
    c = CountIndexRow
    stmt = select(c.donor_id, c.collection_id, func.sum(c.n).label("n")).where(
        c.collection_id.in_(list(collection_ids))
    )
    if diagnoses:
        stmt = stmt.where(icd10_condition(c.diagnosis, list(diagnoses)))
    if materials:
        stmt = stmt.where(c.sample_type.in_(list(materials)))
    if temperatures:
        stmt = stmt.where(c.storage_temperature.in_(list(temperatures)))
    if sexes:
        stmt = stmt.where(c.sex.in_(list(sexes)))
    if age_min is not None:
        stmt = stmt.where(c.age >= age_min)
    if age_max is not None:
        stmt = stmt.where(c.age <= age_max)
    return stmt.group_by(c.donor_id, c.collection_id)


def count_by_verdict(session: Session, groups_select: Any, verdicts: Any) -> list[tuple[int | None, int, int, int]]:
    """(collection_id or None for the total, verdict, specimens, donors) per verdict of each (donor, collection).

    One statement, one pass: the (donor, collection) groups are joined once to the consent verdicts
    (`verdicts.table`: donor_id, form_version_id, verdict; `verdicts.verdict(collection)` → 1 approve,
    2 needs review, 0 refused) — a plain join the planner can hash, instead of correlated subqueries per
    group — then counted per collection (approved only: nothing else is shown per collection) and in total
    per verdict, donors counted once across collections. `verdicts=None` counts every group as 1.
    """
    groups = groups_select.cte("per_donor")
    if verdicts is None:
        decided_select = select(groups.c.donor_id, groups.c.collection_id, groups.c.n, literal(1).label("v"))
    else:
        table = verdicts.table
        decided_select = select(
            groups.c.donor_id, groups.c.collection_id, groups.c.n, verdicts.verdict(groups.c.collection_id).label("v")
        ).select_from(groups.join(table, table.c.donor_id == groups.c.donor_id))
    decided = decided_select.cte("decided").prefix_with("MATERIALIZED")
    # One row per (donor, collection) in `decided`: a plain count is the collection's distinct donors.
    per_collection = (
        select(decided.c.collection_id, decided.c.v, func.sum(decided.c.n), func.count())
        .where(decided.c.v == 1)
        .group_by(decided.c.collection_id, decided.c.v)
    )
    total = (
        select(null(), decided.c.v, func.sum(decided.c.n), func.count(decided.c.donor_id.distinct()))
        .where(decided.c.v > 0)
        .group_by(decided.c.v)
    )
    rows = session.execute(union_all(per_collection, total))
    return [(cid, int(v), int(n), int(d)) for cid, v, n, d in rows if n]


def analyze(session: Session) -> None:
    """Refresh the planner's statistics of the rebuilt tables (their row counts change wholesale)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE catalogue_count_index"))
        session.execute(text("ANALYZE catalogue_facts"))
    else:
        session.execute(text("PRAGMA analysis_limit=1000"))
        session.execute(text("ANALYZE catalogue_count_index"))
        session.execute(text("ANALYZE catalogue_facts"))


def replace_facts(session: Session, collection_ids: Sequence[int] | None, rows: list[dict[str, Any]]) -> None:
    """Delete the facts of these collections (all when None) and insert the new cells."""
    stmt = delete(CollectionFact)
    if collection_ids is not None:
        stmt = stmt.where(CollectionFact.collection_id.in_(list(collection_ids)))
    session.execute(stmt)
    for i in range(0, len(rows), INSERT_BATCH):
        session.execute(insert(CollectionFact), rows[i : i + INSERT_BATCH])


def replace_summaries(session: Session, collection_ids: Sequence[int], rows: list[dict[str, Any]]) -> None:
    """Delete and insert the summaries of these collections."""
    session.execute(delete(CollectionSummary).where(CollectionSummary.collection_id.in_(list(collection_ids))))
    if rows:
        session.execute(insert(CollectionSummary), rows)


def summaries(session: Session, collection_ids: Sequence[int] | None = None) -> dict[int, CollectionSummary]:
    stmt = select(CollectionSummary)
    if collection_ids is not None:
        stmt = stmt.where(CollectionSummary.collection_id.in_(list(collection_ids)))
    return {s.collection_id: s for s in session.scalars(stmt)}


def entries(session: Session, collection_ids: Sequence[int] | None = None) -> dict[int, CatalogueEntry]:
    stmt = select(CatalogueEntry)
    if collection_ids is not None:
        stmt = stmt.where(CatalogueEntry.collection_id.in_(list(collection_ids)))
    return {e.collection_id: e for e in session.scalars(stmt)}


def entry(session: Session, collection_id: int) -> CatalogueEntry | None:
    return session.get(CatalogueEntry, collection_id)


def refreshed_at(session: Session) -> dict[int, datetime]:
    rows = session.execute(select(CollectionSummary.collection_id, CollectionSummary.refreshed_at))
    return {cid: at for cid, at in rows}


def cell_conditions(
    *,
    diagnoses: Sequence[str] = (),
    materials: Sequence[str] = (),
    sexes: Sequence[str] = (),
    age_ranges: Sequence[str] | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions on facts cells for the criteria (diagnoses include their descendants)."""
    conditions: list[ColumnElement[bool]] = []
    if diagnoses:
        conditions.append(icd10_condition(CollectionFact.diagnosis, list(diagnoses)))
    if materials:
        conditions.append(CollectionFact.sample_type.in_(list(materials)))
    if sexes:
        conditions.append(CollectionFact.sex.in_(list(sexes)))
    if age_ranges is not None:
        conditions.append(CollectionFact.age_range.in_(list(age_ranges)))
    return conditions


def published_matches(
    session: Session, collection_ids: Sequence[int], min_donors: int, conditions: list[ColumnElement[bool]]
) -> dict[int, int]:
    """Per collection: samples in published cells (donors ≥ min) that meet the conditions."""
    if not collection_ids:
        return {}
    stmt = (
        select(CollectionFact.collection_id, func.sum(CollectionFact.number_of_samples))
        .where(
            CollectionFact.collection_id.in_(list(collection_ids)),
            CollectionFact.number_of_donors >= min_donors,
            *conditions,
        )
        .group_by(CollectionFact.collection_id)
    )
    return {cid: int(n) for cid, n in session.execute(stmt)}


def published_values(
    session: Session, collection_ids: Sequence[int], min_donors: int, column: str
) -> dict[int, set[str]]:
    """Per collection: the distinct values of one facts dimension among its published cells."""
    if not collection_ids:
        return {}
    col = getattr(CollectionFact, column)
    stmt = (
        select(CollectionFact.collection_id, col)
        .where(CollectionFact.collection_id.in_(list(collection_ids)), CollectionFact.number_of_donors >= min_donors)
        .distinct()
    )
    out: dict[int, set[str]] = {}
    for cid, value in session.execute(stmt):
        out.setdefault(cid, set()).add(value)
    return out


def facts_of(session: Session, collection_id: int) -> list[CollectionFact]:
    stmt = (
        select(CollectionFact)
        .where(CollectionFact.collection_id == collection_id)
        .order_by(
            CollectionFact.sample_type,
            CollectionFact.diagnosis,
            CollectionFact.sex,
            CollectionFact.age_range,
        )
    )
    return list(session.scalars(stmt))


def all_facts(session: Session, collection_ids: Sequence[int]) -> list[CollectionFact]:
    if not collection_ids:
        return []
    stmt = (
        select(CollectionFact)
        .where(CollectionFact.collection_id.in_(list(collection_ids)))
        .order_by(CollectionFact.collection_id, CollectionFact.id)
    )
    return list(session.scalars(stmt))


def count_facts(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(CollectionFact)).scalar_one())
