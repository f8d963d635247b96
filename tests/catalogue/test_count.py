"""The researchers' count query: logged-in only, restricted by consent for the stated purpose, floored and
rounded, and audited with its criteria and purpose."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from biobank.catalogue.settings import CatalogueSettings, configure_catalogue
from tests.catalogue.helpers import Cohort, audit_entries, purpose


def _count(persona, criteria: dict, **purpose_overrides) -> dict:  # type: ignore[no-untyped-def]
    response = persona.post(
        "/api/v1/catalogue/count", json={"criteria": criteria, "purpose": purpose(**purpose_overrides)}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_anonymous_callers_cannot_count(client, cohort: Cohort) -> None:
    response = client.post("/api/v1/catalogue/count", json={"criteria": {}, "purpose": purpose()})
    assert response.status_code == 401


@pytest.mark.parametrize("persona", ["owner", "other", "outsider", "admin"])
def test_every_registered_user_gets_the_same_thresholded_counts(world, cohort: Cohort, persona: str) -> None:
    body = _count(getattr(world, persona), {"diagnoses": ["C34"]})
    # 10 broad + 3 lung-only consents approve a lung cancer purpose; 2 without consent do not count
    assert body["specimens"] == {"value": 10, "display": "10", "suppressed": False}
    assert body["donors"]["value"] == 10
    assert [c["collection"] for c in body["by_collection"]] == [cohort.collections["A"]]
    assert "SPC-" not in str(body) and "DON-" not in str(body)


def test_consent_restricts_by_purpose(world, cohort: Cohort) -> None:
    exact = CatalogueSettings(count_floor=1, count_step=1)
    configure_catalogue(exact)
    assert _count(world.outsider, {"diagnoses": ["C34"]})["specimens"]["value"] == 13
    # a health/medical purpose is not covered by a lung-cancer-only consent
    assert _count(world.outsider, {"diagnoses": ["C34"]}, category="HMB", diseases=[])["specimens"]["value"] == 10
    # without stating ethics approval the IRB condition cannot be decided: those go to a reviewer
    review = _count(world.outsider, {"diagnoses": ["C34"]}, ethics_approval=None)
    assert review["specimens"]["value"] == 0
    assert review["needs_review"]["value"] == 13


def test_a_count_below_ten_is_reported_as_less_than_ten(world, cohort: Cohort) -> None:
    body = _count(world.outsider, {"diagnoses": ["C18"]}, category="GRU", diseases=[])
    assert body["specimens"] == {"value": None, "display": "< 10", "suppressed": True}
    assert body["donors"]["display"] == "< 10"
    assert body["by_collection"][0]["specimens"]["display"] == "< 10"


def test_criteria_combine(world, cohort: Cohort) -> None:
    configure_catalogue(CatalogueSettings(count_floor=1, count_step=1))
    general = {"category": "GRU", "diseases": []}
    assert _count(world.outsider, {"sexes": ["Male"]}, **general)["specimens"]["value"] == 18
    assert _count(world.outsider, {"sexes": ["Male"], "age_min": 60}, **general)["specimens"]["value"] == 9
    assert (
        _count(world.outsider, {"materials": ["Tissue (Frozen)"], "diagnoses": ["C50-C50"]}, **general)["donors"][
            "value"
        ]
        == 10
    )
    only_d = _count(world.outsider, {"collections": [cohort.collections["D"]]}, **general)
    assert only_d["specimens"]["value"] == 9
    temps = _count(world.outsider, {"storage_temperatures": ["LN2 vapour phase"]}, **general)
    assert temps["specimens"]["value"] == 19


def test_each_count_is_audited_with_criteria_and_purpose(db: Session, world, cohort: Cohort) -> None:
    _count(world.outsider, {"diagnoses": ["C34"], "materials": ["Serum"]}, project_id="PRJ-42")
    (entry,) = audit_entries(db, "catalogue.count")
    assert entry.purpose == "PRJ-42"
    assert entry.details["diagnoses"] == "C34"
    assert entry.details["materials"] == "Serum"
    assert entry.details["purpose_category"] == "DS"
    assert entry.details["shown_specimens"] == "10"
    assert entry.resource_ids == [cohort.collections["A"]]


def test_bad_criteria_name_their_field(world, cohort: Cohort) -> None:
    response = world.outsider.post(
        "/api/v1/catalogue/count",
        json={"criteria": {"diagnoses": ["C34"], "collections": ["CN-SH-H01:COL-999999"]}, "purpose": purpose()},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["criteria", "collections", 0]
    bad_code = world.outsider.post(
        "/api/v1/catalogue/count", json={"criteria": {"diagnoses": ["ZZ9"]}, "purpose": purpose()}
    )
    assert bad_code.status_code == 422
    assert bad_code.json()["detail"][0]["loc"][:2] == ["criteria", "diagnoses"]


def test_a_withdrawal_counts_at_the_very_next_query(world, cohort: Cohort) -> None:
    configure_catalogue(CatalogueSettings(count_floor=1, count_step=1))
    before = _count(world.outsider, {"diagnoses": ["C34"]})
    donor = cohort.donors["women"][0]
    withdrawn = world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "no_further_use"})
    assert withdrawn.status_code == 201, withdrawn.text
    after = _count(world.outsider, {"diagnoses": ["C34"]})
    assert after["specimens"]["value"] == before["specimens"]["value"] - 1 == 12
    assert after["donors"]["value"] == before["donors"]["value"] - 1


def test_the_joined_verdicts_agree_with_the_eligibility_filter(db: Session, cohort: Cohort) -> None:
    """The count's one-join form decides every specimen as THE filter does, for each purpose and verdict."""
    from sqlalchemy import func, select

    from biobank.consent.eligibility import current_verdicts, eligible_specimen_filter
    from biobank.consent.matcher import Verdict
    from biobank.consent.schemas import PurposeIn
    from biobank.specimens.models import Specimen

    for stated in (purpose(), purpose(category="HMB", diseases=[]), purpose(ethics_approval=None)):
        wanted = PurposeIn.model_validate(stated).purpose()
        verdicts = current_verdicts(db, wanted)
        joined = dict(
            db.execute(
                select(verdicts.verdict(Specimen.collection_id), func.count())
                .select_from(Specimen)
                .join(verdicts.table, verdicts.table.c.donor_id == Specimen.donor_id)
                .group_by(verdicts.verdict(Specimen.collection_id))
            ).all()
        )
        for code, decision in ((1, Verdict.APPROVE), (2, Verdict.NEEDS_REVIEW)):
            filtered = db.scalar(
                select(func.count())
                .select_from(Specimen)
                .where(eligible_specimen_filter(db, wanted, decision=decision))
            )
            assert joined.get(code, 0) == filtered, (stated, decision)
