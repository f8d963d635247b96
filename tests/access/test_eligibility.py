"""Eligibility per provider against a cohort with known consents (consent's one filter does the deciding)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank.access import service
from biobank.access.repository import providers_of
from biobank.consent.schemas import WithdrawalCreate
from tests.access.conftest import AccessWorld
from tests.access.factories import make_access_request, principal_of, purpose
from tests.factories import system


def counts(db: Session, request: Any) -> dict[str, dict[str, int]]:
    from biobank.institutions import service as institutions

    tracks = providers_of(db, [request.id])[request.id]
    codes = institutions.biobank_codes(db, [t.biobank_id for t in tracks])
    return {codes[t.biobank_id]: t.eligibility for t in tracks}


def test_general_research_purpose(aw: AccessWorld, cohort: Any, db: Session) -> None:
    # GRU, non-profit and not commercial: broad (2) and no-commercial (1) approve; lung-only DS (3) and no consent
    # (1) deny. Biobank B: broad (2).
    request = make_access_request(
        db, aw.users["researcher"], collections=[aw.collection_a, aw.collection_b], submit=True
    )
    assert counts(db, request) == {
        aw.biobank_a: {"approve": 3, "deny": 4, "review": 0},
        aw.biobank_b: {"approve": 2, "deny": 0, "review": 0},
    }


def test_unstated_commitments_go_to_review(aw: AccessWorld, cohort: Any, db: Session) -> None:
    # The no-commercial donor's NPUNCU cannot be decided when the purpose does not say: review.
    request = make_access_request(
        db,
        aw.users["researcher"],
        collections=[aw.collection_a],
        submit=True,
        purpose=purpose(commercial=None, non_profit=None),
    )
    assert counts(db, request)[aw.biobank_a] == {"approve": 2, "deny": 4, "review": 1}


def test_disease_specific_purpose(aw: AccessWorld, cohort: Any, db: Session) -> None:
    # DS C34.1: broad, lung-only (C34 covers C34.1) and no-commercial approve; only the donor without consent denies.
    request = make_access_request(
        db,
        aw.users["researcher"],
        collections=[aw.collection_a],
        submit=True,
        purpose=purpose(category="DS", diseases=["C34.1"]),
    )
    assert counts(db, request)[aw.biobank_a] == {"approve": 6, "deny": 1, "review": 0}


def test_named_specimens_count_once(aw: AccessWorld, cohort: Any, db: Session) -> None:
    named = cohort.specimens["lung"][:2] + cohort.specimens["broad"][:1]
    request = make_access_request(db, aw.users["researcher"], specimens=named, submit=True)
    assert counts(db, request) == {aw.biobank_a: {"approve": 1, "deny": 2, "review": 0}}


def test_recompute_sees_a_withdrawal(aw: AccessWorld, cohort: Any, db: Session) -> None:
    from biobank.consent import withdrawal

    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    assert counts(db, request)[aw.biobank_a]["approve"] == 3
    withdrawal.withdraw(
        db, system(), cohort.donors["broad"], WithdrawalCreate(kind="no_further_use", reason="asked"), channel="staff"
    )
    db.flush()
    service.recompute_eligibility(db, principal_of(db, aw.users["researcher"]), request)
    assert counts(db, request)[aw.biobank_a] == {"approve": 1, "deny": 6, "review": 0}
    db.rollback()
