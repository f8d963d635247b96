"""The one place the catalogue asks consent which specimens a purpose may use.

It calls THE eligibility service (`biobank.consent.eligibility.eligible_specimen_filter`): a WHERE clause
over specimens keeping those whose donor's current consent gives the wanted decision for the purpose;
count queries use its joinable form (`current_verdicts`: both decisions in one subquery).
Nothing here re-implements a consent rule; if the consent API changes, only this file follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from biobank.consent.eligibility import (
    ConsentState,
    CurrentVerdicts,
    StateVerdicts,
    current_states,
    current_verdicts,
    eligible_specimen_filter,
    state_verdicts,
)
from biobank.consent.listeners import register_consent_listener

__all__ = ["ConsentState", "StateVerdicts", "decide_states", "describe", "eligible", "listen", "states", "verdicts"]
from biobank.consent.matcher import Purpose, Verdict

APPROVE = Verdict.APPROVE
NEEDS_REVIEW = Verdict.NEEDS_REVIEW


def eligible(
    session: Session,
    purpose: Purpose,
    decision: Verdict = APPROVE,
    *,
    donor_id: Any = None,
    collection_id: Any = None,
) -> ColumnElement[bool]:
    """Rows whose donor's consent gives `decision` for `purpose` (columns default to Specimen's)."""
    return eligible_specimen_filter(session, purpose, decision=decision, donor_id=donor_id, collection_id=collection_id)


def verdicts(session: Session, purpose: Purpose) -> CurrentVerdicts:
    """Every donor's current verdict for `purpose` as a joinable subquery (1 approve, 2 needs review).

    What count queries use: one join per (donor, collection) group gives both verdicts in one pass,
    decided by the same rules as `eligible()`, at query time (a withdrawal counts at once).
    """
    return current_verdicts(session, purpose)


def states(session: Session, donor_ids: list[int] | None) -> list[tuple[int, ConsentState]]:
    """(donor id, state of their current consent) for these donors (every donor with a consent when None)."""
    return current_states(session, donor_ids)


def decide_states(session: Session, purpose: Purpose, wanted: Iterable[ConsentState]) -> StateVerdicts:
    """The purpose decided by consent's rules for each state (1 approve, 2 needs review, 0 otherwise)."""
    return state_verdicts(session, purpose, wanted)


def listen(listener: Callable[[Session, list[int]], None]) -> None:
    """Be told by consent, in its transaction, of the donors whose current consent changed."""
    register_consent_listener("catalogue", listener)


def describe(purpose: Purpose) -> dict[str, Any]:
    """What the purpose states, for responses and the audit log (no personal data)."""
    return {
        "category": purpose.category,
        "diseases": sorted(purpose.diseases),
        "commercial": purpose.commercial,
        "country": purpose.country,
        "project_id": purpose.project_id,
    }
