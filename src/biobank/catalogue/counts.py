"""The researchers' count query: specimens and donors matching criteria that consent allows for a purpose.

Counts are live (computed from the specimens at the time of the query, so a withdrawal counts at once),
restricted by THE consent eligibility filter for the stated purpose, floored and rounded by the
disclosure policy, and recorded in the audit log with the criteria, the purpose and what was shown.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.catalogue import consent_adapter
from biobank.catalogue import repository as repo
from biobank.catalogue.disclosure import Policy, disclose, policy
from biobank.catalogue.schemas import CollectionCount, CountCriteria, CountRequest, CountResult, DisclosedCount
from biobank.catalogue.search import listings
from biobank.consent.matcher import Purpose
from biobank.identity.models import UserKind
from biobank.identity.principal import Principal
from biobank.institutions.models import Collection
from biobank.kit.errors import FieldError, Invalid, NotPermitted


def _count(n: int, current: Policy) -> DisclosedCount:
    return DisclosedCount.model_validate(disclose(n, current).as_dict())


def scope(session: Session, principal: Principal, criteria: CountCriteria) -> list[Collection]:
    """The collections a count may cover: listed ones and those of the principal's own biobanks."""
    items = listings(session, include_unlisted=True, with_summaries=False)
    allowed = [i for i in items if i.listed or principal.can_read(i.collection.biobank_id)]
    errors: list[FieldError] = []
    if criteria.collections:
        by_id = {i.collection.public_id: i for i in allowed}
        for n, ref in enumerate(criteria.collections):
            if ref not in by_id:
                errors.append(FieldError(["criteria", "collections", n], "unknown collection", value=ref))
        allowed = [by_id[ref] for ref in criteria.collections if ref in by_id]
    if criteria.biobank:
        code = criteria.biobank.casefold()
        matched = [i for i in allowed if code in (i.biobank.code.casefold(), i.biobank.public_id.casefold())]
        if not matched and not any(code in (i.biobank.code.casefold(), i.biobank.public_id.casefold()) for i in items):
            errors.append(FieldError(["criteria", "biobank"], "unknown biobank", value=criteria.biobank))
        allowed = matched
    if errors:
        raise Invalid(errors)
    return [i.collection for i in allowed]


APPROVED, REVIEW = 1, 2


def _filters(criteria: CountCriteria, collection_ids: list[int]) -> dict[str, Any]:
    return {
        "collection_ids": collection_ids,
        "diagnoses": criteria.diagnoses,
        "materials": [m.value for m in criteria.materials],
        "temperatures": [t.value for t in criteria.storage_temperatures],
        "sexes": [s.value for s in criteria.sexes],
        "age_min": criteria.age_min,
        "age_max": criteria.age_max,
    }


def _run(
    session: Session, criteria: CountCriteria, collection_ids: list[int], verdicts: Any
) -> list[tuple[int | None, int, int, int]]:
    """Raw counts without consent: (collection or None for the total, 1, specimens, donors)."""
    groups = repo.count_groups(**_filters(criteria, collection_ids))
    return repo.count_by_verdict(session, groups, verdicts)


def _decided(
    session: Session, purpose: Purpose, criteria: CountCriteria, collection_ids: list[int]
) -> list[tuple[int | None, int, int, int]]:
    """(collection or None for the total, verdict, specimens, donors): approved per collection, both in total.

    The count index is counted per (collection, consent state) in one pass; consent decides each state
    once (`consent_adapter.decide_states`, THE rules, validity against the clock now); donors present in
    several collections are deduplicated in the totals from their own short list.
    """
    groups, shared = repo.count_by_state(session, **_filters(criteria, collection_ids))
    ids = sorted({row[1] for row in groups if row[1] is not None})
    rows = repo.consent_states(session, ids)
    states = {
        i: consent_adapter.ConsentState(r.status, r.profile_key, r.form_version_id, r.valid_from, r.valid_until)
        for i, r in rows.items()
    }
    decided = consent_adapter.decide_states(session, purpose, states.values())
    per_collection: dict[int, list[int]] = {}
    totals = {APPROVED: [0, 0], REVIEW: [0, 0]}
    for cid, state, is_shared, n, d in groups:
        verdict = decided.verdict(states.get(state) if state is not None else None, cid)
        if verdict not in totals:
            continue
        totals[verdict][0] += n
        if not is_shared:  # these donors have rows in this collection only: counted once here
            totals[verdict][1] += d
        if verdict == APPROVED:
            counted = per_collection.setdefault(cid, [0, 0])
            counted[0] += n
            counted[1] += d
    seen: dict[int, set[int]] = {APPROVED: set(), REVIEW: set()}
    for donor, cid, state in shared:
        verdict = decided.verdict(states.get(state) if state is not None else None, cid)
        if verdict in seen:
            seen[verdict].add(donor)
    for verdict, donors in seen.items():
        totals[verdict][1] += len(donors)
    out: list[tuple[int | None, int, int, int]] = [(cid, APPROVED, n, d) for cid, (n, d) in per_collection.items() if n]
    out += [(None, verdict, n, d) for verdict, (n, d) in totals.items() if n]
    return out


