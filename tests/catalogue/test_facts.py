"""Collection facts: cells computed from specimens, hidden below the donor minimum, safe to refresh twice."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.catalogue import facts, search
from biobank.catalogue.disclosure import disclose, policy, register_rounding, round_up
from biobank.catalogue.models import CollectionFact, CollectionSummary
from biobank.catalogue.settings import CatalogueSettings, configure_catalogue
from biobank.institutions import service as institutions
from tests.catalogue.helpers import Cohort


def test_a_ten_donor_cell_is_shown_and_a_nine_donor_cell_hidden(client, cohort: Cohort) -> None:
    shown = client.get(f"/api/v1/catalogue/collections/{cohort.collections['C']}").json()
    assert [(f["sample_type"], f["diagnosis"], f["number_of_donors"]) for f in shown["facts"]] == [
        ("Tissue (Frozen)", "C50.9", 10)
    ]
    hidden = client.get(f"/api/v1/catalogue/collections/{cohort.collections['D']}").json()
    assert hidden["facts"] == []
    assert hidden["hidden_cells"] == 1
    assert "C61" not in str(hidden["facts"])


def test_the_minimum_is_configurable_without_a_refresh(client, cohort: Cohort) -> None:
    configure_catalogue(CatalogueSettings(min_donors_per_cell=9))
    page = client.get(f"/api/v1/catalogue/collections/{cohort.collections['D']}").json()
    assert [(f["diagnosis"], f["number_of_donors"]) for f in page["facts"]] == [("C61", 9)]
    configure_catalogue(CatalogueSettings(min_donors_per_cell=11))
    page = client.get(f"/api/v1/catalogue/collections/{cohort.collections['C']}").json()
    assert page["facts"] == [] and page["hidden_cells"] == 1


def test_cells_group_by_sex_age_range_material_and_diagnosis(db: Session, cohort: Cohort) -> None:
    collection = institutions.get_collection(db, cohort.collections["A"])
    cells = db.scalars(select(CollectionFact).where(CollectionFact.collection_id == collection.id)).all()
    by_key = {
        (c.sex, c.age_range, c.sample_type, c.diagnosis): (c.number_of_samples, c.number_of_donors) for c in cells
    }
    assert by_key == {
        ("Female", "MiddleAged", "Serum", "C34.1"): (15, 15),
        ("Male", "MiddleAged", "Plasma", "C18.7"): (9, 9),
    }


def test_refreshing_twice_gives_the_same_table(db: Session, cohort: Cohort) -> None:
    before = sorted(
        (c.collection_id, c.sex, c.age_range, c.sample_type, c.diagnosis, c.number_of_samples, c.number_of_donors)
        for c in db.scalars(select(CollectionFact))
    )
    facts.refresh_facts(db, None)
    facts.refresh_facts(db, None)
    db.commit()
    after = sorted(
        (c.collection_id, c.sex, c.age_range, c.sample_type, c.diagnosis, c.number_of_samples, c.number_of_donors)
        for c in db.scalars(select(CollectionFact))
    )
    assert before == after
    assert db.execute(select(func.count()).select_from(CollectionSummary)).scalar_one() == 4


def test_refreshing_one_collection_leaves_the_others(db: Session, cohort: Cohort) -> None:
    c = institutions.get_collection(db, cohort.collections["C"])
    report = facts.refresh_facts(db, c.id)
    db.commit()
    assert report.collections == 1 and report.cells == 1
    assert db.execute(select(func.count()).select_from(CollectionFact)).scalar_one() == 4


def test_stale_refresh_only_touches_changed_collections(db: Session, cohort: Cohort, world) -> None:
    from tests.factories import make_specimen

    assert facts.refresh_stale(db).collections == 0
    make_specimen(db, institutions.get_collection(db, cohort.collections["D"]), sample_type="Urine")
    report = facts.refresh_stale(db)
    db.commit()
    assert report.collections == 1
    page = search.collection_page(db, cohort.collections["D"])
    assert page.hidden_cells == 2


def test_disclosure_floors_and_rounds() -> None:
    current = policy()
    assert disclose(0, current).display == "0"
    assert disclose(9, current).display == "< 10" and disclose(9, current).value is None
    assert disclose(9, current).reported == 10
    assert disclose(10, current).value == 10
    assert disclose(14, current).value == 10
    assert disclose(15, current).value == 20
    assert (disclose(15, current).min_range, disclose(15, current).max_range) == (15, 24)


def test_the_rounding_function_is_pluggable() -> None:
    register_rounding("ceiling", round_up)
    configure_catalogue(CatalogueSettings(count_rounding="ceiling", count_floor=5, count_step=5))
    assert disclose(11).value == 15
    assert disclose(4).display == "< 5"
