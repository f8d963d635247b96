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


def _state_counts(db: Session, stated: dict) -> dict[int, int]:  # type: ignore[type-arg]
    """Specimens per verdict code as the count decides them: per donor state, decided once per state."""
    from sqlalchemy import select

    from biobank.consent.eligibility import current_states, state_verdicts
    from biobank.consent.schemas import PurposeIn
    from biobank.specimens.models import Specimen

    wanted = PurposeIn.model_validate(stated).purpose()
    states = dict(current_states(db))
    decided = state_verdicts(db, wanted, set(states.values()))
    out: dict[int, int] = {}
    for donor_id, collection_id in db.execute(select(Specimen.donor_id, Specimen.collection_id)):
        code = decided.verdict(states.get(donor_id), collection_id)
        out[code] = out.get(code, 0) + 1
    return out


def test_the_state_verdicts_agree_with_the_eligibility_filter(db: Session, world, cohort: Cohort) -> None:
    """Deciding per consent state (what the count does) gives THE filter's decision for every specimen,
    also after a withdrawal and a new consent, and when a collection accepts only some form versions."""
    from sqlalchemy import func, select

    from biobank.consent import repository as consent_repo
    from biobank.consent.eligibility import eligible_specimen_filter
    from biobank.consent.matcher import Verdict
    from biobank.consent.schemas import PurposeIn
    from biobank.institutions import service as institutions
    from biobank.specimens.models import Specimen

    def check() -> None:
        for stated in (purpose(), purpose(category="HMB", diseases=[]), purpose(ethics_approval=None)):
            wanted = PurposeIn.model_validate(stated).purpose()
            by_state = _state_counts(db, stated)
            for code, decision in ((1, Verdict.APPROVE), (2, Verdict.NEEDS_REVIEW)):
                filtered = db.scalar(
                    select(func.count())
                    .select_from(Specimen)
                    .where(eligible_specimen_filter(db, wanted, decision=decision))
                )
                assert by_state.get(code, 0) == filtered, (stated, decision)

    check()
    db.commit()  # end the read transaction before the API writes
    donor = cohort.donors["women"][0]
    assert (
        world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "no_further_use"}).status_code
        == 201
    )
    check()
    collection = institutions.get_collection(db, cohort.collections["C"])
    other = _other_version(db, collection.biobank_id)
    consent_repo.set_accepted_versions(db, collection.id, [other.id])  # refuses the donors' version
    db.flush()
    check()


def test_a_new_consent_counts_at_the_very_next_query(db: Session, world, cohort: Cohort) -> None:
    from biobank.donors import service as donors
    from tests.catalogue.helpers import BROAD, give_consent

    configure_catalogue(CatalogueSettings(count_floor=1, count_step=1))
    before = _count(world.outsider, {"diagnoses": ["C34"]})
    version = _current_version(db, cohort)
    donor = donors.by_public_ids(db, [cohort.donors["unconsented"][0]])[cohort.donors["unconsented"][0]]
    give_consent(db, donor, version, BROAD)
    db.commit()
    after = _count(world.outsider, {"diagnoses": ["C34"]})
    assert after["specimens"]["value"] == before["specimens"]["value"] + 1
    assert after["donors"]["value"] == before["donors"]["value"] + 1


def _current_version(db: Session, cohort: Cohort):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from biobank.consent.models import ConsentFormVersion, DonorConsent
    from biobank.donors.models import Donor

    version_id = db.scalar(
        select(DonorConsent.form_version_id)
        .join(Donor, Donor.id == DonorConsent.donor_id)
        .where(Donor.public_id == cohort.donors["women"][0])
    )
    return db.get(ConsentFormVersion, version_id)


def test_a_donor_in_two_collections_counts_once_in_the_total(db: Session, world, cohort: Cohort) -> None:
    from biobank.catalogue import facts
    from biobank.institutions import service as institutions
    from tests.factories import make_specimen

    configure_catalogue(CatalogueSettings(count_floor=1, count_step=1))
    general = {"category": "GRU", "diseases": []}
    before = _count(world.outsider, {"sexes": ["Female"]}, **general)
    c = institutions.get_collection(db, cohort.collections["C"])
    make_specimen(db, c, donor=cohort.donors["women"][0], sample_type="Serum", container="SST")
    facts.refresh_facts(db, None)
    db.commit()
    after = _count(world.outsider, {"sexes": ["Female"]}, **general)
    assert after["specimens"]["value"] == before["specimens"]["value"] + 1
    assert after["donors"]["value"] == before["donors"]["value"]  # the same donor, counted once
    per = {c["collection"]: c["donors"]["value"] for c in after["by_collection"]}
    was = {c["collection"]: c["donors"]["value"] for c in before["by_collection"]}
    assert per[cohort.collections["C"]] == was[cohort.collections["C"]] + 1
    assert sum(per.values()) == after["donors"]["value"] + 1
    # withdrawn now: gone from both collections and from the total at the next count
    donor = cohort.donors["women"][0]
    assert (
        world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "no_further_use"}).status_code
        == 201
    )
    withdrawn = _count(world.outsider, {"sexes": ["Female"]}, **general)
    assert withdrawn["donors"]["value"] == after["donors"]["value"] - 1
    assert withdrawn["specimens"]["value"] == after["specimens"]["value"] - 2


def _other_version(db: Session, biobank_id: int):  # type: ignore[no-untyped-def]
    """A second published consent form version of the biobank (no donor signed it)."""
    from datetime import UTC, datetime, timedelta

    from biobank.consent import forms
    from biobank.consent.schemas import FormCreate, VersionCreate
    from biobank.institutions import service as institutions
    from tests.catalogue.helpers import OPTIONS
    from tests.factories import system

    code = institutions.biobanks_by_ids(db, [biobank_id])[biobank_id].code
    form = forms.create_form(db, system(), FormCreate(biobank=code, code="OTHER", title_en="Other consent"))
    data = VersionCreate.model_validate(
        {"text_en": "Other.", "options": OPTIONS, "published_at": datetime.now(UTC) - timedelta(days=10)}
    )
    return forms.add_version(db, system(), form, data)