def count(session: Session, principal: Principal, request: CountRequest) -> CountResult:
    """Thresholded specimen and donor counts for the criteria, as consent allows for the purpose (audited)."""
    if principal.kind is UserKind.DONOR:
        raise NotPermitted("count queries are for registered researchers and staff")
    current = policy()
    purpose: Purpose = request.purpose.purpose()
    criteria = request.criteria
    collections = scope(session, principal, criteria)
    names = {c.id: c for c in collections}
    ids = sorted(names)

    rows = _decided(session, purpose, criteria, ids) if ids else []
    per_collection = [(cid, n, d) for cid, v, n, d in rows if v == APPROVED and cid is not None]
    total_specimens, total_donors = next(((n, d) for cid, v, n, d in rows if v == APPROVED and cid is None), (0, 0))
    needs_review = next((n for cid, v, n, _ in rows if v == REVIEW and cid is None), 0)
    result = CountResult(
        specimens=_count(total_specimens, current),
        donors=_count(total_donors, current),
        needs_review=_count(needs_review, current),
        by_collection=[
            CollectionCount(
                collection=names[cid].public_id,
                name=names[cid].name,
                specimens=_count(n, current),
                donors=_count(d, current),
            )
            for cid, n, d in sorted(per_collection, key=lambda row: names[row[0]].name)
        ],
        purpose=consent_adapter.describe(purpose),
        policy=current.describe(),
    )
    audit.record(
        session,
        principal,
        "catalogue.count",
        "collection",
        [names[cid].public_id for cid, _, _ in per_collection if cid is not None],
        purpose=(purpose.project_id or f"purpose:{purpose.category}")[:128],
        details=audit.as_details(
            {
                "purpose_category": purpose.category,
                "purpose_diseases": sorted(purpose.diseases),
                "diagnoses": criteria.diagnoses,
                "materials": [m.value for m in criteria.materials],
                "storage_temperatures": [t.value for t in criteria.storage_temperatures],
                "sexes": [s.value for s in criteria.sexes],
                "age_min": criteria.age_min,
                "age_max": criteria.age_max,
                "collections": criteria.collections,
                "biobank": criteria.biobank,
                "specimens": total_specimens,
                "donors": total_donors,
                "needs_review": needs_review,
                "shown_specimens": result.specimens.display,
                "shown_donors": result.donors.display,
            }
        ),
    )
    return result


def public_counts(
    session: Session,
    *,
    diagnoses: list[str],
    sexes: list[str],
    materials: list[str],
    collections: list[str],
    age_min: int | None,
    age_max: int | None,
) -> tuple[int, int]:
    """Raw (specimens, donors) over listed collections, for answers that disclose() them (the Beacon).

    No consent restriction: like the collection facts, these say what exists, not what may be used.
    """
    items = listings(session, with_summaries=False)
    if collections:
        wanted = set(collections)
        items = [i for i in items if i.collection.public_id in wanted]
    ids = sorted(i.collection.id for i in items)
    if not ids or (age_min is not None and age_max is not None and age_min > age_max):
        return 0, 0
    criteria = CountCriteria.model_validate(
        {"diagnoses": diagnoses, "sexes": sexes, "materials": materials, "age_min": age_min, "age_max": age_max}
    )
    rows = _run(session, criteria, ids, None)
    return next(((n, d) for cid, _, n, d in rows if cid is None), (0, 0))
