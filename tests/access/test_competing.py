"""Competing requests for the same specimens or collections, side by side for the managers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank.access import competing
from biobank.access.schemas import CompetingRequest
from tests.access.conftest import AccessWorld
from tests.access.factories import make_access_request

URL = "/api/v1/access/competing"


def test_two_requests_for_one_collection_compete(aw: AccessWorld, cohort: Any, db: Session) -> None:
    first = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True, quantity=5)
    second = make_access_request(db, aw.users["owner"], collections=[aw.collection_a], submit=True, quantity=3)
    make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], quantity=9)  # a draft: not open
    make_access_request(db, aw.users["researcher"], collections=[aw.collection_b], submit=True)
    db.commit()
    groups = aw.owner.get(URL).json()
    assert len(groups) == 1
    group = groups[0]
    assert group["kind"] == "collection" and group["resource"] == aw.collection_a and group["biobank"] == aw.biobank_a
    assert [r["public_id"] for r in group["requests"]] == [first.public_id, second.public_id]
    assert [r["quantity"] for r in group["requests"]] == [5, 3]
    assert group["requests"][0]["provider_state"] == "contacted"
    assert aw.other.get(URL).json() == []
    assert aw.outsider.get(URL).json() == []
    assert aw.requester.get(URL).json() == []
    assert aw.technician.get(URL).json() == [], "managers only"
    assert len(aw.admin.get(URL).json()) == 1
    assert aw.owner.get(URL, params={"biobank": "NOPE"}).status_code == 422


def test_the_same_specimen_competes(aw: AccessWorld, cohort: Any, db: Session) -> None:
    specimen = cohort.specimens["broad"][0]
    make_access_request(db, aw.users["researcher"], specimens=[specimen], submit=True)
    make_access_request(db, aw.users["owner"], specimens=[specimen, cohort.specimens["lung"][0]], submit=True)
    make_access_request(db, aw.users["owner"], specimens=[cohort.specimens["lung"][1]], submit=True)
    db.commit()
    groups = aw.owner.get(URL).json()
    assert [(g["kind"], g["resource"], len(g["requests"])) for g in groups] == [("specimen", specimen, 2)]


def test_order_competing_is_the_valuation_seam(db: Session) -> None:
    from datetime import UTC, datetime

    rows = [
        CompetingRequest(
            public_id=p,
            project_title="t",
            status="submitted",
            submitted_at=at,
            requester_institution="X",
            quantity=1,
            provider_state=None,
        )
        for p, at in [("B", datetime(2026, 3, 1, tzinfo=UTC)), ("A", datetime(2026, 1, 1, tzinfo=UTC))]
    ]
    assert [r.public_id for r in competing.order_competing(db, "collection", "C", rows)] == ["A", "B"]
