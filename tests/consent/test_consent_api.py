"""Consent over the API: the matcher, forms and versions, records, FHIR, eligibility, bad input, audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import World
from tests.consent.conftest import Cohort
from tests.consent.factories import BROAD, OPTIONS, days_ago, purpose_body

ISSUE_BODY = {
    "consent": {
        "permission": "DS",
        "diseases": ["C34"],
        "modifiers": ["NPU", "IRB"],
        "countries": [],
        "months": None,
        "moratorium_until": None,
    },
    "purpose": {
        "category": "DS",
        "diseases": ["C34.1"],
        "commercial": False,
        "non_profit": True,
        "country": "CN",
        "ethics_approval": True,
        "collaboration": False,
        "methods_development": False,
    },
}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def locs(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["detail"]]


def audit_actions(db: Session, prefix: str = "consent.") -> list[str]:
    from biobank.audit.models import AuditEntry

    db.expire_all()
    try:
        return list(db.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith(prefix))))
    finally:
        db.rollback()


# -- the matcher endpoint ---------------------------------------------------------------------------------------


def test_match_endpoint_takes_the_issue_body_and_is_open_to_any_logged_in_user(world: World) -> None:
    for persona in (world.owner, world.other, world.outsider):
        response = persona.post("/api/v1/consent/match", json=ISSUE_BODY)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["decision"] == "APPROVE"
        assert [r["rule"] for r in body["reasons"]] == ["permission", "NPU", "IRB"]
        assert body["reasons"][0]["duo"] == ["DUO:0000007"]
        assert all(r["outcome"] == "approve" for r in body["reasons"])
    assert world.owner.client.post("/api/v1/consent/match", json=ISSUE_BODY).status_code == 401


def test_match_gru_purpose_on_ds_consent_is_denied(world: World) -> None:
    body = ISSUE_BODY | {"purpose": ISSUE_BODY["purpose"] | {"category": "GRU", "diseases": []}}
    response = world.outsider.post("/api/v1/consent/match", json=body)
    assert response.json()["decision"] == "DENY"


def test_match_bad_input_names_the_field(world: World) -> None:
    consent, purpose = ISSUE_BODY["consent"], ISSUE_BODY["purpose"]
    cases = [
        ({"consent": consent | {"permission": "XYZ"}}, ["consent", "permission"]),  # unknown DUO code
        ({"consent": consent | {"modifiers": ["NPU", "FOO"]}}, ["consent", "modifiers", 1]),  # unknown DUO code
        ({"consent": consent | {"diseases": []}}, ["consent", "diseases"]),  # DS without diseases
        ({"consent": consent | {"diseases": ["C34", "ZZ9"]}}, ["consent", "diseases", 1]),  # invalid ICD-10
        ({"purpose": purpose | {"diseases": []}}, ["purpose", "diseases"]),  # DS purpose without diseases
        ({"purpose": purpose | {"diseases": ["Q99.99.9"]}}, ["purpose", "diseases", 0]),
        ({"purpose": purpose | {"category": "XX"}}, ["purpose", "category"]),
        ({"consent": consent | {"modifiers": ["GS"]}}, ["consent", "countries"]),
        ({"consent": consent | {"modifiers": ["TS"]}}, ["consent", "months"]),
        ({"consent": consent | {"modifiers": ["MOR"]}}, ["consent", "moratorium_until"]),
    ]
    for change, loc in cases:
        response = world.owner.post("/api/v1/consent/match", json=ISSUE_BODY | change)
        assert response.status_code == 422, (change, response.text)
        assert loc in locs(response), (change, locs(response))


# -- forms and versions -------------------------------------------------------------------------------------


def test_forms_and_versions_three_personas(db: Session, world: World) -> None:
    body = {"biobank": world.biobank_a, "code": "GEN", "title_en": "General consent", "title_zh": "通用知情同意"}
    assert world.other.post("/api/v1/consent/forms", json=body).status_code == 422  # unknown biobank to them
    assert world.outsider.post("/api/v1/consent/forms", json=body).status_code == 422
    assert world.technician.post("/api/v1/consent/forms", json=body).status_code == 403  # managers only
    created = world.owner.post("/api/v1/consent/forms", json=body)
    assert created.status_code == 201, created.text
    form = created.json()["public_id"]
    assert world.owner.post("/api/v1/consent/forms", json=body).status_code == 409
    version = {"text_en": "Plain text", "text_zh": "中文文本", "options": OPTIONS}
    v1 = world.owner.post(f"/api/v1/consent/forms/{form}/versions", json=version)
    assert v1.status_code == 201, v1.text
    assert v1.json()["number"] == 1 and len(v1.json()["options"]) == len(OPTIONS)
    assert v1.json()["options"][2]["diseases"] == ["C34"]
    v2 = world.owner.post(f"/api/v1/consent/forms/{form}/versions", json=version).json()
    assert world.owner.get(f"/api/v1/consent/forms/{form}").json()["latest_version"] == v2["public_id"]
    assert world.owner.get(f"/api/v1/consent/versions/{v2['public_id']}").json()["text_zh"] == "中文文本"
    for persona in (world.other, world.outsider):
        assert persona.get(f"/api/v1/consent/forms/{form}").status_code == 404
        assert persona.get(f"/api/v1/consent/versions/{v2['public_id']}").status_code == 404
        assert persona.post(f"/api/v1/consent/forms/{form}/versions", json=version).status_code == 404
        assert persona.get("/api/v1/consent/forms").json() == []
    assert [f["public_id"] for f in world.owner.get("/api/v1/consent/forms").json()] == [form]


def test_version_options_bad_input_names_the_field(world: World) -> None:
    form = world.owner.post(
        "/api/v1/consent/forms", json={"biobank": world.biobank_a, "code": "X", "title_en": "X"}
    ).json()["public_id"]
    lung = OPTIONS[2]
    cases = [
        ([lung | {"duo_permission": "ZZZ"}], ["options", 0, "duo_permission"]),
        ([lung | {"diseases": []}], ["options", 0, "diseases"]),
        ([lung | {"diseases": ["C34", "NOT-A-CODE"]}], ["options", 0, "diseases", 1]),
        ([lung | {"duo_modifiers": ["IRB", "WAT"]}], ["options", 0, "duo_modifiers", 1]),
        ([OPTIONS[3]], ["options"]),  # no permission option
    ]
    for options, loc in cases:
        response = world.owner.post(f"/api/v1/consent/forms/{form}/versions", json={"text_en": "t", "options": options})
        assert response.status_code == 422, response.text
        assert loc in locs(response), (loc, locs(response))


# -- records ------------------------------------------------------------------------------------------------


def upload_scan(world: World, content: bytes = PDF, media_type: str = "application/pdf") -> Any:
    return world.owner.post(
        "/api/v1/consent/scans", data={"biobank": world.biobank_a}, files={"scan": ("consent.pdf", content, media_type)}
    )


def test_paper_consent_with_scan_makes_versions_kept_in_the_timeline(db: Session, cohort: Cohort) -> None:
    world = cohort.world
    donor = cohort.donors["broad"].public_id
    scan = upload_scan(world)
    assert scan.status_code == 201, scan.text
    assert len(scan.json()["sha256"]) == 64
    assert upload_scan(world, b"not a pdf").status_code == 422
    record = {
        "version": cohort.version.public_id,
        "choices": BROAD | {"genetic": False},
        "given_at": days_ago(1).isoformat(),
        "scan": scan.json()["public_id"],
        "witness": "Nurse Wang",
    }
    response = world.owner.post(f"/api/v1/consent/donors/{donor}/records", json=record)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["version"] == 2 and created["method"] == "paper" and created["has_witness"]
    assert created["profile"]["declined"] == ["genetic"]
    assert created["profile"]["modifiers"] == ["IRB"]
    assert "Nurse Wang" not in response.text  # the witness is sealed, never echoed
    timeline = world.owner.get(f"/api/v1/consent/donors/{donor}/records").json()
    assert [(r["version"], r["status"], r["is_current"]) for r in timeline] == [
        (2, "active", True),
        (1, "superseded", False),
    ]
    assert timeline[0]["supersedes"] == timeline[1]["public_id"]
    scan_bytes = world.owner.get(f"/api/v1/consent/records/{created['public_id']}/scan")
    assert scan_bytes.status_code == 200 and scan_bytes.content == PDF
    for persona in (world.other, world.outsider):
        assert persona.get(f"/api/v1/consent/donors/{donor}/records").status_code == 404
        assert persona.get(f"/api/v1/consent/records/{created['public_id']}").status_code == 404
        assert persona.post(f"/api/v1/consent/donors/{donor}/records", json=record).status_code == 404
    actions = audit_actions(db)
    assert {"consent.record.create", "consent.timeline.read", "consent.scan.read", "consent.scan.upload"} <= set(
        actions
    )


def test_record_bad_input_names_the_field(db: Session, cohort: Cohort) -> None:
    world = cohort.world
    donor = cohort.donors["none"].public_id
    scan = upload_scan(world).json()["public_id"]
    good = {"version": cohort.version.public_id, "choices": BROAD, "given_at": days_ago(1).isoformat(), "scan": scan}
    cases = [
        ({"choices": BROAD | {"bogus": True}}, ["choices", "bogus"]),  # not in the form version
        ({"choices": BROAD | {"lung": True}}, ["choices"]),  # two permissions
        ({"choices": {k: v for k, v in BROAD.items() if k != "genetic"}}, ["choices", "genetic"]),  # unanswered
        ({"given_at": days_ago(500).isoformat()}, ["given_at"]),  # before the version existed
        ({"version": cohort.version_b.public_id}, ["version"]),  # another biobank's form
        ({"scan": None}, ["scan"]),
        ({"method": "electronic"}, ["method"]),  # staff record paper consents
        ({"valid_until": days_ago(2).isoformat()}, ["valid_until"]),
    ]
    for change, loc in cases:
        response = world.owner.post(f"/api/v1/consent/donors/{donor}/records", json=good | change)
        assert response.status_code == 422, (change, response.text)
        assert loc in locs(response), (change, locs(response))
    assert world.owner.get(f"/api/v1/consent/donors/{donor}/records").json() == []


def test_fhir_consent_export_validates_as_r4(cohort: Cohort) -> None:
    from fhir.resources.R4B.consent import Consent

    world = cohort.world
    timeline = world.owner.get(f"/api/v1/consent/donors/{cohort.donors['lung'].public_id}/records").json()
    response = world.owner.get(f"/api/v1/consent/records/{timeline[0]['public_id']}/fhir")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    resource = Consent.model_validate(response.json())
    assert resource.status == "active"
    assert resource.scope.coding[0].code == "research"
    provision = resource.provision
    assert provision.type == "permit" and provision.period.start is not None
    assert provision.purpose[0].code == "DUO:0000007"
    assert provision.code[0].coding[0].code == "C34"
    assert {p.purpose[0].code for p in provision.provision} == {"DUO:0000021"}  # IRB
    assert world.other.get(f"/api/v1/consent/records/{timeline[0]['public_id']}/fhir").status_code == 404


def test_fhir_export_of_a_withdrawn_record_denies(cohort: Cohort) -> None:
    from fhir.resources.R4B.consent import Consent

    world = cohort.world
    donor = cohort.donors["nocommercial"].public_id
    assert (
        world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "no_further_use"}).status_code
        == 201
    )
    record = world.owner.get(f"/api/v1/consent/donors/{donor}/records").json()[0]
    resource = Consent.model_validate(world.owner.get(f"/api/v1/consent/records/{record['public_id']}/fhir").json())
    assert resource.status == "inactive"
    assert resource.provision.type == "deny" and resource.provision.period.end is not None


# -- eligibility ----------------------------------------------------------------------------------------------


def eligibility(persona: Any, **body: Any) -> Any:
    return persona.post("/api/v1/consent/eligibility", json={"purpose": purpose_body()} | body)


def test_eligibility_counts_for_everyone_specimens_with_reasons_only_for_owning_staff(cohort: Cohort) -> None:
    world = cohort.world
    owner = eligibility(world.owner, collections=[world.collection_a])
    assert owner.status_code == 200, owner.text
    body = owner.json()
    # Lung cancer purpose: broad (2), lung-only (3), no-commercial (1) approve; no consent (1) is denied.
    assert body["counts"] == {"APPROVE": 6, "DENY": 1, "NEEDS_REVIEW": 0}
    assert body["total"] == 7 and body["profiles"] == 3
    listed = {s["specimen"]: s for s in body["specimens"]}
    assert set(listed) == {s for v in cohort.specimens.values() for s in v} - set(cohort.specimens["b_broad"])
    denied = listed[cohort.specimens["none"][0]]
    assert denied["decision"] == "DENY" and denied["reasons"][0]["rule"] == "consent"
    approved = listed[cohort.specimens["lung"][0]]
    assert approved["reasons"][0]["duo"] == ["DUO:0000007"]
    other = eligibility(world.other, collections=[world.collection_a]).json()
    assert other["counts"] == body["counts"] and other["specimens"] == []  # staff, but not of biobank A
    outsider = eligibility(world.outsider, collections=[world.collection_a]).json()
    assert outsider["counts"] == body["counts"] and outsider["specimens"] is None
    # Naming specimens one cannot see is refused (no probing by barcode).
    refused = eligibility(world.other, specimens=[cohort.specimens["lung"][0]])
    assert refused.status_code == 422 and locs(refused) == [["specimens", 0]]


def test_eligibility_follows_the_purpose(cohort: Cohort) -> None:
    world = cohort.world
    general = eligibility(
        world.owner, collections=[world.collection_a], purpose=purpose_body(category="GRU", diseases=[])
    ).json()
    # GRU purpose: only the broad consents approve; DS-only (lung) is denied; no consent denied.
    assert general["counts"] == {"APPROVE": 3, "DENY": 4, "NEEDS_REVIEW": 0}
    commercial = eligibility(
        world.owner, collections=[world.collection_a], purpose=purpose_body(commercial=True, non_profit=False)
    ).json()
    assert commercial["counts"] == {"APPROVE": 5, "DENY": 2, "NEEDS_REVIEW": 0}
    unknown_ethics = eligibility(
        world.owner, collections=[world.collection_a], purpose=purpose_body(ethics_approval=None)
    ).json()
    assert unknown_ethics["counts"] == {"APPROVE": 0, "DENY": 1, "NEEDS_REVIEW": 6}
    everything = eligibility(world.outsider, by_collection=True).json()
    assert everything["total"] == 9
    assert {c["collection"] for c in everything["by_collection"]} == {world.collection_a, world.collection_b}
    by_criteria = eligibility(world.outsider, criteria={"biobank": world.biobank_b, "diagnoses": ["C30-C39"]}).json()
    assert by_criteria["counts"] == {"APPROVE": 2, "DENY": 0, "NEEDS_REVIEW": 0}
    assert eligibility(world.outsider, criteria={"diagnoses": ["C50"]}).json()["total"] == 0


def test_eligibility_bad_input_names_the_field(cohort: Cohort) -> None:
    world = cohort.world
    cases = [
        ({"collections": ["CN-SH-H01:COL-999999"]}, ["collections", 0]),
        ({"criteria": {"biobank": "NOPE"}}, ["criteria", "biobank"]),
        ({"criteria": {"diagnoses": ["ZZ9"]}}, ["criteria", "diagnoses", 0]),
        ({"purpose": purpose_body(diseases=[])}, ["purpose", "diseases"]),
    ]
    for body, loc in cases:
        response = eligibility(world.owner, **body)
        assert response.status_code == 422, response.text
        assert loc in locs(response)
    assert world.owner.client.post("/api/v1/consent/eligibility", json={"purpose": purpose_body()}).status_code == 401


def test_collections_accepting_only_some_versions_deny_the_others(cohort: Cohort) -> None:
    world = cohort.world
    form = cohort.form
    v2 = world.owner.post(f"/api/v1/consent/forms/{form}/versions", json={"text_en": "v2", "options": OPTIONS}).json()[
        "public_id"
    ]
    url = f"/api/v1/consent/collections/{world.collection_a}/accepted-versions"
    assert world.other.put(url, json={"versions": [v2]}).status_code == 404
    assert world.owner.put(url, json={"versions": [cohort.version_b.public_id]}).status_code == 422
    assert world.owner.put(url, json={"versions": [v2]}).status_code == 200
    assert world.outsider.get(url).json()["versions"] == [v2]
    body = eligibility(world.owner, collections=[world.collection_a]).json()
    assert body["counts"] == {"APPROVE": 0, "DENY": 7, "NEEDS_REVIEW": 0}
    whole = eligibility(world.owner).json()  # totals corrected for the restricting collection only
    assert whole["counts"] == {"APPROVE": 2, "DENY": 7, "NEEDS_REVIEW": 0}
    per = eligibility(world.owner, by_collection=True).json()
    assert per["counts"] == whole["counts"]
    assert {c["collection"]: c["APPROVE"] for c in per["by_collection"]} == {
        world.collection_a: 0,
        world.collection_b: 2,
    }
    assert body["specimens"][0]["reasons"][0]["rule"] in {"collection", "consent"}
    assert world.owner.put(url, json={"versions": [v2, cohort.version.public_id]}).status_code == 200
    assert eligibility(world.owner, collections=[world.collection_a]).json()["counts"]["APPROVE"] == 6


def test_eligible_specimen_filter_is_a_where_clause_for_other_packages(db: Session, cohort: Cohort) -> None:
    from biobank.consent.matcher import Purpose, Verdict
    from biobank.consent.service import eligible_specimen_filter
    from biobank.specimens.models import Specimen

    purpose = Purpose(category="GRU", commercial=False, non_profit=True, ethics_approval=True)
    approved = set(db.scalars(select(Specimen.public_id).where(eligible_specimen_filter(db, purpose))))
    assert approved == set(cohort.specimens["broad"] + cohort.specimens["nocommercial"] + cohort.specimens["b_broad"])
    review = Purpose(category="GRU", commercial=False, non_profit=True, ethics_approval=None)
    in_review = set(
        db.scalars(
            select(Specimen.public_id).where(eligible_specimen_filter(db, review, decision=Verdict.NEEDS_REVIEW))
        )
    )
    assert in_review == approved
    denied = set(
        db.scalars(select(Specimen.public_id).where(eligible_specimen_filter(db, purpose, decision=Verdict.DENY)))
    )
    assert denied == set(cohort.specimens["lung"] + cohort.specimens["none"])
    db.rollback()


def test_consent_reads_and_writes_are_audited(db: Session, cohort: Cohort) -> None:
    world = cohort.world
    world.owner.post("/api/v1/consent/match", json=ISSUE_BODY)
    eligibility(world.owner, collections=[world.collection_a])
    donor = cohort.donors["broad"].public_id
    timeline = world.owner.get(f"/api/v1/consent/donors/{donor}/records").json()
    world.owner.get(f"/api/v1/consent/records/{timeline[0]['public_id']}")
    world.owner.post(f"/api/v1/consent/donors/{donor}/withdrawal", json={"kind": "keep_results"})
    actions = audit_actions(db)
    for action in (
        "consent.match",
        "consent.eligibility",
        "consent.timeline.read",
        "consent.record.read",
        "consent.withdraw",
        "consent.record.create",
        "consent.form.create",
        "consent.version.publish",
    ):
        assert action in actions, action


def test_timeline_and_eligibility_listing_use_a_fixed_number_of_queries(db: Session, cohort: Cohort) -> None:
    from sqlalchemy import event

    from biobank.kit.db import get_engine
    from tests.consent.factories import LUNG_ONLY, give_consent

    world = cohort.world
    engine = get_engine()
    donor = cohort.donors["broad"]
    donor_public = donor.public_id

    def queries(call: Any) -> int:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert call().status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    def timeline() -> Any:
        return world.owner.get(f"/api/v1/consent/donors/{donor_public}/records")

    def listing() -> Any:
        return eligibility(world.owner, collections=[world.collection_a])

    few_records, few_specimens = queries(timeline), queries(listing)
    for choices in (LUNG_ONLY, BROAD, LUNG_ONLY, BROAD):
        give_consent(db, donor, cohort.version, choices, given_at=None)
    from tests.factories import make_specimen

    collection = institutions_collection(db, world.collection_a)
    for _ in range(10):
        make_specimen(db, collection, donor=donor_public)
    db.commit()
    assert len(timeline().json()) == 5
    assert queries(timeline) == few_records
    assert queries(listing) == few_specimens


def institutions_collection(db: Session, public_id: str) -> Any:
    from biobank.institutions import service as institutions

    return institutions.get_collection(db, public_id)


def test_consent_outside_its_validity_period_is_denied(db: Session, cohort: Cohort) -> None:
    from biobank.consent.matcher import Purpose
    from biobank.consent.service import eligible_specimen_filter
    from biobank.specimens.models import Specimen
    from tests.consent.factories import give_consent

    world = cohort.world
    donor = cohort.donors["broad"]
    specimens = cohort.specimens["broad"]
    give_consent(db, donor, cohort.version, BROAD, given_at=days_ago(20), valid_until=days_ago(1))
    db.commit()
    listed = eligibility(world.owner, specimens=specimens).json()
    assert listed["counts"] == {"APPROVE": 0, "DENY": 2, "NEEDS_REVIEW": 0}
    assert listed["specimens"][0]["reasons"][0]["message"] == "the consent is outside its validity period"
    purpose = Purpose(category="HMB", commercial=False, non_profit=True, ethics_approval=True)
    approved = set(db.scalars(select(Specimen.public_id).where(eligible_specimen_filter(db, purpose))))
    db.rollback()
    assert not approved & set(specimens)
