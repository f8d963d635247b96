"""The request API: create, ethics document, submit, read, list — each endpoint for the three personas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.access.models import AccessRequest, AccessRequestItem, AccessRequestProvider
from biobank.audit.models import AuditEntry
from tests.access.conftest import AccessWorld, upload_pdf
from tests.access.factories import request_body

API = "/api/v1/access/requests"


def create(aw: AccessWorld, **kw: Any) -> dict[str, Any]:
    body = request_body([aw.collection_a], **kw)
    response = aw.requester.post(API, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def submitted(aw: AccessWorld, **kw: Any) -> str:
    public_id = create(aw, **kw)["public_id"]
    assert upload_pdf(aw.requester, public_id).status_code == 200
    response = aw.requester.post(f"{API}/{public_id}/submit")
    assert response.status_code == 200, response.text
    return public_id


def actions(db: Session, prefix: str) -> list[str]:
    db.expire_all()
    out = list(db.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith(prefix))))
    db.rollback()  # SQLite: release the write lock the read took, so the next API call can write
    return out


def count(db: Session, model: Any) -> int:
    db.expire_all()
    n: int = db.execute(select(func.count()).select_from(model)).scalar_one()
    db.rollback()
    return n


# -- create ---------------------------------------------------------------------------------------------


def test_researcher_drafts_a_request_with_providers_and_lines(aw: AccessWorld, db: Session) -> None:
    body = create(aw)
    assert body["status"] == "draft"
    assert body["providers"] == [aw.biobank_a]
    assert body["items"][0]["collection"] == aw.collection_a
    assert body["items"][0]["quantity"] == 10
    assert body["purpose_duo"] == "DUO:0000042"
    assert body["chain_id"].startswith("0x") and len(body["chain_id"]) == 66
    assert body["commitment"] is None
    assert [t["state"] for t in body["provider_tracks"]] == ["contacted"]
    assert "access.request.create" in actions(db, "access.request.create")


def test_purpose_category_may_be_given_as_a_duo_id(aw: AccessWorld) -> None:
    body = create(aw, purpose={"category": "DUO:0000007", "diseases": ["C34"]})
    assert body["purpose"]["category"] == "DS"
    assert body["purpose_duo"] == "DUO:0000007"


def test_every_persona_kind_but_donors_may_create(aw: AccessWorld) -> None:
    for persona in (aw.owner, aw.other, aw.outsider):
        response = persona.post(API, json=request_body([aw.collection_a]))
        assert response.status_code == 201, (persona.username, response.text)


def test_bad_input_is_422_naming_the_field_and_writes_nothing(aw: AccessWorld, db: Session) -> None:
    cases = [
        ({"shipment_country": "XX"}, ["shipment_country"]),
        ({"shipment_country": "EU"}, ["shipment_country"]),
        ({"purpose": {"category": "DS"}}, ["purpose", "diseases"]),
        ({"purpose": {"category": "DUO:0000099"}}, ["purpose", "category"]),
        ({"items": []}, ["items"]),
        ({"items": [{"kind": "collection", "collection": "CN-SH-H01:COL-999999"}]}, ["items", 0, "collection"]),
        ({"items": [{"kind": "specimen", "specimen": "CN-SH-H01:SPC-999999"}]}, ["items", 0, "specimen"]),
        ({"items": [{"kind": "data", "collection": aw.collection_a}]}, ["items", 0, "data_category"]),
        ({"items": [{"kind": "collection", "collection": aw.collection_a, "quantity": 0}]}, ["items", 0, "quantity"]),
    ]
    for overrides, loc in cases:
        response = aw.requester.post(API, json=request_body([aw.collection_a]) | overrides)
        assert response.status_code == 422, (overrides, response.text)
        locs = [[p for p in e["loc"] if p != "body"] for e in response.json()["detail"]]
        assert loc in locs, (overrides, locs)
    assert count(db, AccessRequest) == 0
    assert count(db, AccessRequestItem) == 0
    assert count(db, AccessRequestProvider) == 0


def test_named_specimens_and_data_lines(aw: AccessWorld, cohort: Any) -> None:
    specimen = cohort.specimens["broad"][0]
    body = request_body(
        specimens=[specimen, cohort.specimens["b_broad"][0]],
        items=None,
    )
    body["items"] = [
        {"kind": "specimen", "specimen": specimen},
        {"kind": "specimen", "specimen": cohort.specimens["b_broad"][0]},
        {"kind": "data", "collection": aw.collection_a, "data_category": "Clinical", "quantity": 7},
    ]
    response = aw.requester.post(API, json=body)
    assert response.status_code == 201, response.text
    read = response.json()
    assert sorted(read["providers"]) == sorted([aw.biobank_a, aw.biobank_b])
    assert read["items"][0]["specimen"] == specimen
    assert read["items"][2]["data_category"] == "Clinical"
    duplicate = body | {"items": [body["items"][0], body["items"][0]]}
    response = aw.requester.post(API, json=duplicate)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["items", 1, "specimen"]


# -- read and list ---------------------------------------------------------------------------------------


def test_a_draft_is_the_requesters_alone(aw: AccessWorld) -> None:
    public_id = create(aw)["public_id"]
    assert aw.requester.get(f"{API}/{public_id}").status_code == 200
    for persona in (aw.owner, aw.other, aw.outsider, aw.reviewer):
        assert persona.get(f"{API}/{public_id}").status_code == 404, persona.username


def test_a_submitted_request_is_seen_by_requester_provider_and_ethics_only(aw: AccessWorld, db: Session) -> None:
    public_id = submitted(aw)
    for persona in (aw.requester, aw.owner, aw.technician, aw.reviewer, aw.admin):
        assert persona.get(f"{API}/{public_id}").status_code == 200, persona.username
    for persona in (aw.other, aw.outsider):
        response = persona.get(f"{API}/{public_id}")
        assert response.status_code == 404, persona.username
        assert response.json()["error"] == "AccessRequestNotFound"
    assert actions(db, "access.request.read").count("access.request.read") >= 1


def test_reads_are_audited(aw: AccessWorld, db: Session) -> None:
    public_id = submitted(aw)
    before = len(actions(db, "access.request.read"))
    aw.owner.get(f"{API}/{public_id}")
    assert len(actions(db, "access.request.read")) == before + 1
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "access.request.read")).all()[-1]
    assert entry.resource_ids == [public_id]


def test_list_is_scoped_paged_and_filtered(aw: AccessWorld, db: Session) -> None:
    draft = create(aw)["public_id"]
    one, two = submitted(aw), submitted(aw)
    mine = aw.requester.get(API, params={"size": 2}).json()
    assert mine["total"] == 3 and len(mine["items"]) == 2
    assert all(r["is_mine"] for r in mine["items"])
    owner = aw.owner.get(API).json()
    assert sorted(r["public_id"] for r in owner["items"]) == sorted([one, two])
    assert draft not in [r["public_id"] for r in owner["items"]]
    assert aw.other.get(API).json()["total"] == 0
    assert aw.outsider.get(API).json()["total"] == 0
    assert aw.reviewer.get(API, params={"role": "ethics"}).json()["total"] == 2
    assert aw.owner.get(API, params={"role": "ethics"}).json()["total"] == 0
    assert aw.requester.get(API, params={"status": "draft"}).json()["total"] == 1
    assert aw.owner.get(API, params={"biobank": aw.biobank_b}).json()["total"] == 0
    bad = aw.requester.get(API, params={"sort": "nope"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["sort"]
    assert aw.requester.get(API, params={"role": "boss"}).json()["detail"][0]["loc"] == ["role"]
    assert "access.request.list" in actions(db, "access.request.list")


def test_list_queries_do_not_grow_with_rows(aw: AccessWorld, db: Session, engine: Any) -> None:
    from sqlalchemy import event

    def queries_for_list() -> int:
        statements: list[str] = []

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", before)
        try:
            assert aw.owner.get(API).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", before)
        return len(statements)

    submitted(aw)
    few = queries_for_list()
    for _ in range(4):
        submitted(aw)
    assert queries_for_list() <= few + 1


# -- ethics document -------------------------------------------------------------------------------------


def test_document_upload_personas_types_and_state(aw: AccessWorld, db: Session) -> None:
    public_id = create(aw)["public_id"]
    url = f"{API}/{public_id}/ethics-document"
    for persona in (aw.owner, aw.other, aw.outsider):
        response = persona.put(url, files={"document": ("a.pdf", b"%PDF-1.4 x", "application/pdf")})
        assert response.status_code == 404, persona.username
    wrong = aw.requester.put(url, files={"document": ("a.txt", b"hello", "text/plain")})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["ethics_document"]
    fake = aw.requester.put(url, files={"document": ("a.pdf", b"not a pdf", "application/pdf")})
    assert fake.status_code == 422
    ok = upload_pdf(aw.requester, public_id)
    assert ok.status_code == 200 and len(ok.json()["sha256"]) == 64
    assert aw.requester.get(url).content.startswith(b"%PDF")
    assert aw.requester.post(f"{API}/{public_id}/submit").status_code == 200
    assert upload_pdf(aw.requester, public_id).status_code == 409
    assert aw.owner.get(url).status_code == 200
    assert aw.other.get(url).status_code == 404


# -- submit ----------------------------------------------------------------------------------------------


def test_submit_needs_document_and_reference(aw: AccessWorld, db: Session) -> None:
    public_id = create(aw, ethics_reference="")["public_id"]
    response = aw.requester.post(f"{API}/{public_id}/submit")
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert ["ethics_document"] in locs and ["ethics_reference"] in locs
    assert db.scalars(select(AccessRequest.status)).one() == "draft"


def test_submit_personas_and_state(aw: AccessWorld, db: Session) -> None:
    public_id = create(aw)["public_id"]
    upload_pdf(aw.requester, public_id)
    for persona in (aw.owner, aw.other, aw.outsider):
        assert persona.post(f"{API}/{public_id}/submit").status_code == 404, persona.username
    response = aw.requester.post(f"{API}/{public_id}/submit")
    assert response.status_code == 200
    read = response.json()
    assert read["status"] == "submitted" and read["submitted_at"]
    assert read["commitment"].startswith("0x")
    assert read["provider_tracks"][0]["eligibility"] is not None
    again = aw.requester.post(f"{API}/{public_id}/submit")
    assert again.status_code == 409 and "submitted" in again.json()["detail"]
    assert aw.owner.post(f"{API}/{public_id}/submit").status_code == 403
    assert aw.other.post(f"{API}/{public_id}/submit").status_code == 404
    assert "access.request.submit" in actions(db, "access.request.submit")
