"""Consent eligibility of a request, per provider biobank: how many requested specimens each verdict covers.

Runs consent's ONE check, `eligible_specimen_filter`, once per verdict over the union of what the request
names (the held specimens of each requested collection — of one material when the line says so —, the named
specimens, and for data lines the collection's held specimens, whose donors the data describe), grouped by
biobank: three queries whatever the number of providers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from biobank.access.models import AccessRequest, AccessRequestItem, AccessRequestProvider, ItemKind
from biobank.consent.eligibility import eligible_specimen_filter
from biobank.consent.matcher import Purpose, Verdict
from biobank.consent.schemas import PurposeIn
from biobank.kit.db import utcnow

VERDICT_KEYS = {Verdict.APPROVE: "approve", Verdict.DENY: "deny", Verdict.NEEDS_REVIEW: "review"}


def purpose_of(request: AccessRequest, *, has_document: bool) -> Purpose:
    """The matcher's purpose of a request: the stated purpose, with its country defaulting to the shipment
    country and its ethics approval to whether an approval document is attached."""
    stated = PurposeIn.model_validate(request.purpose)
    updates: dict[str, Any] = {}
    if stated.country is None:
        updates["country"] = request.shipment_country
    if stated.ethics_approval is None:
        updates["ethics_approval"] = has_document
    return stated.model_copy(update=updates).purpose()


def _scope(items: Sequence[AccessRequestItem]) -> Any:
    from biobank.specimens import service as specimens

    parts = []
    named = sorted({i.specimen_id for i in items if i.kind == ItemKind.SPECIMEN and i.specimen_id is not None})
    if named:
        parts.append(specimens.consent_scope(specimen_ids=named))
    seen: set[tuple[int, str | None]] = set()
    for item in items:
        if item.kind == ItemKind.SPECIMEN:
            continue
        material = item.sample_type if item.kind == ItemKind.COLLECTION else None
        if (item.collection_id, material) in seen:
            continue
        seen.add((item.collection_id, material))
        parts.append(
            specimens.consent_scope(
                collection_ids=[item.collection_id],
                sample_types=[material] if material else None,
                statuses=list(specimens.HELD_STATUSES),
            )
        )
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # consent_scope() gives subqueries; their union de-duplicates a specimen named twice
    return union(*[select(*part.c) for part in parts]).subquery("requested")


def counts_by_biobank(
    session: Session, purpose: Purpose, items: Sequence[AccessRequestItem]
) -> dict[int, dict[str, int]]:
    """{biobank id: {"approve": n, "deny": n, "review": n}} for the specimens a request names."""
    scope = _scope(items)
    out: dict[int, dict[str, int]] = {}
    if scope is None:
        return out
    for verdict, key in VERDICT_KEYS.items():
        where = eligible_specimen_filter(
            session, purpose, decision=verdict, donor_id=scope.c.donor_id, collection_id=scope.c.collection_id
        )
        stmt = select(scope.c.biobank_id, func.count()).where(where).group_by(scope.c.biobank_id)
        for biobank_id, n in session.execute(stmt).all():
            out.setdefault(biobank_id, dict.fromkeys(VERDICT_KEYS.values(), 0))[key] = int(n)
    return out


def refresh(
    session: Session,
    request: AccessRequest,
    items: Sequence[AccessRequestItem],
    providers: Sequence[AccessRequestProvider],
    *,
    has_document: bool,
) -> dict[int, dict[str, int]]:
    """Recompute and store each provider's counts (now: a withdrawal since the last run is taken into account)."""
    counts = counts_by_biobank(session, purpose_of(request, has_document=has_document), items)
    now = utcnow()
    for provider in providers:
        provider.eligibility = counts.get(provider.biobank_id, dict.fromkeys(VERDICT_KEYS.values(), 0))
        provider.eligibility_at = now
    session.flush()
    return counts
