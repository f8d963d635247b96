"""The audit API: checkpoint, key, entries with their exact leaves, proofs, bad input, who may read."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from biobank.audit.checkpoint import NoteVerifier, open_note, parse_checkpoint
from biobank.audit.encoding import decode_entry
from biobank.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from tests.audit.conftest import head, record_many, stored_leaves
from tests.conftest import Persona, World

SPECIMEN = {
    "sample_type": "Serum",
    "container": "SST",
    "quantity": 2.0,
    "quantity_unit": "mL",
    "status": "processed",
}


def _checkpoint(client: TestClient) -> tuple[int, bytes, str]:
    note = client.get("/api/v1/audit/checkpoint").text
    verifier = NoteVerifier.from_vkey(client.get("/api/v1/audit/public-key").text)
    text, signers = open_note(note, [verifier])
    assert signers == [verifier.name]
    checkpoint = parse_checkpoint(text)
    return checkpoint.size, checkpoint.root, note


def test_checkpoint_and_key_are_public_signed_text(client: TestClient, world: World, engine: Engine) -> None:
    response = client.get("/api/v1/audit/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    key = client.get("/api/v1/audit/public-key")
    assert key.status_code == 200 and key.text.endswith("\n")
    assert key.text.startswith("CN-SH-H01.biobank-commons/audit+")
    size, tree_root, note = _checkpoint(client)
    assert note.startswith("CN-SH-H01.biobank-commons/audit\n")
    assert (size, tree_root) == head(engine)  # the first checkpoint is made when first asked for


def test_entry_leaf_is_in_the_signed_tree(client: TestClient, auditor: Persona, world: World, engine: Engine) -> None:
    size, tree_root, _ = _checkpoint(client)
    for index in (0, size // 2, size - 1):
        body = auditor.get(f"/api/v1/audit/entries/{index}").json()
        leaf = base64.b64decode(body["leaf"])
        fields = decode_entry(leaf)
        assert body["index"] == fields["index"] == index
        assert {k: body[k] for k in fields} == fields
        assert base64.b64decode(body["leaf_hash"]) == leaf_hash(leaf)
        assert body["problem"] is None
        proof = auditor.get(f"/api/v1/audit/proofs/inclusion?index={index}&size={size}").json()
        assert proof["index"] == index and proof["size"] == size
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert verify_inclusion(leaf_hash(leaf), index, size, hashes, tree_root)


def test_consistency_between_checkpoints(client: TestClient, auditor: Persona, engine: Engine, settings) -> None:  # type: ignore[no-untyped-def]
    first, first_root, _ = _checkpoint(client)
    record_many(engine, 30, per_transaction=7)
    settings.audit_checkpoint_entries = 1  # due at once
    second, second_root, _ = _checkpoint(client)
    assert second > first + 30 - 1
    body = auditor.get(f"/api/v1/audit/proofs/consistency?first={first}&second={second}").json()
    assert (body["first"], body["second"]) == (first, second)
    hashes = [base64.b64decode(h) for h in body["hashes"]]
    assert verify_consistency(first, second, first_root, second_root, hashes)
    empty = auditor.get(f"/api/v1/audit/proofs/consistency?first=0&second={second}").json()
    assert empty["hashes"] == []


def test_bulk_leaves_for_verifiers(auditor: Persona, engine: Engine) -> None:
    leaves = dict(stored_leaves(engine))
    size = len(leaves)
    # The request's own entries (the read, the token use) are appended when it commits, after it answered.
    body = auditor.get(f"/api/v1/audit/entries?start=1&end={size + 50}").json()
    assert (body["start"], body["end"], body["size"]) == (1, size, size)  # end is capped at the tree size
    assert [base64.b64decode(x) for x in body["leaves"]] == [leaves[i] for i in range(1, size)]
    now, _ = head(engine)
    assert now > size
    assert auditor.get(f"/api/v1/audit/entries?start={now}").json() == {
        "start": now,
        "end": now,
        "size": now,
        "leaves": [],
    }


@pytest.mark.parametrize(
    ("url", "status", "field"),
    [
        ("/api/v1/audit/entries/999999", 422, "index"),
        ("/api/v1/audit/entries/-1", 422, "index"),
        ("/api/v1/audit/entries/abc", 422, "index"),
        ("/api/v1/audit/entries/99999999999999999999999999", 422, "index"),
        ("/api/v1/audit/entries?start=999999", 422, "start"),
        ("/api/v1/audit/entries?start=5&end=2", 422, "end"),
        ("/api/v1/audit/entries?start=0&end=20001", 422, "end"),
        ("/api/v1/audit/proofs/inclusion?index=3&size=999999", 422, "size"),
        ("/api/v1/audit/proofs/inclusion?index=3&size=3", 422, "index"),
        ("/api/v1/audit/proofs/inclusion?index=0&size=0", 422, "index"),
        ("/api/v1/audit/proofs/inclusion?index=x&size=3", 422, "index"),
        ("/api/v1/audit/proofs/inclusion?size=3", 422, "index"),
        ("/api/v1/audit/proofs/inclusion?index=1&size=1e3", 422, "size"),
        ("/api/v1/audit/proofs/consistency?first=4&second=2", 422, "first"),
        ("/api/v1/audit/proofs/consistency?first=1&second=999999", 422, "second"),
        ("/api/v1/audit/proofs/consistency?first=-1&second=2", 422, "first"),
        ("/api/v1/audit/proofs/consistency?first=1&second=9223372036854775808", 422, "second"),
    ],
)
def test_bad_numbers_are_clear_errors_naming_the_parameter(auditor: Persona, url: str, status: int, field: str) -> None:
    response = auditor.get(url)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] in ("Invalid", "IndexOutOfRange", "SizeOutOfRange")
    assert any(field in error["loc"] for error in body["detail"]), body


def test_who_may_read_the_log(client: TestClient, world: World, auditor: Persona) -> None:
    urls = [
        "/api/v1/audit/entries/0",
        "/api/v1/audit/entries?start=0",
        "/api/v1/audit/proofs/inclusion?index=0&size=1",
        "/api/v1/audit/proofs/consistency?first=0&second=1",
    ]
    for url in urls:
        assert auditor.get(url).status_code == 200, url
        assert world.admin.get(url).status_code == 200, url
        for persona in (world.owner, world.other, world.outsider):
            response = persona.get(url)
            assert response.status_code == 404, (persona.username, url)
            assert response.json()["error"] == "AuditLogNotFound"
        assert client.get(url).status_code == 401


def test_reading_entries_is_itself_recorded(auditor: Persona, engine: Engine) -> None:
    before, _ = head(engine)
    auditor.get("/api/v1/audit/entries/0")
    index = before  # the token use (first of the minute) may come first
    actions = [decode_entry(leaf)["action"] for i, leaf in stored_leaves(engine) if i >= index]
    assert "audit.entry.read" in actions


def _donor_with_specimen(world: World) -> tuple[str, str]:
    donor = world.owner.post(
        "/api/v1/donors",
        json={"biobank": world.biobank_a, "patient_id": "MRN-77", "sex": "Female", "birth_year": 1970, "name": "Li Na"},
    ).json()["public_id"]
    specimen = world.owner.post(
        "/api/v1/specimens",
        json={"barcode": "AH-0001", "collection": world.collection_a, "donor": donor, **SPECIMEN},
    )
    assert specimen.status_code == 201, specimen.text
    return donor, specimen.json()["public_id"]


def test_donor_access_history(world: World, auditor: Persona) -> None:
    donor, specimen = _donor_with_specimen(world)
    other_donor, other_specimen = _donor_with_specimen_b(world)
    assert world.technician.get(f"/api/v1/specimens/{specimen}").status_code == 200
    assert world.owner.get(f"/api/v1/donors/{donor}").status_code == 200
    response = world.owner.get(f"/api/v1/donors/{donor}/access-history")
    assert response.status_code == 200, response.text
    body = response.json()
    actions = [item["action"] for item in body["items"]]
    assert "specimen.read" in actions and "donor.read" in actions and "donor.create" in actions
    assert body["total"] == len(body["items"])
    for item in body["items"]:
        assert set(item) == {"index", "at", "institution", "action", "outcome", "purpose", "resource_ids"}
        assert item["institution"] == "CN-SH-H01"
        assert set(item["resource_ids"]) <= {donor, specimen}
    text = response.text
    for staff in ("owner", "tech", "Li Na", "MRN-77", other_donor, other_specimen):
        assert staff not in text
    # Scoping: the donor is invisible to the other biobank's member and the outsider.
    assert world.other.get(f"/api/v1/donors/{donor}/access-history").status_code == 404
    assert world.outsider.get(f"/api/v1/donors/{donor}/access-history").status_code == 404
    assert world.admin.get(f"/api/v1/donors/{donor}/access-history").status_code == 200
    # Reading the history is itself an access, shown next time.
    again = world.owner.get(f"/api/v1/donors/{donor}/access-history?size=1").json()
    assert again["items"][0]["action"] == "donor.access_history.read"
    assert again["total"] == body["total"] + 2  # the owner's read above and the admin's


def _donor_with_specimen_b(world: World) -> tuple[str, str]:
    donor = world.other.post(
        "/api/v1/donors",
        json={"biobank": world.biobank_b, "patient_id": "MRN-88", "sex": "Male", "birth_year": 1960},
    ).json()["public_id"]
    specimen = world.other.post(
        "/api/v1/specimens",
        json={"barcode": "BH-0001", "collection": world.collection_b, "donor": donor, **SPECIMEN},
    ).json()["public_id"]
    return donor, specimen


def test_entries_hold_no_personal_data(world: World, engine: Engine) -> None:
    _donor_with_specimen(world)
    world.owner.post("/api/v1/auth/login", json={"username": "owner", "password": "wrong password!"})
    everything = b"".join(leaf for _, leaf in stored_leaves(engine))
    for personal in (b"Li Na", b"MRN-77", b"owner", b"outsider", b"127.0.0.1", b"testclient"):
        assert personal not in everything


def test_donor_facing_history_records_nothing_itself(world: World, db, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from biobank.audit.access import donor_access_history
    from biobank.identity.principal import system_principal

    donor, specimen = _donor_with_specimen(world)
    world.technician.get(f"/api/v1/specimens/{specimen}")
    before, _ = head(engine)
    items, total = donor_access_history(db, system_principal("CN-SH-H01"), donor)
    db.commit()
    assert head(engine)[0] == before  # the portal records its own read
    assert total == len(items) and {"specimen.read", "donor.create"} <= {i.action for i in items}
    assert all(not hasattr(item, "actor") for item in items)
